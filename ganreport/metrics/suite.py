"""Every metric on one set of samples: generated images (or their features) against the real test
split, as tidy result rows (``results.make_row`` fields). Functions of samples and features only:
loading a checkpoint and sampling it is one level up, in :mod:`ganreport.evaluate`.

Which representation each metric sees (``feature`` column of the rows):

- the extractor's main output (``classifier.prelogits``, ``inception.pool``, ``pixels``): FID,
  KID, precision/recall/density/coverage, MMD (Gaussian and polynomial), C2ST 1-NN and net;
- its logits (``classifier.logits``): IS and DDM (eqs. 3.4, 3.5), as in the ModNet thesis;
- pixels: sharpness, noise, SSIM to the nearest real image, memorisation;
- the model's own discriminator/critic: ``critic_*``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..data import ImageData
from ..errors import ConfigError, DataError
from .base import METRICS, SINGLE_THREAD_MAX, Result, check_features, check_same_dim, torch_threads
from .features import Extractor, extract

FEATURE_METRICS = ("fid", "kid", "precision", "recall", "density", "coverage", "mmd", "mmd_poly",
                   "c2st_1nn", "c2st_net")
LOGIT_METRICS = ("is", "ddm", "ddm_train")
IMAGE_METRICS = ("sharpness", "noise", "ssim_nn", "memorization")
CRITIC_METRICS = ("critic_real", "critic_fake", "critic_gap", "critic_offset")
ALL_METRICS = FEATURE_METRICS + LOGIT_METRICS + IMAGE_METRICS + CRITIC_METRICS
PRDC = ("precision", "recall", "density", "coverage")

#: Options used by the evaluation (cheaper than the metric defaults where it matters on a CPU).
DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "fid": {"n_boot": 20},
    "kid": {"num_subsets": 50, "subset_size": 1000},
    "c2st_net": {"hidden": 32, "steps": 200},
    "memorization": {"n_boot": 200},
}
#: Lighter options for the validation experiments (many sets are scored).
FAST_OPTIONS: dict[str, dict[str, Any]] = {
    "fid": {"n_boot": 10},
    "kid": {"num_subsets": 20, "subset_size": 500},
    "c2st_net": {"hidden": 32, "steps": 150},
    "memorization": {"n_boot": 100},
    "precision": {"n_boot": 40},  # the half-sample intervals of precision ... coverage (one pass gives all four)
    "ddm": {"n_boot": 40},
    "ddm_train": {"n_boot": 40},
    "c2st_1nn": {"n_boot": 40},
    "mmd": {"n_blocks": 5},
    "mmd_poly": {"n_blocks": 5},
}


@dataclass
class RealData:
    """Real train/test images of a dataset and their (cached) features under one extractor."""

    dataset: str
    data_seed: int
    extractor: Extractor
    train: ImageData
    test: ImageData
    train_feats: dict[str, torch.Tensor]
    test_feats: dict[str, torch.Tensor]


def _opts(name: str, options: dict[str, dict[str, Any]] | None) -> dict[str, Any]:
    base = dict(DEFAULT_OPTIONS.get(name, {}))
    if options is not None:
        base = dict(options.get(name, base))
    return base


@torch.no_grad()
def critic_scores(critic: nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Raw critic/discriminator outputs ``D(x)`` (1-D), batched, eval mode."""
    critic.eval()
    dev = next(critic.parameters()).device
    return torch.cat([critic(images[i:i + batch_size].to(dev)).reshape(-1).cpu()
                      for i in range(0, len(images), batch_size)])


