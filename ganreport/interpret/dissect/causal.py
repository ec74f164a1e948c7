"""Step 2 of GAN Dissection (Bau et al. 2019, §2.2): average causal effect of interventions.

At positions ``P`` of layer ``l`` and for a unit set ``U`` with coefficients ``α_u ∈ [0, 1]`` (1 for
hard interventions): ``r'_{u,P} = (1 − α_u) r_{u,P} + α_u k_u`` — ablation ``k_u = 0``, insertion
``k_u`` = a high per-unit value (default: the unit's mean activation where it is above its
threshold, ``E[r_u | r_u ≥ t_u]``, close to the paper's choice of the unit's typical value inside
the concept; a fixed quantile such as the 99th percentile is 0 for units that fire on fewer than
1 % of positions). The effect is measured on the concept's pixel share ``s̄_c(x)`` in the
segmentation of the output:

    ablation  ACE = E_z[ s̄_c(G(z)) ] − E_z[ s̄_c(G_{U:=0}(z)) ]        (concept removed, > 0)
    insertion ACE = E_z[ s̄_c(G_{U:=k}(z)) ] − E_z[ s̄_c(G(z)) ]        (concept created, > 0)

compared with ``k`` random units of the same layer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ...errors import ConfigError
from .hooks import _device, _layer_units, check_layers, concept_index, intervene, latents, unit_alpha
from .iou import LayerDissection

MODES = ("ablate", "insert")


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


__all__ = ["MODES", "concept_share", "Effect", "causal_effect", "ace_vs_k"]
