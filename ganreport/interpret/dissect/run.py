"""Orchestration: :func:`run_dissection` runs every step for each trained generator of a profile,
records rows in ``runs/<profile>/metrics.jsonl`` (``section='dissection'``) and writes tables and
figures to ``runs/<profile>/qualitative/dissection/``.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ...errors import CheckpointError, ConfigError
from .alpha import compare_alpha_iou, optimal_unit_set
from .causal import _check_mode, ace_vs_k
from .cheap import cheap_route, route_agreement
from .context import DOOR_CONTEXTS, TREE_CONTEXTS, context_test, veto_table
from .hooks import check_layers, concept_index
from .iou import LayerDissection, dissect, layer_summary, most_disentangled
from .plots import (
    plot_ace_vs_k, plot_context, plot_iou_histograms, plot_layer_comparison, plot_unit_examples, units_to_show,
)

SECTION = "dissection"


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
    from ... import config

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
                   segmenter: Any = None, train_segmenter: bool = True,
                   intervention_layer: str | Mapping[str, str] | None = None, seed: int = 0, record: bool = True,
                   figures: bool = True, skip_missing: bool = True, progress: bool = True,
                   root: Path | None = None) -> DissectionReport:
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
    once and cached; with ``train_segmenter=False``, as notebook 03 calls it, a segmenter that
    notebook 01 has not cached is a :class:`CheckpointError`).
    """
    import pandas as pd

    from ... import config, results
    from ...models.segmenter import SegmenterConfig, load_segmenter
    from ...train import load_generator

    if dataset != "shapes":
        raise ConfigError(f"dissection needs concept masks: dataset must be 'shapes', got {dataset!r}")
    for m in modes:
        _check_mode(m)
    if isinstance(segmenter, nn.Module):
        seg = segmenter
    else:
        cfg = segmenter if isinstance(segmenter, SegmenterConfig) else SegmenterConfig(**(segmenter or {}))
        seg = load_segmenter(cfg, train_if_missing=train_segmenter, progress=progress)
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

        from ...viz import savefig

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


__all__ = ["SECTION", "DissectionReport", "dissection_dir", "cheap_summary", "run_dissection"]
