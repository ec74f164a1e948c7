"""Latent-space exploration (Tom White 2016, "Sampling Generative Networks", arXiv:1609.04468;
Karras et al. 2019, "A Style-Based Generator Architecture for GANs", arXiv:1812.04948).

- **lerp** ``z(t) = (1 - t) z0 + t z1``; **slerp** (White 2016, eq. 1)
  ``z(t) = sin((1 - t) W) / sin(W) z0 + sin(t W) / sin(W) z1``, ``cos W = <z0/|z0|, z1/|z1|>``.
  In high dimension a Gaussian latent lives near the shell ``|z| ~ sqrt(d)``; lerp's midpoint of
  two independent samples has norm ``~ sqrt(d/2)`` (off the shell), slerp stays on it when
  ``|z0| = |z1|``. :func:`path_norms` gives the norm along a path.
- **Per-dimension sweeps**: one coordinate of ``z`` varied over a range, the others fixed.
- **Attribute vectors** (White 2016, §3.3): the mean latent of samples a classifier labels ``b``
  minus that of label ``a``, added to new latents with a strength.
- **Circle through three points**: the circumcircle of three latents in the plane they span, a
  closed non-linear path that visits all three (for Gaussian latents it stays near the shell).
- **StyleGAN only** (``hasattr(G, "mapping")``): lerp in W, style-mixing grids with the
  coarse / middle / fine thirds of the per-layer styles taken from a second source, and a
  truncation strip ``w' = w_avg + psi (w - w_avg)``.
- **Perceptual path length** (Karras et al. 2019, eq. 2-3):
  ``PPL = E[ d(G(p(t)), G(p(t + eps))) / eps^2 ]``, ``t ~ U(0, 1)``, ``eps = 1e-4``, ``p`` the
  lerp or slerp path between two random latents (in Z, or lerp in W for StyleGAN), ``d`` the
  squared Euclidean distance in a given feature space (Karras use LPIPS; here the classifier's
  features or pixels). As in the official code, values outside the 1st-99th percentile are
  dropped before averaging.

Every random draw comes from ``torch.Generator().manual_seed(seed)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, DataError

FeatureFn = Callable[[torch.Tensor], Any]
STYLE_RANGES = ("coarse", "middle", "fine")


# ----------------------------------------------------------------------------- paths
def _check_steps(n: int) -> int:
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 2:
        raise ConfigError(f"an interpolation needs at least 2 steps (both endpoints), got {n!r}")
    return int(n)


def _check_pair(z0: torch.Tensor, z1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if z0.shape != z1.shape or z0.ndim != 1:
        raise DataError(f"endpoints must be two vectors of the same shape (d,), got {tuple(z0.shape)} and {tuple(z1.shape)}")
    return z0, z1


def lerp(z0: torch.Tensor, z1: torch.Tensor, n: int) -> torch.Tensor:
    """``n`` points ``(1 - t) z0 + t z1`` for ``t = 0, 1/(n-1), ..., 1``: ``(n, d)``."""
    n = _check_steps(n)
    z0, z1 = _check_pair(z0, z1)
    t = torch.linspace(0, 1, n, dtype=z0.dtype)[:, None]
    return (1 - t) * z0[None] + t * z1[None]


def slerp(z0: torch.Tensor, z1: torch.Tensor, n: int, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation (White 2016): ``(n, d)``, endpoints included.

    ``z(t) = sin((1-t) W)/sin(W) z0 + sin(t W)/sin(W) z1`` with ``W`` the angle between ``z0`` and
    ``z1``. Nearly parallel endpoints (``sin W < eps``) fall back to lerp; opposite ones are an
    error (the great circle is not unique).
    """
    n = _check_steps(n)
    z0, z1 = _check_pair(z0, z1)
    t = torch.linspace(0, 1, n, dtype=torch.float64)
    a, b = z0.double(), z1.double()
    na, nb = a.norm(), b.norm()
    if na == 0 or nb == 0:
        raise DataError("slerp needs non-zero endpoints (the angle to a zero vector is undefined)")
    cos = torch.clamp((a / na) @ (b / nb), -1.0, 1.0)
    omega = torch.arccos(cos)
    so = torch.sin(omega)
    if so < eps:
        if cos < 0:
            raise DataError("slerp endpoints point in opposite directions; the great circle between them is not unique")
        return lerp(z0, z1, n)
    wa = torch.sin((1 - t) * omega) / so
    wb = torch.sin(t * omega) / so
    return (wa[:, None] * a[None] + wb[:, None] * b[None]).to(z0.dtype)


