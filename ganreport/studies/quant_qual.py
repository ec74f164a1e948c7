"""Do the architectures rank the same by sample quality and by the interpretability measures
(seed 000, the project's main question)? Spearman ρ between the two mean-rank orderings with an
exact permutation p-value: :func:`exact_spearman_p`, :func:`quant_vs_qual`,
:func:`verdict_quant_qual`, :func:`exact_p_floor`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .. import config, results
from ..errors import ConfigError
from ..stats import QUAL_METRICS, QUANT_METRICS, ranking_agreement
from .verdict_text import AGREE, DISAGREE, INCONCLUSIVE, WEAK_RHO, _fmt, _rho


def exact_spearman_p(x: Sequence[float], y: Sequence[float], alternative: str = "greater", max_n: int = 8) -> float:
    """One-sided p-value of Spearman's ρ under random pairing: ``P(ρ_perm ≥ ρ_obs)`` (``greater``) or
    ``P(ρ_perm ≤ ρ_obs)`` (``less``), exact over all ``n!`` permutations for ``n ≤ max_n``, else
    scipy's asymptotic one-sided value. With 3 items the smallest possible p is 1/6."""
    if alternative not in ("greater", "less"):
        raise ConfigError(f"alternative must be 'greater' or 'less', got {alternative!r}")
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = len(x)
    obs = float(stats.spearmanr(x, y).statistic)
    if n <= max_n:
        ry = stats.rankdata(y)
        rx = stats.rankdata(x)
        vals = np.asarray([np.corrcoef(rx, ry[list(p)])[0, 1] for p in itertools.permutations(range(n))])
        return float(np.mean(vals >= obs - 1e-12) if alternative == "greater" else np.mean(vals <= obs + 1e-12))
    return float(stats.spearmanr(x, y, alternative=alternative).pvalue)


def quant_vs_qual(profile: str, models: Sequence[str], root: Path | None = None) -> dict[str, Any]:
    """Do the architectures rank the same by the quantitative metrics and by the interpretability
    measures (seed 000)? Reuses :func:`ganreport.stats.ranking_agreement` (mean rank over
    ``stats.QUANT_METRICS`` and over ``stats.QUAL_METRICS``), adds the exact permutation
    p-value, and — when the capacity grid and LIME results are on disk — the same question over the
    grid cells: Spearman ρ between −FID and the LIME stroke enrichment / concentration.

    Reads the result files of profile ``profile`` (a name: ``runs/<profile>/``) for ``models``.

    Returns ``{"table": DataFrame(model -> quant_rank, qual_rank), "rho", "p", "n", "n_quant",
    "n_qual", "grid": {"n", "rho_stroke", "p_stroke", "rho_concentration", "p_concentration"} | None}``.
    """
    rows = results.load(profile, root)
    models = list(models)
    out: dict[str, Any] = {"table": pd.DataFrame(), "rho": float("nan"), "p": float("nan"), "n": 0, "grid": None}
    if not rows.empty:
        agree = ranking_agreement(rows, models, QUANT_METRICS, QUAL_METRICS)
        table = pd.DataFrame({"quant_rank": pd.Series(agree["quant_rank"]), "qual_rank": pd.Series(agree["qual_rank"])})
        both = table.dropna()
        out.update(table=table, rho=float(agree["rho"]), n=len(both), n_quant=agree.get("n_quant", 0),
                   n_qual=agree.get("n_qual", 0))
        if len(both) >= 3 and both["quant_rank"].nunique() > 1 and both["qual_rank"].nunique() > 1:
            # ranks: 1 = best on both sides, so agreement = positive correlation of the two rank vectors
            out["p"] = exact_spearman_p(both["quant_rank"], both["qual_rank"])
            out["p_less"] = exact_spearman_p(both["quant_rank"], both["qual_rank"], "less")
    exp = config.run_dir(profile, root) / "experiments"
    gpath, lpath = exp / "capacity_grid.csv", exp / "lime_across_critics.csv"
    if gpath.is_file() and lpath.is_file():
        g = pd.read_csv(gpath).merge(pd.read_csv(lpath)[["cell", "stroke_enrichment", "concentration"]], on="cell")
        g = g.dropna(subset=["fid", "stroke_enrichment"])
        if len(g) >= 3:
            gi: dict[str, Any] = {"n": len(g)}
            for col in ("stroke_enrichment", "concentration"):
                short = "stroke" if col == "stroke_enrichment" else "concentration"
                ok = g[col].nunique() > 1 and g["fid"].nunique() > 1
                gi[f"rho_{short}"] = float(stats.spearmanr(-g["fid"], g[col]).statistic) if ok else float("nan")
                gi[f"p_{short}"] = exact_spearman_p(-g["fid"], g[col]) if ok else float("nan")
            out["grid"] = gi
    return out


def verdict_quant_qual(res: dict[str, Any]) -> str:
    """Agreement of the quantitative and qualitative rankings, with ρ and its permutation p-value."""
    finding = "(seed 000's hypothesis: better quantitative performance shows in the qualitative analysis)"
    n, rho, p = res.get("n", 0), res.get("rho", float("nan")), res.get("p", float("nan"))
    gi = res.get("grid")
    gtxt = ""
    if gi:
        gtxt = (f"; over the {gi['n']} capacity-grid critics, −FID and the LIME stroke enrichment correlate with "
                f"ρ = {_rho(gi['rho_stroke'])} (one-sided p = {_fmt(gi['p_stroke'], 2)})")
    if n < 3 or not math.isfinite(rho):
        return f"{INCONCLUSIVE} {finding}: only {n} architectures have both quantitative and interpretability ranks{gtxt}."
    what = (f"the mean rank over {res.get('n_quant', 0)} quantitative metrics and over {res.get('n_qual', 0)} interpretability "
            f"measures order the {n} architectures with Spearman ρ = {_rho(rho)} (exact one-sided permutation p = {_fmt(p, 2)})")
    if math.isfinite(p) and p < 0.05 and rho > 0:
        return f"{AGREE} {finding}: {what}{gtxt}."
    if rho < 0 and res.get("p_less", 1.0) < 0.05:
        return f"{DISAGREE} {finding}: {what}, the orderings are reversed{gtxt}."
    why = (f"with {n} architectures even ρ = 1 has p = {_fmt(exact_p_floor(n), 2)}" if exact_p_floor(n) >= 0.05
           else "the correlation is not significant")
    lean = "leans towards agreement" if rho >= WEAK_RHO else "leans towards disagreement" if rho <= -WEAK_RHO else "shows no relation"
    return f"{INCONCLUSIVE} {finding}: {what}, which {lean} but {why}{gtxt}."


def exact_p_floor(n: int) -> float:
    """The smallest one-sided permutation p-value of a rank correlation over ``n`` distinct items, ``1/n!``."""
    return 1.0 / math.factorial(max(1, int(n)))
