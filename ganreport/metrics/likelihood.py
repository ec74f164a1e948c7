"""Log-likelihood estimates of a generator, the baselines the ModNet thesis criticises (seed 004,
§3.1.2 and §3.4.1, Figs. 3.3 and 3.5).

**Parzen window** (Breuleux, Bengio & Vincent 2011, "Quickly generating representative samples from
an RBM-derived process"; the protocol of Goodfellow et al. 2014, "Generative adversarial nets",
code ``goodfeli/adversarial/parzen_ll.py``): an isotropic Gaussian kernel density of bandwidth
``h`` centred on the generated samples ``g_1..g_n`` (d dimensions),

    log p̂(x) = logsumexp_i( −‖x − g_i‖² / (2h²) ) − log n − (d/2) log(2π h²),

with ``h`` chosen to maximise the mean log-likelihood of a *validation* set, and the mean of
``log p̂`` over *test* images reported (nats per image; higher is "better"). In pixel space this
suffers from the curse of dimensionality (Theis, van den Oord & Bethge 2016, "A note on the
evaluation of generative models"); the thesis also runs it on the principal components that keep
95 % of the variance (:func:`pca_95`).

**Annealed importance sampling** (Wu, Burda, Salakhutdinov & Grosse 2017, "On the quantitative
analysis of decoder-based generative models", arXiv 2016): a GAN generator ``μ(z)`` is read as a
decoder with a Gaussian observation model ``p(x | z) = N(x; μ(z), σ² I)`` and prior
``p(z) = N(0, I)``. AIS anneals from the prior to the posterior through
``p_t(z) ∝ p(z) p(x | z)^{β_t}``, ``0 = β_0 < … < β_T = 1`` (sigmoid schedule), with one
Hamiltonian Monte Carlo transition leaving each ``p_t`` invariant; the log-weight of a chain is

    log w = Σ_t (β_t − β_{t−1}) log p(x | z_{t−1}),

and ``log p̂(x) = log( (1/K) Σ_k w_k )`` over ``K`` chains — an unbiased estimate of ``p(x)``, so a
stochastic lower bound of ``log p(x)`` in expectation. ``σ`` is a free hyperparameter of the
observation model (Wu et al. choose it on validation data); the thesis (Fig. 3.5) shows the
estimate moves by many nats with it. Everything is in nats.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..errors import ConfigError, DataError
from .base import auto_chunk, check_features, check_same_dim, chunks, sq_dists

LOG_2PI = math.log(2 * math.pi)


# --------------------------------------------------------------------------- Parzen windows
def _check_bandwidth(h: float) -> float:
    try:
        h = float(h)
    except (TypeError, ValueError):
        raise ConfigError(f"Parzen bandwidth must be a positive number, got {h!r}") from None
    if not math.isfinite(h) or h <= 0:
        raise ConfigError(f"Parzen bandwidth must be a positive finite number, got {h}")
    return h


def _sq_dist_matrix(x: torch.Tensor, centers: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
    c_sq = (centers * centers).sum(1)
    out = torch.empty(len(x), len(centers), dtype=torch.float64)
    for sl in chunks(len(x), chunk or auto_chunk(len(centers))):
        out[sl] = sq_dists(x[sl], centers, c_sq)
    return out


def _parzen_from_sq(d2: torch.Tensor, h: float, dim: int) -> torch.Tensor:
    n = d2.shape[1]
    return torch.logsumexp(d2 * (-0.5 / h ** 2), dim=1) - math.log(n) - 0.5 * dim * (LOG_2PI + 2 * math.log(h))


def parzen_log_likelihood(x: Any, centers: Any, bandwidth: float, chunk: int | None = None) -> torch.Tensor:
    """Per-sample Parzen-window log-likelihood (nats) of ``x`` (N, d) under an isotropic Gaussian
    kernel of standard deviation ``bandwidth`` centred on ``centers`` (n, d):

    ``log p̂(x) = logsumexp_i(−‖x − c_i‖²/(2h²)) − log n − (d/2) log(2πh²)`` (float64, chunked
    over rows of ``x``: memory O(chunk · n)). Equals ``scipy.stats.gaussian_kde`` with covariance
    ``h² I``.

    Raises
    ------
    ConfigError : bandwidth ≤ 0 or not finite.
    DataError : empty / non-finite inputs or different dimensions.
    """
    h = _check_bandwidth(bandwidth)
    x = check_features(x, "x (points to evaluate)", min_n=1)
    c = check_features(centers, "centers (kernel centres, e.g. generated samples)", min_n=1)
    check_same_dim(x, c, "x", "centers")
    out = torch.empty(len(x), dtype=torch.float64)
    for sl in chunks(len(x), chunk or auto_chunk(len(c))):
        out[sl] = _parzen_from_sq(sq_dists(x[sl], c, (c * c).sum(1)), h, x.shape[1])
    return out


def default_bandwidth_grid(x: torch.Tensor, centers: torch.Tensor, n: int = 13) -> np.ndarray:
    """Geometric grid of ``n`` bandwidths over ×1/8 … ×8 around ``h0 = median_x min_i ‖x − c_i‖ / √d``
    (the scale at which the nearest kernel centre matters)."""
    d2 = _sq_dist_matrix(x, centers)
    h0 = float(d2.min(1).values.median().clamp_min(1e-24).sqrt()) / math.sqrt(x.shape[1])
    return h0 * np.logspace(-3, 3, n, base=2.0)


def choose_bandwidth(val: Any, centers: Any, grid: Sequence[float] | None = None, refine: bool = True,
                     ) -> tuple[float, "Any"]:
    """Bandwidth maximising the mean Parzen log-likelihood of the validation points ``val``.

    Grid search over ``grid`` (default :func:`default_bandwidth_grid`; Goodfellow et al. used
    ``logspace(-1, 0, 10)`` for MNIST pixels in [0, 1]), then — with ``refine`` — a bounded
    scalar search in ``log h`` between the best grid point's neighbours. The squared distances are
    computed once, so every candidate costs one log-sum-exp.

    Returns
    -------
    (h, table) : the chosen bandwidth and a DataFrame ``bandwidth, mean_ll`` of the grid.
    """
    import pandas as pd
    from scipy.optimize import minimize_scalar

    v = check_features(val, "val (validation points)", min_n=1)
    c = check_features(centers, "centers (kernel centres)", min_n=1)
    check_same_dim(v, c, "val", "centers")
    if grid is None:
        hs = np.asarray(default_bandwidth_grid(v, c), dtype=float)
    else:
        hs = np.asarray([_check_bandwidth(h) for h in grid], dtype=float)
    if hs.size == 0:
        raise ConfigError("the bandwidth grid is empty")
    hs = np.sort(hs)
    d2 = _sq_dist_matrix(v, c)
    mean_ll = np.array([float(_parzen_from_sq(d2, float(h), v.shape[1]).mean()) for h in hs])
    i = int(np.nanargmax(mean_ll))
    best_h, best = float(hs[i]), float(mean_ll[i])
    if refine and len(hs) > 1:
        lo, hi = math.log(hs[max(i - 1, 0)]), math.log(hs[min(i + 1, len(hs) - 1)])
        if hi > lo:
            res = minimize_scalar(lambda lh: -float(_parzen_from_sq(d2, math.exp(lh), v.shape[1]).mean()),
                                  bounds=(lo, hi), method="bounded", options={"xatol": 1e-3})
            if res.success and -res.fun > best:
                best_h = float(math.exp(res.x))
    return best_h, pd.DataFrame({"bandwidth": hs, "mean_ll": mean_ll})


def parzen_score(test: Any, val: Any, centers: Any, grid: Sequence[float] | None = None) -> dict[str, float]:
    """Goodfellow et al.'s protocol: bandwidth on ``val``, then the mean (± standard error) Parzen
    log-likelihood of ``test`` under kernels on ``centers``. Keys ``ll, se, bandwidth, val_ll``."""
    h, table = choose_bandwidth(val, centers, grid)
    ll = parzen_log_likelihood(test, centers, h)
    v = parzen_log_likelihood(val, centers, h)
    return {"ll": float(ll.mean()), "se": float(ll.std() / math.sqrt(len(ll))) if len(ll) > 1 else float("nan"),
            "bandwidth": h, "val_ll": float(v.mean())}


# --------------------------------------------------------------------------- PCA
@dataclass(frozen=True)
class PCA:
    """A fitted principal-component projection: ``transform(x) = (x − mean) @ components.T``."""

    mean: torch.Tensor  # (d,)
    components: torch.Tensor  # (k, d), orthonormal rows
    explained_variance: torch.Tensor  # (k,)
    explained_ratio: float  # fraction of the total variance the k components keep

    @property
    def n_components(self) -> int:
        return int(self.components.shape[0])

    def transform(self, x: Any) -> torch.Tensor:
        t = check_features(x, "x (points to project)", min_n=1)
        if t.shape[1] != self.mean.shape[0]:
            raise DataError(f"PCA was fitted on {self.mean.shape[0]} features, got {t.shape[1]}")
        return (t - self.mean) @ self.components.T


def fit_pca(x: Any, variance: float | None = 0.95, n_components: int | None = None) -> PCA:
    """Principal components of ``x`` (N, d) from the eigen-decomposition of the centred data's scatter
    (d x d) or Gram (N x N) matrix, whichever is smaller (float64).

    Keeps ``n_components`` when given, otherwise the fewest components whose cumulative explained
    variance reaches ``variance`` (the thesis: "the top principal components that capture 95 % of
    the variation of the data").

    Raises
    ------
    ConfigError : ``variance`` not in (0, 1], ``n_components`` < 1.
    DataError : fewer than 2 samples, or more components than samples (or features) — at most
        ``min(N − 1, d)`` components carry variance.
    """
    t = check_features(x, "x (data to fit the PCA on)", min_n=2)
    n, d = t.shape
    kmax = min(n - 1, d)
    if n_components is not None:
        if int(n_components) < 1:
            raise ConfigError(f"n_components must be >= 1, got {n_components}")
        if int(n_components) > kmax:
            raise DataError(f"PCA with {n_components} components needs more samples: {n} samples of {d} features "
                            f"have at most {kmax} components with variance (N - 1 or d)")
    elif variance is None or not 0 < float(variance) <= 1:
        raise ConfigError(f"variance must be in (0, 1], got {variance!r}")
    mean = t.mean(0)
    xc = t - mean
    if n >= d:  # eigen-decomposition of the (d x d) scatter matrix: faster than an SVD of the data
        w, v = torch.linalg.eigh(xc.T @ xc)
        w, vh = w.flip(0).clamp_min(0), v.flip(1).T
    else:  # the (n x n) Gram matrix; right singular vectors from the left ones
        w, u = torch.linalg.eigh(xc @ xc.T)
        w, u = w.flip(0).clamp_min(0), u.flip(1)
        keep = w > w[0] * 1e-12
        vh = torch.zeros(n, d, dtype=t.dtype)
        vh[keep] = (u[:, keep] / w[keep].sqrt()).T @ xc
    ev = w / (n - 1)
    ratio = ev / ev.sum().clamp_min(1e-300)
    if n_components is None:
        cum = torch.cumsum(ratio, 0)
        k = int(torch.searchsorted(cum, torch.tensor(float(variance) - 1e-12, dtype=cum.dtype)).item()) + 1
        k = min(k, kmax)
    else:
        k = int(n_components)
    return PCA(mean, vh[:k].contiguous(), ev[:k], float(ratio[:k].sum()))


def pca_95(x: Any) -> PCA:
    """:func:`fit_pca` keeping 95 % of the variance."""
    return fit_pca(x, 0.95)


# --------------------------------------------------------------------------- AIS
def sigmoid_schedule(n_steps: int, radius: float = 4.0) -> torch.Tensor:
    """``β_0 = 0 < … < β_T = 1`` (T = ``n_steps``): a sigmoid over ``[−radius, radius]`` rescaled to
    [0, 1] (Wu et al. 2016's schedule; dense near both ends)."""
    if int(n_steps) < 1:
        raise ConfigError(f"AIS needs n_steps >= 1, got {n_steps}")
    t = torch.linspace(-radius, radius, int(n_steps) + 1, dtype=torch.float64)
    s = torch.sigmoid(t)
    return (s - s[0]) / (s[-1] - s[0])


def gaussian_log_lik(x: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """``log N(x; μ, σ² I)`` per row: ``−‖x − μ‖²/(2σ²) − d log σ − (d/2) log 2π`` (float64)."""
    d = x.shape[1]
    r = (x.to(torch.float64) - mu.to(torch.float64))
    sig = sigma.to(torch.float64)
    return -0.5 * (r * r).sum(1) / sig ** 2 - d * torch.log(sig) - 0.5 * d * LOG_2PI


@dataclass
class AISResult:
    """Per-σ, per-image AIS estimates ``log_px`` (S, N) in nats, with diagnostics."""

    sigmas: list[float]
    log_px: torch.Tensor  # (S, N)
    log_w: torch.Tensor  # (S, N, K) final chain log-weights
    accept: torch.Tensor  # (S,) mean HMC acceptance rate
    step_size: torch.Tensor  # (S,) mean final leapfrog step size
    n_steps: int
    n_chains: int

    def mean(self) -> torch.Tensor:
        """Mean estimate over images, per σ (nats per image)."""
        return self.log_px.mean(1)


def gan_decoder(G: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``z -> μ(z)``: generator images mapped from [−1, 1] to [0, 1] and flattened (the pixel scale
    of Wu et al.'s MNIST experiments; ``σ`` is then in [0, 1] intensity units). Uses ``G`` as it
    is (put it in eval mode first)."""
    def decode(z: torch.Tensor) -> torch.Tensor:
        p = next(G.parameters(), None)
        z = z.to(p.dtype if p is not None else torch.float32)
        return ((G(z) + 1) / 2).flatten(1)
    return decode


def ais_log_likelihood(decoder: Callable[[torch.Tensor], torch.Tensor], x: Any, sigmas: float | Sequence[float],
                       z_dim: int, *, n_chains: int = 16, n_steps: int = 500, n_leapfrog: int = 10,
                       step_size: float = 0.05, target_accept: float = 0.65, seed: int = 0, progress: bool = False,
                       device: str | torch.device = "cpu") -> AISResult:
    """AIS estimate of ``log p(x) = log ∫ N(x; decoder(z), σ² I) N(z; 0, I) dz`` for each row of ``x``
    and each ``σ`` (Wu, Burda, Salakhutdinov & Grosse 2016; see the module docstring).

    Parameters
    ----------
    decoder : ``z (B, z_dim) -> μ (B, d)``, differentiable (e.g. :func:`gan_decoder`).
    x : (N, d) data in the decoder's output space.
    sigmas : one or several observation standard deviations (> 0); all σ, images and chains run
        as one batch of ``len(sigmas) · N · n_chains`` chains.
    n_chains : independent AIS chains per image and σ (``K``).
    n_steps : annealing steps ``T`` (sigmoid schedule, :func:`sigmoid_schedule`).
    n_leapfrog, step_size : HMC leapfrog steps per transition and initial step size; each chain's
        step size adapts ×1.02 / ×0.98 towards the ``target_accept`` rate (as Wu et al.'s code).
    seed : seeds the initial latents, momenta and accept draws (one CPU ``torch.Generator``; draws are
        moved to ``device``, so results do not depend on the device beyond float round-off).
    device : where the chains live (the decoder's device).

    Returns
    -------
    AISResult with ``log_px`` (S, N) = ``logmeanexp_k log w_k``.

    Raises
    ------
    ConfigError : σ ≤ 0, non-positive counts. DataError : bad ``x``.
    """
    sig_list = [float(s) for s in (sigmas if isinstance(sigmas, (list, tuple, np.ndarray, torch.Tensor))
                                   else [sigmas])]
    if not sig_list:
        raise ConfigError("AIS needs at least one sigma")
    for s in sig_list:
        if not math.isfinite(s) or s <= 0:
            raise ConfigError(f"AIS observation sigma must be > 0, got {s}")
    for name, v in (("n_chains", n_chains), ("n_steps", n_steps), ("n_leapfrog", n_leapfrog), ("z_dim", z_dim)):
        if int(v) < 1:
            raise ConfigError(f"AIS {name} must be >= 1, got {v}")
    if not step_size > 0:
        raise ConfigError(f"AIS step_size must be > 0, got {step_size}")
    xs = check_features(x, "x (images to evaluate, flattened)", min_n=1)
    S, N, K, L = len(sig_list), len(xs), int(n_chains), int(n_leapfrog)
    C = S * N * K
    # chain layout: (σ, image, chain) flattened in that order
    dev = torch.device(device)
    xc = xs.repeat_interleave(K, 0).repeat(S, 1).to(dev)  # (C, d)
    sig = torch.tensor(sig_list, dtype=torch.float64).repeat_interleave(N * K).to(dev)  # (C,)
    g = torch.Generator().manual_seed(int(seed))
    betas = sigmoid_schedule(int(n_steps))

    def loglik_grad(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """log p(x|z) per chain and its gradient in z (one forward and backward pass)."""
        z = z.detach().requires_grad_(True)
        with torch.enable_grad():
            ll = gaussian_log_lik(xc, decoder(z), sig)
            grad, = torch.autograd.grad(ll.sum(), z)
        return ll.detach(), grad.detach().to(torch.float64)

    def potential(z: torch.Tensor, ll: torch.Tensor, gll: torch.Tensor, beta: float):
        """U = ½‖z‖² − β log p(x|z) (−log p_t up to a constant) and ∇U."""
        return 0.5 * (z * z).sum(1) - beta * ll, z - beta * gll

    dtype = torch.float64
    z = torch.randn(C, int(z_dim), generator=g, dtype=dtype).to(dev)
    ll_cur, gll_cur = loglik_grad(z)
    log_w = torch.zeros(C, dtype=dtype, device=dev)
    eps = torch.full((C, 1), float(step_size), dtype=dtype, device=dev)
    acc_avg = torch.full((C,), float(target_accept), dtype=dtype, device=dev)
    acc_sum = torch.zeros(C, dtype=dtype, device=dev)
    for t in tqdm(range(1, len(betas)), desc="AIS", disable=not progress, ncols=100, mininterval=2.0):
        b_prev, b = float(betas[t - 1]), float(betas[t])
        log_w += (b - b_prev) * ll_cur
        # one HMC transition (L leapfrog steps + Metropolis test) leaving p_t ∝ p(z) p(x|z)^β_t invariant
        u0, grad = potential(z, ll_cur, gll_cur, b)
        p0 = torch.randn(C, int(z_dim), generator=g, dtype=dtype).to(dev)
        zn, p = z, p0 - 0.5 * eps * grad
        for i in range(L):
            zn = zn + eps * p
            lln, glln = loglik_grad(zn)
            un, grad = potential(zn, lln, glln, b)
            if i < L - 1:
                p = p - eps * grad
        p = p - 0.5 * eps * grad
        log_acc = ((u0 + 0.5 * (p0 ** 2).sum(1)) - (un + 0.5 * (p ** 2).sum(1))).nan_to_num(nan=-math.inf)
        accept = torch.log(torch.rand(C, generator=g, dtype=dtype)).to(dev) < log_acc
        z = torch.where(accept[:, None], zn, z)
        ll_cur = torch.where(accept, lln, ll_cur)
        gll_cur = torch.where(accept[:, None], glln, gll_cur)
        a = accept.to(dtype)
        acc_sum += a
        acc_avg = 0.9 * acc_avg + 0.1 * a
        eps = (eps * torch.where(acc_avg > target_accept, 1.02, 0.98)[:, None]).clamp(1e-5, 1.0)
    lw = log_w.view(S, N, K).cpu()
    log_px = torch.logsumexp(lw, 2) - math.log(K)
    return AISResult(sig_list, log_px, lw, (acc_sum / (len(betas) - 1)).view(S, N * K).mean(1).cpu(),
                     eps.view(S, N * K).mean(1).cpu(), int(n_steps), K)


def linear_gaussian_log_px(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor, sigma: float) -> torch.Tensor:
    """Exact ``log p(x)`` of the linear-Gaussian decoder ``μ(z) = W z + b``, ``z ~ N(0, I)``:
    ``x ~ N(b, W Wᵀ + σ² I)`` (the known answer AIS is tested against)."""
    d = W.shape[0]
    cov = W.double() @ W.double().T + float(sigma) ** 2 * torch.eye(d, dtype=torch.float64)
    return torch.distributions.MultivariateNormal(b.double(), covariance_matrix=cov).log_prob(x.double())
