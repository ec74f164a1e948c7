"""The checks that justify trusting a metric, run on real data (notebook 02).

- **Corruption ladder**: real test images corrupted by Gaussian noise, Gaussian blur or
  occlusion at increasing strength (level 0 = clean) are scored against other real test images;
  a trustworthy metric worsens monotonically. Reported per metric and corruption as Spearman's ρ
  between strength and "badness" (the value, negated for higher-is-better metrics);
  ``monotone`` = never better at a higher strength (ties allowed), ``strict`` = worse at every step.
- **Missing modes** (ModNet thesis §3.4.5): sets made of real images from only k classes, or of
  n distinct images replicated up to the set size. IS only sees class predictions, so it
  saturates once the classes are covered; distribution metrics (DDM, FID...) keep improving.
- **Real vs real**: two disjoint halves of the real test split — the value an ideal
  generator would get at this sample size.

Each function returns a tidy pandas DataFrame; the ``plot_*`` functions draw them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..errors import ConfigError, DataError
from .base import METRICS, Result

#: Strengths per corruption (level 0 = clean). Noise: σ in [0, 1] intensity units; blur: σ in
#: pixels; occlusion: side of a mid-grey square as a fraction of the image side.
LADDER: dict[str, tuple[float, ...]] = {
    "noise": (0.0, 0.05, 0.1, 0.2, 0.35, 0.5),
    "blur": (0.0, 0.5, 1.0, 1.5, 2.0, 3.0),
    "occlusion": (0.0, 0.1, 0.2, 0.3, 0.4, 0.5),
}


def thin_ladder(levels: int, ladder: dict[str, Sequence[float]] | None = None) -> dict[str, tuple[float, ...]]:
    """``levels`` evenly spaced strengths of each corruption of ``ladder`` (default ``LADDER``),
    always keeping the clean level 0 and the strongest one (a cheaper ladder for small profiles)."""
    ladder = dict(ladder or LADDER)
    if levels < 2:
        raise ConfigError(f"a corruption ladder needs at least 2 levels (clean and one corruption), got {levels}")
    out = {}
    for kind, strengths in ladder.items():
        idx = sorted({round(i * (len(strengths) - 1) / (levels - 1)) for i in range(min(levels, len(strengths)))})
        out[kind] = tuple(strengths[i] for i in idx)
    return out


UNITS = {"noise": "noise σ ([0, 1] intensity)", "blur": "blur σ (pixels)", "occlusion": "occluded side fraction"}

#: ``score(images, features_or_None) -> {metric: Result}``: scores a set against fixed real data.
Scorer = Callable[[torch.Tensor, "dict[str, torch.Tensor] | None"], "dict[str, Result]"]


# --------------------------------------------------------------------------- corruptions
def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with standard deviation ``sigma`` pixels (reflect padding)."""
    if sigma <= 0:
        return x.clone()
    r = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    n, c, h, w = x.shape
    if r >= min(h, w):
        raise ConfigError(f"blur sigma {sigma} is too large for {h}x{w} images")
    y = x.reshape(n * c, 1, h, w)
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1))
    return y.reshape(n, c, h, w)


def corrupt(images: torch.Tensor, kind: str, strength: float, seed: int = 0) -> torch.Tensor:
    """``images`` (N, C, H, W) in [-1, 1] corrupted by ``kind`` at ``strength`` (see ``LADDER``).

    ``noise``: add N(0, (2σ)²) (σ in [0, 1] units) and clip; ``blur``: Gaussian blur of σ pixels;
    ``occlusion``: a mid-grey (0) square of side ``strength * H`` at a seeded random position.
    """
    if kind not in LADDER:
        raise ConfigError(f"unknown corruption {kind!r}; known: {', '.join(LADDER)}")
    if strength < 0:
        raise ConfigError(f"corruption strength must be >= 0, got {strength}")
    g = torch.Generator().manual_seed(int(seed))
    x = images.clone()
    if strength == 0:
        return x
    if kind == "noise":
        return (x + 2 * strength * torch.randn(x.shape, generator=g, dtype=x.dtype)).clamp(-1, 1)
    if kind == "blur":
        return gaussian_blur(x, strength)
    n, _, h, w = x.shape
    s = max(1, int(round(strength * h)))
    ys = torch.randint(0, h - s + 1, (n,), generator=g)
    xs = torch.randint(0, w - s + 1, (n,), generator=g)
    for i in range(n):
        x[i, :, ys[i]:ys[i] + s, xs[i]:xs[i] + s] = 0.0
    return x