def evaluate_samples(fake: torch.Tensor, real: torch.Tensor, extractor: Extractor, *,
                     train: torch.Tensor | None = None, real_feats: dict[str, torch.Tensor] | None = None,
                     train_feats: dict[str, torch.Tensor] | None = None, fake_feats: dict[str, torch.Tensor] | None = None,
                     critic: nn.Module | None = None, metrics: Sequence[str] | None = None,
                     options: dict[str, dict[str, Any]] | None = None, seed: int = 0) -> dict[str, Result]:
    """Every requested metric of the images ``fake`` against the real images ``real``.

    Parameters
    ----------
    fake, real : (N, C, H, W) images in [-1, 1].
    extractor : feature extractor (``features.get_extractor``).
    train : training images; needed by ``ddm_train`` and ``memorization`` (skipped without).
    real_feats, train_feats, fake_feats : precomputed features (else extracted here).
    critic : the model's discriminator; the ``critic_*`` metrics are computed when given.
    metrics : names to compute (default: all that the inputs allow).
    options : per-metric options replacing ``DEFAULT_OPTIONS`` (e.g. ``FAST_OPTIONS``).

    Returns
    -------
    ``{metric: Result}``; each ``Result.extra["feature"]`` names the representation used.
    """
    with torch_threads(1 if len(fake) + len(real) <= SINGLE_THREAD_MAX else None):
        return _evaluate_samples(fake, real, extractor, train=train, real_feats=real_feats, train_feats=train_feats,
                                 fake_feats=fake_feats, critic=critic, metrics=metrics, options=options, seed=seed)


def _evaluate_samples(fake: torch.Tensor, real: torch.Tensor, extractor: Extractor, *,
                      train: torch.Tensor | None, real_feats: dict[str, torch.Tensor] | None,
                      train_feats: dict[str, torch.Tensor] | None, fake_feats: dict[str, torch.Tensor] | None,
                      critic: nn.Module | None, metrics: Sequence[str] | None,
                      options: dict[str, dict[str, Any]] | None, seed: int) -> dict[str, Result]:
    wanted = list(metrics) if metrics is not None else [m for m in ALL_METRICS
                                                         if m not in CRITIC_METRICS or critic is not None]
    unknown = [m for m in wanted if m not in METRICS]
    if unknown:
        raise ConfigError(f"unknown metric(s) {unknown}; known: {', '.join(METRICS.names())}")
    if ext_logits_missing := (extractor.logits is None):
        wanted = [m for m in wanted if m != "is"]  # IS needs class logits
    if train is None:
        wanted = [m for m in wanted if m not in ("ddm_train", "memorization")]
    check_same_dim(real, fake, "real images", "fake images")
    fake_feats = fake_feats or extract(extractor, fake)
    real_feats = real_feats or extract(extractor, real)
    if train is not None and train_feats is None and "ddm_train" in wanted:
        train_feats = extract(extractor, train)
    main, logit_key = extractor.main, (extractor.logits or extractor.main)
    fr, ff = check_features(real_feats[main], "real features"), check_features(fake_feats[main], "fake features")
    lr, lf = check_features(real_feats[logit_key], "real logits"), check_features(fake_feats[logit_key], "fake logits")
    label_main, label_logit = extractor.feature_name(main), extractor.feature_name(logit_key)
    out: dict[str, Result] = {}

    def put(name: str, res: Result, feature: str) -> None:
        res.name = name
        res.extra["feature"] = feature
        out[name] = res

    if any(m in wanted for m in PRDC):
        from .prdc import prdc

        o = _opts("precision", options)
        for name, res in prdc(fr, ff, seed=seed, **o).items():
            if name in wanted:
                put(name, res, label_main)
    real64, fake64 = real.double(), fake.double()
    scores = None
    if critic is not None and any(m in wanted for m in CRITIC_METRICS):
        scores = (critic_scores(critic, real).double(), critic_scores(critic, fake).double())
    for name in wanted:
        if name in PRDC:
            continue
        spec = METRICS.get(name)
        o = _opts(name, options)
        if name in LOGIT_METRICS:
            r, f, label = lr, lf, label_logit
        elif spec.inputs == "features":
            r, f, label = fr, ff, label_main
        elif name in CRITIC_METRICS:
            if scores is None:
                continue
            r, f, label = scores[0], scores[1], "critic"
        else:
            r, f, label = real64, fake64, "pixels"
        if name == "ddm_train":
            o["reference"] = train_feats[logit_key].double()
        if name == "memorization":
            r, o["heldout"] = train.double(), real64
        put(name, spec.fn(r, f, seed=seed, **o), label)
    if ext_logits_missing and metrics is not None and "is" in metrics:
        warnings.warn(f"extractor {extractor.name!r} has no logits: 'is' skipped", stacklevel=2)
    return out


