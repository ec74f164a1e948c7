"""Figures of GAN Dissection: IoU histograms, top-activating unit examples, ACE vs k, the context
test and the per-layer comparison; :func:`units_to_show` picks the units to visualise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .hooks import _device, latents, record_layers
from .iou import LayerDissection


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

    from ...viz import to_numpy_images

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


__all__ = ["units_to_show", "plot_iou_histograms", "plot_unit_examples", "plot_ace_vs_k", "plot_context", "plot_layer_comparison"]
