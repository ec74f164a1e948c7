"""Experiments 1 and 4 of the DDM study (thesis §3.4.3, §3.4.4): the embedding networks and their
accuracies (:func:`classifiers`), and whether DDM orders the models the same on logits, pre-logits,
hypercolumns and on the logits of each network (Kendall τ: :func:`embedding_agreement`,
:func:`agreement`), with plots and verdicts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ... import io
from ...settings import Profile
from .common import _clean, _f, _frame, _save, single_thread
from .context import prepare, Study
from .training import _ax_models, final_values, ordering, over_training


@single_thread
def classifiers(st: dict[str, Any], prof: Profile, study: Study | None = None, progress: bool = True):
    """The embedding networks and their held-out test accuracy (thesis §3.4.4: all ≥ 98 %).
    Writes ``classifiers.json``; columns ``name, arch, seed, width, epochs, test_accuracy,
    train_seconds, role``."""
    study = study or prepare(prof, st, progress)
    rows = [{k: v for k, v in r.items() if k != "settings"} for r in study.net_info]
    _save(study.out / "classifiers.json", study.key(), rows, study.timings.get("nets", 0.0))
    return _frame(rows)


def _final_rows(df, metric: str, feature: str):
    d = df[(df["metric"] == metric) & (df["feature"] == feature) & (df["model"] != "real_train")]
    return d.dropna(subset=["step"]).sort_values("step").groupby("model").tail(1).set_index("model")


def _overlap(rows, a: str, b: str) -> bool:
    """Whether the 95 % intervals of models ``a`` and ``b`` overlap (no interval: False)."""
    try:
        la, ha, lb, hb = (float(rows.loc[m, c]) for m, c in ((a, "ci_low"), (a, "ci_high"), (b, "ci_low"), (b, "ci_high")))
    except (KeyError, TypeError, ValueError):
        return False
    if not all(math.isfinite(v) for v in (la, ha, lb, hb)):
        return False
    return la <= hb and lb <= ha


def embedding_agreement(df, features: Sequence[str]):
    """Kendall τ between DDM on each pair of ``features`` (embeddings): over every (model, step)
    evaluation point (``tau_points``) and over the models' final values (``tau_final``; 3 models
    give τ ∈ {−1, −⅓, ⅓, 1}). ``discordant``: model pairs the two embeddings order differently at
    the final step; ``unresolved``: every discordant pair is tied within its 95 % bootstrap
    intervals under at least one of the two embeddings. Columns ``a, b, tau_points, p_points,
    n_points, tau_final, order_a, order_b, same_order, discordant, unresolved``."""
    import pandas as pd
    from scipy.stats import kendalltau

    d = df[(df["metric"] == "ddm") & (df["model"] != "real_train")].dropna(subset=["step"])
    wide = d.pivot_table(index=["model", "step"], columns="feature", values="value")
    rows = []
    feats = [f for f in features if f in wide.columns]
    for i, a in enumerate(feats):
        for b in feats[i + 1:]:
            w = wide[[a, b]].dropna()
            tp = kendalltau(w[a], w[b]) if len(w) > 1 else None
            fa, fb = final_values(df, "ddm", a), final_values(df, "ddm", b)
            ms = sorted(set(fa) & set(fb))
            tf = kendalltau([fa[m] for m in ms], [fb[m] for m in ms]).statistic if len(ms) > 1 else float("nan")
            oa, ob = ordering({m: fa[m] for m in ms}), ordering({m: fb[m] for m in ms})
            ra, rb = _final_rows(df, "ddm", a), _final_rows(df, "ddm", b)
            disc = [(x, y) for j, x in enumerate(ms) for y in ms[j + 1:] if (fa[x] - fa[y]) * (fb[x] - fb[y]) < 0]
            unresolved = bool(disc) and all(_overlap(ra, x, y) or _overlap(rb, x, y) for x, y in disc)
            rows.append(dict(a=a, b=b, tau_points=float(tp.statistic) if tp else float("nan"),
                             p_points=float(tp.pvalue) if tp else float("nan"), n_points=len(w),
                             tau_final=float(tf), order_a=" < ".join(oa), order_b=" < ".join(ob), same_order=oa == ob,
                             discordant=", ".join(f"{x}/{y}" for x, y in disc), unresolved=unresolved))
    return pd.DataFrame(rows)


@single_thread
def agreement(st: dict[str, Any], prof: Profile, df=None, study: Study | None = None, progress: bool = True):
    """Both agreement tables (§3.4.3 embeddings; §3.4.4 embedding networks) from the over-training
    scores; writes ``agreement.json``. Returns ``{"embeddings": DataFrame, "networks": DataFrame}``."""
    study = study or prepare(prof, st, progress)
    df = df if df is not None else over_training(st, prof, study, progress)
    emb = embedding_agreement(df, ["logits", "prelogits", "hypercolumns"])
    nets = embedding_agreement(df, [f"{n}.logits" for n in study.nets])
    io.write_json(study.out / "agreement.json", _clean({"embeddings": emb.to_dict("records"),
                                                        "networks": nets.to_dict("records")}))
    return {"embeddings": emb, "networks": nets}


def verdict_agreement(tab, what: str = "embeddings") -> str:
    """Do the DDM orderings agree across embeddings (§3.4.3) / embedding networks (§3.4.4)?

    Agrees: the final orderings are the same (or differ only in pairs tied within their 95 %
    intervals) and DDM under the two embeddings agrees over training (τ ≥ 0.5 over every
    evaluation); inconclusive: only tied pairs differ but the per-step agreement is weak;
    disagrees: a pair resolved under both embeddings is ordered differently."""
    if tab is None or not len(tab):
        return f"Inconclusive: fewer than two {what} were scored."
    pairs = "; ".join(f"{r.a} vs {r.b}: τ = {_f(r.tau_points, 2)} over {r.n_points} points, final τ = {_f(r.tau_final, 2)}"
                      for r in tab.itertuples())
    orders = list(dict.fromkeys([r.order_a for r in tab.itertuples()] + [r.order_b for r in tab.itertuples()]))
    txt = f"DDM across {what}: {pairs}. Final orderings: " + " | ".join(orders) + ". "
    low = float(tab["tau_points"].min())
    resolved_conflict = tab[~tab["same_order"] & ~tab["unresolved"].astype(bool)]
    tied = tab[~tab["same_order"] & tab["unresolved"].astype(bool)]
    one = what[:-1]
    if len(resolved_conflict):
        r = resolved_conflict.iloc[0]
        return txt + (f"Disagrees with the thesis: {r.a} and {r.b} order {r.discordant} differently and the gap is "
                      f"resolved under both, so the ordering depends on the {one}.")
    note = ""
    if len(tied):
        note = ("The final orderings differ only in " + ", ".join(sorted(set(", ".join(tied["discordant"]).split(", "))))
                + ", which are tied within their 95 % intervals under at least one " + one + ". ")
    if low >= 0.5:
        return txt + note + f"Agrees with the thesis: the ordering of the architectures does not depend on the {one}."
    if len(tied):
        return txt + note + (f"Inconclusive: the tied pair decides the final ordering and the per-step agreement is weak "
                             f"(lowest τ {_f(low, 2)}).")
    return txt + (f"Agrees with the thesis on the final ordering, but the per-step scores agree only loosely "
                  f"(lowest τ {_f(low, 2)}).")


def verdict_networks(tab, info) -> str:
    """§3.4.4 verdict with the accuracy precondition (all classifiers ≥ 98 %)."""
    import pandas as pd

    info = pd.DataFrame(info)
    accs = ", ".join(f"{r.name} {100 * r.test_accuracy:.1f} %" for r in info.itertuples())
    txt = verdict_agreement(tab, "embedding networks")
    if (info["test_accuracy"] < 0.98).any():
        txt += (f" Test accuracies: {accs} — below the thesis' ≥ 98 % for some networks, so this is weaker "
                "evidence than the thesis asks for.")
    else:
        txt += f" Test accuracies: {accs} (all ≥ 98 %, as the thesis requires)."
    return txt


def plot_agreement(df, features: Sequence[str], title: str):
    """DDM over training under each embedding (one panel each), to compare the orderings."""
    import matplotlib.pyplot as plt

    feats = [f for f in features if f in set(df["feature"])]
    fig, axes = plt.subplots(1, len(feats), figsize=(3.8 * len(feats), 3.6), squeeze=False)
    for ax, f in zip(axes[0], feats):
        _ax_models(ax, df, "ddm", f, "DDM (nats, lower better)", f"DDM on {f}")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def plot_embeddings(df):
    """§3.4.3: DDM on logits, pre-logits and hypercolumns of the main classifier."""
    return plot_agreement(df, ["logits", "prelogits", "hypercolumns"], "DDM under three embeddings (thesis §3.4.3)")


def plot_networks(df, nets: Sequence[str]):
    """§3.4.4: DDM on the logits of each embedding network."""
    return plot_agreement(df, [f"{n}.logits" for n in nets], "DDM under different embedding networks (thesis §3.4.4)")