def interpolate(z0: torch.Tensor, z1: torch.Tensor, n: int, method: str = "slerp") -> torch.Tensor:
    """``lerp`` or ``slerp`` path of ``n`` points."""
    if method == "lerp":
        return lerp(z0, z1, n)
    if method == "slerp":
        return slerp(z0, z1, n)
    raise ConfigError(f"unknown interpolation {method!r}; known: lerp, slerp")


def path_norms(path: torch.Tensor) -> torch.Tensor:
    """Euclidean norm of each point of a path ``(n, d)`` (or ``(n, num_ws, w_dim)``, flattened)."""
    return path.reshape(len(path), -1).double().norm(dim=1)


def circle_through(z0: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor, n_per_arc: int = 8
                   ) -> tuple[torch.Tensor, list[int]]:
    """Closed path on the circle through three points (their circumcircle), visiting z0, z1, z2.

    The centre ``c = z0 + alpha u + beta v`` (``u = z1 - z0``, ``v = z2 - z0``) solves
    ``[u.u u.v; u.v v.v] [alpha, beta] = [u.u/2, v.v/2]``; the path is
    ``c + r (cos theta e1 + sin theta e2)`` with ``e1 = (z0 - c)/r``, theta from 0 to 2 pi, in
    three arcs of ``n_per_arc`` points each (shared endpoints counted once).

    Returns
    -------
    path : ``(3 (n_per_arc - 1) + 1, d)``, starting and ending at ``z0``.
    keys : indices of ``z0, z1, z2`` (and ``z0`` again) in ``path``.
    """
    n = _check_steps(n_per_arc)
    if not (z0.shape == z1.shape == z2.shape) or z0.ndim != 1:
        raise DataError("the three points must be vectors of the same shape (d,)")
    a, b, c = z0.double(), z1.double(), z2.double()
    u, v = b - a, c - a
    gram = torch.stack([torch.stack([u @ u, u @ v]), torch.stack([u @ v, v @ v])])
    if torch.linalg.det(gram).abs() <= 1e-12 * float(u @ u) * float(v @ v):
        raise DataError("the three points are (nearly) collinear; no circle passes through them")
    alpha, beta = torch.linalg.solve(gram, torch.stack([u @ u, v @ v]) / 2)
    centre = a + alpha * u + beta * v
    r = (a - centre).norm()
    e1 = (a - centre) / r
    pb = b - centre
    e2 = pb - (pb @ e1) * e1
    e2 = e2 / e2.norm()

    def angle(p: torch.Tensor) -> float:
        return float(torch.atan2((p - centre) @ e2, (p - centre) @ e1)) % (2 * math.pi)

    tb, tc = angle(b), angle(c)
    if tc < tb:  # go round the other way so that z1 comes before z2
        e2 = -e2
        tb, tc = 2 * math.pi - tb, 2 * math.pi - tc
    thetas = []
    for lo, hi in ((0.0, tb), (tb, tc), (tc, 2 * math.pi)):
        seg = np.linspace(lo, hi, n)
        thetas.extend(seg if not thetas else seg[1:])
    th = torch.tensor(thetas, dtype=torch.float64)[:, None]
    path = centre[None] + r * (torch.cos(th) * e1[None] + torch.sin(th) * e2[None])
    keys = [0, n - 1, 2 * (n - 1), 3 * (n - 1)]
    path[keys[0]], path[keys[1]], path[keys[2]], path[keys[3]] = a, b, c, a  # exact (round-off ~1e-15)
    return path.to(z0.dtype), keys


