"""The research questions of the seed studies, replicated (issue #8).

1. **Metrics over training** (Liaudanskas 2018, seed 001, "Approaches to understanding GANs"): FID,
   KID, IS, DDM and the critic statistics recorded by :class:`ganreport.tracking.MetricTracker`
   during WGAN-GP training; how well each curve follows the FID of a large held-out sample
   (Spearman ρ over the tracked steps) and the visual-quality proxies. Published: "FID and KID are
   the most suitable metrics for tracking the convergence ... metrics based on the activations of the
   critic are shown to be uninformative"; "the equilibrium for the critic's decisions was found to be
   at an offset from zero, especially for smaller architectures".
2. **Asymmetric capacity** (seed 001): a grid of generator width × critic size, the critic's size
   set as a ratio of its parameter count to the generator's, trained for the same number of steps;
   final FID/KID per cell against the training FLOPs. Published: "the most computationally
   efficient way to get quality samples is to have the critic at at least about half of generator's
   capacity ... There is no advantage in having the critic more powerful than the generator."
3. **LIME on the critics of the grid** (seed 001 §LIME): do critics of different capacity look at
   the same features? Concentration of the maps, overlap of their top superpixels, and how much of
   the attribution falls on the digit strokes ("the critic appears to mostly focus on the data
   features that make intuitive sense").
4. **DDM table** (ModNet thesis, seed 004, Table 3.1): DDM (eq. 3.4) of each architecture and of the
   real training set (the lower bound), IS and FID beside it, and the missing-modes curve (§3.4.5:
   IS saturates, DDM keeps improving), read from what notebook 02 wrote.
5. **Quantitative vs qualitative ranking** (seed 000): do the architectures rank the same by sample
   quality and by the interpretability measures? Spearman ρ with an exact permutation p-value.

Heavy results (grid, LIME) are written atomically under ``runs/<profile>/experiments/`` together
with the settings that produced them, and reused when the settings match. The ``verdict_*``
functions return one sentence that says whether the data agree with the published finding, with
every number formatted from their input. Settings come from the profile's ``experiments`` block.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import stats
from tqdm import tqdm

from . import config, io
from .errors import ConfigError, DataError
from .tracking import CRITIC_KEYS, DEFAULT_TRACKING, DIRECTIONS, PROXY_KEYS, UNITS, MetricTracker, read_tracking

#: |Spearman ρ| from which a curve "tracks" the reference, and below which it is "weak".
TRACK_RHO = 0.7
WEAK_RHO = 0.5
#: FID within this relative distance of a generator's best cell counts as "as good".
FID_TOL = 0.10
#: Critic/generator parameter ratios that count as "about half".
HALF_BAND = (0.35, 0.75)

DEFAULT_GRID: dict[str, Any] = dict(enabled=False, model="wgan_gp", g_widths=[8], d_ratios=[0.5, 1.0], z_dim=32,
                                    steps=100, batch_size=32, n_critic=5, lr=None, n_eval=256, track_points=0,
                                    seed=0, cpu_threads=1)
DEFAULT_LIME: dict[str, Any] = dict(enabled=False, n_images=2, samples=64, segments=16, top=0.2, seed=0, cpu_threads=1)
DEFAULTS: dict[str, dict[str, Any]] = {"tracking": DEFAULT_TRACKING, "grid": DEFAULT_GRID, "lime": DEFAULT_LIME}

AGREE, DISAGREE, INCONCLUSIVE = "Agrees", "Disagrees", "Inconclusive"


# ============================================================================ settings and files
def settings(profile: str, overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """The profile's ``experiments`` block (``tracking``, ``grid``, ``lime``) over the defaults.

    ``overrides`` (``{"grid": {"steps": 50}}``) replace single keys; unknown keys are an error.
    """
    block = dict(config.load_profile(profile).get("experiments") or {})
    out: dict[str, dict[str, Any]] = {}
    for name, default in DEFAULTS.items():
        given = {**dict(block.get(name) or {}), **dict((overrides or {}).get(name) or {})}
        unknown = set(given) - set(default)
        if unknown:
            raise ConfigError(f"unknown experiments.{name} setting(s) {sorted(unknown)}; valid: {', '.join(default)}")
        out[name] = {**default, **given}
    extra = set(block) - set(DEFAULTS)
    if extra:
        raise ConfigError(f"unknown experiments block(s) {sorted(extra)}; valid: {', '.join(DEFAULTS)}")
    return out


def experiments_dir(profile: str, root: Path | None = None) -> Path:
    """``runs/<profile>/experiments/``."""
    return config.results_dir(profile, "experiments", root)


def _key(obj: Any) -> str:
    return io.settings_key(obj, 12)


def _cached(path: Path, key: str) -> bool:
    meta = path.with_suffix(".json")
    if not (path.is_file() and meta.is_file()):
        return False
    try:
        return json.loads(meta.read_text()).get("key") == key
    except json.JSONDecodeError:
        return False


def _write_frame(path: Path, df: pd.DataFrame, key: str, meta: dict[str, Any], index: bool = False) -> None:
    io.write_text(path, df.to_csv(index=index))
    io.write_json(path.with_suffix(".json"), {"key": key, **meta})


def _fmt(v: Any, digits: int = 3) -> str:
    """A number for a sentence: ``digits`` significant digits (whole numbers from 100 to 99,999,
    scientific notation beyond)."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    v = float(v)
    if v == 0:
        return "0"
    if 100 <= abs(v) < 1e5:
        return f"{v:.0f}"
    return f"{v:.{digits}g}"


