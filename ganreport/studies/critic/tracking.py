"""Metrics over training (Liaudanskas 2018, seed 001, "Approaches to understanding GANs"): FID, KID,
IS, DDM and the critic statistics recorded by :class:`~ganreport.train.tracking.MetricTracker`
during WGAN-GP training; how well each curve follows the FID of a large held-out sample (Spearman ρ
over the tracked steps) and the visual-quality proxies. Published: "FID and KID are the most
suitable metrics for tracking the convergence ... metrics based on the activations of the critic
are shown to be uninformative"; "the equilibrium for the critic's decisions was found to be at an
offset from zero, especially for smaller architectures".

:func:`tracking_frame` reads what the tracker wrote, :func:`tracking_correlations` and
:func:`critic_offset_summary` summarise it, :func:`plot_tracking` draws it and
:func:`verdict_tracking` / :func:`verdict_offset` compare it with the published finding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from scipy import stats

from ... import config
from ...errors import DataError
from ...settings import Profile
from ...train.tracking import CRITIC_KEYS, DIRECTIONS, PROXY_KEYS, UNITS, read_tracking
from ..verdict_text import AGREE, DISAGREE, INCONCLUSIVE, TRACK_RHO, WEAK_RHO, _fmt, _rho

def tracking_frame(prof: Profile, model: str = "wgan_gp", dataset: str | None = None,
                   model_dir: str | Path | None = None, root: Path | None = None) -> pd.DataFrame:
    """What the tracker wrote during training of ``model`` (``read_tracking`` of its model folder)."""
    if model_dir is None:
        model_dir = config.model_dir(prof.profile, model, dataset or prof.dataset, root)
    return read_tracking(model_dir)


def _quality_sign(metric: str) -> float:
    d = DIRECTIONS.get(metric, "none")
    return {"lower": -1.0, "higher": 1.0}.get(d, float("nan"))


def tracking_correlations(df: pd.DataFrame, reference: str = "fid_ref", proxies: Sequence[str] = PROXY_KEYS,
                          min_points: int = 3) -> pd.DataFrame:
    """How well each tracked curve follows the reference curve (and the visual-quality proxies).

    For every tracked column ``m`` (all but ``step``, ``tracker_s`` and the reference), over the steps
    where both exist:

    - ``rho``, ``p``: Spearman's rank correlation of ``m`` with the reference and its two-sided
      p-value (``scipy.stats.spearmanr``);
    - ``rho_oriented``: ``rho`` signed so that +1 means "``m`` says quality improved exactly when
      the reference says so" (``rho · q(m) · q(ref)`` with ``q = −1`` for lower-is-better, +1 for
      higher-is-better; NaN for descriptive quantities such as ``critic_offset``);
    - ``rho_diff``: Spearman ρ of the step-to-step changes (first differences) — a stricter test
      than the levels, which any two curves with a common trend pass;
    - ``rho_<proxy>`` for each proxy (``confidence``, ``sharpness_gap``): ρ with that proxy.

    ``reference`` falls back to ``fid`` when the frame has no ``fid_ref`` column. The reference
    used is in ``df.attrs["reference"]``. Index: metric name.
    """
    if reference not in df.columns or df[reference].notna().sum() < min_points:
        reference = "fid"
    if reference not in df.columns:
        raise DataError(f"tracking frame has no {reference!r} column; columns: {', '.join(map(str, df.columns))}")
    d = df.sort_values("step") if "step" in df.columns else df
    skip = {"step", "tracker_s", reference}
    rows = []
    for m in d.columns:
        if m in skip or m.endswith(("_ci_low", "_ci_high")) or not pd.api.types.is_numeric_dtype(d[m]):
            continue
        pair = d[[m, reference]].dropna()
        row: dict[str, Any] = {"metric": m, "direction": DIRECTIONS.get(m, "none"), "n": len(pair)}
        if len(pair) >= min_points and pair[m].nunique() > 1 and pair[reference].nunique() > 1:
            res = stats.spearmanr(pair[m], pair[reference])
            row["rho"], row["p"] = float(res.statistic), float(res.pvalue)
        else:
            row["rho"] = row["p"] = float("nan")
        row["rho_oriented"] = row["rho"] * _quality_sign(m) * _quality_sign(reference)
        diffs = pair.diff().dropna()
        if len(diffs) >= min_points and diffs[m].nunique() > 1 and diffs[reference].nunique() > 1:
            row["rho_diff"] = float(stats.spearmanr(diffs[m], diffs[reference]).statistic)
        else:
            row["rho_diff"] = float("nan")
        for p in proxies:
            if p == m or p not in d.columns:
                continue
            pp = d[[m, p]].dropna()
            ok = len(pp) >= min_points and pp[m].nunique() > 1 and pp[p].nunique() > 1
            row[f"rho_{p}"] = float(stats.spearmanr(pp[m], pp[p]).statistic) if ok else float("nan")
        rows.append(row)
    out = pd.DataFrame(rows).set_index("metric") if rows else pd.DataFrame()
    out.attrs["reference"] = reference
    return out


def critic_offset_summary(df: pd.DataFrame, tail: float = 0.5) -> dict[str, float]:
    """Where the critic's outputs settle: statistics of ``critic_offset`` over the last ``tail``
    fraction of the tracked steps.

    ``offset = (E[D(x)] + E[D(G(z))]) / 2``; returns ``mean``, ``sd`` (over the k tail steps), ``k``,
    ``t = mean / (sd / √k)`` (how many standard errors from zero), ``gap`` (mean ``critic_gap`` over the
    same steps, the scale of the critic's decisions) and ``ratio = |mean| / |gap|``.
    """
    if "critic_offset" not in df.columns or df["critic_offset"].notna().sum() == 0:
        return {"mean": float("nan"), "sd": float("nan"), "k": 0, "t": float("nan"), "gap": float("nan"),
                "ratio": float("nan")}
    d = df.dropna(subset=["critic_offset"]).sort_values("step")
    k = max(1, int(math.ceil(len(d) * tail)))
    t_rows = d.iloc[-k:]
    off = t_rows["critic_offset"].to_numpy(float)
    mean = float(off.mean())
    sd = float(off.std(ddof=1)) if k > 1 else float("nan")
    t = mean / (sd / math.sqrt(k)) if k > 1 and sd > 0 else (math.copysign(math.inf, mean) if k > 1 and mean else float("nan"))
    gap = float(t_rows["critic_gap"].mean()) if "critic_gap" in t_rows else float("nan")
    return {"mean": mean, "sd": sd, "k": k, "t": t, "gap": gap,
            "ratio": abs(mean) / abs(gap) if gap and math.isfinite(gap) else float("nan"),
            "first_step": int(t_rows["step"].iloc[0]), "last_step": int(t_rows["step"].iloc[-1])}


_PANELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("FID", ("fid", "fid_ref")), ("KID", ("kid",)), ("Inception Score", ("is",)), ("DDM (eq. 3.4)", ("ddm",)),
    ("critic outputs", ("critic_real", "critic_fake", "critic_offset")), ("critic gap (W₁ estimate)", ("critic_gap",)),
    ("classifier confidence", ("confidence",)), ("sharpness gap", ("sharpness_gap",)),
)


def plot_tracking(df: pd.DataFrame, title: str = "WGAN-GP: metrics over training", labels: dict[str, str] | None = None):
    """One panel per quantity against the training step, all panels sharing the x-axis.

    ``labels`` renames curves in the legends (e.g. ``{"fid": "FID n=256", "fid_ref": "FID n=1024"}``).
    """
    import matplotlib.pyplot as plt

    labels = labels or {"fid": "FID (tracking sample)", "fid_ref": "FID (large held-out sample)"}
    panels = [(t, [c for c in cols if c in df.columns and df[c].notna().any()]) for t, cols in _PANELS]
    panels = [(t, cols) for t, cols in panels if cols]
    if not panels or "step" not in df.columns or df.empty:
        fig, ax = plt.subplots(figsize=(5, 1.5))
        ax.text(0.5, 0.5, "no tracked metrics recorded (tracking disabled or training not run)", ha="center", va="center")
        ax.set_axis_off()
        return fig
    ncol = 2 if len(panels) > 3 else 1
    nrow = math.ceil(len(panels) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(5.2 * ncol, 2.1 * nrow), sharex=True, squeeze=False)
    d = df.sort_values("step")
    for ax, (t, cols) in zip(axes.flat, panels):
        for c in cols:
            g = d[["step", c]].dropna()
            ax.plot(g["step"], g[c], marker="o", ms=3, lw=1.2, label=labels.get(c, c))
        if "critic_offset" in cols:
            ax.axhline(0.0, color="grey", lw=0.8, ls=":")
        arrow = {"lower": " (↓ better)", "higher": " (↑ better)"}.get(DIRECTIONS.get(cols[0], "none"), "")
        ax.set_title(t + arrow, fontsize=9)
        ax.set_ylabel(UNITS.get(cols[0], ""), fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if len(cols) > 1:
            ax.legend(fontsize=7, frameon=False)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_axis_off()
    for ax in axes[-1]:
        ax.set_xlabel("training step (generator updates)", fontsize=8)
        ax.xaxis.set_tick_params(labelbottom=True)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def verdict_tracking(corr: pd.DataFrame) -> str:
    """Does the tracking agree with seed 001 (FID/KID track convergence, critic statistics do not)?"""
    ref = corr.attrs.get("reference", "fid_ref")
    cheap = [m for m in ("fid", "kid") if m in corr.index and m != ref]
    crit = [c for c in CRITIC_KEYS if c in corr.index and math.isfinite(float(corr.loc[c, "rho"]))]
    n = int(corr["n"].max()) if len(corr) else 0
    finding = "(Liaudanskas 2018: FID and KID track convergence, critic-output metrics are uninformative)"
    if n < 5:
        return f"{INCONCLUSIVE} {finding}: only {n} tracked steps; at least 5 are needed for a rank correlation."
    if not cheap or not crit:
        missing = " and ".join(w for w, ok in (("an FID/KID curve", cheap), ("a non-constant critic statistic", crit)) if not ok)
        return f"{INCONCLUSIVE} {finding}: the {n} tracked steps lack {missing}."
    q = {m: float(corr.loc[m, "rho_oriented"]) for m in cheap}
    def strength(c: str) -> tuple[float, float]:  # |ρ| of the levels, ties broken by |ρ| of the changes
        d = float(corr.loc[c, "rho_diff"]) if "rho_diff" in corr.columns else float("nan")
        return abs(float(corr.loc[c, "rho"])), abs(d) if math.isfinite(d) else 0.0

    best_c = max(crit, key=strength)
    best_rho = abs(float(corr.loc[best_c, "rho"]))
    diff = (f" (ρ of the step-to-step changes {_rho(float(corr.loc[best_c, 'rho_diff']))})"
            if "rho_diff" in corr.columns and math.isfinite(float(corr.loc[best_c, "rho_diff"])) else "")
    what = (", ".join(f"{m} ρ = {_rho(v)}" for m, v in q.items()) + f" with the {ref} curve over {n} steps; "
            f"the strongest critic statistic, {best_c}, has |ρ| = {_rho(best_rho)}{diff}")
    fid_ok = all(math.isfinite(v) and v >= TRACK_RHO for v in q.values())
    if fid_ok and best_rho < WEAK_RHO:
        return f"{AGREE} {finding}: {what}, below {WEAK_RHO}."
    if not fid_ok:
        bad = [m for m, v in q.items() if not (math.isfinite(v) and v >= TRACK_RHO)]
        return f"{DISAGREE} {finding}: {what}, but {', '.join(bad)} stays below ρ = {TRACK_RHO}."
    if best_rho >= TRACK_RHO:
        return f"{DISAGREE} {finding}: {what}, so a critic statistic tracks training about as well as FID/KID."
    return f"{INCONCLUSIVE} {finding}: {what}, between {WEAK_RHO} and {TRACK_RHO}."


def verdict_offset(df: pd.DataFrame, grid: pd.DataFrame | None = None, tail: float = 0.5) -> str:
    """Is the critic's equilibrium at an offset from zero (seed 001), larger for smaller critics?"""
    s = critic_offset_summary(df, tail)
    finding = "(Liaudanskas 2018: the critic's decisions balance at an offset from zero, especially for smaller architectures)"
    extra = ""
    if grid is not None and {"critic_offset", "d_params"} <= set(grid.columns) and grid["critic_offset"].notna().sum() >= 3:
        g = grid.dropna(subset=["critic_offset"])
        r = float(stats.spearmanr(g["critic_offset"].abs(), g["d_params"]).statistic)
        extra = (f"; across the {len(g)} grid cells |offset| ranges {_fmt(g['critic_offset'].abs().min())}–"
                 f"{_fmt(g['critic_offset'].abs().max())} and its Spearman ρ with the critic's parameter count is {_rho(r)}"
                 + (" (smaller critics sit farther from zero)" if r <= -WEAK_RHO else
                    " (larger critics sit farther from zero)" if r >= WEAK_RHO else " (no clear size trend)"))
    if s["k"] < 3 or not math.isfinite(s["t"]):
        steps = f"{s['k']} tracked step" + ("" if s["k"] == 1 else "s")
        return f"{INCONCLUSIVE} {finding}: only {steps} in the second half of training{extra}."
    what = (f"over the last {s['k']} tracked steps (steps {s['first_step']}–{s['last_step']}) the offset "
            f"(E[D(real)] + E[D(fake)])/2 averages {_fmt(s['mean'])} (sd {_fmt(s['sd'])}, {_fmt(abs(s['t']))} standard errors "
            f"from zero, {_fmt(s['ratio'])}× the mean real–fake gap of {_fmt(s['gap'])})")
    if abs(s["t"]) > 2:
        return f"{AGREE} {finding}: {what}{extra}."
    return f"{DISAGREE} {finding}: {what}, which is not distinguishable from zero{extra}."


__all__ = ["tracking_frame", "tracking_correlations", "critic_offset_summary", "plot_tracking", "verdict_tracking",
           "verdict_offset"]
