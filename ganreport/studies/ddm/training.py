"""Experiment 2 of the DDM study (thesis §3.4.2, Figs. 3.3 and 3.6): DCGAN, weakened DCGAN and small
DCGAN trained (:func:`train_variants`, notebook 01) with a callback (:class:`DDMCallback`) that scores
a fixed-latent sample every ``every`` steps; :func:`over_training` (notebook 02) gathers DDM, FID, IS
and Parzen log-likelihoods over training against the real-train-vs-test baseline; does DDM rank DCGAN best and the weakened DCGAN worst
(:func:`verdict_ranking`)?
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from ... import io
from ...errors import DataError
from ...settings import Profile
from .common import _f, _frame, _join, _key, _load_cached, _names, _save, LABELS, single_thread, THESIS_ORDER
from .context import prepare, Study


class DDMCallback:
    """Trainer callback: every ``every`` steps, ``n_eval`` images from fixed latents (``seed``) of
    the generator in eval mode, scored by :meth:`Study.score`; returns ``{"model", "rows"}`` for
    ``callbacks.jsonl``."""

    def __init__(self, study: Study, model: str, n_eval: int, seed: int = 0) -> None:
        self.study, self.model, self.n_eval, self.seed = study, model, int(n_eval), int(seed)

    def __call__(self, trainer: Any, step: int) -> dict[str, Any]:
        from ...train import sample

        G = trainer.generator
        was = G.training
        G.eval()
        try:
            imgs = sample(G, self.n_eval, seed=self.seed + 10_001, device=trainer.device).cpu()
        finally:
            G.train(was)
        return {"model": self.model, "rows": self.study.score(imgs, seed=self.seed)}


def _train_key(st: dict[str, Any], model: str, study: Study) -> dict[str, Any]:
    return dict(model=model, model_kwargs=st["model_kwargs"], steps=st["steps"], every=st["every"],
                batch_size=st["batch_size"], seed=st["seed"], n_eval=st["n_eval"], scores=study.key())


def _model_dir(study: Study, model: str) -> Path:
    return study.out / "train" / f"{model}-{_key(_train_key(study.settings, model, study))}"


def _complete(mdir: Path, steps: int, every: int) -> bool:
    """A variant's training finished: its summary has all ``steps`` and every callback step is logged."""
    summary = mdir / "train_summary.json"
    done = io.read_jsonl(mdir / "callbacks.jsonl")
    return summary.is_file() and json.loads(summary.read_text()).get("steps") == steps and \
        {r["step"] for r in done} >= set(range(every, steps + 1, every))


@single_thread
def train_variants(st: dict[str, Any], prof: Profile, study: Study | None = None, progress: bool = True):
    """Train the ``models`` (DCGAN and its weakened / small variants; notebook 01) with a
    :class:`DDMCallback` every ``every`` steps, so DDM, FID, IS and Parzen log-likelihoods over
    training are recorded while the model trains (``callbacks.jsonl`` of each model folder). A model
    whose training finished is not retrained. Returns one row per model: ``model, steps, seconds``
    (wall time of this call), ``model_dir``."""
    from ...train import train_model

    study = study or prepare(prof, st, progress, train=True)
    steps, every = int(st["steps"]), int(st["every"])
    rows = []
    for model in st["models"]:
        mdir = _model_dir(study, model)
        t1 = time.perf_counter()
        if not _complete(mdir, steps, every):
            train_model(model, st["dataset"], prof, out_dir=mdir, seed=int(st["seed"]), steps=steps,
                        batch_size=int(st["batch_size"]), ckpt_every=steps, log_every=every, grid_every=steps,
                        data_seed=prof.data_seed, progress=progress,
                        callbacks=[(DDMCallback(study, model, int(st["n_eval"]), int(st["seed"])), every)],
                        **dict(st["model_kwargs"]))
        rows.append(dict(model=model, steps=steps, seconds=round(time.perf_counter() - t1, 3), model_dir=str(mdir)))
    return _frame(rows)