def _rho(v: float) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:.2f}"


# ============================================================================ 1 · metrics over training
def tracking_frame(profile: str, model: str = "wgan_gp", dataset: str | None = None,
                   model_dir: str | Path | None = None, root: Path | None = None) -> pd.DataFrame:
    """What the tracker wrote during training of ``model`` (``read_tracking`` of its model folder)."""
    if model_dir is None:
        dataset = dataset or config.load_profile(profile).get("dataset", "mnist")
        model_dir = config.model_dir(profile, model, dataset, root)
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


# ============================================================================ 2 · asymmetric capacity
def _spec_parts(model: str, **kw: Any):
    """The model's registry entry and its settings (defaults updated with ``kw``)."""
    from .models import MODELS, resolve_kwargs

    return MODELS.get(model), resolve_kwargs(model, **kw)


def _count_on_meta(build, img_shape: tuple[int, int, int], kw: dict[str, Any]) -> int:
    """Parameter count of ``build(img_shape, **kw)`` built on the meta device (no memory, no init)."""
    from .models import count_params

    with torch.device("meta"):
        return count_params(build(tuple(img_shape), **kw))


def generator_params(model: str, img_shape: tuple[int, int, int], **kw: Any) -> int:
    """Parameter count of ``model``'s generator with settings ``kw``."""
    spec, p = _spec_parts(model, **kw)
    return _count_on_meta(spec.build_g, img_shape, {k: p[k] for k in spec.g_keys if k in p})


def critic_params(model: str, img_shape: tuple[int, int, int], d_width: int, **kw: Any) -> int:
    """Parameter count of ``model``'s discriminator/critic of width ``d_width``."""
    spec, p = _spec_parts(model, d_width=int(d_width), **kw)
    return _count_on_meta(spec.build_d, img_shape, {k: p[k] for k in spec.d_keys if k in p})


def critic_width_for_ratio(model: str, img_shape: tuple[int, int, int], g_params: int, ratio: float,
                           max_width: int = 4096, **kw: Any) -> tuple[int, int]:
    """The critic width whose parameter count is closest (in log ratio) to ``ratio · g_params``.

    Parameters grow monotonically with the width, so a doubling search and a bisection find the
    crossing and the two widths around it are compared. Returns ``(d_width, d_params)``.
    """
    if ratio <= 0 or g_params <= 0:
        raise ConfigError(f"critic/generator ratio and generator size must be > 0, got {ratio}, {g_params}")
    target = ratio * g_params
    lo, hi = 1, 2
    while critic_params(model, img_shape, hi, **kw) < target:
        lo, hi = hi, hi * 2
        if hi > max_width:
            raise ConfigError(f"no critic width up to {max_width} reaches {ratio}× the generator's {g_params} parameters")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if critic_params(model, img_shape, mid, **kw) < target:
            lo = mid
        else:
            hi = mid
    cands = [(w, critic_params(model, img_shape, w, **kw)) for w in (lo, hi)]
    return min(cands, key=lambda c: abs(math.log(c[1] / target)))


def grid_plan(g_widths: Sequence[int], d_ratios: Sequence[float], img_shape: tuple[int, int, int] = (1, 28, 28),
              model: str = "wgan_gp", z_dim: int = 32, **kw: Any) -> pd.DataFrame:
    """The cells of the capacity grid: for each generator width and requested critic/generator
    parameter ratio, the critic width that comes closest, and the parameter counts and ratio achieved."""
    rows = []
    for gw in g_widths:
        gp = generator_params(model, img_shape, g_width=int(gw), z_dim=int(z_dim), **kw)
        for r in d_ratios:
            dw, dp = critic_width_for_ratio(model, img_shape, gp, float(r), z_dim=int(z_dim), **kw)
            rows.append(dict(cell=f"g{gw}_d{dw}", g_width=int(gw), d_width=int(dw), ratio_requested=float(r),
                             g_params=gp, d_params=dp, ratio=dp / gp))
    return pd.DataFrame(rows)


class _FlopCounter:
    """Counts matrix-product FLOPs (``torch.utils.flop_counter.flop_registry``: convolutions, their
    backward, linear, matmul) of every aten op run inside it, including double backward.

    ``FlopCounterMode`` itself cannot be used here: its module tracker rejects the
    ``autograd.grad(create_graph=True)`` of the gradient penalty.
    """

    def __init__(self) -> None:
        from torch.utils._python_dispatch import TorchDispatchMode
        from torch.utils.flop_counter import flop_registry

        outer = self

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                out = func(*args, **kwargs)
                f = flop_registry.get(func._overloadpacket)
                if f is not None:
                    outer.total += int(f(*args, **kwargs, out_val=out))
                return out

        self.total = 0
        self._mode = Mode()

    def __enter__(self) -> "_FlopCounter":
        self._mode.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._mode.__exit__(*exc)


