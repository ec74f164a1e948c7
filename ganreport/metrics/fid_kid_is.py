"""FID, KID and IS on features of any extractor (float64 throughout)."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import ConfigError, DataError
from .base import Result, bootstrap_stat_ci, half_sample_ci, register, rng_for, t_interval


# --------------------------------------------------------------------------- FID
def trace_sqrt_product(cov1: torch.Tensor, cov2: torch.Tensor) -> torch.Tensor:
    """``tr( (S1 S2)^1/2 )`` for symmetric PSD ``S1``, ``S2`` (float64).

    The eigenvalues of ``S1 S2`` equal those of the symmetric PSD matrix ``L^T S2 L`` for any
    factor ``S1 = L L^T``: a Cholesky factor when ``S1`` is positive definite, else
    ``L = V diag(sqrt(w))`` from its eigen-decomposition. Negative round-off eigenvalues are
    clamped to 0.
    """
    cov1 = (cov1 + cov1.T) / 2
    L, info = torch.linalg.cholesky_ex(cov1)
    if int(info) != 0:
        w, v = torch.linalg.eigh(cov1)
        L = v * w.clamp_min(0).sqrt()
    m = L.T @ cov2 @ L
    return torch.linalg.eigvalsh((m + m.T) / 2).clamp_min(0).sqrt().sum()


def frechet_distance(mu1: torch.Tensor, cov1: torch.Tensor, mu2: torch.Tensor, cov2: torch.Tensor) -> float:
    """``||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr( (S1 S2)^1/2 )`` in float64.

    ``tr (S1 S2)^1/2`` comes from the eigenvalues of a symmetric matrix similar to ``S1 S2``
    (:func:`trace_sqrt_product`) — the same quantity as the matrix square root of Heusel et al.
    (2017) and torchmetrics' ``eigvals(S1 @ S2)``, but faster and stable for singular covariances.
    """
    mu1, mu2, cov1, cov2 = (t.to(torch.float64) for t in (mu1, mu2, cov1, cov2))
    diff = mu1 - mu2
    return float(diff @ diff + torch.trace(cov1) + torch.trace(cov2) - 2 * trace_sqrt_product(cov1, cov2))


def _fid_features(real: torch.Tensor, fake: torch.Tensor) -> float:
    """FID from features; when a set has fewer samples than dimensions the trace term uses its
    (N x N) Gram form: ``eig(S1 S2) = eig(A S2 A^T) / (N1 - 1)`` with ``A`` the centred features."""
    if min(len(real), len(fake)) >= real.shape[1]:
        return frechet_distance(*_mean_cov(real), *_mean_cov(fake))
    a, b = (real, fake) if len(real) <= len(fake) else (fake, real)
    mu_a, mu_b = a.mean(0), b.mean(0)
    ac, bc = a - mu_a, b - mu_b
    na, nb = len(a) - 1, len(b) - 1
    g = (ac @ bc.T) @ (bc @ ac.T) / (na * nb)  # A S_b A^T / (N_a - 1)
    tr_sqrt = torch.linalg.eigvalsh((g + g.T) / 2).clamp_min(0).sqrt().sum()
    diff = mu_a - mu_b
    return float(diff @ diff + (ac * ac).sum() / na + (bc * bc).sum() / nb - 2 * tr_sqrt)


def _mean_cov(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mu = x.mean(0)
    xc = x - mu
    return mu, xc.T @ xc / (len(x) - 1)


@register("fid", "lower")
def fid(real: torch.Tensor, fake: torch.Tensor, *, seed: int = 0, n_boot: int = 20, alpha: float = 0.05) -> Result:
    """Fréchet distance between Gaussians fitted to real and fake features. Lower is better.

    ``FID = ||mu_r - mu_f||^2 + tr(S_r + S_f - 2 (S_r S_f)^1/2)`` (Heusel et al. 2017, "GANs
    trained by a two time-scale update rule converge to a local Nash equilibrium"), with unbiased
    covariances (``N - 1``), as torchmetrics. Biased upwards at small N, so compare at equal N.

    CI: normal bootstrap interval ``FID +- 1.96 sd`` over ``n_boot`` replicates resampling both
    sets (percentile intervals would sit above the estimate: duplicates inflate FID).
    """
    value = _fid_features(real, fake)

    def stat(ir: torch.Tensor, jf: torch.Tensor) -> float:
        return _fid_features(real[ir], fake[jf])

    lo, hi, reps = bootstrap_stat_ci(stat, len(real), len(fake), seed, n_boot, alpha, "normal", value)
    return Result(value, max(lo, 0.0) if np.isfinite(lo) else lo, hi, len(fake), "lower",
                  {"n_real": len(real), "bootstrap": reps})


def fid_from_stats(mu1: torch.Tensor, cov1: torch.Tensor, mu2: torch.Tensor, cov2: torch.Tensor) -> float:
    """FID from precomputed (e.g. cached real-data) means and covariances."""
    return frechet_distance(mu1, cov1, mu2, cov2)


# --------------------------------------------------------------------------- KID
def poly_kernel(a: torch.Tensor, b: torch.Tensor, degree: int = 3, gamma: float | None = None,
                coef: float = 1.0) -> torch.Tensor:
    """``k(x, y) = (gamma x.y + coef)^degree`` with ``gamma = 1/D`` by default (Bińkowski et al. 2018)."""
    gamma = 1.0 / a.shape[1] if gamma is None else gamma
    return (a @ b.T * gamma + coef) ** degree


def _mmd2_unbiased_equal(kxx: torch.Tensor, kxy: torch.Tensor, kyy: torch.Tensor) -> torch.Tensor:
    m = kxx.shape[0]
    n = kyy.shape[0]
    sxx = kxx.sum() - kxx.diagonal().sum()
    syy = kyy.sum() - kyy.diagonal().sum()
    return sxx / (m * (m - 1)) + syy / (n * (n - 1)) - 2 * kxy.sum() / (m * n)


@register("kid", "lower")
def kid(real: torch.Tensor, fake: torch.Tensor, *, seed: int = 0, num_subsets: int = 100, subset_size: int = 1000,
        degree: int = 3, gamma: float | None = None, coef: float = 1.0, alpha: float = 0.05) -> Result:
    """Kernel Inception Distance: unbiased MMD² with a cubic polynomial kernel, averaged over
    random subsets (Bińkowski et al. 2018, "Demystifying MMD GANs"). Lower is better; 0 = match.

    ``KID = mean_s MMD²_u(R_s, F_s)``, ``k(x, y) = (x.y / D + 1)^3``; each subset draws
    ``subset_size`` (capped at the smaller set) real then fake samples without replacement,
    from a generator seeded with ``seed`` — the same draws as torchmetrics after
    ``torch.manual_seed(seed)``. CI: the alpha/2 and 1-alpha/2 quantiles of the subset values
    (the spread of a ``subset_size`` estimate: conservative for the mean). When both sets are no
    larger than ``subset_size`` every subset is a permutation of the full sets and the quantiles
    collapse to a zero-width interval (and when one is, they miss its variability); the interval
    then comes from ``num_subsets`` half-samples
    of both sets (:func:`~ganreport.metrics.base.half_sample_ci`; MMD²_u is unbiased at any size,
    and conservative for equal distributions). ``extra["interval"]`` says which. ``extra["std"]``
    is torchmetrics' population std over subsets.
    """
    m = min(int(subset_size), len(real), len(fake))
    if m < 2:
        raise ConfigError(f"kid needs subset_size >= 2 and at least 2 samples per set, got subset_size {subset_size} "
                          f"and {len(real)} / {len(fake)} samples")
    g = rng_for(seed)
    vals = []
    for _ in range(max(1, int(num_subsets))):
        r = real[torch.randperm(len(real), generator=g)[:m]]
        f = fake[torch.randperm(len(fake), generator=g)[:m]]
        vals.append(_mmd2_unbiased_equal(poly_kernel(r, r, degree, gamma, coef), poly_kernel(r, f, degree, gamma, coef),
                                         poly_kernel(f, f, degree, gamma, coef)))
    v = torch.stack(vals)
    value = float(v.mean())
    whole = m == min(len(real), len(fake)) and m >= 8  # a set enters whole into every subset: the quantiles
    if whole and len(v) > 1:                           # miss its variability (zero width when both do)
        def stat(i: torch.Tensor, j: torch.Tensor) -> float:
            r, f = real[i], fake[j]
            k = (poly_kernel(a, b, degree, gamma, coef) for a, b in ((r, r), (r, f), (f, f)))
            return float(_mmd2_unbiased_equal(*k))

        lo, hi, _ = half_sample_ci(stat, (len(real), len(fake)), value, seed, len(v), alpha)
    elif len(v) > 1:
        lo, hi = float(torch.quantile(v, alpha / 2)), float(torch.quantile(v, 1 - alpha / 2))
    else:
        lo = hi = float("nan")
    return Result(value, lo, hi, len(fake), "lower",
                  {"std": float(v.std(unbiased=False)), "subsets": v.numpy(), "subset_size": m,
                   "interval": "half-samples" if whole and len(v) > 1 else "subset quantiles"})


# --------------------------------------------------------------------------- IS
def _split_scores(logp: torch.Tensor, splits: int) -> torch.Tensor:
    """IS of each split, the splits cut as the reference implementation does (Salimans et al.'s
    ``preds[i·N // splits:(i + 1)·N // splits]``: sizes differ by at most one). ``torch.chunk``
    (torchmetrics) leaves a one-sample split scoring exactly 1 when N = 91 and splits = 10."""
    p = logp.exp()
    n = len(logp)
    scores = []
    for i in range(splits):
        sl = slice(i * n // splits, (i + 1) * n // splits)
        lp, pp = logp[sl], p[sl]
        log_marg = torch.logsumexp(lp, 0) - np.log(len(lp))  # log p(y) of this split
        scores.append((pp * (lp - log_marg)).sum(1).mean().exp())
    return torch.stack(scores)


@register("is", "higher", inputs="logits", needs_real=False)
def inception_score(real: torch.Tensor | None, fake: torch.Tensor, *, seed: int = 0, splits: int = 10,
                    probs: bool = False, alpha: float = 0.05) -> Result:
    """Inception Score ``exp( E_x KL(p(y|x) || p(y)) )`` of the fake samples only (Salimans et al.
    2016, "Improved techniques for training GANs"). Higher is better; at most the number of classes.

    ``fake`` holds logits (softmax is applied) or, with ``probs=True``, class probabilities.
    ``real`` is ignored. The samples are shuffled with a generator seeded with ``seed`` (the same
    permutation as torchmetrics after ``torch.manual_seed(seed)``), cut into ``splits`` slices as the
    reference implementation does (equal to torchmetrics' ``torch.chunk`` when ``splits`` divides
    N); the value is the mean of the per-split scores. CI: mean ± t sd/sqrt(splits).
    Known flaw (ModNet thesis §3.1/3.4.5): ignores the real data and saturates once all classes
    appear, so it cannot see missing modes within a class.
    """
    x = fake
    if probs:
        if (x < 0).any() or not torch.allclose(x.sum(1), torch.ones(len(x), dtype=x.dtype), atol=1e-3):
            raise DataError("is with probs=True needs rows of non-negative probabilities summing to 1; "
                             "pass logits with probs=False")
        logp = x.clamp_min(1e-300).log()
        logp = logp - torch.logsumexp(logp, 1, keepdim=True)
    else:
        logp = torch.log_softmax(x, 1)
    splits = int(splits)
    if not 1 <= splits <= len(x):
        raise ConfigError(f"is: splits must be in 1..{len(x)} (the number of samples), got {splits}")
    perm = torch.randperm(len(x), generator=rng_for(seed))
    s = _split_scores(logp[perm], splits)
    value = float(s.mean())
    lo, hi = t_interval(value, s.numpy(), alpha, 1 / np.sqrt(len(s))) if len(s) > 1 else (float("nan"),) * 2
    return Result(value, lo, hi, len(x), "higher",
                  {"std": float(s.std()) if len(s) > 1 else float("nan"), "split_scores": s.numpy()})
