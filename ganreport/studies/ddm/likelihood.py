"""Experiment 3 of the DDM study (thesis Fig. 3.5): AIS log-likelihood of each final generator under
``N(x; G(z), σ²I)`` for several σ (:func:`ais`, :func:`ais_spread`), and whether Parzen-window and
AIS log-likelihoods track sample quality (:func:`verdict_likelihoods`: the thesis says they do not).
"""

from __future__ import annotations

import math
import time
from typing import Any

from ...metrics.likelihood import ais_log_likelihood, gan_decoder
from ...settings import Profile
from .common import _f, _frame, _load_cached, _names, _save, LABELS, single_thread
from .context import prepare, Study
from .training import _ax_models, _model_dir, _train_key, final_values, ordering, tracking_tau


@single_thread
def ais(st: dict[str, Any], prof: Profile, study: Study | None = None, progress: bool = True):
    """AIS log-likelihood (nats per image, pixels in [0, 1]) of ``n_images`` test images under each
    final generator of :func:`over_training`, for every σ of ``ais.sigmas``. Writes ``ais.json``;
    columns ``model, sigma, mean, std, se, min, max, accept, step_size, n_images``."""
    from ...train import load_generator

    study = study or prepare(prof, st, progress)
    a = st["ais"]
    key = dict(ais=a, train={m: _train_key(st, m, study) for m in st["models"]})
    path = study.out / "ais.json"
    cached = _load_cached(path, key)
    if cached is not None:
        return _frame(cached)
    t0 = time.perf_counter()
    x = ((study.test_images[:int(a["n_images"])].double() + 1) / 2).flatten(1)
    rows = []
    for i, model in enumerate(st["models"]):
        G, _ = load_generator(_model_dir(study, model), device=str(study.device))
        res = ais_log_likelihood(gan_decoder(G), x, [float(s) for s in a["sigmas"]], G.z_dim,
                                 n_chains=int(a["n_chains"]), n_steps=int(a["n_steps"]),
                                 n_leapfrog=int(a["n_leapfrog"]), step_size=float(a["step_size"]),
                                 seed=int(st["seed"]) + i, progress=progress, device=study.device)
        for j, s in enumerate(res.sigmas):
            v = res.log_px[j]
            rows.append(dict(model=model, sigma=s, mean=float(v.mean()), std=float(v.std()) if len(v) > 1 else None,
                             se=float(v.std() / math.sqrt(len(v))) if len(v) > 1 else None, min=float(v.min()),
                             max=float(v.max()), accept=float(res.accept[j]), step_size=float(res.step_size[j]),
                             n_images=len(v), n_chains=res.n_chains, n_steps=res.n_steps))
    _save(path, key, rows, time.perf_counter() - t0)
    return _frame(rows)


def ais_spread(df) -> dict[str, dict[str, float]]:
    """Per model: the range of the mean AIS estimate over σ (nats per image) and the σ of its max."""
    out = {}
    for m, g in df.groupby("model", sort=False):
        out[m] = dict(spread=float(g["mean"].max() - g["mean"].min()), lo=float(g["mean"].min()),
                      hi=float(g["mean"].max()), best_sigma=float(g.loc[g["mean"].idxmax(), "sigma"]))
    return out