def train_step_flops(model: str, data: Any, batch_size: int, probe_batch: int | None = 2, **model_kw: Any) -> dict[str, float]:
    """FLOPs of one training step (``n_critic`` critic updates + one generator update), counted.

    A throw-away :class:`~ganreport.train.Trainer` on the CPU (nothing written, fresh weights — FLOPs
    do not depend on them) runs one step under a FLOP counter: forward, backward and, for WGAN-GP, the
    gradient penalty's double backward, at ``2 · MACs`` per multiply-accumulate. Every counted op is
    linear in the batch, so the step is run with ``probe_batch`` samples and scaled to ``batch_size``
    (None: run the full batch). Returns ``critic`` (the ``n_critic`` critic updates, which also
    sample G), ``generator`` (the G update) and ``total`` per step, plus ``critic_share = critic / total``.
    """
    from .train import Trainer, TrainConfig

    run = int(batch_size) if probe_batch is None else min(int(batch_size), int(probe_batch))
    cfg = TrainConfig(steps=1, batch_size=run, n_grid=1, device="cpu")
    t = Trainer(model, data, Path("/nonexistent-flops-probe"), cfg, resume=False, **model_kw)
    n_critic = int(t.params.get("n_critic", 1))
    with _FlopCounter() as c:
        for _ in range(n_critic):
            t._d_step()
    crit = c.total * batch_size / run
    with _FlopCounter() as c:
        t._g_step()
    gen = c.total * batch_size / run
    return {"critic": float(crit), "generator": float(gen), "total": float(crit + gen),
            "critic_share": crit / (crit + gen) if crit + gen else float("nan")}


def capacity_grid(profile: str, overrides: dict[str, Any] | None = None, progress: bool = True, force: bool = False,
                  root: Path | None = None) -> pd.DataFrame:
    """Train the generator-width × critic-size grid (same step budget per cell) and score each cell.

    Settings: the profile's ``experiments.grid`` (``overrides`` replace keys): ``model``,
    ``g_widths``, ``d_ratios`` (critic parameters / generator parameters), ``z_dim``, ``steps``,
    ``batch_size``, ``n_critic``, ``lr`` (Adam learning rate of G and critic; null = the model's default,
    1e-4 for WGAN-GP), ``n_eval`` (generated images scored per cell), ``track_points``
    (> 0: a :class:`MetricTracker` inside each cell's training, for FID-vs-FLOPs curves), ``seed``,
    ``cpu_threads`` (torch threads while training on the CPU: 1 is several times faster than 2 for
    these tiny models on a busy 2-core machine; null = torch's default).
    Each cell trains (seeded, resumable) in ``runs/<profile>/experiments/grid/<cell>/``; the final
    generator is scored with the profile's feature extractor against the real test split (FID, KID,
    IS, DDM, critic statistics, proxies — :meth:`MetricTracker.evaluate`), and the training FLOPs are
    counted (:func:`train_step_flops` × steps). One row per cell, also written to
    ``experiments/capacity_grid.csv`` and reused while the settings match (``force`` recomputes).
    An empty frame when ``experiments.grid.enabled`` is false.
    """
    from . import data as data_mod
    from .metrics.base import torch_threads
    from .train import pick_device

    prof = config.load_profile(profile)
    s = settings(profile, {"grid": overrides or {}})["grid"]
    if not s["enabled"]:
        return pd.DataFrame()
    dataset, data_seed = prof.get("dataset", "mnist"), int(prof.get("data_seed", 0))
    quant = dict(prof.get("quantitative") or {})
    key = _key({"grid": s, "dataset": dataset, "data_seed": data_seed, "quantitative": quant, "version": 2})
    out_dir = experiments_dir(profile, root)
    path = out_dir / "capacity_grid.csv"
    if not force and _cached(path, key):
        return pd.read_csv(path)
    train_data = data_mod.load(dataset, "train", seed=data_seed)
    shape = tuple(train_data.shape)
    model = s["model"]
    common = dict(z_dim=int(s["z_dim"]), n_critic=int(s["n_critic"]))
    plan = grid_plan(s["g_widths"], s["d_ratios"], shape, model, **common)
    device = pick_device(prof.get("device", "auto"))
    tracker = MetricTracker(profile, n=int(s["n_eval"]), ref_n=0, seed=int(s["seed"]), fid_boot=20,
                            extractor_device=str(device) if device.type == "cuda" else None)
    threads = s["cpu_threads"] if device.type == "cpu" else None
    rows = []
    bar = tqdm(list(plan.itertuples(index=False)), desc="capacity grid", disable=not progress, ncols=100, mininterval=2.0)
    with torch_threads(threads):
        for cell in bar:
            rows.append(_grid_cell(profile, s, cell, out_dir, train_data, tracker, device, quant, dataset, force, bar))
    df = pd.DataFrame(rows)
    _write_frame(path, df, key, {"settings": s, "dataset": dataset})
    return df