@single_thread
def over_training(st: dict[str, Any], prof: Profile, study: Study | None = None, progress: bool = True):
    """DDM, FID, IS and Parzen log-likelihoods over training of the ``models`` (what their
    :class:`DDMCallback` recorded while :func:`train_variants` trained them in notebook 01) and the
    real-train-vs-test baseline. Nothing is trained here: a model without its finished training is a
    :class:`DataError` that names notebook 01. Writes ``over_training.json``; tidy columns ``model,
    step, metric, feature, value, ci_low, ci_high[, bandwidth]``; the baseline rows have
    ``model="real_train"`` and ``step=None``."""
    from ... import data as data_mod

    study = study or prepare(prof, st, progress)
    key = dict(models=list(st["models"]), train={m: _train_key(st, m, study) for m in st["models"]})
    path = study.out / "over_training.json"
    cached = _load_cached(path, key)
    if cached is not None:
        return _frame(cached)
    steps, every = int(st["steps"]), int(st["every"])
    missing = [m for m in st["models"] if not _complete(_model_dir(study, m), steps, every)]
    if missing:
        raise DataError(f"the DDM study's {', '.join(missing)} of profile {prof.profile!r} are not trained "
                        f"({study.out / 'train'}); run notebook 01 (ddm.train_ddm_study) first")
    t0 = time.perf_counter()
    train = data_mod.load(st["dataset"], "train", seed=prof.data_seed)
    g = torch.Generator().manual_seed(int(st["seed"]) + 1)
    real = train.images[torch.randperm(len(train), generator=g)[:min(int(st["n_eval"]), len(train))]]
    rows = [dict(model="real_train", step=None, **r) for r in study.score(real, seed=int(st["seed"]))]
    dirs: dict[str, str] = {}
    for model in st["models"]:
        mdir = _model_dir(study, model)
        dirs[model] = str(mdir)
        for r in io.read_jsonl(mdir / "callbacks.jsonl"):
            rows += [dict(model=model, step=int(r["step"]), **x) for x in r["rows"]]
    _save(path, key, rows, time.perf_counter() - t0, model_dirs=dirs)
    return _frame(rows)


def final_values(df, metric: str = "ddm", feature: str = "logits") -> dict[str, float]:
    """``{model: value}`` at each model's last evaluated step (generated models only)."""
    d = df[(df["metric"] == metric) & (df["feature"] == feature) & (df["model"] != "real_train")]
    d = d.dropna(subset=["step"])
    last = d.sort_values("step").groupby("model").tail(1)
    return {m: float(v) for m, v in zip(last["model"], last["value"])}


def ordering(values: dict[str, float], higher_is_better: bool = False) -> list[str]:
    """Model names from best to worst."""
    return sorted(values, key=lambda m: -values[m] if higher_is_better else values[m])


def _baseline(df, metric: str, feature: str) -> float | None:
    b = df[(df["model"] == "real_train") & (df["metric"] == metric) & (df["feature"] == feature)]
    return float(b["value"].iloc[0]) if len(b) and b["value"].iloc[0] is not None else None