# --------------------------------------------------------------------------- experiments
def _tidy(results: dict[str, Result], **cols: Any) -> list[dict[str, Any]]:
    return [dict(cols, metric=k, value=r.value, ci_low=r.ci_low, ci_high=r.ci_high, n=r.n,
                 direction=r.direction, feature=r.extra.get("feature", "")) for k, r in results.items()]


def corruption_ladder(images: torch.Tensor, score: Scorer, ladder: dict[str, Sequence[float]] | None = None,
                      seed: int = 0, progress: bool = False):
    """Score ``images`` corrupted at every strength of ``ladder`` (default ``LADDER``).

    ``score(fake_images, None) -> {metric: Result}`` compares a set against fixed real data (e.g.
    ``evaluate_samples`` with the *other* half of the test split). The clean set (strength 0) is
    scored once and shared by all corruptions. Returns columns ``corruption, level, strength,
    metric, value, ci_low, ci_high, n, direction, feature``.
    """
    import pandas as pd

    ladder = dict(ladder or LADDER)
    clean = score(images, None)
    rows: list[dict[str, Any]] = []
    jobs = [(k, i, s) for k, levels in ladder.items() for i, s in enumerate(levels)]
    for kind, level, s in tqdm(jobs, desc="corruption ladder", disable=not progress, ncols=100, mininterval=2.0):
        res = clean if s == 0 else score(corrupt(images, kind, s, seed=seed + level), None)
        rows += _tidy(res, corruption=kind, level=level, strength=s)
    return pd.DataFrame(rows)


def ladder_summary(df):
    """Per metric and corruption: Spearman ρ between strength and badness, and whether the
    metric worsens monotonically.

    Badness is the value for lower-is-better metrics, minus the value for higher-is-better ones
    and the distance from the clean (real-vs-real) value for two-sided ones (``target``); metrics
    without a direction are left out. ``monotone``: badness never decreases from
    one strength to the next and ends above the clean value (ties allowed — a two-sample test
    saturating at accuracy 1 stays monotone); ``strict``: it increases at every step (ρ = 1
    without ties). A constant metric gets ρ = nan and is not monotone.
    """
    import pandas as pd
    from scipy.stats import spearmanr

    rows = []
    for (metric, kind), g in df.groupby(["metric", "corruption"], sort=True):
        d = g["direction"].iloc[0]
        if d == "none":
            continue
        g = g.sort_values("strength")
        v = g["value"].to_numpy(dtype=float)
        bad = np.abs(v - v[0]) if d == "target" else v * (1 if d == "lower" else -1)
        finite = bool(np.isfinite(bad).all())
        rho = float("nan") if not finite or np.ptp(bad) == 0 else float(
            spearmanr(g["strength"].to_numpy(), bad).statistic)
        steps = np.diff(bad)
        rows.append(dict(metric=metric, corruption=kind, rho=rho,
                         monotone=bool(finite and (steps >= 0).all() and bad[-1] > bad[0]),
                         strict=bool(finite and (steps > 0).all()), direction=d))
    return pd.DataFrame(rows)


def ladder_table(summary):
    """Wide view of :func:`ladder_summary`: one row per metric, ρ per corruption, and whether the
    metric is monotone (``monotone (all)``) / strictly monotone (``strict (all)``) on every corruption."""
    wide = summary.pivot(index="metric", columns="corruption", values="rho")
    wide["monotone (all)"] = summary.groupby("metric")["monotone"].all()
    wide["strict (all)"] = summary.groupby("metric")["strict"].all()
    return wide