def rows_from(results: dict[str, Result], model: str, *, profile: str = "", dataset: str = "", seed: int = 0,
              step: int | None = None, section: str = "quantitative", **extra: Any) -> list[dict[str, Any]]:
    """Tidy rows (``results.make_row``) of a ``{metric: Result}`` dict."""
    return [res.row(model, metric=name, feature=res.extra.get("feature", ""), profile=profile, dataset=dataset,
                    seed=seed, step=step, section=section, **extra)
            for name, res in results.items()]


def matched_size(n_samples: int, n_test: int) -> int:
    """The number of fakes and of reals every comparison uses: ``min(n_samples, n_test // 2)``.

    Most of these metrics depend on the sample sizes (FID and the k-NN metrics are biased at small
    n, coverage on identical distributions is ``1 − e^(−kM/N)``), so a model and the real baselines
    are compared only at the same sizes. The ideal-generator baseline ``real_test`` needs two
    disjoint sets of test images, so n is at most half the test split (offline MNIST: 1,250).
    """
    if n_samples < 1 or n_test < 2:
        raise DataError(f"need n_samples >= 1 and >= 2 test images, got {n_samples} and {n_test}")
    return min(int(n_samples), int(n_test) // 2)


def reference_split(n_test: int, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of two disjoint sets of ``n`` test images, drawn with ``seed``: the **reference** set
    every model and baseline is compared with, and the **held-out** set that plays an ideal
    generator (``real_test``)."""
    if 2 * n > n_test:
        raise DataError(f"two disjoint sets of {n} need {2 * n} test images; the split holds {n_test}")
    perm = torch.randperm(n_test, generator=torch.Generator().manual_seed(int(seed)))
    return perm[:n], perm[n:2 * n]


def size_fields(n_samples: int, n_test: int) -> dict[str, Any]:
    """Row fields that state the sizes of a comparison: ``n_fake``, ``n_real`` and ``size_note``
    (empty unless the profile's ``n_samples`` could not be matched)."""
    n = matched_size(n_samples, n_test)
    note = "" if n == n_samples else (f"matched at n = {n}: the test split holds {n_test} images, so the profile's "
                                      f"{n_samples} fakes were reduced to {n} against {n} reals")
    return {"n_fake": n, "n_real": n, "size_note": note}


def score_at_matched_size(fake: torch.Tensor, real: RealData, n_samples: int, seed: int = 0, *,
                          fake_feats: dict[str, torch.Tensor] | None = None, critic: nn.Module | None = None,
                          metrics: Sequence[str] | None = None, options: dict[str, dict[str, Any]] | None = None
                          ) -> dict[str, Result]:
    """:func:`evaluate_samples` of the first ``matched_size(n_samples, N_test)`` of ``fake`` against
    the same number of reference test images (:func:`reference_split` with ``seed``) — what every
    model and real baseline of a profile is scored with."""
    n = matched_size(n_samples, len(real.test))
    if len(fake) < n:
        raise DataError(f"{len(fake)} fake images given, {n} needed for the matched comparison")
    ref, _ = reference_split(len(real.test), n, seed)
    return evaluate_samples(fake[:n], real.test.images[ref], real.extractor, train=real.train.images,
                            real_feats={k: v[ref] for k, v in real.test_feats.items()}, train_feats=real.train_feats,
                            fake_feats=None if fake_feats is None else {k: v[:n] for k, v in fake_feats.items()},
                            critic=critic, metrics=metrics, options=options, seed=seed)


def real_baselines(real: RealData, n_samples: int = 256, seed: int = 0, profile: str = "",
                   metrics: Sequence[str] | None = None, options: dict[str, dict[str, Any]] | None = None
                   ) -> list[dict[str, Any]]:
    """Rows for two reference "generators" made of real images, at the models' sizes: with
    ``n = matched_size(n_samples, N_test)``, each is ``n`` images against the same ``n`` reference
    test images the models are scored with (:func:`score_at_matched_size`, same ``seed``):

    - ``real_train``: ``n`` training images (what a perfect memoriser would get: note
      ``memorization`` → 0 and ``ddm_train`` < 0);
    - ``real_test``: the ``n`` held-out test images of :func:`reference_split`, disjoint from the
      reference set (what a perfect generator of new images would get).

    Each row states ``n_fake``, ``n_real`` and a ``size_note`` when ``n < n_samples``.
    """
    n = matched_size(n_samples, len(real.test))
    it = torch.randperm(len(real.train), generator=torch.Generator().manual_seed(int(seed)))[:min(n, len(real.train))]
    res_tr = score_at_matched_size(real.train.images[it], real, n_samples, seed,
                                   fake_feats={k: v[it] for k, v in real.train_feats.items()}, metrics=metrics,
                                   options=options)
    _, held = reference_split(len(real.test), n, seed)
    res_te = score_at_matched_size(real.test.images[held], real, n_samples, seed,
                                   fake_feats={k: v[held] for k, v in real.test_feats.items()}, metrics=metrics,
                                   options=options)
    kw = dict(profile=profile, dataset=real.dataset, seed=seed, **size_fields(n_samples, len(real.test)))
    return rows_from(res_tr, "real_train", **kw) + rows_from(res_te, "real_test", **kw)


def results_table(rows: Sequence[dict[str, Any]] | Any, digits: int = 4):
    """Wide table ``metric x model`` of ``value [ci_low, ci_high]`` strings (from rows or a frame)."""
    import pandas as pd

    df = pd.DataFrame(list(rows)) if not isinstance(rows, pd.DataFrame) else rows

    def fmt(r: Any) -> str:
        v = f"{r['value']:.{digits}g}" if r["value"] is not None and pd.notna(r["value"]) else "nan"
        if pd.notna(r.get("ci_low")) and pd.notna(r.get("ci_high")):
            return f"{v} [{r['ci_low']:.{digits}g}, {r['ci_high']:.{digits}g}]"
        return v

    df = df.assign(cell=df.apply(fmt, axis=1),
                   arrow=df["direction"].map({"lower": "↓", "higher": "↑", "target": "↕"}).fillna(""))
    df["metric"] = df["metric"] + " " + df["arrow"]
    order = list(dict.fromkeys(df["model"]))
    return df.pivot(index="metric", columns="model", values="cell")[order]


def plot_bars(rows: Sequence[dict[str, Any]] | Any, metrics: Sequence[str] | None = None, ncols: int = 6):
    """One panel per metric: a bar per model with its 95 % CI; real baselines in grey."""
    import matplotlib.pyplot as plt
    import pandas as pd

    df = pd.DataFrame(list(rows)) if not isinstance(rows, pd.DataFrame) else rows
    metrics = list(metrics or dict.fromkeys(df["metric"]))
    models = list(dict.fromkeys(df["model"]))
    nrows = -(-len(metrics) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.5 * ncols, 2.5 * nrows), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, m in zip(axes.flat, metrics):
        sub = df[df["metric"] == m].set_index("model").reindex(models)
        sub = sub[sub["value"].notna()]  # e.g. no critic statistics for the real baselines
        vals = sub["value"].astype(float)
        lo = (vals - sub["ci_low"].astype(float)).clip(lower=0).fillna(0)
        hi = (sub["ci_high"].astype(float) - vals).clip(lower=0).fillna(0)
        cols = ["0.7" if mod.startswith("real_") else colours[models.index(mod) % len(colours)] for mod in sub.index]
        ax.bar(range(len(sub)), vals, yerr=[lo, hi], color=cols, capsize=3)
        ax.set_xticks(range(len(sub)))
        ax.set_xticklabels(list(sub.index), rotation=45, ha="right", fontsize=7)
        d = sub["direction"].dropna().iloc[0] if sub["direction"].notna().any() else "none"
        arrow = {"lower": " (lower better ↓)", "higher": " (higher better ↑)", "target": " (real value best ↕)"}
        ax.set_title(m + arrow.get(d, ""), fontsize=8)
        ax.set_ylabel(m, fontsize=7)
        ax.tick_params(axis="y", labelsize=6)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_axis_off()
    fig.tight_layout()
    return fig


__all__ = ["RealData", "results_table", "plot_bars", "evaluate_samples", "real_baselines", "rows_from", "critic_scores",
           "ALL_METRICS", "DEFAULT_OPTIONS", "FAST_OPTIONS"]
