"""Step 3 of GAN Dissection (Bau et al. 2019, §2.2, eq. 4): the optimal causal unit set.

Learn ``α ∈ [0, 1]^d`` minimising ``∓ E_z[ŝ_c(G_α(z))] + λ ‖α‖²`` (insertion: −, ablation: +)
where ``ŝ_c`` is the differentiable soft pixel share (mean softmax probability of ``c``); projected
Adam. Units are ranked by α and compared with the IoU ranking (top-k overlap, Spearman).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ...errors import ConfigError
from .causal import _check_mode, concept_share
from .hooks import _device, concept_index, intervene
from .iou import LayerDissection


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


__all__ = ["AlphaResult", "optimal_unit_set", "topk_overlap", "spearman", "compare_alpha_iou"]
