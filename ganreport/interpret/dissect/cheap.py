"""Step 5: the cheaper route of the review (research 003).

Dissect only the last layer, then attribute the concept to earlier units by gradient × activation,
``A(u, c) = E_z Σ_{h,w} r_u ∂S_c/∂r_u``, with ``S_c`` the soft pixel share of ``c``
(``target="share"``) or the IoU-weighted activation of the last layer's units for ``c``
(``target="last_layer"``); compare with full dissection by Spearman rank correlation and top-k
overlap.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from tqdm import tqdm

from ...errors import ConfigError
from .alpha import spearman, topk_overlap
from .hooks import (
    _concepts_of, _device, check_layers, concept_index, last_hidden_layer, latents, layer_units, record_layers,
)
from .iou import LayerDissection, dissect


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


__all__ = ["attribute_units", "CheapRoute", "cheap_route", "route_agreement"]
