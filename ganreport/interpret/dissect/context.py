"""Step 4 of GAN Dissection (Bau et al. 2019, §4.3, "doors in the sky"): the context test.

Insert a concept's units in one cell of the layer where the unedited image shows context A (e.g. a
house) or B (the sky) and count how often the concept appears there (Wilson 95 % intervals); the
veto strength compares the two rates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError
from .hooks import _concepts_of, _device, _labels, concept_index, intervene, latents, unit_alpha
from .iou import LayerDissection

# contexts of the context test: name -> {concept: minimum pixel fraction of the cell}
DOOR_CONTEXTS: dict[str, dict[str, float]] = {"on house": {"house": 0.5}, "in sky": {"sky": 0.9}}
TREE_CONTEXTS: dict[str, dict[str, float]] = {"on horizon": {"sky": 0.25, "ground": 0.25}, "in sky": {"sky": 0.9}}


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


__all__ = ["DOOR_CONTEXTS", "TREE_CONTEXTS", "context_test", "wilson", "veto_table"]
