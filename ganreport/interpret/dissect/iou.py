"""Step 1 of GAN Dissection (Bau et al. 2019, ICLR, §2; thresholds as in Bau et al. 2017 "Network
Dissection", §2.2): unit × concept IoU with bounded memory.

For unit ``u`` of layer ``l`` with activation map ``r_u(z)`` (``h × w``), the threshold ``t_u`` is
the unit's top quantile over every spatial position of every sample, ``P(r_u > t_u) = q`` (default
``q = 1 %``). The map is upsampled bilinearly to the image size, ``r↑_u``, and thresholded,
``M_u = [r↑_u ≥ t_u]``. With the segmentation ``s_c`` of concept ``c`` in the generated image
``G(z)``, the dataset-level intersection over union is

    IoU(u, c) = Σ_z |M_u(z) ∧ s_c(z)| / Σ_z |M_u(z) ∨ s_c(z)|.

A unit is *interpretable* when ``max_c IoU(u, c) > 0.05``. Two passes over the same seeded
latents: pass 1 feeds every activation to a streaming quantile sketch (:class:`QuantileSketch`,
fixed memory), pass 2 accumulates the intersections and areas. Memory is O(units × bins +
units × concepts), independent of the number of samples — the original GANDissect tool stored
activations and ran out of memory (research 002, §4.2).
(Units whose threshold equals their minimum, e.g. ReLU units that are 0 on > 99 % of positions,
use ``r↑_u > t_u`` instead, so "always off" never becomes "covers the whole image".)
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ...errors import ConfigError
from .hooks import _concepts_of, _device, _labels, check_layers, latents, record_layers
from .sketch import QuantileSketch


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


__all__ = ["LayerDissection", "dissect", "layer_summary", "most_disentangled", "default_layer"]
