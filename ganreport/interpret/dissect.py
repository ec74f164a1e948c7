"""GAN Dissection (Bau et al. 2019, ICLR) with bounded memory, plus the cheaper route of its review.

Method (Bau et al. 2019 "GAN Dissection: Visualizing and Understanding Generative Adversarial
Networks", §2; thresholds as in Bau et al. 2017 "Network Dissection", §2.2):

1. **Dissection.** For unit ``u`` of layer ``l`` with activation map ``r_u(z)`` (``h × w``), the
   threshold ``t_u`` is the unit's top quantile over every spatial position of every sample,
   ``P(r_u > t_u) = q`` (default ``q = 1 %``). The map is upsampled bilinearly to the image size,
   ``r↑_u``, and thresholded, ``M_u = [r↑_u ≥ t_u]``. With the segmentation ``s_c`` of concept ``c``
   in the generated image ``G(z)``, the dataset-level intersection over union is

       IoU(u, c) = Σ_z |M_u(z) ∧ s_c(z)| / Σ_z |M_u(z) ∨ s_c(z)|.

   A unit is *interpretable* when ``max_c IoU(u, c) > 0.05``. Two passes over the same seeded
   latents: pass 1 feeds every activation to a streaming quantile sketch (:class:`QuantileSketch`,
   fixed memory), pass 2 accumulates the intersections and areas. Memory is O(units × bins +
   units × concepts), independent of the number of samples — the original GANDissect tool stored
   activations and ran out of memory (research 002, §4.2).
   (Units whose threshold equals their minimum, e.g. ReLU units that are 0 on > 99 % of positions,
   use ``r↑_u > t_u`` instead, so "always off" never becomes "covers the whole image".)
2. **Interventions** (Bau et al. 2019, §2.2). At positions ``P`` of layer ``l`` and for a unit set
   ``U`` with coefficients ``α_u ∈ [0, 1]`` (1 for hard interventions):
   ``r'_{u,P} = (1 − α_u) r_{u,P} + α_u k_u`` — ablation ``k_u = 0``, insertion ``k_u`` = a high
   per-unit value (default: the unit's mean activation where it is above its threshold,
   ``E[r_u | r_u ≥ t_u]``, close to the paper's choice of the unit's typical value inside the
   concept; a fixed quantile such as the 99th percentile is 0 for units that fire on fewer than
   1 % of positions). The effect is measured on
   the concept's pixel share ``s̄_c(x)`` in the segmentation of the output:

       ablation  ACE = E_z[ s̄_c(G(z)) ] − E_z[ s̄_c(G_{U:=0}(z)) ]        (concept removed, > 0)
       insertion ACE = E_z[ s̄_c(G_{U:=k}(z)) ] − E_z[ s̄_c(G(z)) ]        (concept created, > 0)

   compared with ``k`` random units of the same layer.
3. **Optimal causal unit set** (Bau et al. 2019, §2.2, eq. 4): learn ``α ∈ [0, 1]^d`` minimising
   ``∓ E_z[ŝ_c(G_α(z))] + λ ‖α‖²`` (insertion: −, ablation: +) where ``ŝ_c`` is the differentiable
   soft pixel share (mean softmax probability of ``c``); projected Adam. Units are ranked by α.
4. **Context test** (Bau et al. 2019, §4.3, "doors in the sky"): insert a concept's units in one
   cell of the layer where the unedited image shows context A (e.g. a house) or B (the sky) and
   count how often the concept appears there.
5. **Cheaper route** (review, research 003): dissect only the last layer, then attribute the
   concept to earlier units by gradient × activation, ``A(u, c) = E_z Σ_{h,w} r_u ∂S_c/∂r_u``,
   with ``S_c`` the soft pixel share of ``c`` (``target="share"``) or the IoU-weighted activation
   of the last layer's units for ``c`` (``target="last_layer"``); compare with full dissection by
   Spearman rank correlation and top-k overlap.

Streaming quantiles: :class:`QuantileSketch` is a vectorised DDSketch (Masson, Rim & Lee 2019,
VLDB, "DDSketch: a fast and fully-mergeable quantile sketch with relative-error guarantees"):
log-spaced bins give every quantile estimate a relative error ≤ ``rel_acc`` in a fixed number of
counters per unit.
"""

from __future__ import annotations

import math
import time
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ..errors import CheckpointError, ConfigError, DataError

SECTION = "dissection"
MODES = ("ablate", "insert")
Z_BLOCK = 256  # latents are drawn in blocks of this size, each from its own seed (batch-size independent)

# contexts of the context test: name -> {concept: minimum pixel fraction of the cell}
DOOR_CONTEXTS: dict[str, dict[str, float]] = {"on house": {"house": 0.5}, "in sky": {"sky": 0.9}}
TREE_CONTEXTS: dict[str, dict[str, float]] = {"on horizon": {"sky": 0.25, "ground": 0.25}, "in sky": {"sky": 0.9}}


# =========================================================================== streaming quantiles
class QuantileSketch:
    """Per-unit streaming quantiles with relative accuracy ``rel_acc`` in fixed memory (DDSketch).

    A value ``x`` with ``|x| ≥ min_abs`` falls in bin ``i = ceil(log_γ |x|)``, ``γ = (1 + a)/(1 − a)``,
    ``a = rel_acc``; bins hold counts (one signed set for positive and one for negative values, and
    a zero bin for ``|x| < min_abs``). The quantile at level ``q`` is the bin holding rank
    ``q (n − 1)``, reported as ``2 γ^i / (γ + 1)``: its relative error is ≤ ``a`` (Masson et al.
    2019, Prop. 3) for ``min_abs ≤ |x| ≤ max_abs`` (outside, values are clamped to that range; the
    exact per-unit minimum and maximum are kept and bound the estimates).

    Memory: ``units × (2 ⌈ln(max_abs/min_abs)/ln γ⌉ + 3)`` 64-bit counters, whatever the number of
    values added (``nbytes``).

    Parameters
    ----------
    n_units : number of independent streams (units / channels).
    rel_acc : relative accuracy ``a`` of every quantile estimate.
    min_abs, max_abs : magnitude range resolved by the bins.
    """

    def __init__(self, n_units: int, rel_acc: float = 0.005, min_abs: float = 1e-6, max_abs: float = 1e6) -> None:
        if not isinstance(n_units, (int, np.integer)) or n_units < 1:
            raise ConfigError(f"n_units must be a positive integer, got {n_units!r}")
        if not 0 < rel_acc < 0.5:
            raise ConfigError(f"rel_acc must be in (0, 0.5), got {rel_acc}")
        if not 0 < min_abs < max_abs:
            raise ConfigError(f"need 0 < min_abs < max_abs, got {min_abs}, {max_abs}")
        self.n_units, self.rel_acc, self.min_abs, self.max_abs = int(n_units), float(rel_acc), float(min_abs), float(max_abs)
        self.gamma = (1 + rel_acc) / (1 - rel_acc)
        self._lg = math.log(self.gamma)
        self.i_min = math.floor(math.log(min_abs) / self._lg)
        self.i_max = math.ceil(math.log(max_abs) / self._lg)
        self.n_mag = self.i_max - self.i_min + 1
        self.n_bins = 2 * self.n_mag + 1  # [negatives (descending magnitude) | zero | positives]
        self.counts = torch.zeros(self.n_units, self.n_bins, dtype=torch.int64)
        self.vmin = torch.full((self.n_units,), math.inf, dtype=torch.float64)
        self.vmax = torch.full((self.n_units,), -math.inf, dtype=torch.float64)
        self.count = 0

    @property
    def nbytes(self) -> int:
        """Bytes held by the sketch (constant: does not grow with the number of values)."""
        return sum(t.numel() * t.element_size() for t in (self.counts, self.vmin, self.vmax))

    def update(self, x: torch.Tensor) -> None:
        """Add the rows of ``x`` ``(N, n_units)``: column ``u`` goes to stream ``u``."""
        if x.ndim != 2 or x.shape[1] != self.n_units:
            raise DataError(f"sketch update needs (N, {self.n_units}) values, got {tuple(x.shape)}")
        if x.shape[0] == 0:
            return
        x = x.detach().to("cpu", torch.float64, copy=True)
        lo, hi = x.min(0).values, x.max(0).values  # NaN propagates through min/max
        if not (torch.isfinite(lo).all() and torch.isfinite(hi).all()):
            raise DataError("non-finite activations (NaN/inf) cannot be sketched; check the generator")
        n = int(x.shape[0])
        sign = torch.sign(x)
        a = x.abs_()
        sign.mul_(a >= self.min_abs)  # |x| < min_abs -> the zero bin
        # bin offset 1..n_mag of magnitude bin i = ceil(log_gamma |x|), in place on the copy
        a.clamp_(self.min_abs, self.max_abs).log_().div_(self._lg).ceil_().clamp_(self.i_min, self.i_max)
        slot = a.sub_(self.i_min - 1).mul_(sign).add_(self.n_mag).long()  # n_mag ± offset, n_mag for zeros
        slot += torch.arange(self.n_units, dtype=torch.long) * self.n_bins
        self.counts += torch.bincount(slot.view(-1), minlength=self.n_units * self.n_bins).view(self.n_units, self.n_bins)
        self.vmin = torch.minimum(self.vmin, lo)
        self.vmax = torch.maximum(self.vmax, hi)
        self.count += n

    def quantile(self, q: float) -> torch.Tensor:
        """Estimates ``(n_units,)`` float64 of the value at rank ``q (n − 1)`` of each stream."""
        if not 0.0 <= q <= 1.0:
            raise ConfigError(f"quantile level must be in [0, 1], got {q}")
        if self.count == 0:
            raise DataError("the sketch is empty; add values before asking for quantiles")
        cum = self.counts.cumsum(1).to(torch.float64)
        rank = torch.full((self.n_units, 1), q * (self.count - 1), dtype=torch.float64)
        b = torch.searchsorted(cum, rank, right=True).squeeze(1).clamp_max(self.n_bins - 1)
        pos = b > self.n_mag
        i = torch.where(pos, b - self.n_mag - 1, self.n_mag - 1 - b) + self.i_min
        mag = 2.0 * torch.pow(torch.tensor(self.gamma, dtype=torch.float64), i.double()) / (self.gamma + 1.0)
        est = torch.where(pos, mag, -mag)
        est = torch.where(b == self.n_mag, torch.zeros_like(est), est)
        return torch.minimum(torch.maximum(est, self.vmin), self.vmax)