def verdict_ranking(df, feature: str = "logits") -> str:
    """Does DDM rank DCGAN best and the weakened DCGAN worst (thesis §3.4.2, MNIST)?"""
    vals = final_values(df, "ddm", feature)
    if len(vals) < 2:
        return "Inconclusive: fewer than two trained models were scored."
    order = ordering(vals)
    expected = [m for m in THESIS_ORDER if m in vals]
    d = df[(df["metric"] == "ddm") & (df["feature"] == feature) & (df["model"] != "real_train")].dropna(subset=["step"])
    step = int(d["step"].max())
    base = _baseline(df, "ddm", feature)
    last = d[d["step"] == step].set_index("model")
    overlap = []
    for a, b in zip(order, order[1:]):
        if {"ci_low", "ci_high"} <= set(last.columns) and last.loc[a, "ci_high"] is not None and \
                last.loc[b, "ci_low"] is not None and float(last.loc[a, "ci_high"]) >= float(last.loc[b, "ci_low"]):
            overlap.append(f"{a}/{b}")
    txt = (f"At step {step}, DDM on {feature} orders the generators {_names(order)} (lower is better; "
           + ", ".join(f"{m} {_f(vals[m], 4)}" for m in order)
           + (f"; real-train-vs-test baseline {_f(base)}" if base is not None else "") + " nats). ")
    fid = final_values(df, "fid", "prelogits")
    fid_order = ordering(fid)
    txt += f"FID orders them {_names(fid_order)}. "
    if order == expected:
        verdict = "Agrees with the thesis (DCGAN best, small DCGAN next, weakened DCGAN worst)"
    elif order[0] == expected[0] and order[-1] == expected[-1]:
        verdict = "Agrees with the thesis on the best and the worst model"
    elif order[0] == expected[0] or order[-1] == expected[-1]:
        which = f"{expected[0]} best" if order[0] == expected[0] else f"{expected[-1]} worst"
        verdict = f"Partly agrees with the thesis' order {_names(expected)} ({which})"
    else:
        verdict = f"Disagrees with the thesis' order {_names(expected)}"
    if overlap and "Disagrees" not in verdict:
        verdict += f", but the 95 % bootstrap intervals of {', '.join(overlap)} overlap, so the gap is not resolved"
    falling = []
    for m, g in d.groupby("model"):
        v = g.sort_values("step")["value"].to_numpy(float)
        if len(v) > 1 and v[-1] < 0.9 * v[-2]:
            falling.append(m)
    if falling:
        verdict += (f". DDM was still falling by more than 10 % between the last two evaluations for "
                    f"{', '.join(falling)}, so the ranking also reflects how fast each model learns")
    return txt + verdict + "."


def tracking_tau(df, metric: str, feature: str, higher_is_better: bool = True,
                 against: tuple[str, str] = ("ddm", "logits")) -> float:
    """Kendall τ between a metric's *badness* and DDM over every (model, step) evaluation point:
    1 = it tracks sample quality as DDM sees it, 0 = unrelated, −1 = reversed."""
    from scipy.stats import kendalltau

    d = df[(df["model"] != "real_train")].dropna(subset=["step"])
    a = d[(d["metric"] == metric) & (d["feature"] == feature)].set_index(["model", "step"])["value"]
    b = d[(d["metric"] == against[0]) & (d["feature"] == against[1])].set_index(["model", "step"])["value"]
    j = _join(a, b)
    if len(j) < 3:
        return float("nan")
    bad = -j["a"] if higher_is_better else j["a"]
    return float(kendalltau(bad, j["b"]).statistic)


def _ax_models(ax, df, metric: str, feature: str, ylabel: str, title: str, baseline: bool = True) -> None:
    d = df[(df["metric"] == metric) & (df["feature"] == feature)]
    for m, g in d[d["model"] != "real_train"].groupby("model", sort=False):
        g = g.sort_values("step")
        ax.plot(g["step"], g["value"], marker="o", ms=3, label=LABELS.get(m, m))
        if "ci_low" in g and g["ci_low"].notna().any():
            ax.fill_between(g["step"].to_numpy(float), g["ci_low"].astype(float), g["ci_high"].astype(float), alpha=0.15)
    b = _baseline(df, metric, feature)
    if baseline and b is not None:
        ax.axhline(b, color="black", lw=1.2, ls="--", label=LABELS["real_train"])
    vals = d["value"].astype(float)
    if metric in ("ddm", "fid") and len(vals) and (vals > 0).all() and vals.max() > 20 * vals.min():
        ax.set_yscale("log")
        ylabel += ", log scale"
    ax.set_xlabel("training step (generator updates)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)


def plot_over_training(df):
    """DDM (logits) and FID over training with the real-train-vs-test baseline (thesis Fig. 3.6)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    _ax_models(axes[0], df, "ddm", "logits", "DDM (nats, lower better)", "DDM on classifier logits")
    _ax_models(axes[1], df, "fid", "prelogits", "FID (pre-logit units², lower better)", "FID on pre-logits")
    _ax_models(axes[2], df, "is", "logits", "IS (effective classes, higher better)", "Inception-style score")
    axes[0].legend(fontsize=8)
    fig.suptitle("DDM study: DCGAN and its weakened / small variants over training (MNIST)", fontsize=11)
    fig.tight_layout()
    return fig
