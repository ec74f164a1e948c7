"""Experiment 5 of the DDM study (thesis §3.4.5, Fig. 3.7): n distinct training images replicated to
the set size; IS, DDM, FID and KID against n and where each saturates (IS saturates early, DDM
keeps improving).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
from tqdm import tqdm

from ...errors import DataError
from ...metrics import compute
from ...metrics.base import torch_threads
from ...metrics.features import real_features
from ...metrics.validate import replicate
from ...settings import Profile
from .common import _f, _frame, _load_cached, _save, single_thread
from .context import prepare, Study


@single_thread
def missing_modes(st: dict[str, Any], prof: Profile, study: Study | None = None, progress: bool = True):
    """Sets of ``set_size`` training images made of ``n`` distinct ones (``n`` in ``n_list``) replicated,
    ``repeats`` seeded draws each, scored against the test set with IS (logits), DDM (logits),
    FID and KID (pre-logits). Writes ``missing_modes.json``; columns ``n, repeat, replication,
    metric, value``. Summaries: :func:`modes_summary`, :func:`saturation`."""
    study = study or prepare(prof, st, progress)
    mm = st["missing_modes"]
    key = dict(mm={k: v for k, v in mm.items() if k != "tol"}, scores=study.key())  # tol only affects the analysis
    path = study.out / "missing_modes.json"
    cached = _load_cached(path, key)
    if cached is not None:
        return _frame(cached)
    t0 = time.perf_counter()
    main = study.nets[study.main]
    pool = real_features(main, st["dataset"], "train", prof.data_seed)
    size = min(int(mm["set_size"]), len(pool["logits"]))
    ns = [int(n) for n in mm["n_list"] if int(n) <= len(pool["logits"])]
    if not ns:
        raise DataError(f"ddm_study.missing_modes.n_list {mm['n_list']} has no n <= the {len(pool['logits'])} training images")
    jobs = [(n, r) for n in ns for r in range(int(mm["repeats"]))]
    rows = []
    tl, tp = study.test_emb["logits"], study.test_emb["prelogits"]
    with torch_threads(1):
        for n, r in tqdm(jobs, desc="missing modes", disable=not progress, ncols=100, mininterval=2.0):
            idx = replicate(len(pool["logits"]), n, size, seed=int(st["seed"]) * 1000 + r)
            lg, pl = pool["logits"][idx], pool["prelogits"][idx]
            vals = dict(
                is_=compute("is", None, lg, seed=r, splits=10).value,
                ddm=compute("ddm", tl, lg, seed=r, n_boot=0).value,
                fid=compute("fid", tp, pl, seed=r, n_boot=0).value,
                kid=compute("kid", tp, pl, seed=r, num_subsets=int(mm["kid_subsets"]),
                            subset_size=int(mm["kid_subset_size"])).value,
            )
            for m, v in vals.items():
                rows.append(dict(n=n, repeat=r, replication=size / n, set_size=size, metric=m.rstrip("_"), value=v))
    _save(path, key, rows, time.perf_counter() - t0)
    return _frame(rows)


DIRECTION = {"is": "higher", "ddm": "lower", "fid": "lower", "kid": "lower"}


def modes_summary(df):
    """Mean and standard deviation over repeats, per metric and ``n``."""
    return (df.groupby(["metric", "n"])["value"].agg(["mean", "std", "count"]).reset_index()
            .sort_values(["metric", "n"]).reset_index(drop=True))


def saturation(df, tol: float = 0.01, z: float = 2.0) -> dict[str, int]:
    """Per metric: the smallest ``n`` from which the mean over repeats is no longer worse than the
    final value (largest ``n``) — worse by at most ``z`` standard errors of the difference of the
    two means, or by at most ``tol`` times the whole change from the smallest to the largest ``n``.
    That is where the metric "reaches its optimum" in the thesis' sense (Fig. 3.7); a metric that
    keeps improving significantly until the largest ``n`` saturates only there."""
    s = modes_summary(df)
    out = {}
    for m, g in s.groupby("metric"):
        g = g.sort_values("n")
        v = g["mean"].to_numpy(float)
        se = (g["std"].fillna(0).to_numpy(float) / np.sqrt(g["count"].to_numpy(float)))
        sign = -1.0 if DIRECTION.get(m, "lower") == "higher" else 1.0
        worse = sign * (v - v[-1])  # > 0: worse than the final value
        band = np.maximum(z * np.sqrt(se ** 2 + se[-1] ** 2), tol * abs(v[-1] - v[0]))
        ok = worse <= band
        first = len(v) - 1
        for i in range(len(v) - 1, -1, -1):  # the first n from which every larger n is also saturated
            if not ok[i]:
                break
            first = i
        out[m] = int(g["n"].iloc[first])
    return out


def verdict_missing_modes(df, tol: float = 0.01) -> str:
    """Does IS saturate early while DDM keeps improving with more distinct images (§3.4.5)?"""
    sat = saturation(df, tol)
    s = modes_summary(df)
    ns = sorted(int(n) for n in s["n"].unique())
    nmax = ns[-1]
    stats = {m: g.set_index("n") for m, g in s.groupby("metric")}

    def gap(m: str, n: int) -> str:
        g = stats[m]
        d = float(g.loc[n, "mean"] - g.loc[nmax, "mean"])
        se = math.hypot(float(np.nan_to_num(g.loc[n, "std"])) / math.sqrt(g.loc[n, "count"]),
                        float(np.nan_to_num(g.loc[nmax, "std"])) / math.sqrt(g.loc[nmax, "count"]))
        return f"{_f(d)} ({_f(abs(d) / se, 2)} SE)" if se > 0 else f"{_f(d)}"

    txt = (f"With n ∈ {{{', '.join(map(str, ns))}}} distinct training images replicated to "
           f"{int(df['set_size'].iloc[0])} ({int(df['repeat'].nunique())} draws each), the metrics reach their "
           f"final (n = {nmax}) value within 2 standard errors at n = "
           + ", ".join(f"{m.upper()} {sat[m]}" for m in ("is", "ddm", "fid", "kid") if m in sat) + ". ")
    if "is" not in sat or "ddm" not in sat:
        return txt + "Inconclusive: IS or DDM is missing."
    prev = [n for n in ns if n < nmax]
    if prev:
        n1 = prev[-1]
        txt += (f"From n = {n1} to {nmax} IS changes by {gap('is', n1)} and DDM by {gap('ddm', n1)} nats "
                f"(value at n = {n1} minus final). ")
    if sat["is"] < sat["ddm"] and sat["ddm"] == nmax:
        return txt + (f"Agrees with the thesis: IS saturates at n = {sat['is']} while DDM keeps improving up to the "
                      f"largest n = {nmax}.")
    if sat["is"] < sat["ddm"]:
        return txt + (f"Partly agrees with the thesis: IS saturates earlier (n = {sat['is']}) than DDM "
                      f"(n = {sat['ddm']}), but DDM also stops improving before n = {nmax}.")
    return txt + f"Disagrees with the thesis: DDM saturates no later (n = {sat['ddm']}) than IS (n = {sat['is']})."


def plot_missing_modes(df):
    """IS, DDM, FID and KID (mean ± std over repeats) against the number of distinct images (Fig. 3.7)."""
    import matplotlib.pyplot as plt

    s = modes_summary(df)
    units = {"is": "IS (higher better)", "ddm": "DDM (nats, lower better)", "fid": "FID (lower better)",
             "kid": "KID (lower better)"}
    metrics = [m for m in ("is", "ddm", "fid", "kid") if m in set(s["metric"])]
    sat = saturation(df)
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.4), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        g = s[s["metric"] == m]
        ax.errorbar(g["n"], g["mean"], yerr=g["std"].fillna(0), marker="o", ms=3, capsize=3, label="mean ± std")
        ax.axvline(sat[m], color="tab:orange", ls=":", label=f"saturates at n = {sat[m]}")
        ax.set_xscale("log")
        ax.set_xlabel("distinct training images n (log scale)")
        ax.set_ylabel(units[m])
        ax.set_title(m.upper(), fontsize=10)
        ax.legend(fontsize=7)
    fig.suptitle("Missing modes: n distinct images replicated to the set size (thesis §3.4.5)", fontsize=11)
    fig.tight_layout()
    return fig