# =========================================================================== layers and hooks
def generator_layers(G: nn.Module) -> "OrderedDict[str, nn.Module]":
    """``G.layers()``: the generator's named blocks whose outputs are feature maps."""
    try:
        layers = G.layers()
    except (AttributeError, NotImplementedError, TypeError):
        raise ConfigError(f"{type(G).__name__} does not list its layers (needs a layers() method)") from None
    if not layers:
        raise ConfigError(f"{type(G).__name__}.layers() is empty; nothing to dissect")
    return OrderedDict(layers)


def check_layers(G: nn.Module, layers: str | Sequence[str] | None) -> list[str]:
    """Validated layer names (``None``: all); unknown names raise an error listing the valid ones."""
    valid = list(generator_layers(G))
    if layers is None:
        return valid
    names = [layers] if isinstance(layers, str) else list(layers)
    if not names:
        raise ConfigError(f"no layer chosen; valid layers: {', '.join(valid)}")
    for n in names:
        if n not in valid:
            raise ConfigError(f"unknown layer {n!r} of {type(G).__name__}; valid layers: {', '.join(valid)}")
    return names


def _feature_map(out: Any, layer: str) -> torch.Tensor:
    t = out[0] if isinstance(out, (tuple, list)) else out
    if not isinstance(t, torch.Tensor) or t.ndim != 4:
        shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
        raise ConfigError(f"layer {layer!r} does not output a (B, units, h, w) feature map (got {shape}); "
                          "dissect another layer")
    return t


def _replace(out: Any, new: torch.Tensor) -> Any:
    if isinstance(out, tuple):
        return (new, *out[1:])
    if isinstance(out, list):
        return [new, *out[1:]]
    return new


@contextmanager
def record_layers(G: nn.Module, layers: Sequence[str], track_grad: bool = False) -> Iterator[dict[str, torch.Tensor]]:
    """Context manager: a dict that holds the latest output of each named layer after ``G(z)``.

    ``track_grad``: outputs that do not require gradients (computed from constants) are marked as
    requiring them, so gradients with respect to every recorded layer can be taken.
    """
    mods = generator_layers(G)
    store: dict[str, torch.Tensor] = {}
    handles = []
    for name in check_layers(G, layers):
        def hook(mod, inp, out, name=name):
            t = _feature_map(out, name)
            if track_grad and torch.is_grad_enabled() and not t.requires_grad:
                t.requires_grad_(True)
            store[name] = t
        handles.append(mods[name].register_forward_hook(hook))
    try:
        yield store
    finally:
        for h in handles:
            h.remove()


@contextmanager
def intervene(G: nn.Module, layer: str, alpha: torch.Tensor, values: torch.Tensor | float = 0.0,
              positions: torch.Tensor | None = None) -> Iterator[None]:
    """Context manager: while active, layer ``layer`` outputs ``r' = r + α m (k − r)``.

    Parameters
    ----------
    alpha : ``(units,)`` coefficients in [0, 1] (1 for the chosen units, 0 elsewhere for a hard
        intervention; a tensor with ``requires_grad`` for the optimal-set search).
    values : ``k``: scalar or ``(units,)`` (0 = ablation).
    positions : ``m``: ``(h, w)`` or ``(B, h, w)`` mask at the layer's resolution (None: everywhere).
    """
    mod = generator_layers(G)[check_layers(G, layer)[0]]

    def hook(m, inp, out):
        r = _feature_map(out, layer)
        if alpha.shape != (r.shape[1],):
            raise ConfigError(f"alpha must have shape ({r.shape[1]},) for layer {layer!r}, got {tuple(alpha.shape)}")
        k = torch.as_tensor(values, dtype=r.dtype, device=r.device)
        k = k.view(1, -1, 1, 1) if k.ndim == 1 else k
        a = alpha.to(r.device, r.dtype).view(1, -1, 1, 1)
        if positions is None:
            mask = torch.ones(1, 1, *r.shape[-2:], dtype=r.dtype, device=r.device)
        else:
            p = positions.to(r.device, r.dtype)
            if p.shape[-2:] != r.shape[-2:]:
                raise ConfigError(f"positions must have the layer's resolution {tuple(r.shape[-2:])}, "
                                  f"got {tuple(p.shape)}")
            mask = p.view(1, 1, *p.shape) if p.ndim == 2 else p[:, None]
        return _replace(out, r + a * mask * (k - r))

    h = mod.register_forward_hook(hook)
    try:
        yield
    finally:
        h.remove()


def unit_alpha(n_units: int, units: Sequence[int] | torch.Tensor) -> torch.Tensor:
    """``(n_units,)`` float with 1 at ``units`` (a hard intervention's α)."""
    idx = torch.as_tensor(list(units) if not isinstance(units, torch.Tensor) else units, dtype=torch.long)
    if idx.numel() and (idx.min() < 0 or idx.max() >= n_units):
        raise ConfigError(f"unit indices must be in 0..{n_units - 1}, got {idx.tolist()}")
    a = torch.zeros(n_units)
    a[idx] = 1.0
    return a