def replicate(n_pool: int, n_distinct: int, size: int, seed: int = 0) -> torch.Tensor:
    """Indices of ``n_distinct`` items drawn (seeded) from ``range(n_pool)``, tiled up to ``size``."""
    if not 1 <= n_distinct <= n_pool:
        raise DataError(f"need 1 <= n_distinct <= {n_pool}, got {n_distinct}")
    g = torch.Generator().manual_seed(int(seed))
    pick = torch.randperm(n_pool, generator=g)[:n_distinct]
    return pick.repeat(math.ceil(size / n_distinct))[:size]


def missing_modes(images: torch.Tensor, labels: torch.Tensor, score: Scorer, size: int,
                  classes: Sequence[int] = (1, 2, 5, 10), distinct: Sequence[int] = (10, 100, 1000, 2500),
                  feats: dict[str, torch.Tensor] | None = None, seed: int = 0, progress: bool = False):
    """Score sets of ``size`` real images that miss modes (ModNet thesis §3.4.5).

    - ``experiment="classes"``: images of only ``k`` classes (the first ``k`` of a seeded class
      order), as many distinct ones as available (at most ``size``), tiled up to ``size``;
    - ``experiment="distinct"``: ``n`` distinct images of any class, replicated to ``size``.

    ``images``/``labels`` (the pool; ``feats`` its optional precomputed features, indexed along)
    must be disjoint from the real data that ``score`` compares with (train + val against the
    test split). Columns: ``experiment, k, n_distinct, replication, metric, value, ci_low,
    ci_high, n, direction, feature``; ``k`` is the number of classes or of distinct images.
    """
    import pandas as pd

    if size > len(images):
        raise DataError(f"missing modes: set size {size} exceeds the {len(images)} pool images")
    g = torch.Generator().manual_seed(int(seed))
    uniq = torch.unique(labels)
    order = uniq[torch.randperm(len(uniq), generator=g)]
    jobs = [("classes", k) for k in classes if k <= len(order)] + [("distinct", n) for n in distinct if n <= size]
    rows: list[dict[str, Any]] = []
    for exp, k in tqdm(jobs, desc="missing modes", disable=not progress, ncols=100, mininterval=2.0):
        if exp == "classes":
            members = torch.nonzero(torch.isin(labels, order[:k]))[:, 0]
            n_unique = min(len(members), size)
            idx = members[replicate(len(members), n_unique, size, seed)]
        else:
            n_unique = k
            idx = replicate(len(images), k, size, seed)
        sub = None if feats is None else {key: v[idx] for key, v in feats.items()}
        rows += _tidy(score(images[idx], sub), experiment=exp, k=k, n_distinct=n_unique,
                      replication=size / n_unique)
    return pd.DataFrame(rows)