# ----------------------------------------------------------------------------- generation helpers
def _device(G: nn.Module) -> torch.device:
    p = next(iter(G.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def generate(G: nn.Module, z: torch.Tensor, batch_size: int = 256, **kw: Any) -> torch.Tensor:
    """``G(z)`` in batches on G's device; images on the CPU. ``kw`` go to ``G`` (``truncation``)."""
    if z.ndim != 2 or z.shape[1] != G.z_dim:
        raise DataError(f"latents must have shape (B, {G.z_dim}), got {tuple(z.shape)}")
    dev = _device(G)
    return torch.cat([G(z[i:i + batch_size].to(dev), **kw).cpu() for i in range(0, len(z), batch_size)])


@torch.no_grad()
def synthesize(G: nn.Module, ws: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """StyleGAN ``G.synthesis(ws)`` in batches; ``ws`` ``(B, num_ws, w_dim)``."""
    _require_style(G)
    dev = _device(G)
    return torch.cat([G.synthesis(ws[i:i + batch_size].to(dev)).cpu() for i in range(0, len(ws), batch_size)])


def _require_style(G: nn.Module) -> None:
    if not (hasattr(G, "mapping") and hasattr(G, "synthesis")):
        raise ConfigError(f"{type(G).__name__} has no mapping/synthesis networks; this needs a StyleGAN generator")


def sample_latents(G: nn.Module, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` latents from ``G.sample_z`` with ``torch.Generator().manual_seed(seed)`` (CPU)."""
    if n < 1:
        raise ConfigError(f"need n >= 1 latents, got {n}")
    return G.sample_z(n, torch.Generator().manual_seed(seed), "cpu")


def interpolation_images(G: nn.Module, z0: torch.Tensor, z1: torch.Tensor, n: int,
                         methods: Sequence[str] = ("lerp", "slerp")) -> dict[str, dict[str, torch.Tensor]]:
    """Images and latent norms along each path: ``{method: {"images": (n,C,H,W), "norms": (n,)}}``."""
    out = {}
    for m in methods:
        path = interpolate(z0, z1, n, m)
        out[m] = {"images": generate(G, path), "norms": path_norms(path), "path": path}
    return out


# ----------------------------------------------------------------------------- sweeps
def dimension_sweep(G: nn.Module, z: torch.Tensor, dims: Sequence[int], values: Sequence[float] | torch.Tensor
                    ) -> torch.Tensor:
    """Images with ``z[d]`` set to each of ``values``, the other coordinates fixed.

    Returns ``(len(dims), len(values), C, H, W)``.
    """
    if z.ndim != 1 or z.shape[0] != G.z_dim:
        raise DataError(f"z must be one latent of shape ({G.z_dim},), got {tuple(z.shape)}")
    vals = torch.as_tensor(values, dtype=z.dtype)
    if vals.ndim != 1 or len(vals) < 2:
        raise ConfigError(f"a sweep needs at least 2 values, got {list(vals.shape)}")
    bad = [d for d in dims if not 0 <= int(d) < G.z_dim]
    if bad:
        raise ConfigError(f"dimensions {bad} are outside 0..{G.z_dim - 1}")
    zs = z[None, None].repeat(len(dims), len(vals), 1)
    for i, d in enumerate(dims):
        zs[i, :, int(d)] = vals
    imgs = generate(G, zs.reshape(-1, G.z_dim))
    return imgs.reshape(len(dims), len(vals), *imgs.shape[1:])


def sweep_effect(G: nn.Module, z: torch.Tensor, values: Sequence[float] | torch.Tensor = (-2.0, 2.0)) -> torch.Tensor:
    """Mean squared pixel change when each latent dimension alone moves from ``values[0]`` to ``values[-1]``.

    ``z``: ``(B, z_dim)`` base latents. Returns ``(z_dim,)``; the largest entries are the
    dimensions worth sweeping.
    """
    if z.ndim != 2 or z.shape[1] != G.z_dim:
        raise DataError(f"z must have shape (B, {G.z_dim}), got {tuple(z.shape)}")
    lo, hi = float(values[0]), float(values[-1])
    b, d = z.shape
    za = z[None].repeat(d, 1, 1)  # (z_dim, B, z_dim): copy i has coordinate i changed
    zb = za.clone()
    idx = torch.arange(d)
    za[idx, :, idx], zb[idx, :, idx] = lo, hi
    diff = generate(G, za.reshape(-1, d)) - generate(G, zb.reshape(-1, d))
    return diff.double().reshape(d, b, -1).pow(2).mean((1, 2))


# ----------------------------------------------------------------------------- attribute vectors
@dataclass
class AttributeVectors:
    """Class-mean latents of generated samples, labelled by a classifier.

    Attributes
    ----------
    means : ``{label: mean latent}`` (``(z_dim,)``, or ``(num_ws, w_dim)`` in W).
    counts : ``{label: number of samples}``.
    space : ``z`` or ``w``.
    """

    means: dict[int, torch.Tensor]
    counts: dict[int, int]
    space: str

    def vector(self, a: int, b: int) -> torch.Tensor:
        """Mean latent of label ``b`` minus that of label ``a`` (the "a -> b" attribute vector)."""
        missing = [k for k in (a, b) if k not in self.means]
        if missing:
            raise ConfigError(f"no generated sample was labelled {missing}; labels seen: {sorted(self.means)}. "
                              "Use more samples or other labels")
        return self.means[b] - self.means[a]


@torch.no_grad()
def attribute_vectors(G: nn.Module, classify: Callable[[torch.Tensor], torch.Tensor], n: int = 512,
                      seed: int = 0, space: str = "z", batch_size: int = 256, min_count: int = 1
                      ) -> AttributeVectors:
    """Label ``n`` generated images with ``classify(images) -> labels (B,)``; mean latent per label.

    ``space='w'`` (StyleGAN) averages the mapped styles instead of ``z``.
    """
    if space not in ("z", "w"):
        raise ConfigError(f"space must be 'z' or 'w', got {space!r}")
    if space == "w":
        _require_style(G)
    z = sample_latents(G, n, seed)
    dev = _device(G)
    lat, labels = [], []
    for i in range(0, n, batch_size):
        zb = z[i:i + batch_size]
        if space == "w":
            ws = G.mapping(zb.to(dev)).cpu()
            imgs = synthesize(G, ws)
            lat.append(ws)
        else:
            imgs = generate(G, zb)
            lat.append(zb)
        lab = torch.as_tensor(classify(imgs)).reshape(-1).long().cpu()
        if len(lab) != len(imgs):
            raise DataError(f"classify returned {len(lab)} labels for {len(imgs)} images")
        labels.append(lab)
    lat_t, lab_t = torch.cat(lat), torch.cat(labels)
    means, counts = {}, {}
    for k in torch.unique(lab_t).tolist():
        sel = lab_t == k
        if int(sel.sum()) >= min_count:
            means[int(k)] = lat_t[sel].mean(0)
            counts[int(k)] = int(sel.sum())
    return AttributeVectors(means, counts, space)


@torch.no_grad()
def apply_attribute(G: nn.Module, latents: torch.Tensor, vector: torch.Tensor,
                    strengths: Sequence[float] = (0.0, 0.5, 1.0, 1.5)) -> torch.Tensor:
    """Images of ``latents + s * vector`` for each strength ``s``: ``(B, len(strengths), C, H, W)``.

    ``latents`` are ``(B, z_dim)`` or, in W, ``(B, num_ws, w_dim)`` (then rendered with synthesis).
    """
    if latents.shape[1:] != vector.shape:
        raise DataError(f"vector of shape {tuple(vector.shape)} does not match latents {tuple(latents.shape)}")
    s = torch.as_tensor(strengths, dtype=latents.dtype)
    moved = latents[:, None] + s.view(1, -1, *([1] * vector.ndim)) * vector[None, None]
    flat = moved.reshape(-1, *vector.shape)
    imgs = synthesize(G, flat) if vector.ndim == 2 else generate(G, flat)
    return imgs.reshape(len(latents), len(s), *imgs.shape[1:])


# ----------------------------------------------------------------------------- StyleGAN
@torch.no_grad()
def w_interpolation(G: nn.Module, z0: torch.Tensor, z1: torch.Tensor, n: int, truncation: float = 1.0
                    ) -> dict[str, torch.Tensor]:
    """lerp in W between ``mapping(z0)`` and ``mapping(z1)``: ``{"images", "norms", "path"}``."""
    _require_style(G)
    n = _check_steps(n)
    dev = _device(G)
    ws = G.mapping(torch.stack([z0, z1]).to(dev), truncation=truncation).cpu()
    t = torch.linspace(0, 1, n, dtype=ws.dtype).view(-1, 1, 1)
    path = (1 - t) * ws[0][None] + t * ws[1][None]
    return {"images": synthesize(G, path), "norms": path_norms(path), "path": path}


def style_ranges(num_ws: int) -> dict[str, list[int]]:
    """Split the style indices ``0..num_ws-1`` into contiguous thirds: coarse, middle, fine.

    Low indices drive the low-resolution blocks (pose / overall shape), high ones the finest
    blocks (stroke texture) — StyleGAN's coarse 4-8 / middle 16-32 / fine 64-1024 split, scaled
    down to the 3-4 resolutions of these small generators.
    """
    if num_ws < 3:
        raise ConfigError(f"need at least 3 styles to split into coarse/middle/fine, got {num_ws}")
    parts = np.array_split(np.arange(num_ws), 3)
    return {name: p.tolist() for name, p in zip(STYLE_RANGES, parts)}


@torch.no_grad()
def style_mixing(G: nn.Module, z_a: torch.Tensor, z_b: torch.Tensor, truncation: float = 1.0
                 ) -> dict[str, torch.Tensor]:
    """Style-mixing grids (Karras et al. 2019, Fig. 3).

    Cell ``(i, j)`` of grid ``r`` has the styles of source ``A_i`` except those of range ``r``
    (coarse / middle / fine), which come from source ``B_j``.

    Returns
    -------
    dict with ``a`` ``(n_a, C, H, W)``, ``b`` ``(n_b, C, H, W)`` (the sources) and, per range,
    ``(n_a, n_b, C, H, W)``.
    """
    _require_style(G)
    dev = _device(G)
    wa = G.mapping(z_a.to(dev), truncation=truncation).cpu()
    wb = G.mapping(z_b.to(dev), truncation=truncation).cpu()
    out = {"a": synthesize(G, wa), "b": synthesize(G, wb)}
    na, nb = len(wa), len(wb)
    for name, idx in style_ranges(G.num_ws).items():
        mixed = wa[:, None].repeat(1, nb, 1, 1)
        mixed[:, :, idx] = wb[None, :, idx].expand(na, -1, -1, -1)
        imgs = synthesize(G, mixed.reshape(-1, *wa.shape[1:]))
        out[name] = imgs.reshape(na, nb, *imgs.shape[1:])
    return out


@torch.no_grad()
def truncation_strip(G: nn.Module, z: torch.Tensor, psis: Sequence[float] = (-1.0, -0.5, 0.0, 0.5, 0.7, 1.0)
                     ) -> torch.Tensor:
    """Images ``G(z, truncation=psi)`` for each ``psi``: ``(len(z), len(psis), C, H, W)``.

    ``psi = 0`` gives the image of ``w_avg`` for every ``z``; negative ``psi`` the "anti-image".
    """
    _require_style(G)
    imgs = torch.stack([generate(G, z, truncation=float(p)) for p in psis], dim=1)
    return imgs


# ----------------------------------------------------------------------------- perceptual path length
def apply_features(feature_fn: FeatureFn | None, images: torch.Tensor) -> torch.Tensor:
    """Features ``(B, F)`` of ``images``; ``None`` = flattened pixels. A dict result (an extractor
    of :mod:`ganreport.metrics.features`) gives its ``main`` output (or its only one)."""
    if feature_fn is None:
        return images.reshape(len(images), -1)
    out = feature_fn(images)
    if isinstance(out, dict):
        key = getattr(feature_fn, "main", None)
        if key not in out:
            if len(out) != 1:
                raise ConfigError(f"feature function returned outputs {sorted(out)}; wrap it to return one tensor")
            key = next(iter(out))
        out = out[key]
    out = torch.as_tensor(out)
    if out.shape[0] != len(images):
        raise DataError(f"feature function returned {out.shape[0]} rows for {len(images)} images")
    return out.reshape(len(images), -1)


@dataclass
class PPLResult:
    """Perceptual path length: ``value`` (mean of the kept distances), 95 % CI, raw distances."""

    value: float
    ci_low: float
    ci_high: float
    n: int
    distances: np.ndarray
    space: str
    interp: str
    eps: float


@torch.no_grad()
def perceptual_path_length(G: nn.Module, feature_fn: FeatureFn | None = None, n: int = 256, eps: float = 1e-4,
                           space: str = "z", interp: str = "slerp", seed: int = 0, batch_size: int = 128,
                           truncation: float = 1.0, trim: bool = True) -> PPLResult:
    """Perceptual path length (Karras et al. 2019, eq. 2 in Z, eq. 3 in W).

    ``PPL = E_{z1, z2, t ~ U(0,1)} [ d(G(p(t)), G(p(t + eps))) / eps^2 ]`` with ``d`` the squared
    Euclidean distance between ``feature_fn`` features (pixels when ``None``) and ``p`` the
    ``interp`` path (``lerp`` / ``slerp`` in Z; in W only ``lerp``, of ``mapping(z)``). ``trim``
    drops distances outside the 1st-99th percentile (official implementation) before the mean.
    Draws (``z1``, ``z2``, ``t``) come from ``torch.Generator().manual_seed(seed)``.

    Karras' code normalises ``z`` to the unit sphere before slerp, which is harmless for StyleGAN
    (its mapping network pixel-normalises ``z``) but would feed atypically short latents to a DCGAN
    generator; here slerp keeps the endpoints' norms (White 2016, :func:`slerp`).

    Paths are computed in float64 and fed to ``G`` in its own dtype. With a float32 ``G`` and
    ``eps = 1e-4`` each distance carries a relative round-off error of about 1e-3 (as in the
    official float32 code); pass ``G.double()`` for exact finite differences.
    """
    if space not in ("z", "w"):
        raise ConfigError(f"space must be 'z' or 'w', got {space!r}")
    if interp not in ("lerp", "slerp"):
        raise ConfigError(f"interp must be 'lerp' or 'slerp', got {interp!r}")
    if space == "w":
        _require_style(G)
        if interp != "lerp":
            raise ConfigError("PPL in W uses lerp (Karras et al. 2019, eq. 3); W is not Gaussian, slerp has no meaning there")
    if n < 2:
        raise ConfigError(f"PPL needs n >= 2 samples, got {n}")
    if not eps > 0:
        raise ConfigError(f"eps must be > 0, got {eps}")
    rng = torch.Generator().manual_seed(seed)
    z1 = G.sample_z(n, rng, "cpu")
    z2 = G.sample_z(n, rng, "cpu")
    t = torch.rand(n, generator=rng, dtype=torch.float64) * (1 - eps)  # keep t + eps inside [0, 1]
    dev = _device(G)
    p = next(iter(G.parameters()), None)
    dtype = p.dtype if p is not None else torch.float32  # paths are built in float64, G runs in its dtype
    dists = []
    for i in range(0, n, batch_size):
        a, b, tt = z1[i:i + batch_size].double(), z2[i:i + batch_size].double(), t[i:i + batch_size][:, None]
        if space == "z":
            p0, p1 = _batch_interp(a, b, tt, interp), _batch_interp(a, b, tt + eps, interp)
            kw = {"truncation": truncation} if truncation != 1.0 else {}  # only StyleGAN takes it
            imgs = generate(G, torch.cat([p0, p1]).to(dtype), batch_size=2 * len(a), **kw)
        else:
            wa = G.mapping(a.to(dtype).to(dev), truncation=truncation).double().cpu()
            wb = G.mapping(b.to(dtype).to(dev), truncation=truncation).double().cpu()
            t3 = tt[:, :, None]
            p0, p1 = wa + t3 * (wb - wa), wa + (t3 + eps) * (wb - wa)
            imgs = synthesize(G, torch.cat([p0, p1]).to(dtype), batch_size=2 * len(a))
        f = apply_features(feature_fn, imgs).double()
        f0, f1 = f[: len(a)], f[len(a):]
        dists.append(((f1 - f0).pow(2).sum(1) / eps ** 2).numpy())
    d = np.concatenate(dists)
    kept = d
    if trim and len(d) >= 10:
        lo, hi = np.percentile(d, [1, 99])
        kept = d[(d >= lo) & (d <= hi)]
    from .measures import mean_ci

    m, lo_ci, hi_ci = mean_ci(kept)
    return PPLResult(m, lo_ci, hi_ci, len(kept), d, space, interp, eps)


def _batch_interp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor, method: str) -> torch.Tensor:
    """Row-wise lerp/slerp of ``a``, ``b`` ``(B, d)`` at ``t`` ``(B, 1)`` (float64)."""
    if method == "lerp":
        return a + t * (b - a)
    na, nb = a.norm(dim=1, keepdim=True), b.norm(dim=1, keepdim=True)
    cos = ((a / na) * (b / nb)).sum(1, keepdim=True).clamp(-1, 1)
    omega = torch.arccos(cos)
    so = torch.sin(omega)
    small = so < 1e-7
    so = torch.where(small, torch.ones_like(so), so)
    out = torch.sin((1 - t) * omega) / so * a + torch.sin(t * omega) / so * b
    return torch.where(small, a + t * (b - a), out)


__all__ = ["lerp", "slerp", "interpolate", "path_norms", "circle_through", "generate", "synthesize",
           "sample_latents", "interpolation_images", "dimension_sweep", "sweep_effect", "AttributeVectors",
           "attribute_vectors", "apply_attribute", "w_interpolation", "style_ranges", "style_mixing",
           "truncation_strip", "perceptual_path_length", "PPLResult", "apply_features", "STYLE_RANGES"]