def verdict_likelihoods(df, ais_df=None) -> str:
    """Do Parzen-window and AIS log-likelihoods track sample quality (the thesis, Figs. 3.3 and 3.5:
    they do not)? Parzen is compared with DDM and FID (final ranking, and Kendall τ over every
    evaluation during training); AIS by how far it moves with the free σ."""
    ddm = ordering(final_values(df, "ddm", "logits"))
    fid = ordering(final_values(df, "fid", "prelogits"))
    parts, same, spaces = [], [], []
    for feat, label in (("pixels", "pixel space"), ("pca95", "PCA-95 % space")):
        v = final_values(df, "parzen_ll", feat)
        if not v:
            continue
        o = ordering(v, higher_is_better=True)
        tau = tracking_tau(df, "parzen_ll", feat)
        part = (f"Parzen in {label} ranks them {_names(o)} (best first; "
                + ", ".join(f"{m} {_f(v[m])}" for m in o) + f" nats/image), τ with DDM over training {_f(tau, 2)}")
        if "dcgan_weak" in v and "dcgan" in v and v["dcgan_weak"] > v["dcgan"]:
            part += ", preferring the weakened DCGAN to DCGAN as in the thesis' Fig. 3.3"
        parts.append(part)
        same.append(o == ddm)
        spaces.append(label)
    txt = f"DDM ranks the generators {_names(ddm)} and FID {_names(fid)}; " + "; ".join(parts) + ". "
    if not same:
        pv = "Parzen: inconclusive (no Parzen scores)."
    elif all(same):
        pv = (f"Parzen: disagrees with the thesis here — in {' and '.join(spaces)} it ranks the final generators "
              "as DDM does.")
    elif not any(same):
        pv = (f"Parzen: agrees with the thesis — in {' and '.join(spaces)} it ranks the generators differently "
              "from DDM.")
    else:
        ok = [sp for sp, sm in zip(spaces, same) if sm]
        pv = (f"Parzen: partly agrees with the thesis — in {' and '.join(ok)} it ranks the generators as DDM does, "
              "in the other space not.")
    txt += pv + " "
    if ais_df is None or not len(ais_df):
        return txt + "AIS: inconclusive (no AIS scores)."
    sp = ais_spread(ais_df)
    sig = sorted(ais_df["sigma"].unique())
    orders = {}
    for s_ in sig:
        g = ais_df[ais_df["sigma"] == s_]
        orders[s_] = ordering(dict(zip(g["model"], g["mean"])), higher_is_better=True)
    changes = len({tuple(o) for o in orders.values()}) > 1
    mx = max(v["spread"] for v in sp.values())
    txt += (f"AIS log-likelihoods move by up to {_f(mx)} nats per image across σ ∈ [{_f(sig[0])}, {_f(sig[-1])}] ("
            + ", ".join(f"{m} {_f(v['lo'])} to {_f(v['hi'])}" for m, v in sp.items()) + ")"
            + ("; the model ranking changes with σ" if changes else
               f"; the model ranking stays {_names(next(iter(orders.values())))} (best first)") + ". ")
    if mx >= 10.0:
        return txt + "AIS: agrees with the thesis — the estimate depends on the free σ by many nats."
    return txt + "AIS: disagrees with the thesis — the estimate moves by less than 10 nats over σ."


def plot_likelihoods(df, ais_df=None):
    """Parzen log-likelihood (pixels, PCA-95 %) over training beside DDM and FID, and the AIS
    estimate of each final generator against σ (thesis Figs. 3.3 and 3.5)."""
    import matplotlib.pyplot as plt

    n = 5 if ais_df is not None and len(ais_df) else 4
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.6))
    _ax_models(axes[0], df, "ddm", "logits", "DDM (nats, lower better)", "DDM (logits)")
    _ax_models(axes[1], df, "fid", "prelogits", "FID (lower better)", "FID (pre-logits)")
    _ax_models(axes[2], df, "parzen_ll", "pixels", "Parzen log-lik. (nats/image, higher better)", "Parzen, pixels")
    _ax_models(axes[3], df, "parzen_ll", "pca95", "Parzen log-lik. (nats/image, higher better)", "Parzen, PCA 95 %")
    if n == 5:
        ax = axes[4]
        for m, g in ais_df.groupby("model", sort=False):
            g = g.sort_values("sigma")
            ax.errorbar(g["sigma"], g["mean"], yerr=g["se"].fillna(0), marker="o", ms=3, capsize=2,
                        label=LABELS.get(m, m))
        sig = sorted(ais_df["sigma"].unique())
        ax.set_xscale("log")
        ax.set_xticks(sig, [_f(x) for x in sig])
        ax.minorticks_off()
        ax.set_yscale("symlog", linthresh=100)
        ax.set_xlabel("observation σ ([0, 1] intensity, log scale)")
        ax.set_ylabel("AIS log-lik. (nats/image, symlog)")
        ax.set_title("AIS vs σ (final generators)", fontsize=10)
    axes[0].legend(fontsize=7)
    fig.suptitle("Likelihood baselines beside DDM and FID", fontsize=11)
    fig.tight_layout()
    return fig
