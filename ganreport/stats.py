"""Statistics of result rows that the studies' verdicts and the comparison (notebook 04) share.

:mod:`ganreport.compare` sits above the studies in the layer order (``../shared/DESIGN.md``), so
what both need lives here, below them: the newest row per key (:func:`final_rows`), the rank of
each model per directed metric (:func:`ranked`), the mean-rank agreement between the quantitative
metrics and the interpretability measures (:func:`ranking_agreement`) and the metric groups it is
computed over (:data:`QUANT_METRICS`, :data:`QUAL_METRICS`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

# Metric groups for the comparison (names as recorded by notebooks 02 and 03).
QUANT_METRICS = ("fid", "kid", "is", "precision", "recall", "density", "coverage", "mmd", "mmd_poly", "c2st_1nn",
                 "c2st_net", "ddm", "ddm_train", "sharpness", "noise", "ssim_nn", "memorization")
QUAL_METRICS = ("attr_concentration_fake", "attr_concentration_real", "attr_deletion_auc_ratio",
                "attr_insertion_auc_ratio", "attr_sanity_ssim", "attr_sanity_spearman", "ppl_z_lerp", "ppl_z_slerp",
                "ppl_w_lerp", "dissect_interpretable_fraction", "dissect_mean_best_iou")


def final_rows(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, metric, feature, section): the largest step (or the row without a step)."""
    if df.empty:
        return df
    d = df.copy()
    d["_step"] = pd.to_numeric(d["step"], errors="coerce").fillna(-1)
    d = d.sort_values("_step").groupby(["model", "metric", "feature", "section"], dropna=False, as_index=False).last()
    return d.drop(columns="_step")


def metric_label(metric: str, feature: str | None) -> str:
    return f"{metric} ({feature})" if feature else metric


#: The real baseline whose value is the target of a two-sided (``direction="target"``) metric.
TARGET_MODEL = "real_test"
DIRECTED = ("lower", "higher", "target")


def oriented(d: pd.DataFrame, rows: pd.DataFrame) -> pd.Series:
    """Scores of the rows ``d`` signed so that larger is better: ``value`` (higher), ``−value``
    (lower), ``−|value − target|`` (target, with the target the :data:`TARGET_MODEL` value of the
    same metric, feature and section in ``rows``; NaN when there is none)."""
    base = final_rows(rows[rows["model"] == TARGET_MODEL]) if len(rows) else rows
    tgt = {(m, f, s): v for m, f, s, v in zip(base.get("metric", []), base.get("feature", []),
                                               base.get("section", []), base.get("value", []))}
    v = d["value"].astype(float)
    t = pd.Series([tgt.get((m, f, s), np.nan) for m, f, s in zip(d["metric"], d["feature"], d["section"])],
                  index=d.index, dtype=float)
    return pd.Series(np.where(d["direction"] == "lower", -v, np.where(d["direction"] == "higher", v, -(v - t).abs())),
                     index=d.index)


def ranked(df: pd.DataFrame, models: Sequence[str]) -> pd.DataFrame:
    """Rank of each model per directed metric (1 = best; ties share the mean rank), plus the winner.
    Two-sided metrics rank by the distance to the real-vs-real value (:func:`oriented`)."""
    d = final_rows(df)
    d = d[d["model"].isin(list(models)) & d["direction"].isin(list(DIRECTED)) & d["value"].notna()].copy()
    d["_score"] = oriented(d, df) if len(d) else []
    d = d[d["_score"].notna()]
    out = {}
    winners = {}
    for (metric, feature, section), g in d.groupby(["metric", "feature", "section"], dropna=False):
        if g["model"].nunique() < 2:
            continue
        score = g.set_index("model")["_score"].astype(float)
        label = metric_label(metric, feature)
        ranks = score.rank(ascending=False, method="average")
        out[label] = ranks
        best = ranks[ranks == ranks.min()].index.tolist()
        winners[label] = " = ".join(best)
    table = pd.DataFrame(out).T
    if table.empty:
        return table
    table["winner"] = pd.Series(winners)
    return table


def ranking_agreement(df: pd.DataFrame, models: Sequence[str], quant: Sequence[str], qual: Sequence[str]) -> dict:
    """Mean rank of each architecture over the quantitative and over the qualitative metrics, and the
    Spearman ρ between the two orderings (the seed study's question)."""
    r = ranked(df, models)
    if r.empty:
        return {"quant_rank": {}, "qual_rank": {}, "rho": float("nan")}
    r = r.drop(columns="winner")
    base = [i.split(" (")[0] for i in r.index]
    q_rows = r[[b in quant for b in base]]
    l_rows = r[[b in qual for b in base]]
    q_mean, l_mean = q_rows.mean(), l_rows.mean()
    common = [m for m in models if m in q_mean.dropna().index and m in l_mean.dropna().index]
    rho = stats.spearmanr(q_mean[common], l_mean[common])[0] if len(common) >= 3 else float("nan")
    return {"quant_rank": q_mean.dropna().to_dict(), "qual_rank": l_mean.dropna().to_dict(), "rho": float(rho),
            "n_quant": len(q_rows), "n_qual": len(l_rows)}