def latents(G: nn.Module, seed: int, start: int, stop: int) -> torch.Tensor:
    """Latents ``z_start .. z_{stop-1}`` of the seeded stream ``seed`` (blocks of ``Z_BLOCK`` each
    drawn from ``torch.Generator().manual_seed(seed * 1_000_003 + block)``), so sample ``i`` is the
    same whatever the batch size and only the current batch is ever held."""
    if stop <= start:
        raise ConfigError(f"empty latent range {start}..{stop}")
    out = []
    for b in range(start // Z_BLOCK, (stop - 1) // Z_BLOCK + 1):
        z = G.sample_z(Z_BLOCK, torch.Generator().manual_seed(seed * 1_000_003 + b), "cpu")
        lo, hi = max(start - b * Z_BLOCK, 0), min(stop - b * Z_BLOCK, Z_BLOCK)
        out.append(z[lo:hi])
    return torch.cat(out)


def _device(G: nn.Module) -> torch.device:
    p = next(iter(G.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def _concepts_of(seg: nn.Module) -> tuple[str, ...]:
    c = getattr(seg, "concepts", None)
    if not c:
        raise ConfigError(f"{type(seg).__name__} has no 'concepts' attribute; use models.segmenter.Segmenter")
    return tuple(c)


def concept_index(seg: nn.Module, concept: str | int) -> int:
    """Index of ``concept`` in the segmenter's labels; unknown concepts raise an error listing them."""
    concepts = _concepts_of(seg)
    if isinstance(concept, (int, np.integer)) and not isinstance(concept, bool):
        if not 0 <= int(concept) < len(concepts):
            raise ConfigError(f"concept index {concept} out of range 0..{len(concepts) - 1}")
        return int(concept)
    if concept not in concepts:
        raise ConfigError(f"concept {concept!r} is not labelled by the segmenter; known: {', '.join(concepts)}")
    return concepts.index(concept)


def _labels(seg: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return seg(x).argmax(1)


# =========================================================================== dissection
@dataclass
class LayerDissection:
    """Dissection of one layer: IoU per unit × concept and the per-unit statistics behind it.

    Attributes
    ----------
    iou : ``(units, concepts)`` dataset-level IoU.
    intersection, act_area, seg_area : the accumulated pixel counts (``(U, C)``, ``(U,)``, ``(C,)``).
    threshold : ``(units,)`` activation threshold ``t_u`` (top quantile ``top_quantile``).
    high : ``(units,)`` insertion value (mean activation above the threshold, or the quantile
        ``insert_quantile`` when one was given).
    top_samples : ``(units, n_top)`` sample indices with the highest peak activation.
    shape : ``(h, w)`` resolution of the layer.
    state_bytes : memory of the streaming state (sketch + accumulators).
    seconds, pass_seconds : wall time of the whole dissection call (all its layers) and of each pass.
    """

    layer: str
    concepts: tuple[str, ...]
    iou: torch.Tensor
    intersection: torch.Tensor
    act_area: torch.Tensor
    seg_area: torch.Tensor
    threshold: torch.Tensor
    high: torch.Tensor
    strict: torch.Tensor
    top_samples: torch.Tensor
    top_scores: torch.Tensor
    shape: tuple[int, int]
    n_samples: int
    seed: int
    top_quantile: float
    state_bytes: int
    seconds: float = float("nan")
    pass_seconds: tuple[float, float] = (float("nan"), float("nan"))

    @property
    def n_units(self) -> int:
        return int(self.iou.shape[0])

    def best(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(best concept index ``(U,)``, its IoU ``(U,)``)."""
        v, i = self.iou.max(1)
        return i, v

    def interpretable(self, iou_threshold: float = 0.05) -> torch.Tensor:
        """Boolean ``(U,)``: best IoU above ``iou_threshold``."""
        return self.best()[1] > iou_threshold

    def ranking(self, concept: str | int) -> torch.Tensor:
        """Units sorted by IoU with ``concept``, best first."""
        c = concept if isinstance(concept, int) else self._cidx(concept)
        return torch.argsort(self.iou[:, c], descending=True, stable=True)

    def _cidx(self, concept: str) -> int:
        if concept not in self.concepts:
            raise ConfigError(f"concept {concept!r} is not labelled by the segmenter; known: {', '.join(self.concepts)}")
        return self.concepts.index(concept)

    def table(self):
        """pandas DataFrame: one row per unit (best concept, best IoU, threshold, IoU per concept)."""
        import pandas as pd

        ci, cv = self.best()
        df = pd.DataFrame(self.iou.numpy(), columns=list(self.concepts))
        df.insert(0, "unit", np.arange(self.n_units))
        df.insert(1, "best_concept", [self.concepts[i] for i in ci.tolist()])
        df.insert(2, "best_iou", cv.numpy())
        df.insert(3, "threshold", self.threshold.numpy())
        return df


def _iou(inter: torch.Tensor, act: torch.Tensor, segc: torch.Tensor) -> torch.Tensor:
    union = act[:, None] + segc[None, :] - inter
    return torch.where(union > 0, inter / union.clamp_min(1e-12), torch.zeros_like(inter))


def dissect(G: nn.Module, seg: nn.Module, layers: str | Sequence[str] | None = None, n_samples: int = 2000, *,
            seed: int = 0, batch_size: int = 100, top_quantile: float = 0.01, insert_quantile: float | None = None,
            rel_acc: float = 0.005, n_top: int = 8, map_chunk: int = 2048,
            progress: bool = True) -> "OrderedDict[str, LayerDissection]":
    """Dissect layers of ``G`` against the concepts of ``seg`` on ``n_samples`` seeded samples.

    Parameters
    ----------
    G : generator (``G(z)``, ``G.layers()``, ``G.sample_z``), eval mode.
    seg : segmenter returning logits ``(B, C, H, W)`` with a ``concepts`` attribute.
    layers : layer names (default: all of ``G.layers()``).
    n_samples : number of generated images (latents ``latents(G, seed, 0, n_samples)``).
    top_quantile : ``q`` of the threshold ``P(r_u > t_u) = q`` (Network Dissection uses 0.005).
    insert_quantile : quantile used as the insertion value ``k_u`` (None: the mean raw activation
        over the positions where the unit is above its threshold).
    rel_acc : relative accuracy of the streaming quantile sketch.
    n_top : number of top-activating sample indices kept per unit (for unit visualisations).
    map_chunk : number of (sample, unit) maps upsampled at a time in pass 2 (bounds the peak memory).

    Returns
    -------
    ``{layer: LayerDissection}`` in ``G.layers()`` order.
    """
    names = check_layers(G, layers)
    concepts = _concepts_of(seg)
    if n_samples < 1 or batch_size < 1:
        raise ConfigError(f"n_samples and batch_size must be >= 1, got {n_samples}, {batch_size}")
    if not 0 < top_quantile < 1 or (insert_quantile is not None and not 0 < insert_quantile < 1):
        raise ConfigError("top_quantile and insert_quantile must be in (0, 1)")
    dev = _device(G)
    C = len(concepts)
    t0 = time.perf_counter()
    sketches: dict[str, QuantileSketch] = {}
    shapes: dict[str, tuple[int, int]] = {}
    batches = [(i, min(i + batch_size, n_samples)) for i in range(0, n_samples, batch_size)]
    # ---- pass 1: per-unit quantiles (streaming)
    with torch.no_grad(), record_layers(G, names) as acts:
        for lo, hi in tqdm(batches, desc="dissect pass 1/2 (quantiles)", disable=not progress, mininterval=2.0, ncols=100):
            G(latents(G, seed, lo, hi).to(dev))
            for n in names:
                a = acts[n]
                if n not in sketches:
                    sketches[n] = QuantileSketch(a.shape[1], rel_acc=rel_acc)
                    shapes[n] = (int(a.shape[2]), int(a.shape[3]))
                sketches[n].update(a.detach().permute(0, 2, 3, 1).reshape(-1, a.shape[1]))
            acts.clear()
    t1 = time.perf_counter()
    thr = {n: sketches[n].quantile(1 - top_quantile).float() for n in names}
    strict = {n: thr[n] <= sketches[n].vmin.float() for n in names}
    U = {n: sketches[n].n_units for n in names}
    inter = {n: torch.zeros(U[n], C, dtype=torch.float64) for n in names}
    area = {n: torch.zeros(U[n], dtype=torch.float64) for n in names}
    seg_area = torch.zeros(C, dtype=torch.float64)
    top_s = {n: torch.full((U[n], n_top), -math.inf) for n in names}
    top_i = {n: torch.zeros(U[n], n_top, dtype=torch.long) for n in names}
    on_sum = {n: torch.zeros(U[n], dtype=torch.float64) for n in names}
    on_cnt = {n: torch.zeros(U[n], dtype=torch.float64) for n in names}
    # ---- pass 2: intersections and areas
    with torch.no_grad(), record_layers(G, names) as acts:
        for lo, hi in tqdm(batches, desc="dissect pass 2/2 (IoU)", disable=not progress, mininterval=2.0, ncols=100):
            x = G(latents(G, seed, lo, hi).to(dev))
            H, W = x.shape[-2:]
            lab = _labels(seg, x)
            seg_area += torch.bincount(lab.reshape(-1).cpu(), minlength=C).double()
            idx = torch.arange(lo, hi)
            for n in names:
                a = acts[n]
                peak = a.detach().amax((2, 3)).t().cpu()  # (U, B)
                s = torch.cat([top_s[n], peak], 1)
                ii = torch.cat([top_i[n], idx.expand(U[n], -1)], 1)
                k = min(n_top, s.shape[1])
                v, j = s.topk(k, 1)
                top_s[n][:, :k], top_i[n][:, :k] = v, ii.gather(1, j)
                t, st = thr[n].to(a.device), strict[n].to(a.device)
                on = torch.where(st.view(1, -1, 1, 1), a > t.view(1, -1, 1, 1), a >= t.view(1, -1, 1, 1))
                on_sum[n] += (a * on).sum((0, 2, 3)).double().cpu()
                on_cnt[n] += on.sum((0, 2, 3)).double().cpu()
                # bilinear upsampling (align_corners=False) is a convex combination of raw values, so
                # a map whose raw maximum is below t_u has no upsampled pixel above it: only maps
                # with an active position are upsampled (exact, and ~10x less work at a 1 % quantile)
                active = on.flatten(2).any(2)  # (B, U)
                bi, ui = torch.nonzero(active, as_tuple=True)
                for k0 in range(0, len(bi), map_chunk):
                    b_, u_ = bi[k0:k0 + map_chunk], ui[k0:k0 + map_chunk]
                    up = F.interpolate(a[b_, u_][:, None], size=(H, W), mode="bilinear", align_corners=False)[:, 0]
                    tt, ss = t[u_].view(-1, 1, 1), st[u_].view(-1, 1, 1)
                    kk, yy, xx = torch.nonzero(torch.where(ss, up > tt, up >= tt), as_tuple=True)
                    uu = u_[kk]
                    key = (uu * C + lab[b_[kk], yy, xx]).cpu()
                    inter[n] += torch.bincount(key, minlength=U[n] * C).view(U[n], C).double()
                    area[n] += torch.bincount(uu.cpu(), minlength=U[n]).double()
            acts.clear()
    t2 = time.perf_counter()
    if insert_quantile is None:
        high = {n: (on_sum[n] / on_cnt[n].clamp_min(1)).float() for n in names}
    else:
        high = {n: sketches[n].quantile(insert_quantile).float() for n in names}
    out: "OrderedDict[str, LayerDissection]" = OrderedDict()
    for n in names:
        state = (sketches[n].nbytes + inter[n].numel() * 8 + area[n].numel() * 8
                 + top_s[n].numel() * 4 + top_i[n].numel() * 8)
        out[n] = LayerDissection(
            layer=n, concepts=concepts, iou=_iou(inter[n], area[n], seg_area).float(), intersection=inter[n],
            act_area=area[n], seg_area=seg_area.clone(), threshold=thr[n], high=high[n], strict=strict[n],
            top_samples=top_i[n], top_scores=top_s[n], shape=shapes[n], n_samples=n_samples, seed=seed,
            top_quantile=top_quantile, state_bytes=int(state), seconds=(t2 - t0), pass_seconds=(t1 - t0, t2 - t1),
        )
    return out


def layer_summary(dissections: Mapping[str, LayerDissection], model: str = "", iou_threshold: float = 0.05):
    """pandas DataFrame, one row per layer: units, resolution, interpretable units (IoU > threshold),
    their fraction, mean and max best-IoU, number of distinct concepts, the most frequent concepts."""
    import pandas as pd

    rows = []
    for name, d in dissections.items():
        ci, cv = d.best()
        interp = cv > iou_threshold
        counts = torch.bincount(ci[interp], minlength=len(d.concepts))
        top = [f"{d.concepts[i]}:{int(counts[i])}" for i in torch.argsort(counts, descending=True).tolist() if counts[i] > 0]
        rows.append(dict(model=model, layer=name, units=d.n_units, resolution=f"{d.shape[0]}x{d.shape[1]}",
                         interpretable=int(interp.sum()), fraction=float(interp.float().mean()),
                         mean_best_iou=float(cv.mean()), max_iou=float(cv.max()),
                         concepts=int((counts > 0).sum()), top_concepts=", ".join(top[:4])))
    return pd.DataFrame(rows)


def most_disentangled(table, min_units: int = 8) -> Any:
    """Per model, the layer with the largest fraction of interpretable units (ties: mean best IoU);
    layers with fewer than ``min_units`` units (an RGB output) are not candidates."""
    t = table[table.units >= min_units]
    t = (t if len(t) else table).sort_values(["model", "fraction", "mean_best_iou"], ascending=[True, False, False])
    return t.groupby("model", sort=False).head(1).reset_index(drop=True)


def default_layer(dissections: Mapping[str, LayerDissection], concept: str, min_units: int = 8) -> str:
    """The layer whose best unit has the highest IoU with ``concept`` (layers with fewer than
    ``min_units`` units, e.g. the RGB output, are skipped)."""
    cands = {n: d for n, d in dissections.items() if d.n_units >= min_units} or dict(dissections)
    return max(cands, key=lambda n: float(cands[n].iou[:, cands[n]._cidx(concept)].max()))


# =========================================================================== interventions
def concept_share(images: torch.Tensor, seg: nn.Module, concept: int, soft: bool = False,
                  region: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image share of pixels labelled ``concept`` ``(B,)``: hard arg-max labels, or (``soft``)
    the mean softmax probability (differentiable). ``region`` ``(B, H, W)`` restricts the pixels."""
    logits = seg(images)
    v = logits.softmax(1)[:, concept] if soft else (logits.argmax(1) == concept).float()
    if region is None:
        return v.flatten(1).mean(1)
    r = region.float()
    return (v * r).flatten(1).sum(1) / r.flatten(1).sum(1).clamp_min(1)


@dataclass
class Effect:
    """Average causal effect of one intervention (see the module docstring for the signs)."""

    ace: float
    se: float
    base_share: float
    relative: float
    n: int


def _shares(G: nn.Module, seg: nn.Module, concept: int, z: torch.Tensor, batch_size: int,
            layer: str | None = None, alpha: torch.Tensor | None = None, values: torch.Tensor | float = 0.0,
            positions: torch.Tensor | None = None) -> torch.Tensor:
    dev = _device(G)
    out = []
    with torch.no_grad():
        for i in range(0, len(z), batch_size):
            zb = z[i:i + batch_size].to(dev)
            if layer is None:
                x = G(zb)
            else:
                pos = positions[i:i + batch_size] if positions is not None and positions.ndim == 3 else positions
                with intervene(G, layer, alpha, values, pos):
                    x = G(zb)
            out.append(concept_share(x, seg, concept).cpu())
    return torch.cat(out)


def _effect(mode: str, base: torch.Tensor, new: torch.Tensor) -> Effect:
    diff = (base - new) if mode == "ablate" else (new - base)
    b = float(base.mean())
    ace = float(diff.mean())
    return Effect(ace=ace, se=float(diff.std(unbiased=True) / math.sqrt(len(diff))) if len(diff) > 1 else float("nan"),
                  base_share=b, relative=ace / b if b > 0 else float("nan"), n=len(diff))


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ConfigError(f"unknown intervention mode {mode!r}; known: {', '.join(MODES)}")
    return mode


def _layer_units(G: nn.Module, layer: str) -> int:
    with torch.no_grad(), record_layers(G, [layer]) as acts:
        G(latents(G, 0, 0, 1).to(_device(G)))
    return int(acts[layer].shape[1])


def causal_effect(G: nn.Module, seg: nn.Module, layer: str, units: Sequence[int] | torch.Tensor, concept: str | int,
                  mode: str = "ablate", values: torch.Tensor | float | None = None,
                  positions: torch.Tensor | None = None, n_samples: int = 200, seed: int = 1,
                  batch_size: int = 100) -> Effect:
    """ACE of ablating (``values`` 0) or inserting (``values`` = per-unit high values, e.g.
    ``LayerDissection.high``) the units ``units`` of ``layer`` at ``positions`` on the pixel share
    of ``concept``, paired over ``n_samples`` seeded latents (``seed``)."""
    _check_mode(mode)
    c = concept_index(seg, concept)
    layer = check_layers(G, layer)[0]
    if mode == "insert" and values is None:
        raise ConfigError("insertion needs values= (per-unit high activations, e.g. LayerDissection.high)")
    z = latents(G, seed, 0, n_samples)
    base = _shares(G, seg, c, z, batch_size)
    alpha = unit_alpha(_layer_units(G, layer), units)
    new = _shares(G, seg, c, z, batch_size, layer, alpha, 0.0 if mode == "ablate" else values, positions)
    return _effect(mode, base, new)


def ace_vs_k(G: nn.Module, seg: nn.Module, dissection: LayerDissection, concept: str, ks: Sequence[int] = (1, 2, 4, 8, 16),
             mode: str = "ablate", selections: Mapping[str, torch.Tensor] | None = None, n_random: int = 3,
             n_samples: int = 200, seed: int = 1, batch_size: int = 100, model: str = "", progress: bool = False):
    """ACE against the number of units ``k`` for unit rankings (default: by IoU) and ``n_random``
    draws of ``k`` random units (seeded). Returns a DataFrame with columns ``model, layer, concept,
    mode, selection, k, ace, se, relative, base_share`` (random rows: mean over draws, ``se`` = std
    over draws)."""
    import pandas as pd

    _check_mode(mode)
    c = concept_index(seg, concept)
    layer, U = dissection.layer, dissection.n_units
    sel = dict(selections or {"iou": dissection.ranking(concept)})
    ks = sorted({int(k) for k in ks if 1 <= int(k) <= U})
    if not ks:
        raise ConfigError(f"no valid k in 1..{U} for layer {layer!r}")
    z = latents(G, seed, 0, n_samples)
    base = _shares(G, seg, c, z, batch_size)
    vals = 0.0 if mode == "ablate" else dissection.high
    rng = torch.Generator().manual_seed(seed + 7919)
    rows = []
    for k in tqdm(ks, desc=f"ACE vs k ({concept}, {mode})", disable=not progress, ncols=100):
        for name, order in sel.items():
            e = _effect(mode, base, _shares(G, seg, c, z, batch_size, layer, unit_alpha(U, order[:k]), vals))
            rows.append(dict(model=model, layer=layer, concept=concept, mode=mode, selection=name, k=k, ace=e.ace,
                             se=e.se, relative=e.relative, base_share=e.base_share))
        rand = []
        for _ in range(n_random):
            units = torch.randperm(U, generator=rng)[:k]
            rand.append(_effect(mode, base, _shares(G, seg, c, z, batch_size, layer, unit_alpha(U, units), vals)))
        if rand:
            a = np.array([e.ace for e in rand])
            rows.append(dict(model=model, layer=layer, concept=concept, mode=mode, selection="random", k=k,
                             ace=float(a.mean()), se=float(a.std(ddof=1)) if len(a) > 1 else float("nan"),
                             relative=float(np.mean([e.relative for e in rand])), base_share=rand[0].base_share))
    return pd.DataFrame(rows)


# =========================================================================== optimal causal set (α)
@dataclass
class AlphaResult:
    """Learned per-unit coefficients ``alpha`` ``(U,)`` in [0, 1] and the loss per step."""

    layer: str
    concept: str
    mode: str
    alpha: torch.Tensor
    history: list[float]
    lam: float

    def ranking(self) -> torch.Tensor:
        return torch.argsort(self.alpha, descending=True, stable=True)


def optimal_unit_set(G: nn.Module, seg: nn.Module, dissection: LayerDissection, concept: str, mode: str = "ablate",
                     *, lam: float = 1e-3, steps: int = 100, batch_size: int = 32, lr: float = 0.05, seed: int = 2,
                     positions: torch.Tensor | None = None, progress: bool = False) -> AlphaResult:
    """Learn α ∈ [0, 1]^U for ``dissection.layer`` (Bau et al. 2019, §2.2):

        α* = argmin_α  ∓ E_z[ ŝ_c(G_α(z)) ] + λ ‖α‖²      (insertion: −, ablation: +)

    with ``r' = (1 − α) r + α k`` (``k = 0`` for ablation, ``dissection.high`` for insertion) at
    ``positions``, ``ŝ_c`` the soft pixel share of ``concept``; projected Adam (clip to [0, 1]
    after each step), α initialised at 0, a fresh seeded batch of latents each step.
    """
    _check_mode(mode)
    c = concept_index(seg, concept)
    if steps < 1 or batch_size < 1 or lam < 0:
        raise ConfigError("steps and batch_size must be >= 1 and lam >= 0")
    dev = _device(G)
    U = dissection.n_units
    alpha = torch.zeros(U, device=dev, requires_grad=True)
    opt = torch.optim.Adam([alpha], lr=lr)
    vals = 0.0 if mode == "ablate" else dissection.high.to(dev)
    sign = 1.0 if mode == "ablate" else -1.0
    hist = []
    req = [p.requires_grad for p in seg.parameters()]
    seg.requires_grad_(False)
    try:
        for s in tqdm(range(steps), desc=f"alpha ({concept}, {mode})", disable=not progress, ncols=100):
            z = G.sample_z(batch_size, torch.Generator().manual_seed(seed * 1_000_003 + s), "cpu").to(dev)
            with intervene(G, dissection.layer, alpha, vals, positions):
                x = G(z)
            share = concept_share(x, seg, c, soft=True).mean()
            loss = sign * share + lam * (alpha ** 2).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                alpha.clamp_(0.0, 1.0)
            hist.append(float(loss.detach()))
    finally:
        for p, r in zip(seg.parameters(), req):
            p.requires_grad_(r)
    return AlphaResult(dissection.layer, concept, mode, alpha.detach().cpu(), hist, lam)


def topk_overlap(a: torch.Tensor, b: torch.Tensor, k: int) -> float:
    """``|top_k(a) ∩ top_k(b)| / k`` for two rankings (unit indices, best first)."""
    k = min(k, len(a), len(b))
    return len(set(a[:k].tolist()) & set(b[:k].tolist())) / k if k else float("nan")


def spearman(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    """Spearman rank correlation (scipy; NaN when a score is constant)."""
    from scipy.stats import spearmanr

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def compare_alpha_iou(alpha: AlphaResult, dissection: LayerDissection, ks: Sequence[int], model: str = ""):
    """DataFrame: top-k overlap of the α ranking and the IoU ranking for each ``k``, and their
    Spearman correlation over all units."""
    import pandas as pd

    c = dissection._cidx(alpha.concept)
    ra, ri = alpha.ranking(), dissection.ranking(c)
    rho = spearman(alpha.alpha, dissection.iou[:, c])
    return pd.DataFrame([dict(model=model, layer=dissection.layer, concept=alpha.concept, mode=alpha.mode, k=int(k),
                              overlap=topk_overlap(ra, ri, int(k)), spearman=rho,
                              n_alpha_above_half=int((alpha.alpha > 0.5).sum()))
                         for k in ks if 1 <= int(k) <= dissection.n_units])


# =========================================================================== context test
def _cells(h: int, w: int, H: int, W: int) -> tuple[np.ndarray, np.ndarray]:
    ys = np.round(np.linspace(0, H, h + 1)).astype(int)
    xs = np.round(np.linspace(0, W, w + 1)).astype(int)
    return ys, xs


def context_test(G: nn.Module, seg: nn.Module, dissection: LayerDissection, concept: str, contexts: Mapping[str, Mapping[str, float]],
                 *, k: int = 8, units: Sequence[int] | None = None, n_samples: int = 300, seed: int = 4,
                 min_pixels: int = 4, margin: int | None = None, batch_size: int = 100, model: str = ""):
    """Insert ``concept``'s top-``k`` units (by IoU, or ``units``) into one cell of the layer, in
    images where that cell shows each context, and count how often the concept appears there.

    A cell qualifies for context ``name`` when, in the unedited image's segmentation, every concept
    ``c`` of ``contexts[name]`` covers at least ``contexts[name][c]`` of its pixels and ``concept``
    covers none. Per image one qualifying cell is drawn (seeded). The concept *appears* when the
    intervention adds at least ``min_pixels`` pixels of it inside the cell's pixel box grown by
    ``margin`` pixels (default: half a cell). Insertion values: ``dissection.high``.

    Returns a DataFrame with ``context, trials, rate`` (share of trials where it appears, with a
    Wilson 95 % interval), ``mean_added`` pixels and the mean change of its share in the whole image.
    """
    import pandas as pd

    c = concept_index(seg, concept)
    ctx_idx = {name: {concept_index(seg, cc): float(f) for cc, f in spec.items()} for name, spec in contexts.items()}
    if not ctx_idx:
        raise ConfigError("contexts is empty; give e.g. {'in sky': {'sky': 0.9}}")
    sel = torch.as_tensor(list(units)) if units is not None else dissection.ranking(c)[:k]
    U, (h, w) = dissection.n_units, dissection.shape
    alpha = unit_alpha(U, sel)
    z = latents(G, seed, 0, n_samples)
    dev = _device(G)
    with torch.no_grad():
        labs = torch.cat([_labels(seg, G(z[i:i + batch_size].to(dev))).cpu() for i in range(0, n_samples, batch_size)])
    H, W = labs.shape[-2:]
    ys, xs = _cells(h, w, H, W)
    # fraction of each concept per cell: (N, C, h, w)
    C = len(_concepts_of(seg))
    onehot = F.one_hot(labs, C).permute(0, 3, 1, 2).float()
    if H % h == 0 and W % w == 0:
        frac = F.avg_pool2d(onehot, (H // h, W // w))
    else:
        frac = torch.zeros(n_samples, C, h, w)
        for i in range(h):
            for j in range(w):
                frac[:, :, i, j] = onehot[:, :, ys[i]:ys[i + 1], xs[j]:xs[j + 1]].mean((2, 3))
    m = int(round(0.5 * H / h)) if margin is None else int(margin)
    rng = np.random.default_rng(seed)
    rows = []
    for name, spec in ctx_idx.items():
        ok = frac[:, c] == 0
        for cc, f in spec.items():
            ok &= frac[:, cc] >= f
        imgs, cells = [], []
        for b in range(n_samples):
            cand = torch.nonzero(ok[b]).numpy()
            if len(cand):
                imgs.append(b)
                cells.append(tuple(cand[rng.integers(len(cand))]))
        if not imgs:
            rows.append(dict(model=model, layer=dissection.layer, concept=concept, context=name, trials=0,
                             rate=float("nan"), ci_low=float("nan"), ci_high=float("nan"), mean_added=float("nan"),
                             share_change=float("nan")))
            continue
        pos = torch.zeros(len(imgs), h, w)
        box = torch.zeros(len(imgs), H, W, dtype=torch.bool)
        for t, (b, (i, j)) in enumerate(zip(imgs, cells)):
            pos[t, i, j] = 1
            box[t, max(ys[i] - m, 0):min(ys[i + 1] + m, H), max(xs[j] - m, 0):min(xs[j + 1] + m, W)] = True
        zi = z[torch.as_tensor(imgs)]
        before = (labs[torch.as_tensor(imgs)] == c)
        with torch.no_grad():
            after = []
            for s in range(0, len(imgs), batch_size):
                with intervene(G, dissection.layer, alpha, dissection.high, pos[s:s + batch_size]):
                    after.append(_labels(seg, G(zi[s:s + batch_size].to(dev))).cpu() == c)
            after = torch.cat(after)
        added = ((after & box).flatten(1).sum(1) - (before & box).flatten(1).sum(1)).float()
        appears = added >= min_pixels
        n, p = len(imgs), float(appears.float().mean())
        lo, hi = wilson(p, n)
        rows.append(dict(model=model, layer=dissection.layer, concept=concept, context=name, trials=n, rate=p,
                         ci_low=lo, ci_high=hi, mean_added=float(added.mean()),
                         share_change=float((after.float().flatten(1).mean(1) - before.float().flatten(1).mean(1)).mean())))
    return pd.DataFrame(rows)


def wilson(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion ``p`` over ``n`` trials."""
    if n == 0:
        return float("nan"), float("nan")
    d = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / d
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, centre - half), min(1.0, centre + half)


def veto_table(context_df, usual: Mapping[str, str], unusual: str = "in sky"):
    """Per concept: appearance rate in its usual context, in the unusual one, and the veto strength
    ``1 − rate_unusual / rate_usual`` (1: always vetoed, 0: no context effect)."""
    import pandas as pd

    rows = []
    for (model, concept), g in context_df.groupby(["model", "concept"], sort=False):
        r = dict(zip(g.context, g.rate))
        ru, rx = r.get(usual.get(concept, ""), float("nan")), r.get(unusual, float("nan"))
        rows.append(dict(model=model, concept=concept, usual=usual.get(concept), rate_usual=ru, rate_unusual=rx,
                         veto=1 - rx / ru if ru and ru > 0 else float("nan")))
    return pd.DataFrame(rows)


# =========================================================================== cheaper route
def attribute_units(G: nn.Module, seg: nn.Module, layers: str | Sequence[str], *, target: str = "share",
                    last: LayerDissection | None = None, concepts: Sequence[str] | None = None,
                    iou_threshold: float = 0.05, n_samples: int = 300, batch_size: int = 50, seed: int = 3,
                    progress: bool = False) -> "OrderedDict[str, torch.Tensor]":
    """Gradient × activation attribution of every concept to the units of ``layers``:

        A_l(u, c) = (1/N) Σ_z Σ_{h,w} r_u(h, w) · ∂S_c(z)/∂r_u(h, w)

    ``target="share"``: ``S_c`` = soft pixel share of ``c`` in the segmentation of ``G(z)``;
    ``target="last_layer"``: ``S_c = Σ_v IoU(v, c) · mean_{h,w} r_v`` over the units ``v`` of the
    dissected ``last`` layer with IoU above ``iou_threshold``. One backward pass per concept:
    ``concepts`` limits them (default all); the columns of the others are NaN.
    Returns ``{layer: (U, C)}``.
    """
    names = check_layers(G, layers)
    C = len(_concepts_of(seg))
    todo = list(range(C)) if concepts is None else [concept_index(seg, c) for c in concepts]
    if target not in ("share", "last_layer"):
        raise ConfigError(f"unknown attribution target {target!r}; known: share, last_layer")
    if target == "last_layer":
        if last is None:
            raise ConfigError("target='last_layer' needs last= (the LayerDissection of the last layer)")
        wts = torch.where(last.iou > iou_threshold, last.iou, torch.zeros_like(last.iou))  # (V, C)
        names_rec = list(dict.fromkeys(names + [last.layer]))
    else:
        names_rec = names
    dev = _device(G)
    attr: dict[str, torch.Tensor] = {}
    req = [p.requires_grad for p in seg.parameters()]
    seg.requires_grad_(False)
    try:
        with record_layers(G, names_rec, track_grad=True) as acts:
            for lo in tqdm(range(0, n_samples, batch_size), desc="attribution", disable=not progress, ncols=100):
                z = latents(G, seed, lo, min(lo + batch_size, n_samples)).to(dev)
                x = G(z)
                if target == "share":
                    S = seg(x).softmax(1).flatten(2).mean(2).sum(0)  # (C,)
                else:
                    S = acts[last.layer].mean((2, 3)).sum(0) @ wts.to(dev)  # (C,)
                inputs = [acts[n] for n in names]
                for j, c in enumerate(todo):
                    if not S[c].requires_grad:
                        continue
                    grads = torch.autograd.grad(S[c], inputs, retain_graph=j < len(todo) - 1, allow_unused=True)
                    for n, a, g in zip(names, inputs, grads):
                        if n not in attr:
                            attr[n] = torch.full((a.shape[1], C), float("nan"), dtype=torch.float64)
                            attr[n][:, todo] = 0.0
                        if g is not None:
                            attr[n][:, c] += (a.detach() * g).sum((0, 2, 3)).double().cpu()
                acts.clear()
    finally:
        for p, r in zip(seg.parameters(), req):
            p.requires_grad_(r)
    return OrderedDict((n, (attr[n] / n_samples).float()) for n in names if n in attr)


def layer_units(G: nn.Module) -> "OrderedDict[str, int]":
    """Number of units (channels) of every layer of ``G.layers()`` (one forward pass of one sample)."""
    names = list(generator_layers(G))
    with torch.no_grad(), record_layers(G, names) as acts:
        G(latents(G, 0, 0, 1).to(_device(G)))
    return OrderedDict((n, int(acts[n].shape[1])) for n in names)


def last_hidden_layer(G: nn.Module, img_channels: int | None = None) -> str:
    """The last layer of ``G.layers()`` with more units than image channels (skips an RGB output)."""
    ch = img_channels or int(getattr(G, "img_shape", (3,))[0])
    units = layer_units(G)
    hidden = [n for n, u in units.items() if u > ch]
    return hidden[-1] if hidden else list(units)[-1]


@dataclass
class CheapRoute:
    """The review's cheaper route: the last hidden layer dissected, earlier layers attributed."""

    last: LayerDissection
    attribution: "OrderedDict[str, torch.Tensor]"
    concepts: list[str]
    target: str
    seconds_dissect: float
    seconds_attr: float

    @property
    def seconds(self) -> float:
        return self.seconds_dissect + self.seconds_attr

    @property
    def state_bytes(self) -> int:
        return self.last.state_bytes + sum(a.numel() * 8 for a in self.attribution.values())


def cheap_route(G: nn.Module, seg: nn.Module, n_samples: int = 2000, *, targets: Sequence[str] = ("share",),
                n_attr: int = 200, iou_threshold: float = 0.05, top_quantile: float = 0.01, seed: int = 0,
                last: LayerDissection | None = None, progress: bool = False) -> dict[str, CheapRoute]:
    """Dissect only the last hidden layer (or reuse ``last``), find the concepts it represents (a unit
    with IoU > ``iou_threshold``), and attribute those concepts to the units of every earlier hidden
    layer by gradient × activation (:func:`attribute_units`) for each target in ``targets``."""
    units = layer_units(G)
    ch = int(getattr(G, "img_shape", (3,))[0])
    name = last.layer if last is not None else last_hidden_layer(G)
    t0 = time.perf_counter()
    dl = last if last is not None else dissect(G, seg, name, n_samples, seed=seed, top_quantile=top_quantile,
                                               progress=progress)[name]
    t_d = time.perf_counter() - t0 if last is None else dl.seconds
    earlier = [n for n, u in units.items() if u > ch and n != name]
    found = [c for j, c in enumerate(dl.concepts) if float(dl.iou[:, j].max()) > iou_threshold]
    out = {}
    for target in targets:
        t0 = time.perf_counter()
        A = attribute_units(G, seg, earlier, target=target, last=dl, concepts=found, n_samples=n_attr,
                            iou_threshold=iou_threshold, seed=seed + 3, progress=progress) if earlier and found else OrderedDict()
        out[target] = CheapRoute(dl, A, found, target, t_d, time.perf_counter() - t0)
    return out


def route_agreement(full: Mapping[str, LayerDissection], attribution: Mapping[str, torch.Tensor], *, k: int = 5,
                    iou_threshold: float = 0.05, model: str = "", route: str = "share"):
    """Agreement of the attribution ranking with full dissection, per layer × concept: Spearman
    correlation of ``A(·, c)`` and ``IoU(·, c)`` over units and top-``k`` overlap. Only concepts with
    at least one unit above ``iou_threshold`` in that layer are compared (elsewhere the IoU ranking is
    noise) and that were attributed (no NaN column)."""
    import pandas as pd

    rows = []
    for n, A in attribution.items():
        if n not in full:
            continue
        d = full[n]
        for c, name in enumerate(d.concepts):
            if float(d.iou[:, c].max()) <= iou_threshold or bool(torch.isnan(A[:, c]).any()):
                continue
            ra = torch.argsort(A[:, c], descending=True, stable=True)
            rows.append(dict(model=model, route=route, layer=n, concept=name, spearman=spearman(A[:, c], d.iou[:, c]),
                             topk_overlap=topk_overlap(ra, d.ranking(c), k), k=min(k, d.n_units)))
    return pd.DataFrame(rows)


# =========================================================================== orchestration
@dataclass
class DissectionReport:
    """Everything :func:`run_dissection` computed (tables are pandas DataFrames)."""

    segmenter: dict[str, Any]
    layers: Any
    disentangled: Any
    ace: Any
    alpha: Any
    context: Any
    veto: Any
    cheap: Any
    cheap_cost: Any
    dissections: dict[str, "OrderedDict[str, LayerDissection]"] = field(default_factory=dict)
    generators: dict[str, nn.Module] = field(default_factory=dict)
    figures: dict[str, Path] = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)


def dissection_dir(profile: str, root: Path | None = None) -> Path:
    """``runs/<profile>/qualitative/dissection/``."""
    from .. import config

    d = config.run_dir(profile, root) / "qualitative" / "dissection"
    d.mkdir(parents=True, exist_ok=True)
    return d


def cheap_summary(report: "DissectionReport"):
    """Mean rank agreement (Spearman, top-k overlap) of the cheaper route per model and route;
    an empty frame when no earlier layer could be attributed (e.g. a one-hidden-layer toy run)."""
    import pandas as pd

    cheap = report.cheap
    cols = ["spearman", "topk_overlap"]
    if cheap is None or len(cheap) == 0 or not {"model", "route", *cols} <= set(cheap.columns):
        return pd.DataFrame(columns=["model", "route", *cols]).set_index(["model", "route"])
    return cheap.groupby(["model", "route"])[cols].mean()


def run_dissection(profile: str, models: Sequence[str], dataset: str = "shapes", *, n_samples: int = 1000,
                   concepts: Sequence[str] = ("door", "tree"), ks: Sequence[int] = (1, 2, 4, 8, 16),
                   modes: Sequence[str] = ("ablate", "insert"), n_effect: int = 200, n_random: int = 3,
                   alpha_steps: int = 60, alpha_lam: float = 1e-3, context_k: int = 8, n_context: int = 300,
                   n_attr: int = 200, iou_threshold: float = 0.05, top_quantile: float = 0.01,
                   segmenter: Any = None, intervention_layer: str | Mapping[str, str] | None = None, seed: int = 0, record: bool = True, figures: bool = True,
                   skip_missing: bool = True, progress: bool = True, root: Path | None = None) -> DissectionReport:
    """Dissect every generator of ``models`` trained on ``dataset`` in profile ``profile``.

    For each model: full dissection of all layers on ``n_samples`` samples; for each concept in
    ``concepts``, at ``intervention_layer`` (a layer name, a ``{concept: layer}`` dict, or by default
    the model's most disentangled layer, as the paper intervenes on one chosen layer): ACE vs ``k``
    for the IoU ranking, the
    α ranking and random units (``modes``), the α-vs-IoU comparison, and the context test (doors:
    on a house vs in the sky; trees: at the horizon vs in the sky); the cheaper route (last hidden
    layer dissected, earlier layers by gradient × activation, ``n_attr`` samples) with its agreement,
    time and state memory. Rows go to ``runs/<profile>/metrics.jsonl`` (``section='dissection'``),
    figures and CSV tables to ``runs/<profile>/qualitative/dissection/``. ``segmenter``: a trained
    segmenter, a ``SegmenterConfig`` or a dict of its settings (default: default settings, trained
    once and cached).
    """
    import pandas as pd

    from .. import config, results
    from ..models.segmenter import SegmenterConfig, load_segmenter
    from ..train import load_generator

    if dataset != "shapes":
        raise ConfigError(f"dissection needs concept masks: dataset must be 'shapes', got {dataset!r}")
    for m in modes:
        _check_mode(m)
    if isinstance(segmenter, nn.Module):
        seg = segmenter
    else:
        cfg = segmenter if isinstance(segmenter, SegmenterConfig) else SegmenterConfig(**(segmenter or {}))
        seg = load_segmenter(cfg, progress=progress)
    for cn in concepts:
        concept_index(seg, cn)
    smeta = dict(getattr(seg, "meta", {}))
    out_dir = dissection_dir(profile, root)
    gens: dict[str, nn.Module] = {}
    for m in models:
        try:
            gens[m], _ = load_generator(config.model_dir(profile, m, dataset, root))
        except CheckpointError as e:
            if not skip_missing:
                raise
            warnings.warn(f"dissection: skipping {m}: {e}", stacklevel=2)
    if not gens:
        raise CheckpointError(f"no generator trained on {dataset!r} in profile {profile!r} for {list(models)}; "
                              f"train them first (notebook 01 with dataset='{dataset}')")
    rows: list[dict] = [
        results.make_row("segmenter", f"segmenter_{k}", smeta[k], n=smeta.get("n_test"), profile=profile,
                         dataset=dataset, seed=seed, section=SECTION, direction="higher")
        for k in ("pixel_accuracy", "mean_iou", "ooc_mean_iou") if k in smeta
    ]
    dissections, layer_tabs, ace_tabs, alpha_tabs, ctx_tabs, cheap_tabs, cost_rows = {}, [], [], [], [], [], []
    figs: dict[str, Path] = {}

    def row(model: str, metric: str, value: float, feature: str = "", direction: str = "none", **extra: Any) -> None:
        rows.append(results.make_row(model, metric, value, n=extra.pop("n", n_samples), feature=feature,
                                     profile=profile, dataset=dataset, seed=seed, section=SECTION,
                                     direction=direction, **extra))

    for m, G in gens.items():
        d = dissect(G, seg, None, n_samples, seed=seed, top_quantile=top_quantile, progress=progress)
        dissections[m] = d
        t_full = next(iter(d.values())).seconds
        tab = layer_summary(d, m, iou_threshold)
        layer_tabs.append(tab)
        for r in tab.itertuples():
            row(m, "dissect_interpretable_units", r.interpretable, r.layer, "higher", units=r.units)
            row(m, "dissect_interpretable_fraction", r.fraction, r.layer, "higher")
            row(m, "dissect_mean_best_iou", r.mean_best_iou, r.layer, "higher")
        best_layer = most_disentangled(tab).layer.item()
        for cn in concepts:
            if isinstance(intervention_layer, Mapping):
                lay = intervention_layer.get(cn, best_layer)
            else:
                lay = intervention_layer or best_layer
            lay = check_layers(G, lay)[0]
            D = d[lay]
            sel: dict[str, torch.Tensor] = {"iou": D.ranking(cn)}
            for mode in modes:
                al = optimal_unit_set(G, seg, D, cn, mode, lam=alpha_lam, steps=alpha_steps, seed=seed + 2,
                                      progress=progress)
                cmp = compare_alpha_iou(al, D, ks, m)
                alpha_tabs.append(cmp)
                a = ace_vs_k(G, seg, D, cn, ks, mode, {"iou": sel["iou"], "alpha": al.ranking()}, n_random,
                             n_effect, seed + 1, model=m, progress=progress)
                ace_tabs.append(a)
                for r in a.itertuples():
                    row(m, f"ace_{mode}_{cn}_{r.selection}_k{r.k}", r.ace, lay, "higher", n=n_effect,
                        ci_low=r.ace - 1.96 * r.se if np.isfinite(r.se) else None,
                        ci_high=r.ace + 1.96 * r.se if np.isfinite(r.se) else None)
                for r in cmp.itertuples():
                    row(m, f"alpha_iou_overlap_{mode}_{cn}_k{r.k}", r.overlap, lay, "none", n=alpha_steps)
            ctxs = DOOR_CONTEXTS if cn == "door" else TREE_CONTEXTS if cn == "tree" else {"in sky": {"sky": 0.9}}
            ct = context_test(G, seg, D, cn, ctxs, k=context_k, n_samples=n_context, seed=seed + 4, model=m)
            ctx_tabs.append(ct)
            for r in ct.itertuples():
                if r.trials:
                    row(m, f"context_rate_{cn}_{r.context.replace(' ', '_')}", r.rate, lay, "none", n=r.trials,
                        ci_low=r.ci_low, ci_high=r.ci_high)
        # cheaper route: dissect the last hidden layer only, attribute back by gradient x activation
        routes = cheap_route(G, seg, n_samples, targets=("share", "last_layer"), n_attr=n_attr,
                             iou_threshold=iou_threshold, top_quantile=top_quantile, seed=seed)
        full_bytes = sum(x.state_bytes for x in d.values())
        for target, cr in routes.items():
            ag = route_agreement(d, cr.attribution, model=m, route=target, iou_threshold=iou_threshold)
            cheap_tabs.append(ag)
            cost = dict(model=m, route=target, last_layer=cr.last.layer, full_seconds=t_full, cheap_seconds=cr.seconds,
                        time_ratio=cr.seconds / t_full, full_state_mb=full_bytes / 2**20,
                        cheap_state_mb=cr.state_bytes / 2**20, memory_ratio=cr.state_bytes / full_bytes)
            cost_rows.append(cost)
            if len(ag):
                row(m, f"cheap_route_{target}_spearman", float(ag.spearman.mean()), "mean", "higher", n=n_attr)
                row(m, f"cheap_route_{target}_topk_overlap", float(ag.topk_overlap.mean()), "mean", "higher", n=n_attr)
            row(m, f"cheap_route_{target}_time_ratio", cost["time_ratio"], "", "lower", n=n_attr)
            row(m, f"cheap_route_{target}_memory_ratio", cost["memory_ratio"], "", "lower", n=n_attr)

    layers_df = pd.concat(layer_tabs, ignore_index=True)
    ctx_df = pd.concat(ctx_tabs, ignore_index=True) if ctx_tabs else pd.DataFrame()
    rep = DissectionReport(
        segmenter={k: smeta[k] for k in ("pixel_accuracy", "mean_iou", "per_concept_iou", "ooc_pixel_accuracy",
                                          "ooc_mean_iou", "train_seconds", "key") if k in smeta},
        layers=layers_df, disentangled=most_disentangled(layers_df),
        ace=pd.concat(ace_tabs, ignore_index=True) if ace_tabs else pd.DataFrame(),
        alpha=pd.concat(alpha_tabs, ignore_index=True) if alpha_tabs else pd.DataFrame(),
        context=ctx_df,
        veto=veto_table(ctx_df, {"door": "on house", "tree": "on horizon"}) if len(ctx_df) else pd.DataFrame(),
        cheap=pd.concat(cheap_tabs, ignore_index=True) if cheap_tabs else pd.DataFrame(),
        cheap_cost=pd.DataFrame(cost_rows), dissections=dissections, generators=gens, rows=rows,
    )
    for r in rep.veto.itertuples():
        if np.isfinite(r.veto):
            row(r.model, f"context_veto_{r.concept}", r.veto, "", "none", n=n_context)
    if record:
        results.record(profile, rows, root)
    layers_df.to_csv(out_dir / "layers.csv", index=False)
    for name in ("ace", "alpha", "context", "veto", "cheap", "cheap_cost"):
        df = getattr(rep, name)
        if len(df):
            df.to_csv(out_dir / f"{name}.csv", index=False)
    if figures:
        import matplotlib.pyplot as plt

        from ..viz import savefig

        def save(fig, name: str) -> None:
            figs[name] = savefig(fig, out_dir / f"{name}.png")
            plt.close(fig)

        for m, d in dissections.items():
            save(plot_iou_histograms(d, m, iou_threshold), f"iou_hist_{m}")
            lay = most_disentangled(layer_summary(d, m, iou_threshold)).layer.item()
            save(plot_unit_examples(gens[m], d[lay], units_to_show(d[lay], concepts), title=f"{m} · {lay}"),
                 f"units_{m}")
        save(plot_layer_comparison(layers_df, iou_threshold), "layers")
        if len(rep.ace):
            save(plot_ace_vs_k(rep.ace), "ace_vs_k")
        if len(ctx_df):
            save(plot_context(ctx_df), "context")
    rep.figures = figs
    return rep


def units_to_show(d: LayerDissection, concepts: Sequence[str] = (), per_concept: int = 2, total: int = 6) -> list[int]:
    """Units for a visualisation: the best ``per_concept`` units of each concept, then the units with
    the highest IoU overall, ``total`` in all, without repeats."""
    out: list[int] = []
    for c in concepts:
        for u in d.ranking(c)[:per_concept].tolist():
            if u not in out:
                out.append(u)
    for u in torch.argsort(d.best()[1], descending=True).tolist():
        if len(out) >= total:
            break
        if u not in out:
            out.append(u)
    return out[:total]


# =========================================================================== figures
def plot_iou_histograms(dissections: Mapping[str, LayerDissection], model: str = "", iou_threshold: float = 0.05,
                        bins: int = 20):
    """One panel per layer: histogram of each unit's best IoU, the threshold as a dashed line."""
    import matplotlib.pyplot as plt

    n = len(dissections)
    fig, axes = plt.subplots(1, n, figsize=(2.8 * n, 2.4), squeeze=False)
    top = max(0.1, max(float(d.best()[1].max()) for d in dissections.values()))
    for ax, (name, d) in zip(axes[0], dissections.items()):
        v = d.best()[1].numpy()
        ax.hist(v, bins=np.linspace(0, top, bins + 1), color="#4C72B0")
        ax.axvline(iou_threshold, ls="--", c="k", lw=1)
        ax.set_title(f"{name}: {int((v > iou_threshold).sum())}/{len(v)} units", fontsize=9)
        ax.set_xlabel("best IoU of unit")
    axes[0][0].set_ylabel("units")
    if model:
        fig.suptitle(f"{model}: unit–concept IoU per layer", fontsize=10)
    fig.tight_layout()
    return fig


def plot_unit_examples(G: nn.Module, d: LayerDissection, units: Sequence[int], n_show: int = 4, title: str = "",
                       size: float = 1.1):
    """For each unit (rows): its top-activating samples with the thresholded region outlined (yellow)
    and the unit's best concept and IoU as the row label."""
    import matplotlib.pyplot as plt

    from ..viz import to_numpy_images

    units = list(units)
    n_show = min(n_show, d.top_samples.shape[1])
    fig, axes = plt.subplots(max(1, len(units)), n_show, figsize=(size * n_show + 0.8, size * max(1, len(units)) + 0.3),
                             squeeze=False)
    dev = _device(G)
    ci, cv = d.best()
    for r, u in enumerate(units):
        idx = d.top_samples[u, :n_show]
        z = torch.cat([latents(G, d.seed, int(i), int(i) + 1) for i in idx])
        with torch.no_grad(), record_layers(G, [d.layer]) as acts:
            x = G(z.to(dev))
        a = F.interpolate(acts[d.layer][:, u:u + 1], size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0].cpu()
        t = float(d.threshold[u])
        mask = (a > t) if bool(d.strict[u]) else (a >= t)
        imgs = to_numpy_images(x.cpu())
        for c in range(n_show):
            ax = axes[r][c]
            ax.imshow(imgs[c], cmap=None if imgs.ndim == 4 else "gray", interpolation="nearest")
            if mask[c].any():
                ax.contour(mask[c].float().numpy(), levels=[0.5], colors="yellow", linewidths=1.0)
            ax.set_axis_off()
        axes[r][0].text(-0.1, 0.5, f"u{u}\n{d.concepts[int(ci[u])]}\n{float(cv[u]):.2f}", transform=axes[r][0].transAxes,
                        ha="right", va="center", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_ace_vs_k(ace_df):
    """ACE against k: one panel per model × concept × mode; IoU-ranked, α-ranked and random units
    (mean ± std over random draws)."""
    import matplotlib.pyplot as plt

    groups = list(ace_df.groupby(["model", "concept", "mode"], sort=False))
    n = len(groups)
    ncol = min(4, n)
    nrow = int(math.ceil(n / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.6 * nrow), squeeze=False)
    styles = {"iou": ("C0", "-o"), "alpha": ("C1", "-s"), "random": ("0.5", "--")}
    for ax, ((model, concept, mode), g) in zip(axes.flat, groups):
        for sel, gs in g.groupby("selection", sort=False):
            col, st = styles.get(sel, ("C2", "-"))
            ax.plot(gs.k, gs.ace, st, color=col, label=sel, ms=3)
            if sel == "random":
                ax.fill_between(gs.k, gs.ace - gs.se.fillna(0), gs.ace + gs.se.fillna(0), color=col, alpha=0.2)
        ax.set_xscale("log", base=2)
        ax.set_title(f"{model} · {concept} · {mode}", fontsize=9)
        ax.set_xlabel("k units")
        ax.set_ylabel("ACE (pixel share)")
        ax.axhline(0, c="k", lw=0.5)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[n:]:
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def plot_context(ctx_df):
    """Bars: how often the inserted concept appears, per model × concept × context (95 % Wilson CI)."""
    import matplotlib.pyplot as plt

    df = ctx_df[ctx_df.trials > 0]
    labels = [f"{r.model}\n{r.concept} {r.context}" for r in df.itertuples()]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(df)), 3.0))
    x = np.arange(len(df))
    colours = ["C3" if "sky" in c else "C2" for c in df.context]
    ax.bar(x, df.rate, color=colours,
           yerr=[df.rate - df.ci_low, df.ci_high - df.rate], capsize=3)
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_ylabel("share of insertions where it appears")
    ax.set_ylim(0, 1)
    ax.set_title("context test: inserting concept units in a usual vs an unusual place", fontsize=9)
    fig.tight_layout()
    return fig


def plot_layer_comparison(layers_df, iou_threshold: float = 0.05):
    """Fraction of interpretable units per layer (bars), one panel per model."""
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(layers_df.model))
    fig, axes = plt.subplots(1, len(models), figsize=(3.2 * len(models), 2.6), squeeze=False)
    for ax, m in zip(axes[0], models):
        g = layers_df[layers_df.model == m]
        ax.bar(g.layer, g.fraction, color="C0")
        for i, r in enumerate(g.itertuples()):
            ax.text(i, r.fraction, f"{r.interpretable}/{r.units}", ha="center", va="bottom", fontsize=7)
        ax.set_ylim(0, 1.1)
        ax.set_title(m, fontsize=9)
        ax.set_ylabel(f"fraction of units IoU > {iou_threshold}")
    fig.tight_layout()
    return fig


__all__ = [
    "QuantileSketch", "LayerDissection", "Effect", "AlphaResult", "DissectionReport", "dissect", "layer_summary",
    "most_disentangled", "default_layer", "concept_share", "causal_effect", "ace_vs_k", "optimal_unit_set",
    "cheap_summary", "compare_alpha_iou", "context_test", "veto_table", "attribute_units", "route_agreement", "last_hidden_layer", "layer_units", "cheap_route", "CheapRoute",
    "run_dissection", "record_layers", "intervene", "unit_alpha", "latents", "check_layers", "concept_index",
    "topk_overlap", "spearman", "wilson", "plot_iou_histograms", "plot_unit_examples", "plot_ace_vs_k",
    "plot_context", "plot_layer_comparison", "units_to_show", "dissection_dir", "DOOR_CONTEXTS", "TREE_CONTEXTS",
]
