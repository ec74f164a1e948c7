"""Cross-architecture comparison (notebook 04): reads only ``runs/<profile>/metrics.jsonl``.

Tables (value with CI per architecture x metric, ranks, winners), agreement between metrics
(rank correlation across architectures and checkpoints), quantitative-vs-qualitative plots and
a findings text whose every number is formatted from the rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from . import results
from .results import DIRECTION_TEXT
from .stats import DIRECTED, final_rows, metric_label, oriented, ranked, ranking_agreement

REAL_MODELS = ("real_train", "real_test", "real")


def load(profile: str, models: Sequence[str] | None = None) -> pd.DataFrame:
    """Rows of ``profile`` (generated models only when ``models`` is given), newest step per key."""
    df = results.load(profile)
    if df.empty:
        return df
    if models is not None:
        df = df[df["model"].isin(list(models))]
    return df.reset_index(drop=True)


def summary_table(df: pd.DataFrame, sections: Sequence[str] | None = None) -> pd.DataFrame:
    """Architecture x metric table of ``value [ci_low, ci_high]`` strings; a first row gives the direction."""
    d = final_rows(df)
    if sections is not None:
        d = d[d["section"].isin(list(sections))]
    if d.empty:
        return pd.DataFrame()
    d = d.assign(label=[metric_label(m, f) for m, f in zip(d["metric"], d["feature"])])
    cells = {}
    directions = {}
    for _, r in d.iterrows():
        cells.setdefault(r["label"], {})[r["model"]] = _fmt_ci(r["value"], r["ci_low"], r["ci_high"])
        directions[r["label"]] = {k: v for k, v in DIRECTION_TEXT.items() if k != "none"}.get(r["direction"], "")
    table = pd.DataFrame(cells)
    table.loc["direction"] = pd.Series(directions)
    order = ["direction"] + [m for m in table.index if m != "direction"]
    return table.loc[order]


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    v = float(v)
    if v == 0:
        return "0"
    mag = abs(v)
    if mag >= 1000 or mag < 1e-3:
        return f"{v:.3g}"
    return f"{v:.4g}" if mag < 1 else f"{v:.4g}"


def _fmt_ci(v, lo, hi) -> str:
    s = _fmt(v)
    if lo is not None and hi is not None and not (isinstance(lo, float) and math.isnan(lo)):
        s += f" [{_fmt(lo)}, {_fmt(hi)}]"
    return s


def oriented_scores(df: pd.DataFrame, models: Sequence[str]) -> pd.DataFrame:
    """Points (model, step) x directed metric, signed so that larger is better for every metric."""
    d = df[df["model"].isin(list(models)) & df["direction"].isin(list(DIRECTED)) & df["value"].notna()].copy()
    if d.empty:
        return pd.DataFrame()
    d["label"] = [metric_label(m, f) for m, f in zip(d["metric"], d["feature"])]
    d["score"] = oriented(d, df)
    d = d[d["score"].notna()]
    d["point"] = [f"{m}@{s}" if s is not None and not (isinstance(s, float) and math.isnan(s)) else m
                  for m, s in zip(d["model"], d["step"])]
    return d.pivot_table(index="point", columns="label", values="score", aggfunc="mean")


def metric_agreement(df: pd.DataFrame, models: Sequence[str], method: str = "spearman",
                     min_points: int = 3) -> pd.DataFrame:
    """Rank correlation between metrics over all (model, checkpoint) points where both exist.

    Every metric is oriented so that larger = better first, so +1 means two metrics order the
    architectures identically and −1 means they order them in reverse.
    """
    if method not in ("spearman", "kendall"):
        raise ValueError(f"method must be 'spearman' or 'kendall', got {method!r}")
    scores = oriented_scores(df, models)
    if scores.empty:
        return scores
    scores = scores.loc[:, scores.notna().sum() >= min_points]
    cols = list(scores.columns)
    mat = pd.DataFrame(np.nan, index=cols, columns=cols)
    fn = stats.spearmanr if method == "spearman" else stats.kendalltau
    for i, a in enumerate(cols):
        if scores[a].nunique() > 1:
            mat.loc[a, a] = 1.0
        for b in cols[i + 1:]:
            pair = scores[[a, b]].dropna()
            if len(pair) >= min_points and pair[a].nunique() > 1 and pair[b].nunique() > 1:
                r = fn(pair[a], pair[b])[0]
                mat.loc[a, b] = mat.loc[b, a] = r
    return mat


def plot_agreement(mat: pd.DataFrame, title: str = "Agreement between metric rankings"):
    import matplotlib.pyplot as plt

    n = len(mat)
    fig, ax = plt.subplots(figsize=(max(4, 0.45 * n + 2), max(3.5, 0.45 * n + 1.5)))
    im = ax.imshow(mat.to_numpy(dtype=float), vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_xticks(range(n), mat.columns, rotation=70, ha="right", fontsize=7)
    ax.set_yticks(range(n), mat.index, fontsize=7)
    fig.colorbar(im, ax=ax, label="rank correlation (+1 = same ordering)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_metric_bars(df: pd.DataFrame, models: Sequence[str], metrics: Sequence[str] | None = None, ncols: int = 4):
    """One panel per metric: value per architecture with its CI as an error bar."""
    import matplotlib.pyplot as plt

    d = final_rows(df)
    d = d[d["model"].isin(list(models)) & d["value"].notna()]
    if metrics is not None:
        d = d[d["metric"].isin(list(metrics))]
    labels = sorted({metric_label(m, f) for m, f in zip(d["metric"], d["feature"])})
    if not labels:
        fig, ax = plt.subplots(figsize=(4, 2))
        ax.text(0.5, 0.5, "no results", ha="center")
        ax.set_axis_off()
        return fig
    nrows = math.ceil(len(labels) / ncols)
    fig, axes = plt.subplots(nrows, min(ncols, len(labels)), figsize=(3.2 * min(ncols, len(labels)), 2.6 * nrows),
                             squeeze=False)
    colours = {m: f"C{i}" for i, m in enumerate(models)}
    for ax, label in zip(axes.flat, labels):
        g = d[[metric_label(m, f) == label for m, f in zip(d["metric"], d["feature"])]]
        g = g.set_index("model").reindex([m for m in models if m in set(g["model"])])
        v = g["value"].astype(float).to_numpy()
        lo = g["ci_low"].astype(float).to_numpy()
        hi = g["ci_high"].astype(float).to_numpy()
        err = np.vstack([np.nan_to_num(v - lo), np.nan_to_num(hi - v)]).clip(min=0)
        ax.bar(range(len(g)), v, yerr=err, capsize=3, color=[colours[m] for m in g.index])
        ax.set_xticks(range(len(g)), g.index, rotation=20, fontsize=8)
        arrow = {"lower": " ↓", "higher": " ↑", "target": " ↕"}.get(str(g["direction"].iloc[0]), "")
        ax.set_title(label + arrow, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(labels):]:
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def plot_quant_vs_qual(df: pd.DataFrame, models: Sequence[str], quant: Sequence[str], qual: Sequence[str]):
    """Scatter grid: each quantitative metric (rows) against each qualitative measure (columns),
    one point per architecture, labelled; the Spearman ρ over architectures in each panel title."""
    import matplotlib.pyplot as plt

    d = final_rows(df)
    d = d[d["model"].isin(list(models)) & d["value"].notna()]
    val = d.groupby(["model", "metric"])["value"].mean().unstack()
    quant = [q for q in quant if q in val.columns]
    qual = [q for q in qual if q in val.columns]
    if not quant or not qual:
        fig, ax = plt.subplots(figsize=(5, 1.5))
        ax.text(0.5, 0.5, "no qualitative/quantitative pairs recorded yet", ha="center", va="center")
        ax.set_axis_off()
        return fig
    fig, axes = plt.subplots(len(quant), len(qual), figsize=(2.9 * len(qual), 2.5 * len(quant)), squeeze=False)
    for i, q in enumerate(quant):
        for j, c in enumerate(qual):
            ax = axes[i][j]
            pair = val[[c, q]].dropna()
            for k, (m, r) in enumerate(pair.iterrows()):
                ax.scatter(r[c], r[q], color=f"C{list(models).index(m)}")
                ax.annotate(m, (r[c], r[q]), fontsize=7, xytext=(3, 3), textcoords="offset points")
            rho = stats.spearmanr(pair[c], pair[q])[0] if len(pair) >= 3 else float("nan")
            ax.set_title(f"ρ = {rho:.2f}" if math.isfinite(rho) else "ρ: < 3 points", fontsize=8)
            ax.set_xlabel(c, fontsize=8)
            ax.set_ylabel(q, fontsize=8)
            ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def findings(df: pd.DataFrame, models: Sequence[str], quant: Sequence[str], qual: Sequence[str]) -> str:
    """Markdown findings; every number in it is read from ``df``."""
    lines = []
    d = final_rows(df)
    r = ranked(df, models)
    if r.empty:
        return "_No results recorded yet: run notebooks 01–03 first._"
    groups = set(quant) | set(qual)
    r = r[[i.split(" (")[0] in groups for i in r.index]]  # the named metrics, not every per-k dissection row
    if r.empty:
        return "_None of the compared metrics has been recorded yet._"
    wins = r["winner"].str.split(" = ").explode().value_counts()
    lines.append(f"- Over {len(r)} directed metrics (sample quality and interpretability), the most frequent winner is **{wins.index[0]}** "
                 f"({int(wins.iloc[0])} of {len(r)})" + "".join(f"; {m}: {int(c)}" for m, c in wins.iloc[1:].items()) + ".")
    for metric in ("fid", "kid", "ddm", "c2st_1nn", "precision", "recall"):
        g = d[(d["metric"] == metric) & d["model"].isin(list(models)) & d["value"].notna()]
        if g.empty:
            continue
        feat = g["feature"].mode().iloc[0] if g["feature"].notna().any() else None
        if feat is not None:
            g = g[g["feature"] == feat]
        best = g.loc[g["value"].idxmin() if g["direction"].iloc[0] == "lower" else g["value"].idxmax()]
        base = d[(d["metric"] == metric) & d["model"].isin(REAL_MODELS) & d["value"].notna()]
        if feat is not None:
            base = base[base["feature"] == feat]
        txt = (f"- **{metric}**{f' ({feat})' if feat else ''}: best {best['model']} = "
               f"{_fmt_ci(best['value'], best['ci_low'], best['ci_high'])}; "
               + ", ".join(f"{r2['model']} = {_fmt(r2['value'])}" for _, r2 in g.iterrows() if r2["model"] != best["model"]))
        if not base.empty:
            txt += "; real-data baseline " + ", ".join(f"{b['model']} = {_fmt(b['value'])}" for _, b in base.iterrows())
        lines.append(txt + ".")
    agree = ranking_agreement(df, models, quant, qual)
    if agree["quant_rank"] and agree["qual_rank"]:
        rho = agree["rho"]
        lines.append(
            "- Mean rank over quantitative metrics: " + ", ".join(f"{m} {v:.2f}" for m, v in sorted(agree["quant_rank"].items(), key=lambda t: t[1]))
            + "; over interpretability measures: " + ", ".join(f"{m} {v:.2f}" for m, v in sorted(agree["qual_rank"].items(), key=lambda t: t[1]))
            + (f". Spearman ρ between the two orderings = {rho:.2f} over {len(agree['quant_rank'])} architectures"
               + (" — they agree." if rho > 0.5 else " — they disagree." if rho < -0.5 else " — no clear relation.")
               if math.isfinite(rho) else ". Too few architectures for a rank correlation."))
    return "\n".join(lines)


# Headline metrics of the front-page table (the compared groups are stats.QUANT_METRICS / QUAL_METRICS).
QUANT_HEADLINE = ("fid", "ddm", "c2st_1nn", "memorization")
QUAL_HEADLINE = ("attr_concentration_fake", "attr_deletion_auc_ratio", "ppl_z_slerp", "dissect_interpretable_fraction")
