"""Asymmetric capacity (Liaudanskas 2018, seed 001): a grid of generator width × critic size, the
critic's size set as a ratio of its parameter count to the generator's, trained for the same number
of steps; final FID/KID per cell against the training FLOPs. Published: "the most computationally
efficient way to get quality samples is to have the critic at at least about half of generator's
capacity ... There is no advantage in having the critic more powerful than the generator."

Parameter counting (:func:`generator_params`, :func:`critic_params`), the critic width for a
ratio (:func:`critic_width_for_ratio`), the grid plan (:func:`grid_plan`), the FLOPs of one training
step (:func:`train_step_flops`), the grid's training (:func:`train_capacity_grid`, notebook 01) and its
scores (:func:`capacity_grid`, notebook 02; cached under ``runs/<profile>/experiments/``), its plot, its efficiency summary and the verdict.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from ... import io
from ... import data as data_mod
from ...errors import ConfigError, DataError
from ...metrics.base import torch_threads
from ...models import MODELS, count_params, resolve_kwargs
from ...models.flops import model_costs
from ...settings import Profile
from ...train import Trainer, TrainConfig, checkpoint_sha256, load_discriminator, load_generator, pick_device
from ...train.tracking import DIRECTIONS, UNITS, MetricTracker, read_tracking, tracking_every
from ..verdict_text import AGREE, DISAGREE, INCONCLUSIVE, _fmt
from .common import _cached, _key, _write_frame, experiments_dir, settings

#: FID within this relative distance of a generator's best cell counts as "as good".
FID_TOL = 0.10
#: Critic/generator parameter ratios that count as "about half".
HALF_BAND = (0.35, 0.75)


def _spec_parts(model: str, **kw: Any):
    """The model's registry entry and its settings (defaults updated with ``kw``)."""
    return MODELS.get(model), resolve_kwargs(model, **kw)


def _count_on_meta(build, img_shape: tuple[int, int, int], kw: dict[str, Any]) -> int:
    """Parameter count of ``build(img_shape, **kw)`` built on the meta device (no memory, no init)."""
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


def _plan(prof: Profile, overrides: dict[str, Any] | None):
    """The grid settings, the training data and the cell plan of ``prof``."""
    s = settings(prof, {"grid": overrides or {}})["grid"]
    train_data = data_mod.load(prof.dataset, "train", seed=prof.data_seed)
    common = dict(z_dim=int(s["z_dim"]), n_critic=int(s["n_critic"]))
    return s, train_data, grid_plan(s["g_widths"], s["d_ratios"], tuple(train_data.shape), s["model"], **common)


def _cell_training(s: dict[str, Any], cell: Any, dataset: str) -> tuple[dict[str, Any], str]:
    """A cell's model keyword arguments and the key of its training setting (its folder's suffix)."""
    common = dict(z_dim=int(s["z_dim"]), n_critic=int(s["n_critic"]))
    lr = {} if s["lr"] is None else {"lr_g": float(s["lr"]), "lr_d": float(s["lr"])}
    kw = dict(g_width=cell.g_width, d_width=cell.d_width, **common, **lr)
    tkey = _key({"model": s["model"], "kw": kw, "steps": int(s["steps"]), "bs": int(s["batch_size"]),
                 "seed": s["seed"], "dataset": dataset})
    return kw, tkey


def _cell_dir(out_dir: Path, cell: Any, tkey: str) -> Path:
    return out_dir / "grid" / f"{cell.cell}_{tkey[:8]}"  # one folder per training setting: never a stale checkpoint


