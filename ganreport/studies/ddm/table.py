"""The DDM table of the ModNet thesis (seed 004, Table 3.1), read from what notebook 02 wrote.

DDM (eq. 3.4) of each architecture and of the real training set (the lower bound), IS and FID
beside it, and the missing-modes curve (§3.4.5: IS saturates, DDM keeps improving):
:func:`ddm_table`, :func:`missing_modes_curve`, :func:`plot_ddm`, :func:`verdict_ddm`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ... import config, results
from ...metrics.validate import saturation
from ...stats import final_rows
from ..verdict_text import AGREE, DISAGREE, INCONCLUSIVE, _fmt, _rho


ROLES = {"real_train": "training set (lower bound)", "real_test": "held-out test set"}


def ddm_table(profile: str, models: Sequence[str] | None = None, root: Path | None = None) -> pd.DataFrame:
    """Table 3.1 of the ModNet thesis for this study: DDM (eq. 3.4, lower = better, with its 95 %
    interval) of each architecture and of the real training and test sets, with IS and FID beside it
    and the rank of each. Read from ``metrics.jsonl`` (notebook 02, ``section='quantitative'``).

    Index: model; columns ``role, ddm, ddm_ci_low, ddm_ci_high, is, fid, n, rank_ddm, rank_is,
    rank_fid`` (ranks over all rows, 1 = best). The thesis' raw values are negative (a constant
    dropped), so only orderings compare. DDM grows as ``|G|`` shrinks; ``n`` shows each row's sample size.
    """
    df = results.load(profile, root)
    if df.empty:
        return pd.DataFrame(columns=["role", "ddm", "ddm_ci_low", "ddm_ci_high", "is", "fid", "n"])
    d = final_rows(df[df["section"] == "quantitative"])
    d = d[d["metric"].isin(["ddm", "is", "fid"]) & d["value"].notna()]
    keep = list(models) + list(ROLES) if models is not None else None
    if keep is not None:
        d = d[d["model"].isin(keep)]
    val = d.pivot_table(index="model", columns="metric", values="value", aggfunc="last")
    ddm = d[d["metric"] == "ddm"].set_index("model")
    out = pd.DataFrame(index=val.index)
    out["role"] = [ROLES.get(m, "architecture") for m in out.index]
    out["ddm"] = val.get("ddm")
    out["ddm_ci_low"] = ddm["ci_low"].astype(float).reindex(out.index)
    out["ddm_ci_high"] = ddm["ci_high"].astype(float).reindex(out.index)
    out["is"] = val.get("is")
    out["fid"] = val.get("fid")
    out["n"] = ddm["n"].reindex(out.index)
    for m, asc in (("ddm", True), ("is", False), ("fid", True)):
        if m in out and out[m].notna().any():
            out[f"rank_{m}"] = out[m].rank(ascending=asc, method="min")
    return out.sort_values("ddm")


def missing_modes_curve(profile: str, metrics: Sequence[str] = ("is", "ddm", "fid"), root: Path | None = None) -> pd.DataFrame:
    """The missing-modes validation of notebook 02 (``02_validation_missing_modes.csv``): the rows of
    ``metrics`` for sets of ``n`` distinct real images replicated to a fixed size (thesis §3.4.5)."""
    path = config.run_dir(profile, root) / "02_validation_missing_modes.csv"
    if not path.is_file():
        return pd.DataFrame(columns=["experiment", "k", "metric", "value", "ci_low", "ci_high"])
    df = pd.read_csv(path)
    return df[df["metric"].isin(list(metrics))].reset_index(drop=True)


def plot_ddm(table: pd.DataFrame, modes: pd.DataFrame | None = None):
    """Left: DDM per model with its 95 % interval (training set in grey: the lower bound). Right:
    IS and DDM of sets of n distinct real images (log n): IS saturates, DDM should not."""
    import matplotlib.pyplot as plt

    has_modes = modes is not None and not modes.empty
    fig, axes = plt.subplots(1, 3 if has_modes else 1, figsize=(13 if has_modes else 5, 3.6), squeeze=False)
    ax = axes[0][0]
    if table.empty or "ddm" not in table:
        ax.text(0.5, 0.5, "no DDM rows recorded (run notebook 02)", ha="center", va="center")
        ax.set_axis_off()
    else:
        t = table.dropna(subset=["ddm"])
        v = t["ddm"].to_numpy(float)
        err = np.vstack([np.nan_to_num(v - t["ddm_ci_low"].to_numpy(float)), np.nan_to_num(t["ddm_ci_high"].to_numpy(float) - v)])
        cols = ["0.6" if r != "architecture" else f"C{i}" for i, r in enumerate(t["role"])]
        ax.bar(range(len(t)), v, yerr=err.clip(min=0), color=cols, capsize=3)
        ax.set_xticks(range(len(t)), [f"{m}\n(n={int(n)})" if pd.notna(n) else m for m, n in zip(t.index, t["n"])],
                      fontsize=7, rotation=20)
        ax.set_ylabel("DDM (nats, lower is better)", fontsize=8)
        ax.set_title("DDM per model (grey: real data)", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    if has_modes:
        dist = modes[modes["experiment"] == "distinct"]
        for ax, m in zip(axes[0][1:], ("is", "ddm")):
            g = dist[dist["metric"] == m].sort_values("k")
            if g.empty:
                ax.set_axis_off()
                continue
            lo = (g["value"] - g["ci_low"]).clip(lower=0).fillna(0)
            hi = (g["ci_high"] - g["value"]).clip(lower=0).fillna(0)
            ax.errorbar(g["k"], g["value"], yerr=[lo, hi], marker="o", ms=3, capsize=2, label=m.upper())
            sat = saturation(modes, m)
            if sat is not None:
                ax.axvline(sat["saturates_at"], color="grey", ls="--", lw=0.8, label=f"within 2 % of final from n={sat['saturates_at']}")
            ax.set_xscale("log")
            ax.set_xlabel("distinct real images n (replicated to a fixed set size; log scale)", fontsize=8)
            ax.set_ylabel({"is": "Inception Score (↑, effective classes)", "ddm": "DDM (↓, nats)"}[m], fontsize=8)
            ax.set_title(f"missing modes: {m.upper()} vs n", fontsize=9)
            ax.legend(fontsize=7, frameon=False)
            ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def verdict_ddm(table: pd.DataFrame, modes: pd.DataFrame | None = None, tol: float = 0.02) -> str:
    """Does DDM behave as the ModNet thesis reports: the training set scores lowest (Table 3.1), and
    DDM keeps improving with more distinct images where IS saturates (§3.4.5)?"""
    finding = "(ModNet thesis: the training set bounds DDM from below and DDM, unlike IS, keeps penalising missing modes)"
    if table.empty or "ddm" not in table or table["ddm"].notna().sum() < 2:
        return f"{INCONCLUSIVE} {finding}: fewer than two DDM values are recorded (run notebook 02)."
    t = table.dropna(subset=["ddm"])
    lowest = t.index[0]
    arch = t[t["role"] == "architecture"]
    parts = [f"the lowest DDM is {lowest} ({_fmt(t['ddm'].iloc[0])}; architectures "
             + ", ".join(f"{m} {_fmt(v)}" for m, v in arch["ddm"].items()) + ")"]
    train_low = lowest == "real_train"
    if len(arch) >= 3 and arch["fid"].notna().all():
        r = float(stats.spearmanr(arch["ddm"], arch["fid"]).statistic)
        parts.append(f"DDM and FID order the {len(arch)} architectures with Spearman ρ = {_rho(r)}")
    modes_ok = None
    if modes is not None and not modes.empty:
        si, sd = saturation(modes, "is", tol=tol), saturation(modes, "ddm", tol=tol)
        if si is not None and sd is not None:
            d = modes[(modes["experiment"] == "distinct") & (modes["metric"] == "ddm")].sort_values("k")
            last = d["value"].to_numpy(float)
            step = (last[-2] - last[-1]) / abs(last[-1]) if len(last) > 1 and last[-1] else float("nan")
            nmax = int(d["k"].max())
            parts.append(f"with n distinct images IS is within {tol:.0%} of its final value from n = {si['saturates_at']} "
                         f"while DDM {'improves' if step > 0 else 'changes'} by {_fmt(100 * step, 2)} % between the two largest n "
                         f"(up to n = {nmax})")
            is_sat, ddm_moves = si["saturates_at"] < nmax, bool(sd["still_moving"] and step > 0)
            modes_ok = True if (is_sat and ddm_moves) else False if not ddm_moves else None
            if modes_ok is None:
                parts.append(f"IS has not saturated by n = {nmax} either, so the contrast needs larger sets")
    what = "; ".join(parts)
    if train_low and modes_ok is True:
        return f"{AGREE} {finding}: {what}."
    if not train_low or modes_ok is False:
        why = [] if train_low else ["the training set is not the lowest"]
        if modes_ok is False:
            why.append("DDM saturates like IS")
        return f"{DISAGREE} {finding}: {what} — {' and '.join(why)}."
    return f"{INCONCLUSIVE} {finding}: {what}."


# ============================================================================ 5 · quantitative vs qualitative