def _grid_cell(profile: str, s: dict[str, Any], cell: Any, out_dir: Path, train_data: Any, tracker: MetricTracker,
               device: torch.device, quant: dict[str, Any], dataset: str, force: bool, bar: Any) -> dict[str, Any]:
    """Train (or resume) one grid cell, score it, count its FLOPs; cached in ``<cell>/cell.json``."""
    from .models.flops import model_costs
    from .train import Trainer, TrainConfig

    model, shape = s["model"], tuple(train_data.shape)
    steps, bs = int(s["steps"]), int(s["batch_size"])
    common = dict(z_dim=int(s["z_dim"]), n_critic=int(s["n_critic"]))
    lr = {} if s["lr"] is None else {"lr_g": float(s["lr"]), "lr_d": float(s["lr"])}
    kw = dict(g_width=cell.g_width, d_width=cell.d_width, **common, **lr)
    tkey = _key({"model": model, "kw": kw, "steps": steps, "bs": bs, "seed": s["seed"], "dataset": dataset})
    cell_dir = out_dir / "grid" / f"{cell.cell}_{tkey[:8]}"  # one folder per training setting: never a stale checkpoint
    summary = cell_dir / "cell.json"
    ckey = _key({"train": tkey, "n_eval": s["n_eval"], "quantitative": quant, "track_points": s["track_points"],
                 "version": 2})
    if not force and summary.is_file() and json.loads(summary.read_text()).get("key") == ckey:
        return json.loads(summary.read_text())["row"]
    if force and cell_dir.exists():
        import shutil

        shutil.rmtree(cell_dir)
    cfg = TrainConfig(steps=steps, batch_size=bs, ckpt_every=steps, log_every=max(1, steps // 20),
                      grid_every=steps, keep_last=1, n_grid=16, seed=int(s["seed"]), device=str(device))
    trainer = Trainer(model, train_data, cell_dir, cfg, resume=True, **kw)
    if s["track_points"]:
        from .tracking import tracking_every

        trainer.add_callback(MetricTracker(profile, n=int(s["n_eval"]), ref_n=0, seed=int(s["seed"]),
                                           metrics=("fid", "kid", "critic")),
                             tracking_every(steps, int(s["track_points"])))
    t0 = time.perf_counter()
    res = trainer.fit(progress=False)
    train_s = res.seconds
    ev = tracker.evaluate(trainer.generator, trainer.D, device=trainer.device)
    eval_s = time.perf_counter() - t0 - train_s
    fl = train_step_flops(model, train_data, bs, **kw)
    costs = {r["net"]: r for r in model_costs(model, shape, **kw)}
    row = dict(cell._asdict())
    row.update(steps=steps, batch_size=bs, n_critic=int(s["n_critic"]), z_dim=int(s["z_dim"]), lr=s["lr"],
               g_mflops_per_sample=costs["G"]["mflops_per_sample"], d_mflops_per_sample=costs["D"]["mflops_per_sample"],
               flops_per_step=fl["total"], critic_flop_share=fl["critic_share"], total_flops=fl["total"] * steps,
               train_s=round(train_s, 3), resumed_from=res.resumed_from, eval_s=round(eval_s, 3),
               model_dir=str(cell_dir), **{k: v for k, v in ev.items() if k != "tracker_s"})
    io.write_json(summary, {"key": ckey, "row": row})
    bar.set_postfix(cell=cell.cell, fid=f"{ev.get('fid', float('nan')):.1f}", refresh=False)
    return row


def grid_tracking(grid: pd.DataFrame) -> pd.DataFrame:
    """The tracked curves of every grid cell (when ``track_points`` > 0), with cumulative FLOPs:
    columns ``cell, step, flops, fid, ...``."""
    parts = []
    for r in grid.itertuples(index=False):
        t = read_tracking(r.model_dir)
        if len(t):
            parts.append(t.assign(cell=r.cell, ratio=r.ratio, g_width=r.g_width, flops=t["step"] * r.flops_per_step))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def plot_capacity_grid(grid: pd.DataFrame, metric: str = "fid"):
    """Left: final ``metric`` per cell as a heatmap (generator width × critic/generator parameter
    ratio). Right: final ``metric`` against total training FLOPs, one line per generator width,
    marker labels = achieved ratio; curves over training when the cells were tracked."""
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [1, 1.3]})
    if grid.empty or metric not in grid.columns:
        for a in (a1, a2):
            a.text(0.5, 0.5, "capacity grid not run", ha="center", va="center")
            a.set_axis_off()
        return fig
    piv = grid.pivot_table(index="g_width", columns="ratio_requested", values=metric)
    im = a1.imshow(piv.to_numpy(float), cmap="viridis_r" if DIRECTIONS.get(metric) == "lower" else "viridis", aspect="auto")
    a1.set_xticks(range(piv.shape[1]), [f"{c:g}" for c in piv.columns])
    a1.set_yticks(range(piv.shape[0]), [str(i) for i in piv.index])
    for i in range(piv.shape[0]):
        for j in range(piv.shape[1]):
            v = piv.iat[i, j]
            if np.isfinite(v):
                a1.text(j, i, _fmt(v), ha="center", va="center", fontsize=8, color="white")
    a1.set_xlabel("critic / generator parameters (requested ratio)", fontsize=8)
    a1.set_ylabel("generator width (channels)", fontsize=8)
    fig.colorbar(im, ax=a1, label=f"final {metric.upper()} ({UNITS.get(metric, '')})")
    a1.set_title(f"final {metric.upper()} per cell ({int(grid['steps'].iloc[0])} steps each)", fontsize=9)
    tr = grid_tracking(grid) if "model_dir" in grid.columns else pd.DataFrame()
    for k, (gw, g) in enumerate(grid.sort_values("total_flops").groupby("g_width")):
        col = f"C{k}"
        a2.plot(g["total_flops"], g[metric], marker="o", color=col, label=f"G width {gw}")
        for r in g.itertuples(index=False):
            a2.annotate(f"{r.ratio:.2g}", (r.total_flops, getattr(r, metric)), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
        if not tr.empty and metric in tr.columns:
            for _, c in tr[tr["g_width"] == gw].groupby("cell"):
                a2.plot(c["flops"], c[metric], color=col, alpha=0.35, lw=0.8)
    a2.set_xscale("log")
    a2.set_xlabel("total training FLOPs (log scale)", fontsize=8)
    a2.set_ylabel(f"{metric.upper()} ({UNITS.get(metric, '')})", fontsize=8)
    a2.set_title(f"{metric.upper()} against compute (labels: critic/generator parameter ratio)", fontsize=9)
    a2.grid(alpha=0.3, which="both")
    a2.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def capacity_efficiency(grid: pd.DataFrame, metric: str = "fid", tol: float = FID_TOL) -> pd.DataFrame:
    """Per generator width: the best cell, the cheapest cell "as good as the best" (the most
    compute-efficient critic), and the change from the ≈½-size critic to the largest one.

    A cell is as good as the best when its ``metric`` is within ``tol`` (relative) of the best value
    or, when the grid has 95 % intervals (``<metric>_ci_low/high``), when its interval overlaps the
    best cell's. Columns: ``g_width, best_ratio, best, efficient_ratio, efficient, efficient_flops,
    half_ratio, half, strong_ratio, strong, strong_gain, strong_significant, n_as_good, n_cells``
    (``strong_gain = (half − strong) / half``: > 0 means the stronger critic improved the metric;
    ``strong_significant``: the two intervals do not overlap, or True when there are no intervals;
    ``n_as_good`` of the ``n_cells`` cells are as good as the best).
    """
    lo_c, hi_c = f"{metric}_ci_low", f"{metric}_ci_high"
    has_ci = lo_c in grid.columns and hi_c in grid.columns and grid[[lo_c, hi_c]].notna().all().all()
    rows = []
    for gw, g in grid.groupby("g_width"):
        g = g.dropna(subset=[metric])
        if g.empty:
            continue
        best = g.loc[g[metric].idxmin()]
        ok = g[metric] <= best[metric] * (1 + tol)
        if has_ci:
            ok |= g[lo_c] <= best[hi_c]
        eff = g[ok].loc[g[ok]["total_flops"].idxmin()]
        half = g.loc[(np.log(g["ratio"] / 0.5)).abs().idxmin()]
        strong = g.loc[g["ratio"].idxmax()]
        sig = bool(strong[hi_c] < half[lo_c] or half[hi_c] < strong[lo_c]) if has_ci else True
        rows.append(dict(g_width=int(gw), best_ratio=float(best["ratio"]), best=float(best[metric]),
                         efficient_ratio=float(eff["ratio"]), efficient=float(eff[metric]),
                         efficient_flops=float(eff["total_flops"]), half_ratio=float(half["ratio"]), half=float(half[metric]),
                         strong_ratio=float(strong["ratio"]), strong=float(strong[metric]),
                         strong_gain=(float(half[metric]) - float(strong[metric])) / float(half[metric]),
                         strong_significant=sig, n_as_good=int(ok.sum()), n_cells=len(g)))
    return pd.DataFrame(rows)


def verdict_capacity(grid: pd.DataFrame, metric: str = "fid", tol: float = FID_TOL) -> str:
    """Is a critic of about half the generator's parameters the most compute-efficient, and does a
    stronger critic bring no advantage (seed 001)?"""
    finding = ("(Liaudanskas 2018: a critic of at least about half the generator's capacity is the most "
               "compute-efficient, a stronger one brings no advantage)")
    if grid.empty or metric not in grid.columns:
        return f"{INCONCLUSIVE} {finding}: the capacity grid has not been run."
    eff = capacity_efficiency(grid, metric, tol)
    covers = grid["ratio"].min() < HALF_BAND[0] or grid["ratio"].max() > HALF_BAND[1]
    has_half = ((grid["ratio"] >= HALF_BAND[0]) & (grid["ratio"] <= HALF_BAND[1])).any()
    steps = f"after {int(grid['steps'].iloc[0])} steps" if "steps" in grid.columns else "at the end of training"
    ci = " or overlapping its 95 % interval" if f"{metric}_ci_low" in grid.columns else ""
    per = (f"{steps} (as good = within {tol:.0%} of the best {metric.upper()}{ci}): " + "; ".join(
        f"G width {r.g_width}: the cheapest critic as good as the best has {_fmt(r.efficient_ratio, 2)}× "
        f"the generator's parameters ({metric.upper()} {_fmt(r.efficient)} at {_fmt(r.efficient_flops)} FLOPs), the "
        f"{_fmt(r.strong_ratio, 2)}× critic changes {metric.upper()} by {-r.strong_gain:+.0%} against the {_fmt(r.half_ratio, 2)}× one"
        for r in eff.itertuples(index=False)))
    if not has_half or not covers or len(eff) == 0:
        return f"{INCONCLUSIVE} {finding}: the grid lacks a ≈½-size critic or a smaller/larger one to compare; {per}."
    in_half = [(HALF_BAND[0] <= r.efficient_ratio <= HALF_BAND[1]) for r in eff.itertuples(index=False)]
    below = [r.efficient_ratio < HALF_BAND[0] for r in eff.itertuples(index=False)]
    strong_helps = [r.strong_gain > tol and r.strong_significant and r.strong_ratio > HALF_BAND[1]
                    for r in eff.itertuples(index=False)]
    flat = [r.n_as_good == r.n_cells for r in eff.itertuples(index=False)]
    k = len(eff)
    if sum(flat) > k / 2:
        return (f"{INCONCLUSIVE} {finding}: every critic size is as good as the best for {sum(flat)} of {k} generator "
                f"widths, so capacity makes no measurable difference at this budget; {per}.")
    if sum(in_half) > k / 2 and not any(strong_helps):
        return f"{AGREE} {finding}: {per}."
    if sum(strong_helps) > k / 2:
        return (f"{DISAGREE} {finding}: a critic larger than half the generator improves {metric.upper()} by more than "
                f"{tol:.0%}; {per}.")
    if sum(below) > k / 2:
        return f"{DISAGREE} {finding}: critics below half the generator's size reach the best {metric.upper()} at lower cost; {per}."
    return f"{INCONCLUSIVE} {finding}: the generator widths disagree; {per}."


# ============================================================================ 3 · LIME across critics
@dataclass
class LimeAcross:
    """LIME maps of every grid critic on the same real images and superpixels.

    Attributes
    ----------
    summary : one row per critic (``cell, g_width, d_width, ratio, d_params, concentration,
        stroke_share, stroke_enrichment, mean_jaccard, mean_spearman``).
    jaccard, spearman : critic × critic overlap matrices (mean over images).
    chance : expected Jaccard of two random top-``k`` superpixel sets.
    images, masks, maps : the explained images ``(B, C, H, W)``, their superpixels ``(B, H, W)`` and
        each critic's maps ``{cell: (B, H, W)}``.
    """

    summary: pd.DataFrame
    jaccard: pd.DataFrame
    spearman: pd.DataFrame
    chance: float
    images: torch.Tensor
    masks: torch.Tensor
    maps: dict[str, torch.Tensor] = field(default_factory=dict)
    top: float = 0.2


def superpixel_weights(maps: torch.Tensor, masks: torch.Tensor) -> list[np.ndarray]:
    """The LIME coefficient of each superpixel: mean of the map over its pixels, per image."""
    out = []
    for m, s in zip(maps, masks):
        s = s.long().flatten()
        k = int(s.max()) + 1
        tot = torch.zeros(k, dtype=torch.float64).index_add_(0, s, m.double().flatten())
        cnt = torch.bincount(s, minlength=k).double()
        out.append((tot / cnt.clamp_min(1)).numpy())
    return out


def top_jaccard(a: np.ndarray, b: np.ndarray, top: float = 0.2) -> float:
    """Jaccard index of the top-``k`` entries of ``|a|`` and ``|b|``, ``k = max(1, round(top · K))``."""
    k = max(1, int(round(top * len(a))))
    sa = set(np.argsort(-np.abs(a), kind="stable")[:k].tolist())
    sb = set(np.argsort(-np.abs(b), kind="stable")[:k].tolist())
    return len(sa & sb) / len(sa | sb)


def chance_jaccard(n_items: int, top: float = 0.2) -> float:
    """Expected Jaccard index of two independent uniformly random ``k``-subsets of ``n_items``
    (hypergeometric overlap ``i``: ``E[i / (2k − i)]``)."""
    k = max(1, int(round(top * n_items)))
    from scipy.stats import hypergeom

    i = np.arange(0, k + 1)
    p = hypergeom(n_items, k, k).pmf(i)
    return float((p * i / (2 * k - i)).sum())


def stroke_share(maps: torch.Tensor, images: torch.Tensor, threshold: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Share of ``|map|`` mass on stroke pixels (image intensity, mean over channels, > ``threshold``
    in [-1, 1]) and the stroke area fraction, per image. Their ratio > 1: the map favours strokes."""
    stroke = images.float().mean(1) > threshold
    mass = maps.abs().double()
    share = (mass * stroke).flatten(1).sum(1) / mass.flatten(1).sum(1).clamp_min(1e-300)
    area = stroke.flatten(1).double().mean(1)
    return share.numpy(), area.numpy()


def lime_across_critics(profile: str, grid: pd.DataFrame | None = None, overrides: dict[str, Any] | None = None,
                        progress: bool = True, force: bool = False, root: Path | None = None) -> LimeAcross:
    """LIME (:func:`ganreport.interpret.lime.lime`) of every capacity-grid critic on the same
    ``n_images`` real test images, with the same SLIC superpixels and the same seeded perturbations,
    so the maps differ only through the critics.

    Per critic: ``concentration`` (share of ``|map|`` in the top 10 % of pixels,
    :func:`ganreport.interpret.measures.concentration`), ``stroke_share`` / ``stroke_enrichment``
    (share of ``|map|`` on the digit's strokes, and that share over the strokes' area fraction;
    > 1 = attends to strokes). Between critics: Jaccard index of their top-``top`` superpixels by
    ``|w|`` and Spearman ρ of the superpixel weights ``w``, averaged over images (chance level of the
    Jaccard index from :func:`chance_jaccard`). Settings: the profile's ``experiments.lime``
    (``n_images``, ``samples`` perturbations per image, ``segments`` SLIC superpixels, ``top``, ``seed``,
    ``cpu_threads``).
    Written to ``experiments/lime_across_critics.{csv,npz}`` and the two overlap matrices; reused while
    the settings and the grid match. Empty (no critics) when ``experiments.lime.enabled`` is false or
    the grid is empty.
    """
    from . import data as data_mod
    from .interpret import save_arrays
    from .interpret.lime import feature_masks, lime
    from .interpret.measures import concentration
    from .metrics.base import torch_threads
    from .train import load_discriminator

    prof = config.load_profile(profile)
    s = settings(profile, {"lime": overrides or {}})["lime"]
    if grid is None and s["enabled"]:
        grid = capacity_grid(profile, progress=progress, root=root)
    if not s["enabled"] or grid is None or grid.empty:
        empty = pd.DataFrame()
        return LimeAcross(empty, empty, empty, float("nan"), torch.zeros(0, 1, 1, 1), torch.zeros(0, 1, 1, dtype=torch.long),
                          {}, float(s["top"]))
    out_dir = experiments_dir(profile, root)
    path = out_dir / "lime_across_critics.csv"
    cells = grid[["cell", "g_width", "d_width", "ratio", "d_params", "model_dir"]].copy()
    key = _key({"lime": s, "cells": cells.drop(columns="model_dir").to_dict("list"),
                "fid": grid["fid"].round(6).tolist() if "fid" in grid else None, "version": 1})
    npz = out_dir / "lime_across_critics.npz"
    if not force and _cached(path, key) and npz.is_file():
        with np.load(npz) as z:
            arrays = {k: z[k] for k in z.files}
        summary = pd.read_csv(path)
        names = list(summary["cell"])
        jac = pd.read_csv(out_dir / "lime_overlap_jaccard.csv", index_col=0)
        rho = pd.read_csv(out_dir / "lime_overlap_spearman.csv", index_col=0)
        meta = json.loads(path.with_suffix(".json").read_text())
        return LimeAcross(summary, jac, rho, float(meta["chance"]), torch.from_numpy(arrays["images"]),
                          torch.from_numpy(arrays["masks"]), {n: torch.from_numpy(arrays["maps"][i]) for i, n in enumerate(names)},
                          float(s["top"]))
    test = data_mod.load(prof.get("dataset", "mnist"), "test", seed=int(prof.get("data_seed", 0)))
    g = torch.Generator().manual_seed(int(s["seed"]))
    idx = torch.randperm(len(test), generator=g)[:int(s["n_images"])]
    x = test.images[idx].float()
    masks = feature_masks(x, "slic", n_segments=int(s["segments"]))
    maps: dict[str, torch.Tensor] = {}
    weights: dict[str, list[np.ndarray]] = {}
    rows = []
    for r in tqdm(list(cells.itertuples(index=False)), desc="LIME across critics", disable=not progress, ncols=100,
                  mininterval=2.0):
        D, _ = load_discriminator(r.model_dir)
        with torch.random.fork_rng(devices=[]), torch_threads(s["cpu_threads"]):
            a = lime(D, x, n_samples=int(s["samples"]), masks=masks, seed=int(s["seed"]))
        m = a.mean(1)  # the coefficient is painted on every channel
        maps[r.cell] = m
        weights[r.cell] = superpixel_weights(m, masks)
        share, area = stroke_share(m, x)
        rows.append(dict(cell=r.cell, g_width=r.g_width, d_width=r.d_width, ratio=r.ratio, d_params=r.d_params,
                         concentration=float(concentration(m).double().mean()), stroke_share=float(share.mean()),
                         stroke_area=float(area.mean()), stroke_enrichment=float((share / np.maximum(area, 1e-12)).mean())))
    names = [r["cell"] for r in rows]
    jac = pd.DataFrame(np.nan, index=names, columns=names)
    rho = pd.DataFrame(np.nan, index=names, columns=names)
    for a, b in itertools.product(names, names):
        js, rs = [], []
        for wa, wb in zip(weights[a], weights[b]):
            js.append(top_jaccard(wa, wb, float(s["top"])))
            ok = np.std(wa) > 0 and np.std(wb) > 0
            rs.append(float(stats.spearmanr(wa, wb).statistic) if ok else float("nan"))
        jac.loc[a, b], rho.loc[a, b] = float(np.mean(js)), float(np.nanmean(rs)) if np.isfinite(rs).any() else float("nan")
    off = ~np.eye(len(names), dtype=bool)
    summary = pd.DataFrame(rows)
    if len(names) > 1:
        summary["mean_jaccard"] = [float(jac.to_numpy()[i][off[i]].mean()) for i in range(len(names))]
        summary["mean_spearman"] = [float(np.nanmean(rho.to_numpy()[i][off[i]])) for i in range(len(names))]
    chance = float(np.mean([chance_jaccard(int(mk.max()) + 1, float(s["top"])) for mk in masks]))
    io.write_text(out_dir / "lime_overlap_jaccard.csv", jac.to_csv())
    io.write_text(out_dir / "lime_overlap_spearman.csv", rho.to_csv())
    save_arrays(npz, images=x, masks=masks, maps=torch.stack([maps[n] for n in names]))
    _write_frame(path, summary, key, {"settings": s, "chance": chance})
    return LimeAcross(summary, jac, rho, chance, x, masks, maps, float(s["top"]))


def plot_lime_across_critics(res: LimeAcross, max_images: int = 4):
    """Rows: critics (by parameter ratio); columns: images with the signed LIME map (red raises the
    critic's score, blue lowers it); last column: the Jaccard overlap matrix."""
    import matplotlib.pyplot as plt

    from .viz import overlay

    if res.summary.empty:
        fig, ax = plt.subplots(figsize=(5, 1.5))
        ax.text(0.5, 0.5, "LIME across critics not run (disabled or no capacity grid)", ha="center", va="center")
        ax.set_axis_off()
        return fig
    summ = res.summary.sort_values(["g_width", "ratio"])
    names = list(summ["cell"])
    nb = min(max_images, len(res.images))
    fig = plt.figure(figsize=(1.35 * nb + 4.2, max(2.6, 1.3 * len(names) + 0.6)))
    gs = fig.add_gridspec(len(names), nb + 1, width_ratios=[1] * nb + [3.0])
    for i, (n, r) in enumerate(zip(names, summ.itertuples(index=False))):
        for j in range(nb):
            ax = fig.add_subplot(gs[i, j])
            overlay(ax, res.images[j], res.maps[n][j], signed=True)
            if j == 0:
                ax.text(-0.08, 0.5, f"G{r.g_width}/D{r.d_width}\n{r.ratio:.2g}×", transform=ax.transAxes, ha="right",
                        va="center", fontsize=7)
            if i == 0:
                ax.set_title(f"image {j + 1}", fontsize=8)
    ax = fig.add_subplot(gs[:, nb])
    jac = res.jaccard.loc[names, names].to_numpy(float)
    im = ax.imshow(jac, vmin=0, vmax=1, cmap="magma")
    labels = [f"G{r.g_width}/{r.ratio:.2g}×" for r in summ.itertuples(index=False)]
    ax.set_xticks(range(len(names)), labels, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(names)), labels, fontsize=7)
    fig.colorbar(im, ax=ax, fraction=0.046, label=f"Jaccard of top-{res.top:.0%} superpixels (chance {res.chance:.2f})")
    ax.set_title("overlap of LIME maps between critics", fontsize=9)
    fig.suptitle("LIME on critics of different capacity (rows: generator width / critic-to-generator parameter ratio)",
                 fontsize=9)
    fig.tight_layout()
    return fig


def verdict_lime(res: LimeAcross) -> str:
    """Do the critics attend to the strokes (seed 001), and do critics of different capacity look at
    the same features?"""
    finding = "(Liaudanskas 2018: the critic mostly focuses on data features that make intuitive sense)"
    s = res.summary
    if s.empty:
        return f"{INCONCLUSIVE} {finding}: no critic was explained."
    enr = s["stroke_enrichment"]
    n = len(s)
    off = ~np.eye(n, dtype=bool)
    mj = float(res.jaccard.to_numpy(float)[off].mean()) if n > 1 else float("nan")
    ms = float(np.nanmean(res.spearman.to_numpy(float)[off])) if n > 1 else float("nan")
    same = ("" if n < 2 else
            f"; between critics of different capacity the top-{res.top:.0%} superpixels overlap with Jaccard "
            f"{_fmt(mj, 2)} (chance {_fmt(res.chance, 2)}) and the superpixel weights correlate with mean ρ = {_rho(ms)}, so they "
            + ("look at largely the same features" if mj >= 2 * res.chance and ms >= WEAK_RHO else
               "look at different features" if mj < 1.5 * res.chance and ms < 0.2 else "partly share features"))
    what = (f"LIME puts {_fmt(s['stroke_share'].mean(), 2)} of its attribution mass on the strokes, which cover "
            f"{_fmt(s['stroke_area'].mean(), 2)} of the image (enrichment {_fmt(enr.min(), 3)}–{_fmt(enr.max(), 3)} over {n} critics)")
    if (enr > 1).all():
        return f"{AGREE} {finding}: {what}{same}."
    if (enr <= 1).all():
        return f"{DISAGREE} {finding}: {what}, no more than the strokes' share of the area{same}."
    return f"{INCONCLUSIVE} {finding}: {what}, above 1 for only {int((enr > 1).sum())} of {n} critics{same}."


# ============================================================================ 4 · DDM table (ModNet thesis Table 3.1)
ROLES = {"real_train": "training set (lower bound)", "real_test": "held-out test set"}


def ddm_table(profile: str, models: Sequence[str] | None = None, root: Path | None = None) -> pd.DataFrame:
    """Table 3.1 of the ModNet thesis for this study: DDM (eq. 3.4, lower = better, with its 95 %
    interval) of each architecture and of the real training and test sets, with IS and FID beside it
    and the rank of each. Read from ``metrics.jsonl`` (notebook 02, ``section='quantitative'``).

    Index: model; columns ``role, ddm, ddm_ci_low, ddm_ci_high, is, fid, n, rank_ddm, rank_is,
    rank_fid`` (ranks over all rows, 1 = best). The thesis' raw values are negative (a constant
    dropped), so only orderings compare. DDM grows as ``|G|`` shrinks; ``n`` shows each row's sample size.
    """
    from . import results
    from .stats import final_rows

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
            from .metrics.validate import saturation

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
    from .metrics.validate import saturation

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


def quant_vs_qual(profile: str, models: Sequence[str] | None = None, root: Path | None = None) -> dict[str, Any]:
    """Do the architectures rank the same by the quantitative metrics and by the interpretability
    measures (seed 000)? Reuses :func:`ganreport.stats.ranking_agreement` (mean rank over
    ``stats.QUANT_METRICS`` and over ``stats.QUAL_METRICS``), adds the exact permutation
    p-value, and — when the capacity grid and LIME results are on disk — the same question over the
    grid cells: Spearman ρ between −FID and the LIME stroke enrichment / concentration.

    Returns ``{"table": DataFrame(model -> quant_rank, qual_rank), "rho", "p", "n", "n_quant",
    "n_qual", "grid": {"n", "rho_stroke", "p_stroke", "rho_concentration", "p_concentration"} | None}``.
    """
    from . import results
    from .stats import QUAL_METRICS, QUANT_METRICS, ranking_agreement

    rows = results.load(profile, root)
    models = list(models or config.load_profile(profile).get("models") or [])
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


__all__ = ["settings", "experiments_dir", "tracking_frame", "tracking_correlations", "critic_offset_summary",
           "plot_tracking", "verdict_tracking", "verdict_offset", "generator_params", "critic_params",
           "critic_width_for_ratio", "grid_plan", "train_step_flops", "capacity_grid", "grid_tracking",
           "plot_capacity_grid", "capacity_efficiency", "verdict_capacity", "LimeAcross", "superpixel_weights",
           "top_jaccard", "chance_jaccard", "stroke_share", "lime_across_critics", "plot_lime_across_critics",
           "verdict_lime", "ddm_table", "missing_modes_curve", "plot_ddm", "verdict_ddm", "exact_spearman_p",
           "quant_vs_qual", "verdict_quant_qual", "exact_p_floor", "TRACK_RHO", "WEAK_RHO", "FID_TOL", "HALF_BAND"]