def train_capacity_grid(prof: Profile, overrides: dict[str, Any] | None = None, progress: bool = True,
                        force: bool = False, root: Path | None = None) -> pd.DataFrame:
    """Train the generator-width × critic-size grid, the same step budget per cell (notebook 01).

    Settings: the profile's ``experiments.grid`` (``overrides`` replace keys): ``model``,
    ``g_widths``, ``d_ratios`` (critic parameters / generator parameters), ``z_dim``, ``steps``,
    ``batch_size``, ``n_critic``, ``lr`` (Adam learning rate of G and critic; null = the model's default,
    1e-4 for WGAN-GP), ``track_points`` (> 0: a :class:`MetricTracker` inside each cell's training, for
    FID-vs-FLOPs curves), ``seed``, ``cpu_threads`` (torch threads while training on the CPU: 1 is
    several times faster than 2 for these tiny models on a busy 2-core machine; null = torch's default).
    Each cell trains (seeded, resumable) in ``runs/<profile>/experiments/grid/<cell>_<key>/``, whose
    ``train.json`` records the training key, wall time and resume point; a finished cell is not
    retrained (``force`` retrains from scratch). :func:`capacity_grid` scores the cells. Returns one
    row per cell (``cell, model_dir, train_s, resumed_from``); empty when the grid is disabled.
    """
    s, train_data, plan = _plan(prof, overrides)
    if not s["enabled"]:
        return pd.DataFrame()
    out_dir = experiments_dir(prof.profile, root)
    device = pick_device(prof.device)
    threads = s["cpu_threads"] if device.type == "cpu" else None
    steps, bs = int(s["steps"]), int(s["batch_size"])
    rows = []
    bar = tqdm(list(plan.itertuples(index=False)), desc="capacity grid (train)", disable=not progress, ncols=100,
               mininterval=2.0)
    with torch_threads(threads):
        for cell in bar:
            kw, tkey = _cell_training(s, cell, prof.dataset)
            cell_dir = _cell_dir(out_dir, cell, tkey)
            done = cell_dir / "train.json"
            if not force and (blob := io.read_keyed(done, tkey)) is not None:
                rows.append(_train_row(cell, cell_dir, blob["row"]))
                continue
            if force and cell_dir.exists():
                import shutil

                shutil.rmtree(cell_dir)
            cfg = TrainConfig(steps=steps, batch_size=bs, ckpt_every=steps, log_every=max(1, steps // 20),
                              grid_every=steps, keep_last=1, n_grid=16, seed=int(s["seed"]), device=str(device))
            trainer = Trainer(s["model"], train_data, cell_dir, cfg, resume=True, **kw)
            if s["track_points"]:
                trainer.add_callback(MetricTracker.from_profile(prof, n=int(s["n_eval"]), ref_n=0, seed=int(s["seed"]),
                                                                metrics=("fid", "kid", "critic")),
                                     tracking_every(steps, int(s["track_points"])))
            res = trainer.fit(progress=False)
            fl = train_step_flops(s["model"], train_data, bs, **kw)
            row = dict(train_s=round(res.seconds, 3), resumed_from=res.resumed_from, flops_per_step=fl["total"],
                       critic_flop_share=fl["critic_share"])
            io.write_keyed(done, tkey, {"row": row})
            rows.append(_train_row(cell, cell_dir, row))
    return pd.DataFrame(rows)


def _train_row(cell: Any, cell_dir: Path, row: dict[str, Any]) -> dict[str, Any]:
    """One row of :func:`train_capacity_grid` (the same column order whether trained now or read back)."""
    return {"cell": cell.cell, "model_dir": str(cell_dir),
            **{k: row[k] for k in ("train_s", "resumed_from", "flops_per_step", "critic_flop_share")}}


def capacity_grid(prof: Profile, overrides: dict[str, Any] | None = None, progress: bool = True, force: bool = False,
                  root: Path | None = None) -> pd.DataFrame:
    """Score every cell of the capacity grid that :func:`train_capacity_grid` trained (notebook 02).

    The final generator of each cell is scored with the profile's feature extractor against the real
    test split (FID, KID, IS, DDM, critic statistics, proxies — :meth:`MetricTracker.evaluate`) on
    ``n_eval`` generated images; the training FLOPs are those :func:`train_capacity_grid` counted
    (:func:`train_step_flops` × steps). One row per cell, also written to ``experiments/capacity_grid.csv``
    and reused while the settings and what produced the scores match (the feature extractor's weights,
    each cell's checkpoint SHA-256; ``force`` rescores). Nothing is trained here: a cell without its
    finished training is a :class:`DataError` that names notebook 01. An empty frame when
    ``experiments.grid.enabled`` is false.
    """
    s, train_data, plan = _plan(prof, overrides)
    if not s["enabled"]:
        return pd.DataFrame()
    dataset, data_seed = prof.dataset, prof.data_seed
    quant = dataclasses.asdict(prof.quantitative)
    out_dir = experiments_dir(prof.profile, root)
    device = pick_device(prof.device)
    tracker = MetricTracker.from_profile(prof, n=int(s["n_eval"]), ref_n=0, seed=int(s["seed"]), fid_boot=20,
                                         extractor_device=str(device) if device.type == "cuda" else None)
    # keyed on what produced the scores, not only on the settings: the feature extractor's weights and
    # each cell's checkpoint (a retrained cell or classifier is scored again, never read from disk)
    producers = {"extractor": tracker.extractor.key,
                 "checkpoints": {c.cell: checkpoint_sha256(_cell_dir(out_dir, c, _cell_training(s, c, dataset)[1]))
                                 for c in plan.itertuples(index=False)}}
    key = _key({"grid": s, "dataset": dataset, "data_seed": data_seed, "quantitative": quant, "producers": producers,
                "version": 4})
    path = out_dir / "capacity_grid.csv"
    if not force and _cached(path, key):
        return pd.read_csv(path)
    threads = s["cpu_threads"] if device.type == "cpu" else None
    rows = []
    bar = tqdm(list(plan.itertuples(index=False)), desc="capacity grid (score)", disable=not progress, ncols=100,
               mininterval=2.0)
    with torch_threads(threads):
        for cell in bar:
            rows.append(_score_cell(prof, s, cell, out_dir, train_data, tracker, device, producers, quant, force,
                                    bar))
    df = pd.DataFrame(rows)
    _write_frame(path, df, key, {"settings": s, "dataset": dataset})
    return df


def load_capacity_grid(prof: Profile, root: Path | None = None) -> pd.DataFrame:
    """What :func:`capacity_grid` wrote for ``prof`` (notebook 04: reads, never trains). Empty when
    ``experiments.grid`` is disabled; a :class:`DataError` saying what to run when nothing is on disk."""
    if not settings(prof)["grid"]["enabled"]:
        return pd.DataFrame()
    path = experiments_dir(prof.profile, root) / "capacity_grid.csv"
    if not path.is_file():
        raise DataError(f"no capacity grid in {path.parent}; run notebooks 01 (critic.train_capacity_grid) and 02 "
                        f"(critic.capacity_grid) for profile {prof.profile!r} first")
    return pd.read_csv(path)


def _score_cell(prof: Profile, s: dict[str, Any], cell: Any, out_dir: Path, train_data: Any, tracker: MetricTracker,
                device: torch.device, producers: dict[str, Any], quant: dict[str, Any], force: bool, bar: Any) -> dict[str, Any]:
    """Score one trained grid cell (its FLOPs from ``train.json``); cached in ``<cell>/cell.json``,
    keyed on the cell's checkpoint and the extractor's weights (``producers``)."""
    model, shape = s["model"], tuple(train_data.shape)
    steps, bs = int(s["steps"]), int(s["batch_size"])
    kw, tkey = _cell_training(s, cell, prof.dataset)
    cell_dir = _cell_dir(out_dir, cell, tkey)
    trained = io.read_keyed(cell_dir / "train.json", tkey)
    if trained is None:
        raise DataError(f"capacity-grid cell {cell.cell} of profile {prof.profile!r} is not trained ({cell_dir}); "
                        "run notebook 01 (critic.train_capacity_grid) first")
    trained = trained["row"]
    summary = cell_dir / "cell.json"
    ckey = _key({"train": tkey, "n_eval": s["n_eval"], "quantitative": quant, "track_points": s["track_points"],
                 "checkpoint": producers["checkpoints"][cell.cell], "extractor": producers["extractor"], "version": 4})
    if not force and (blob := io.read_keyed(summary, ckey)) is not None:
        return blob["row"]
    t0 = time.perf_counter()
    G, _ = load_generator(cell_dir, device=str(device))
    D, _ = load_discriminator(cell_dir, device=str(device))
    ev = tracker.evaluate(G, D, device=device)
    eval_s = time.perf_counter() - t0
    costs = {r["net"]: r for r in model_costs(model, shape, **kw)}
    row = dict(cell._asdict())
    row.update(steps=steps, batch_size=bs, n_critic=int(s["n_critic"]), z_dim=int(s["z_dim"]), lr=s["lr"],
               g_mflops_per_sample=costs["G"]["mflops_per_sample"], d_mflops_per_sample=costs["D"]["mflops_per_sample"],
               flops_per_step=trained["flops_per_step"], critic_flop_share=trained["critic_flop_share"],
               total_flops=trained["flops_per_step"] * steps, train_s=trained["train_s"],
               resumed_from=trained["resumed_from"], eval_s=round(eval_s, 3), model_dir=str(cell_dir), **{k: v for k, v in ev.items() if k != "tracker_s"})
    io.write_keyed(summary, ckey, {"row": row})
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


__all__ = ["generator_params", "critic_params", "critic_width_for_ratio", "grid_plan", "train_step_flops",
           "capacity_grid", "grid_tracking", "plot_capacity_grid", "capacity_efficiency", "verdict_capacity",
           "FID_TOL", "HALF_BAND"]