def real_vs_real(images: torch.Tensor, score_pair: Callable[[torch.Tensor, torch.Tensor], "dict[str, Result]"],
                 n: int | None = None, seed: int = 0):
    """Score one half of ``images`` against the other, disjoint half (an ideal generator's value)."""
    import pandas as pd

    g = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(len(images), generator=g)
    h = min(n or len(images) // 2, len(images) // 2)
    return pd.DataFrame(_tidy(score_pair(images[perm[:h]], images[perm[h:2 * h]]), baseline="real_vs_real"))


# --------------------------------------------------------------------------- on a dataset
#: Metrics scored in the validation experiments (critic statistics need a model; memorisation
#: and the per-image statistics say nothing about replicated sets).
LADDER_METRICS = ("fid", "kid", "is", "precision", "recall", "density", "coverage", "mmd", "mmd_poly",
                  "c2st_1nn", "c2st_net", "ddm", "ddm_train", "sharpness", "noise", "ssim_nn", "memorization")
#: ``ddm_train`` is left out: the sets come from the training split it uses as reference.
MODES_METRICS = ("fid", "kid", "is", "precision", "recall", "density", "coverage", "mmd", "mmd_poly",
                 "c2st_1nn", "c2st_net", "ddm")


def ladder_on(real, n: int, seed: int = 0, ladder: dict[str, Sequence[float]] | None = None,
              metrics: Sequence[str] = LADDER_METRICS, options: dict | None = None, progress: bool = False,
              levels: int | None = None):
    """:func:`corruption_ladder` on a :class:`~ganreport.metrics.suite.RealData`: ``n`` test
    images (corrupted) against ``n`` other test images, training split as ``train``; ``levels``
    thins the ladder with :func:`thin_ladder`."""
    if levels is not None:
        ladder = thin_ladder(int(levels), ladder)
    from .suite import FAST_OPTIONS, evaluate_samples, reference_split

    b, a = reference_split(len(real.test), min(int(n), len(real.test) // 2), seed)  # corrupted set, reference
    ref_feats = {k: v[a] for k, v in real.test_feats.items()}

    def score(images: torch.Tensor, feats: dict[str, torch.Tensor] | None) -> dict[str, Result]:
        return evaluate_samples(images, real.test.images[a], real.extractor, train=real.train.images,
                                real_feats=ref_feats, train_feats=real.train_feats, fake_feats=feats,
                                metrics=metrics, options=options or FAST_OPTIONS, seed=seed)

    df = corruption_ladder(real.test.images[b], score, ladder, seed, progress)
    df["n_real"] = len(a)  # every rung: len(b) corrupted images against len(a) = len(b) reference images
    return df


def modes_size(real, size: int) -> int:
    """The set size of the missing-modes experiment on ``real``: ``size``, capped by the train + val
    pool and by half the test split (the real-vs-real line needs ``size`` held-out test images
    besides the ``size`` reference ones, so that the line and the curves share their sizes)."""
    from .. import data as data_mod

    n_val = len(data_mod.load(real.dataset, "val", seed=real.data_seed))
    return min(int(size), len(real.train) + n_val, len(real.test) // 2)


def _modes_scorer(real, size: int, seed: int, metrics: Sequence[str], options: dict | None):
    from .suite import FAST_OPTIONS, evaluate_samples, reference_split

    ref, held = reference_split(len(real.test), size, seed)
    ref_feats = {k: v[ref] for k, v in real.test_feats.items()}

    def score(images: torch.Tensor, feats: dict[str, torch.Tensor] | None) -> dict[str, Result]:
        return evaluate_samples(images, real.test.images[ref], real.extractor, train=real.train.images,
                                real_feats=ref_feats, train_feats=real.train_feats, fake_feats=feats,
                                metrics=metrics, options=options or FAST_OPTIONS, seed=seed)

    return score, held


def missing_modes_on(real, size: int, classes: Sequence[int] = (1, 2, 5, 10),
                     distinct: Sequence[int] = (10, 100, 1000, 2500), seed: int = 0,
                     metrics: Sequence[str] = MODES_METRICS, options: dict | None = None, progress: bool = False):
    """:func:`missing_modes` on a :class:`~ganreport.metrics.suite.RealData`: sets of
    ``modes_size(real, size)`` images drawn from the train + val splits, scored against as many
    reference test images (:func:`~ganreport.metrics.suite.reference_split`); the column ``n_real``
    states that size. :func:`modes_baseline_on` scores held-out test images at the same sizes."""
    from .. import data as data_mod
    from .features import extract

    val = data_mod.load(real.dataset, "val", seed=real.data_seed)
    pool = torch.cat([real.train.images, val.images])
    labels = torch.cat([real.train.labels, val.labels])
    pool_feats = {k: torch.cat([v, extract(real.extractor, val.images)[k]]) for k, v in real.train_feats.items()}
    size = modes_size(real, size)
    score, _ = _modes_scorer(real, size, seed, metrics, options)
    df = missing_modes(pool, labels, score, size, classes, distinct, pool_feats, seed, progress)
    df["n_real"] = size
    return df


def modes_baseline_on(real, size: int, seed: int = 0, metrics: Sequence[str] = MODES_METRICS,
                      options: dict | None = None):
    """The real-vs-real line of the missing-modes plot at the experiment's own sizes: ``size``
    held-out test images (an ideal generator) against the same ``size`` reference test images,
    options and seed as :func:`missing_modes_on`. Columns ``metric, value, ci_low, ci_high, n,
    direction, feature, n_real``."""
    import pandas as pd

    size = modes_size(real, size)
    score, held = _modes_scorer(real, size, seed, metrics, options)
    df = pd.DataFrame(_tidy(score(real.test.images[held], {k: v[held] for k, v in real.test_feats.items()}),
                            baseline="real_vs_real"))
    df["n_real"] = size
    return df


# --------------------------------------------------------------------------- plots
def _arrow(direction: str) -> str:
    return {"lower": " (lower better ↓)", "higher": " (higher better ↑)", "target": " (real value best ↕)"}.get(direction, "")


def plot_ladder(df, metrics: Sequence[str] | None = None, ncols: int = 5):
    """Small multiples: each metric's value (± CI) against corruption level, one line per corruption."""
    import matplotlib.pyplot as plt

    metrics = list(metrics or [m for m in df["metric"].unique() if METRICS.get(m).direction != "none"])
    nrows = math.ceil(len(metrics) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.3 * ncols, 2.6 * nrows), squeeze=False)
    for ax, m in zip(axes.flat, metrics):
        sub = df[df["metric"] == m]
        for kind, g in sub.groupby("corruption", sort=False):
            g = g.sort_values("level")
            lo = (g["value"] - g["ci_low"]).clip(lower=0).fillna(0)
            hi = (g["ci_high"] - g["value"]).clip(lower=0).fillna(0)
            ax.errorbar(g["level"], g["value"], yerr=[lo, hi], marker="o", ms=3, capsize=2, label=kind)
        clean = sub[sub["level"] == 0]
        if len(clean):  # level 0 is the uncorrupted set: the real-vs-real value at the ladder's own sizes
            ax.axhline(float(clean["value"].iloc[0]), ls="--", c="grey", lw=0.8)
        ax.set_title(m + _arrow(sub["direction"].iloc[0]), fontsize=8)
        ax.set_xlabel("corruption level (0 = clean)", fontsize=7)
        ax.set_ylabel(m, fontsize=7)
        ax.tick_params(labelsize=6)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_axis_off()
    handles, labels = axes.flat[0].get_legend_handles_labels()
    levels = "; ".join(f"{k}: {', '.join(f'{s:g}' for s in v)} {UNITS[k].split(' (')[0]}" for k, v in LADDER.items())
    fig.legend(handles, [f"{lab} — {UNITS.get(lab, '')}" for lab in labels], loc="upper center", ncol=3,
               fontsize=8, frameon=False)
    fig.text(0.5, 0.005, f"levels — {levels}; dashed: the clean set (real vs real, same sizes)", ha="center",
             fontsize=6)
    fig.tight_layout(rect=(0, 0.02, 1, 0.95))
    return fig


def plot_missing_modes(df, metrics: Sequence[str] = ("is", "ddm", "fid", "kid", "precision", "recall", "coverage",
                                                     "c2st_1nn"), baseline=None):
    """Two rows (k classes; n distinct images, log axis), one column per metric, value ± CI.

    ``baseline``: optional real-vs-real frame (``metric, value[, ci_low, ci_high]``) at the same set
    sizes (:func:`modes_baseline_on`), drawn as a dashed line with its 95 % interval shaded.
    """
    import matplotlib.pyplot as plt
    import pandas as pd

    metrics = [m for m in metrics if m in set(df["metric"])]
    fig, axes = plt.subplots(2, len(metrics), figsize=(2.6 * len(metrics), 5.0), squeeze=False)
    for col, m in enumerate(metrics):
        for row, exp in enumerate(("classes", "distinct")):
            ax = axes[row, col]
            g = df[(df["metric"] == m) & (df["experiment"] == exp)].sort_values("k")
            if g.empty:
                ax.set_axis_off()
                continue
            lo = (g["value"] - g["ci_low"]).clip(lower=0).fillna(0)
            hi = (g["ci_high"] - g["value"]).clip(lower=0).fillna(0)
            ax.errorbar(g["k"], g["value"], yerr=[lo, hi], marker="o", ms=3, capsize=2)
            if baseline is not None and m in set(baseline["metric"]):
                b = baseline[baseline["metric"] == m].iloc[0]
                ax.axhline(float(b["value"]), ls="--", c="grey", lw=1, label="real vs real, same sizes")
                if pd.notna(b.get("ci_low")) and pd.notna(b.get("ci_high")):
                    ax.axhspan(float(b["ci_low"]), float(b["ci_high"]), color="grey", alpha=0.15, lw=0)
            if exp == "distinct":
                ax.set_xscale("log")
            ax.set_xlabel("number of classes k" if exp == "classes" else "distinct images n (log)", fontsize=7)
            ax.set_ylabel(m, fontsize=7)
            ax.set_title(m + _arrow(g["direction"].iloc[0]), fontsize=8)
            ax.tick_params(labelsize=6)
            ax.grid(alpha=0.3)
    if baseline is not None:
        axes[0, 0].legend(fontsize=6)
    if "n_real" in df:
        fig.suptitle(f"sets of {int(df['n_real'].iloc[0])} images against {int(df['n_real'].iloc[0])} reference "
                     "test images (value ± 95 % CI)", fontsize=8)
    fig.tight_layout()
    return fig


def saturation(df, metric: str, experiment: str = "distinct", tol: float = 0.02):
    """Smallest ``k`` from which ``metric`` stays within ``tol`` (relative) of its final value,
    and whether it still moved by more than ``tol`` over the last step (``None`` if absent)."""
    g = df[(df["metric"] == metric) & (df["experiment"] == experiment)].sort_values("k")
    if g.empty:
        return None
    v = g["value"].to_numpy()
    ks = g["k"].to_numpy()
    final = v[-1]
    scale = max(abs(final), 1e-12)
    within = np.abs(v - final) <= tol * scale
    first = len(v) - 1
    while first > 0 and within[first - 1]:
        first -= 1
    still_moving = len(v) > 1 and abs(v[-1] - v[-2]) > tol * scale
    return dict(metric=metric, experiment=experiment, saturates_at=int(ks[first]), still_moving=bool(still_moving))


def modes_summary(df, tol: float = 0.02):
    """Per metric: does it penalise missing modes, and does it saturate?

    - ``classes_monotone`` / ``distinct_monotone``: badness (value, negated for higher-is-better)
      never grows as the number of classes k / distinct images n grows, and ends lower than it
      started (the metric penalises the missing modes);
    - ``saturates_at``: the smallest n from which the value stays within ``tol`` (relative) of
      its value at the largest n (see :func:`saturation`);
    - ``resolves_last_step``: the 95 % intervals at the two largest n are disjoint, the larger n
      scoring better — the metric still tells the last two replication levels apart (the
      ModNet thesis: IS stops here, DDM does not).
    """
    import pandas as pd

    rows = []
    for metric, g in df.groupby("metric", sort=True):
        d = g["direction"].iloc[0]
        if d not in ("lower", "higher"):  # descriptive, or two-sided (no such metric among MODES_METRICS)
            continue
        sign = 1.0 if d == "lower" else -1.0
        row: dict[str, Any] = dict(metric=metric, direction=d)
        for exp in ("classes", "distinct"):
            e = g[g["experiment"] == exp].sort_values("k")
            bad = sign * e["value"].to_numpy(dtype=float)
            row[f"{exp}_monotone"] = bool(len(bad) > 1 and (np.diff(bad) <= 0).all() and bad[-1] < bad[0])
        e = g[g["experiment"] == "distinct"].sort_values("k")
        sat = saturation(df, metric, "distinct", tol)
        row["saturates_at"] = None if sat is None else sat["saturates_at"]
        if len(e) >= 2:
            a, b = e.iloc[-2], e.iloc[-1]
            if d == "lower":
                row["resolves_last_step"] = bool(b["ci_high"] < a["ci_low"])
            else:
                row["resolves_last_step"] = bool(b["ci_low"] > a["ci_high"])
        else:
            row["resolves_last_step"] = False
        rows.append(row)
    return pd.DataFrame(rows).set_index("metric")


__all__ = ["modes_summary", "LADDER", "UNITS", "corrupt", "gaussian_blur", "corruption_ladder", "ladder_summary", "ladder_table",
           "replicate", "missing_modes", "real_vs_real", "ladder_on", "missing_modes_on", "modes_size",
           "modes_baseline_on", "plot_ladder",
           "plot_missing_modes", "saturation", "thin_ladder", "LADDER_METRICS", "MODES_METRICS"]
