"""Precision / recall (Kynkäänniemi et al. 2019) and density / coverage (Naeem et al. 2020).

With ``B(x, k)`` the ball around ``x`` whose radius ``NND_k(x)`` is the distance to its k-th
nearest neighbour within its own set (Euclidean, features):

- precision = (1/M) Σ_j 1[ ∃ i: ‖f_j − r_i‖ ≤ NND_3(r_i) ]    (fakes inside the real manifold)
- recall    = (1/N) Σ_i 1[ ∃ j: ‖r_i − f_j‖ ≤ NND_3(f_j) ]    (reals inside the fake manifold)
- density   = (1/(kM)) Σ_j Σ_i 1[ ‖f_j − r_i‖ < NND_5(r_i) ]
- coverage  = (1/N) Σ_i 1[ min_j ‖r_i − f_j‖ < NND_5(r_i) ]

Precision and recall follow Kynkäänniemi et al. (k = 3, ``≤``: on identical distributions 0.80 /
0.78 at k = 3 against 0.88 / 0.86 at k = 5); density and coverage follow Naeem et al.'s reference
code (k = 5, strict ``<``). All higher is better (density can exceed 1). One pass over chunks of
fakes computes all four in O(chunk · N) memory. CIs: ``n_boot`` half-samples of both sets
(:func:`~ganreport.metrics.base.half_samples`; without replacement, so the k-NN radii never see
duplicates). Recall and coverage depend on the fake set through the fake radii and the nearest
fake, so an interval over the reals alone (fakes fixed) covered the expected value in only 32 % and
72 % of independent draws of the fakes.
"""

from __future__ import annotations

import torch

import numpy as np

from .base import Result, auto_chunk, chunks, half_samples, knn_sq_radius, register, sq_dists, t_interval


def prdc_per_sample(real: torch.Tensor, fake: torch.Tensor, k: int = 5, chunk: int | None = None,
                    k_pr: int = 3) -> dict[str, torch.Tensor]:
    """Per-sample indicators: ``precision``/``density`` per fake, ``recall``/``coverage`` per real;
    ``k_pr`` neighbours (and ``≤``) for precision/recall, ``k`` (and ``<``) for density/coverage."""
    rad_r = knn_sq_radius(real, k, chunk)
    rad_r_pr = rad_r if k_pr == k else knn_sq_radius(real, k_pr, chunk)
    rad_f_pr = knn_sq_radius(fake, k_pr, chunk)
    r_sq = (real * real).sum(1)
    precision = torch.empty(len(fake), dtype=torch.float64)
    density = torch.empty(len(fake), dtype=torch.float64)
    recall = torch.zeros(len(real), dtype=torch.bool)
    nn_r = torch.full((len(real),), float("inf"), dtype=torch.float64)
    for sl in chunks(len(fake), chunk or auto_chunk(len(real))):
        d = sq_dists(fake[sl], real, r_sq)                     # (chunk, N)
        precision[sl] = (d <= rad_r_pr[None, :]).any(1).double()
        density[sl] = (d < rad_r[None, :]).sum(1).double() / k
        recall |= (d <= rad_f_pr[sl, None]).any(0)
        nn_r = torch.minimum(nn_r, d.min(0).values)
    coverage = (nn_r < rad_r).double()
    return {"precision": precision, "density": density, "recall": recall.double(), "coverage": coverage}


def prdc(real: torch.Tensor, fake: torch.Tensor, *, k: int = 5, k_pr: int = 3, seed: int = 0, n_boot: int = 100,
         chunk: int | None = None, alpha: float = 0.05) -> dict[str, Result]:
    """All four metrics at once (one distance pass; one more per half-sample of the interval);
    ``k_pr`` neighbours for precision/recall (Kynkäänniemi et al.: 3), ``k`` for density/coverage
    (Naeem et al.: 5)."""
    per = prdc_per_sample(real, fake, k, chunk, k_pr)
    reps: dict[str, list[float]] = {n: [] for n in per}
    if min(len(real), len(fake)) // 2 > max(k, k_pr) and n_boot >= 2:  # halves need more points than k
        for i, j in half_samples((len(real), len(fake)), seed, n_boot):
            for n, v in prdc_per_sample(real[i], fake[j], k, chunk, k_pr).items():
                reps[n].append(float(v.mean()))
    out = {}
    for name, v in per.items():
        value = float(v.mean())
        lo, hi = t_interval(value, np.asarray(reps[name]), alpha) if reps[name] else (float("nan"),) * 2
        lo, hi = max(lo, 0.0), (hi if name == "density" else min(hi, 1.0))  # the metrics' ranges (nan stays nan)
        kk = k_pr if name in ("precision", "recall") else k
        out[name] = Result(value, lo, hi, len(fake), "higher", {"per_sample": v.numpy(), "k": kk}, name)
    return out


def _make(name: str):
    pr = name in ("precision", "recall")

    def metric(real: torch.Tensor, fake: torch.Tensor, *, seed: int = 0, k: int | None = None, n_boot: int = 100,
               chunk: int | None = None, alpha: float = 0.05) -> Result:
        kw = {"k_pr": k or 3} if pr else {"k": k or 5}
        return prdc(real, fake, seed=seed, n_boot=n_boot, chunk=chunk, alpha=alpha, **kw)[name]

    metric.__name__ = name
    metric.__doc__ = f"{name.capitalize()} of the fake features w.r.t. the real ones (k-NN balls, k = " \
                     f"{3 if pr else 5} by default). Higher is better.\n\nSee the module docstring of " \
                     f"``ganreport.metrics.prdc`` for the formula."
    return register(name, "higher")(metric)


precision = _make("precision")
recall = _make("recall")
density = _make("density")
coverage = _make("coverage")
