"""The DDM study of the ModNet thesis (seed 004, chapter 3), reproduced on MNIST.

Experiments (each a function of the profile's ``ddm_study`` settings that writes its results as
JSON under ``runs/<profile>/ddm_study/`` and returns a tidy DataFrame), a plot and a ``verdict_*``
sentence for each:

1. :func:`classifiers` — the embedding networks: the cached feature classifier of notebook 02
   plus extra classifiers of other architectures/seeds (thesis §3.4.4 wants all at ≥ 98 %).
2. :func:`over_training` — DCGAN, weakened DCGAN (no BatchNorm in G) and small DCGAN (one layer
   fewer in G) trained with a Trainer callback that scores a fixed-latent sample every ``every``
   steps: DDM (thesis eq. 3.4) on every embedding, FID, IS and Parzen-window log-likelihoods in
   pixel and PCA-95 % space, with the real-train-vs-test baseline (thesis Fig. 3.6 and 3.3; the
   thesis ranks DCGAN < small < weakened, lower DDM is better).
3. :func:`ais` — AIS log-likelihood of each final generator under ``N(x; G(z), σ²I)`` for several
   σ (thesis Fig. 3.5: the estimate moves by many nats with σ).
4. Embedding agreement (§3.4.3, §3.4.4): :func:`embedding_agreement` — Kendall τ between the model
   orderings that DDM gives on logits, pre-logits and hypercolumns, and on the logits of each
   embedding network.
5. :func:`missing_modes` — n distinct training images replicated to the set size, ``repeats``
   draws: IS, DDM, FID and KID mean ± std, and where each saturates (§3.4.5, Fig. 3.7).
6. :func:`corruptions` — Gaussian noise, uniform noise (same standard deviation) and Gaussian blur
   on held-out real images: DDM change per unit σ in nats and bits (§3.4.6).

:func:`run_ddm_study` runs everything for a profile (skipping results already on disk with the
same settings) and returns ``{"classifiers", "over_training", "ais", "agreement", "missing_modes",
"corruptions", "verdicts", "seconds"}``.

Units: DDM is in nats (a KL estimate with a constant dropped, so only differences and orderings
mean something); 1 bit = ln 2 nats. Parzen and AIS log-likelihoods are nats per image with pixels
in [0, 1]. Noise σ is in [0, 1] intensity units, blur σ in pixels.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from . import config, io
from .errors import ConfigError, DataError
from .metrics import compute
from .metrics.base import torch_threads
from .metrics.features import (ClassifierExtractor, _affine_augment, accuracy, classifier as main_classifier,
                               extract, pool_hypercolumns, real_features)
from .metrics.likelihood import PCA, ais_log_likelihood, fit_pca, gan_decoder, parzen_score
from .metrics.validate import gaussian_blur, replicate

LN2 = math.log(2.0)
THESIS_ORDER = ("dcgan", "dcgan_small", "dcgan_weak")  # best -> worst, thesis §3.4.2 (MNIST)
LABELS = {"dcgan": "DCGAN", "dcgan_weak": "weakened DCGAN (no BN in G)", "dcgan_small": "small DCGAN (one layer fewer)",
          "real_train": "real train vs test"}

#: Defaults of the profile's ``ddm_study`` block (a profile overrides any key; nested dicts per key).
STUDY_DEFAULTS: dict[str, Any] = dict(
    dataset="mnist", seed=0, models=list(THESIS_ORDER),
    model_kwargs=dict(g_width=8, d_width=8, z_dim=32, ema=0.0),
    steps=400, every=100, batch_size=32,
    n_eval=300, n_test=2500, n_val=500,
    parzen=dict(n_test=500, pca_variance=0.95),
    ais=dict(n_images=4, sigmas=[0.02, 0.05, 0.1, 0.2], n_chains=2, n_steps=60, n_leapfrog=4, step_size=0.05),
    hypercolumns=dict(layers=["block1", "block2", "prelogits", "logits"], grid=1),
    classifiers=[dict(arch="smallcnn", seed=1, width=16, prelogit_dim=128, epochs=2, n_train=None),
                 dict(arch="lenet", seed=2, width=16, prelogit_dim=128, epochs=3, n_train=None)],
    missing_modes=dict(n_list=[10, 20, 100, 1000, 2000], repeats=5, set_size=2000, kid_subsets=10,
                       kid_subset_size=500, tol=0.01),
    corruptions=dict(n=500, gaussian=[0.0, 0.05, 0.1, 0.2, 0.3, 0.5], uniform=[0.0, 0.05, 0.1, 0.2, 0.3, 0.5],
                     blur=[0.0, 0.5, 1.0, 1.5, 2.0, 3.0]),
    n_boot=200,
)
CLASSIFIER_TRAIN_DEFAULTS: dict[str, Any] = dict(arch="smallcnn", seed=1, width=16, prelogit_dim=128, epochs=2,
                                                 batch_size=64, lr=3e-3, weight_decay=1e-4, dropout=0.25,
                                                 n_train=None, augment=True)
UNITS = {"gaussian": "σ ([0, 1] intensity)", "uniform": "σ ([0, 1] intensity, std of the uniform noise)",
         "blur": "σ (pixels)"}


# --------------------------------------------------------------------------- settings and files
def settings(profile: str) -> dict[str, Any]:
    """The ``ddm_study`` block of ``profiles/<profile>.yaml`` over :data:`STUDY_DEFAULTS`."""
    block = config.load_profile(profile).get("ddm_study") or {}
    return resolve_settings(block)


def resolve_settings(block: dict[str, Any]) -> dict[str, Any]:
    """Merge ``block`` over :data:`STUDY_DEFAULTS` (one level deep for dict values) and check it."""
    unknown = set(block) - set(STUDY_DEFAULTS)
    if unknown:
        raise ConfigError(f"unknown ddm_study setting(s) {sorted(unknown)}; valid: {', '.join(sorted(STUDY_DEFAULTS))}")
    s = copy.deepcopy(STUDY_DEFAULTS)
    for k, v in block.items():
        if isinstance(s[k], dict) and isinstance(v, dict):
            bad = set(v) - set(s[k])
            if bad and k != "model_kwargs":
                raise ConfigError(f"unknown ddm_study.{k} setting(s) {sorted(bad)}; valid: {', '.join(sorted(s[k]))}")
            s[k].update(v)
        else:
            s[k] = copy.deepcopy(v)
    for k in ("steps", "every", "batch_size", "n_eval", "n_test", "n_val"):
        if int(s[k]) < 1:
            raise ConfigError(f"ddm_study.{k} must be >= 1, got {s[k]}")
    if int(s["every"]) > int(s["steps"]):
        raise ConfigError(f"ddm_study.every ({s['every']}) exceeds steps ({s['steps']}): no evaluation would run")
    if any(float(x) <= 0 for x in s["ais"]["sigmas"]):
        raise ConfigError(f"ddm_study.ais.sigmas must all be > 0, got {s['ais']['sigmas']}")
    if not 0 < float(s["parzen"]["pca_variance"]) <= 1:
        raise ConfigError(f"ddm_study.parzen.pca_variance must be in (0, 1], got {s['parzen']['pca_variance']}")
    return s


def study_dir(profile: str, root: Path | None = None) -> Path:
    """``runs/<profile>/ddm_study/``."""
    return config.results_dir(profile, "ddm_study", root)


def _key(obj: Any) -> str:
    return io.settings_key(obj, 10)


def _clean(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, (np.floating, np.integer)):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _load_cached(path: Path, key: Any) -> list[dict[str, Any]] | None:
    """Rows of ``path`` when it exists and was written with the same ``key`` (settings)."""
    if not path.is_file():
        return None
    try:
        blob = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    if json.dumps(blob.get("key"), sort_keys=True, default=str) != json.dumps(_clean(key), sort_keys=True, default=str):
        return None
    return blob.get("rows")


def _save(path: Path, key: Any, rows: list[dict[str, Any]], seconds: float, **extra: Any) -> None:
    blob = _clean({"key": key, "rows": rows, "seconds": round(seconds, 3), **extra})
    io.write_text(path, json.dumps(blob, indent=1, default=str) + "\n")  # keeps the column order of the rows


def single_thread(fn):
    """Run ``fn`` with one intra-op torch thread: the study's models are tiny, and on a shared
    2-core CPU a second OpenMP thread makes them tens of times slower (threads wait for each other)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*a: Any, **kw: Any) -> Any:
        with torch_threads(1):
            return fn(*a, **kw)

    return wrapper


def _frame(rows: list[dict[str, Any]]):
    import pandas as pd

    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- embedding networks
@single_thread
@torch.enable_grad()  # trains even when called under no_grad (e.g. from a tracking callback)
def train_embedding_net(dataset: str = "mnist", data_seed: int = 0, progress: bool = False,
                        cache_dir: str | Path | None = None, **spec: Any) -> ClassifierExtractor:
    """Train (or load from the cache) one extra embedding classifier described by ``spec``
    (keys of :data:`CLASSIFIER_TRAIN_DEFAULTS`; ``arch`` in ``models.classifier.ARCHITECTURES``).

    Adam + one-cycle schedule, light affine augmentation, every draw from ``seed``; the held-out
    test accuracy goes to ``extractor.meta["test_accuracy"]``. Cached as safetensors + JSON under
    ``<cache>/ddm_study_classifiers/`` by a hash of the spec and the training data.
    """
    from . import data as data_mod
    from .models.classifier import ARCHITECTURES
    from .data import data_hash

    unknown = set(spec) - set(CLASSIFIER_TRAIN_DEFAULTS)
    if unknown:
        raise ConfigError(f"unknown embedding-classifier setting(s) {sorted(unknown)}; "
                          f"valid: {', '.join(sorted(CLASSIFIER_TRAIN_DEFAULTS))}")
    s = {**CLASSIFIER_TRAIN_DEFAULTS, **spec}
    if s["arch"] not in ARCHITECTURES:
        raise ConfigError(f"unknown classifier arch {s['arch']!r}; known: {', '.join(ARCHITECTURES)}")
    if int(s["epochs"]) < 1 or int(s["batch_size"]) < 1:
        raise ConfigError(f"classifier epochs and batch_size must be >= 1, got {s['epochs']}, {s['batch_size']}")
    train = data_mod.load(dataset, "train", seed=data_seed)
    test = data_mod.load(dataset, "test", seed=data_seed)
    if train.labels is None:
        raise DataError(f"dataset {dataset!r} has no labels: the embedding classifiers need them")
    key = _key(dict(s, dataset=dataset, data_seed=data_seed, data=data_hash(train), version=1))
    root = Path(cache_dir) if cache_dir is not None else config.CACHE_DIR
    path = root / "ddm_study_classifiers" / f"{dataset}_{s['arch']}_{key}.safetensors"
    n_classes = max(train.num_classes, int(train.labels.max()) + 1)
    arch = ARCHITECTURES[s["arch"]]

    def build() -> torch.nn.Module:
        return arch(train.shape, n_classes, width=int(s["width"]), prelogit_dim=int(s["prelogit_dim"]),
                    dropout=float(s["dropout"]))

    if path.is_file() and io.meta_path(path).is_file():
        try:
            tensors, meta = io.load_checkpoint(path)
            model = build()
            model.load_state_dict(tensors)
            return ClassifierExtractor(model.eval(), meta)
        except Exception:  # noqa: BLE001 - a corrupt cache entry is retrained
            pass
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(s["seed"]))
        model = build()
    rng = torch.Generator().manual_seed(int(s["seed"]))
    x_all, y_all = train.images, train.labels
    if s["n_train"] is not None:
        pick = torch.randperm(len(x_all), generator=rng)[:int(s["n_train"])]
        x_all, y_all = x_all[pick], y_all[pick]
    bs, epochs = int(s["batch_size"]), int(s["epochs"])
    opt = torch.optim.Adam(model.parameters(), lr=float(s["lr"]), weight_decay=float(s["weight_decay"]))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=float(s["lr"]),
                                                total_steps=epochs * math.ceil(len(x_all) / bs), pct_start=0.15)
    t0 = time.perf_counter()
    model.train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(s["seed"]) + 1)  # dropout draws
        for _ in tqdm(range(epochs), desc=f"train {s['arch']} (seed {s['seed']})", disable=not progress, ncols=100,
                      mininterval=2.0):
            order = torch.randperm(len(x_all), generator=rng)
            for i in range(0, len(x_all), bs):
                idx = order[i:i + bs]
                x = x_all[idx]
                if s["augment"]:
                    x = _affine_augment(x, rng, 10.0, 0.1, 0.1)
                loss = F.cross_entropy(model(x), y_all[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
    model.eval()
    meta = dict(s, dataset=dataset, data_seed=data_seed, cache_key=key, n_train=len(x_all), num_classes=n_classes,
                test_accuracy=accuracy(model, test.images, test.labels), n_test=len(test),
                train_seconds=round(time.perf_counter() - t0, 2))
    io.save_checkpoint(path, model.state_dict(), meta)
    return ClassifierExtractor(model, meta)


def _net_name(spec: dict[str, Any]) -> str:
    s = {**CLASSIFIER_TRAIN_DEFAULTS, **spec}
    return f"{s['arch']}-w{s['width']}-s{s['seed']}"


# --------------------------------------------------------------------------- the study context
@dataclass
class Study:
    """Shared state of one profile's study: settings, embedding networks, real data and features."""

    profile: str
    settings: dict[str, Any]
    out: Path
    nets: dict[str, ClassifierExtractor]  # name -> extractor; the first is the main classifier
    net_info: list[dict[str, Any]]
    test_images: torch.Tensor
    test_emb: dict[str, torch.Tensor]
    val01: torch.Tensor  # (n_val, d) validation pixels in [0, 1] (Parzen bandwidth)
    test01: torch.Tensor  # (n_parzen, d) test pixels in [0, 1] (Parzen evaluation)
    pca: PCA
    val_pca: torch.Tensor
    test_pca: torch.Tensor
    device: torch.device = torch.device("cpu")
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def main(self) -> str:
        return next(iter(self.nets))

    def key(self) -> dict[str, Any]:
        """What the scores depend on besides the generator (for the result caches)."""
        s = self.settings
        return dict(nets=[(n, e.key) for n, e in self.nets.items()], dataset=s["dataset"], seed=s["seed"],
                    n_test=s["n_test"], n_val=s["n_val"], parzen=s["parzen"], hyper=s["hypercolumns"],
                    n_boot=s["n_boot"], profile_quant=self.net_info[0].get("settings"))

    @torch.no_grad()
    def embed(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every embedding of ``images``: ``logits``, ``prelogits``, ``hypercolumns`` of the main
        classifier and ``<net>.logits`` of each embedding network (the main one included)."""
        hc = self.settings["hypercolumns"]
        layers = tuple(dict.fromkeys([*hc["layers"], "prelogits", "logits"]))
        out: dict[str, torch.Tensor] = {}
        for i, (name, ext) in enumerate(self.nets.items()):
            if i == 0:  # one pass gives the main classifier's logits, pre-logits and hypercolumn layers
                acts = ext.activations(images, layers)
                out["logits"], out["prelogits"] = acts["logits"].float(), acts["prelogits"].float()
                out["hypercolumns"] = pool_hypercolumns(acts, hc["layers"], int(hc["grid"]))
                out[f"{name}.logits"] = out["logits"]
            else:
                out[f"{name}.logits"] = extract(ext, images)["logits"]
        return out

    def score(self, images: torch.Tensor, seed: int = 0) -> list[dict[str, Any]]:
        """Rows ``metric, feature, value, ci_low, ci_high`` of a set of images (generated or real):
        DDM on every embedding, FID (pre-logits), IS (logits), Parzen LL in pixels and on PCA-95 %."""
        nb = int(self.settings["n_boot"])
        rows: list[dict[str, Any]] = []
        with torch_threads(1):
            emb = self.embed(images)
            for feat, f in emb.items():
                r = compute("ddm", self.test_emb[feat], f, seed=seed, n_boot=nb)
                rows.append(dict(metric="ddm", feature=feat, value=r.value, ci_low=r.ci_low, ci_high=r.ci_high))
            r = compute("fid", self.test_emb["prelogits"], emb["prelogits"], seed=seed, n_boot=0)
            rows.append(dict(metric="fid", feature="prelogits", value=r.value, ci_low=None, ci_high=None))
            r = compute("is", None, emb["logits"], seed=seed, splits=min(10, len(images)))
            rows.append(dict(metric="is", feature="logits", value=r.value, ci_low=r.ci_low, ci_high=r.ci_high))
            x01 = ((images.double() + 1) / 2).flatten(1)
            for feat, centers, val, test in (("pixels", x01, self.val01, self.test01),
                                             ("pca95", self.pca.transform(x01), self.val_pca, self.test_pca)):
                p = parzen_score(test, val, centers)
                rows.append(dict(metric="parzen_ll", feature=feat, value=p["ll"], ci_low=p["ll"] - 1.96 * p["se"],
                                 ci_high=p["ll"] + 1.96 * p["se"], bandwidth=p["bandwidth"]))
        return rows


@single_thread
def prepare(profile: str, st: dict[str, Any] | None = None, progress: bool = True) -> Study:
    """Load/train the embedding networks and the real data the experiments share."""
    from . import data as data_mod

    t0 = time.perf_counter()
    st = st or settings(profile)
    prof = config.load_profile(profile)
    ds, dseed = st["dataset"], int(prof.get("data_seed", 0))
    qkw = dict((prof.get("quantitative") or {}).get("classifier_kw") or {})
    from .train import pick_device

    dev = pick_device(prof.get("device", "auto"))
    main = main_classifier(ds, data_seed=dseed, progress=progress, device=str(dev), **qkw)
    nets = {f"smallcnn-w{main.meta['settings']['width']}-s{main.meta['seed']}": main}
    info = [dict(name=next(iter(nets)), arch="smallcnn", seed=main.meta["seed"], width=main.meta["settings"]["width"],
                 epochs=main.meta["settings"]["epochs"], test_accuracy=main.test_accuracy,
                 train_seconds=main.meta.get("train_seconds"), role="main (notebook 02's feature classifier)",
                 settings=main.meta["settings"])]
    t_nets = time.perf_counter()
    for spec in st["classifiers"]:
        name = _net_name(spec)
        if name in nets:
            raise ConfigError(f"ddm_study.classifiers: two embedding networks are both named {name!r}")
        ext = train_embedding_net(ds, dseed, progress=progress, **spec)
        ext = ClassifierExtractor(ext.model, ext.meta, dev)
        nets[name] = ext
        info.append(dict(name=name, arch=ext.meta["arch"], seed=ext.meta["seed"], width=ext.meta["width"],
                         epochs=ext.meta["epochs"], test_accuracy=ext.test_accuracy,
                         train_seconds=ext.meta.get("train_seconds"), role="extra", settings=None))
    t_nets = time.perf_counter() - t_nets
    g = torch.Generator().manual_seed(int(st["seed"]))
    test = data_mod.load(ds, "test", seed=dseed)
    val = data_mod.load(ds, "val", seed=dseed)
    train = data_mod.load(ds, "train", seed=dseed)
    ti = torch.randperm(len(test), generator=g)[:min(int(st["n_test"]), len(test))]
    vi = torch.randperm(len(val), generator=g)[:min(int(st["n_val"]), len(val))]
    pi = torch.randperm(len(test), generator=g)[:min(int(st["parzen"]["n_test"]), len(test))]
    test_images = test.images[ti]
    out = study_dir(profile)
    study = Study(profile, st, out, nets, info, test_images, {}, ((val.images[vi].double() + 1) / 2).flatten(1),
                  ((test.images[pi].double() + 1) / 2).flatten(1),
                  fit_pca(((train.images.double() + 1) / 2).flatten(1), float(st["parzen"]["pca_variance"])),
                  torch.empty(0), torch.empty(0), dev)
    study.val_pca, study.test_pca = study.pca.transform(study.val01), study.pca.transform(study.test01)
    study.test_emb = study.embed(test_images)
    study.timings["prepare"] = time.perf_counter() - t0
    study.timings["train_classifiers"] = t_nets
    return study


# --------------------------------------------------------------------------- 1. embedding networks
@single_thread
def classifiers(st: dict[str, Any], profile: str, study: Study | None = None, progress: bool = True):
    """The embedding networks and their held-out test accuracy (thesis §3.4.4: all ≥ 98 %).
    Writes ``classifiers.json``; columns ``name, arch, seed, width, epochs, test_accuracy,
    train_seconds, role``."""
    study = study or prepare(profile, st, progress)
    rows = [{k: v for k, v in r.items() if k != "settings"} for r in study.net_info]
    _save(study.out / "classifiers.json", study.key(), rows, study.timings.get("train_classifiers", 0.0))
    return _frame(rows)


# --------------------------------------------------------------------------- 2. over training
class DDMCallback:
    """Trainer callback: every ``every`` steps, ``n_eval`` images from fixed latents (``seed``) of
    the generator in eval mode, scored by :meth:`Study.score`; returns ``{"model", "rows"}`` for
    ``callbacks.jsonl``."""

    def __init__(self, study: Study, model: str, n_eval: int, seed: int = 0) -> None:
        self.study, self.model, self.n_eval, self.seed = study, model, int(n_eval), int(seed)

    def __call__(self, trainer: Any, step: int) -> dict[str, Any]:
        from .train import sample

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


@single_thread
def over_training(st: dict[str, Any], profile: str, study: Study | None = None, progress: bool = True):
    """Train the ``models`` (DCGAN and its weakened / small variants) with a :class:`DDMCallback`
    every ``every`` steps and the real-train-vs-test baseline. Writes ``over_training.json``;
    tidy columns ``model, step, metric, feature, value, ci_low, ci_high[, bandwidth]``; the
    baseline rows have ``model="real_train"`` and ``step=None``."""
    from . import data as data_mod
    from .train import train_model

    study = study or prepare(profile, st, progress)
    key = dict(models=list(st["models"]), train={m: _train_key(st, m, study) for m in st["models"]})
    path = study.out / "over_training.json"
    cached = _load_cached(path, key)
    if cached is not None:
        return _frame(cached)
    t0 = time.perf_counter()
    prof = config.load_profile(profile)
    dseed = int(prof.get("data_seed", 0))
    train = data_mod.load(st["dataset"], "train", seed=dseed)
    g = torch.Generator().manual_seed(int(st["seed"]) + 1)
    real = train.images[torch.randperm(len(train), generator=g)[:min(int(st["n_eval"]), len(train))]]
    rows = [dict(model="real_train", step=None, **r) for r in study.score(real, seed=int(st["seed"]))]
    seconds: dict[str, float] = {}
    dirs: dict[str, str] = {}
    for model in st["models"]:
        mdir = _model_dir(study, model)
        dirs[model] = str(mdir)
        steps, every = int(st["steps"]), int(st["every"])
        t1 = time.perf_counter()
        done = io.read_jsonl(mdir / "callbacks.jsonl")
        summary = mdir / "train_summary.json"
        complete = summary.is_file() and json.loads(summary.read_text()).get("steps") == steps and \
            {r["step"] for r in done} >= set(range(every, steps + 1, every))
        if not complete:
            train_model(model, st["dataset"], profile=profile, out_dir=mdir, seed=int(st["seed"]), steps=steps,
                        batch_size=int(st["batch_size"]), ckpt_every=steps, log_every=every, grid_every=steps,
                        data_seed=dseed, progress=progress,
                        callbacks=[(DDMCallback(study, model, int(st["n_eval"]), int(st["seed"])), every)],
                        **dict(st["model_kwargs"]))
            done = io.read_jsonl(mdir / "callbacks.jsonl")
        seconds[model] = time.perf_counter() - t1
        for r in done:
            rows += [dict(model=model, step=int(r["step"]), **x) for x in r["rows"]]
    _save(path, key, rows, time.perf_counter() - t0, model_dirs=dirs, model_seconds=seconds)
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


# --------------------------------------------------------------------------- 3. AIS
@single_thread
def ais(st: dict[str, Any], profile: str, study: Study | None = None, progress: bool = True):
    """AIS log-likelihood (nats per image, pixels in [0, 1]) of ``n_images`` test images under each
    final generator of :func:`over_training`, for every σ of ``ais.sigmas``. Writes ``ais.json``;
    columns ``model, sigma, mean, std, se, min, max, accept, step_size, n_images``."""
    from .train import load_generator

    study = study or prepare(profile, st, progress)
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


# --------------------------------------------------------------------------- 4. embedding agreement
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
def agreement(st: dict[str, Any], profile: str, df=None, study: Study | None = None, progress: bool = True):
    """Both agreement tables (§3.4.3 embeddings; §3.4.4 embedding networks) from the over-training
    scores; writes ``agreement.json``. Returns ``{"embeddings": DataFrame, "networks": DataFrame}``."""
    study = study or prepare(profile, st, progress)
    df = df if df is not None else over_training(st, profile, study, progress)
    emb = embedding_agreement(df, ["logits", "prelogits", "hypercolumns"])
    nets = embedding_agreement(df, [f"{n}.logits" for n in study.nets])
    io.write_json(study.out / "agreement.json", _clean({"embeddings": emb.to_dict("records"),
                                                        "networks": nets.to_dict("records")}))
    return {"embeddings": emb, "networks": nets}


# --------------------------------------------------------------------------- 5. missing modes
@single_thread
def missing_modes(st: dict[str, Any], profile: str, study: Study | None = None, progress: bool = True):
    """Sets of ``set_size`` training images made of ``n`` distinct ones (``n`` in ``n_list``) replicated,
    ``repeats`` seeded draws each, scored against the test set with IS (logits), DDM (logits),
    FID and KID (pre-logits). Writes ``missing_modes.json``; columns ``n, repeat, replication,
    metric, value``. Summaries: :func:`modes_summary`, :func:`saturation`."""
    study = study or prepare(profile, st, progress)
    mm = st["missing_modes"]
    key = dict(mm={k: v for k, v in mm.items() if k != "tol"}, scores=study.key())  # tol only affects the analysis
    path = study.out / "missing_modes.json"
    cached = _load_cached(path, key)
    if cached is not None:
        return _frame(cached)
    t0 = time.perf_counter()
    prof = config.load_profile(profile)
    main = study.nets[study.main]
    pool = real_features(main, st["dataset"], "train", int(prof.get("data_seed", 0)))
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


# --------------------------------------------------------------------------- 6. corruptions
def corrupt(images: torch.Tensor, kind: str, sigma: float, seed: int = 0) -> torch.Tensor:
    """``gaussian``: add N(0, σ²) noise in [0, 1] intensity units; ``uniform``: add U(−σ√3, σ√3)
    (the same standard deviation σ); ``blur``: Gaussian blur of σ pixels. Clipped to [−1, 1]."""
    if sigma < 0:
        raise ConfigError(f"corruption sigma must be >= 0, got {sigma}")
    if sigma == 0:
        return images.clone()
    g = torch.Generator().manual_seed(int(seed))
    if kind == "gaussian":
        return (images + 2 * sigma * torch.randn(images.shape, generator=g)).clamp(-1, 1)
    if kind == "uniform":
        return (images + 2 * sigma * math.sqrt(3) * (2 * torch.rand(images.shape, generator=g) - 1)).clamp(-1, 1)
    if kind == "blur":
        return gaussian_blur(images, sigma)
    raise ConfigError(f"unknown corruption {kind!r}; known: gaussian, uniform, blur")


@single_thread
def corruptions(st: dict[str, Any], profile: str, study: Study | None = None, progress: bool = True):
    """DDM (main classifier's logits, against the test set) of ``n`` held-out real images (the
    validation split) corrupted at each level. Writes ``corruptions.json``; columns
    ``corruption, sigma, ddm, ci_low, ci_high, delta_nats, delta_bits`` (change from clean)."""
    from . import data as data_mod

    study = study or prepare(profile, st, progress)
    c = st["corruptions"]
    key = dict(c=c, scores=study.key())
    path = study.out / "corruptions.json"
    cached = _load_cached(path, key)
    if cached is not None:
        return _frame(cached)
    t0 = time.perf_counter()
    prof = config.load_profile(profile)
    val = data_mod.load(st["dataset"], "val", seed=int(prof.get("data_seed", 0)))
    g = torch.Generator().manual_seed(int(st["seed"]) + 2)
    imgs = val.images[torch.randperm(len(val), generator=g)[:min(int(c["n"]), len(val))]]
    main = study.nets[study.main]
    rows = []
    jobs = [(k, float(s)) for k in ("gaussian", "uniform", "blur") for s in c[k]]
    clean = None
    with torch_threads(1):
        for i, (kind, s) in enumerate(tqdm(jobs, desc="corruptions", disable=not progress, ncols=100, mininterval=2.0)):
            if s == 0 and clean is not None:
                r = clean
            else:
                f = extract(main, corrupt(imgs, kind, s, seed=int(st["seed"]) + i))["logits"]
                r = compute("ddm", study.test_emb["logits"], f, seed=int(st["seed"]), n_boot=int(st["n_boot"]))
                if s == 0:
                    clean = r
            rows.append(dict(corruption=kind, sigma=s, ddm=r.value, ci_low=r.ci_low, ci_high=r.ci_high))
    base = {}
    for row in rows:
        if row["sigma"] == 0:
            base[row["corruption"]] = row["ddm"]
    if clean is None:
        clean = compute("ddm", study.test_emb["logits"], extract(main, imgs)["logits"], seed=int(st["seed"]), n_boot=0)
    for row in rows:
        row["delta_nats"] = row["ddm"] - base.get(row["corruption"], clean.value)
        row["delta_bits"] = row["delta_nats"] / LN2
    _save(path, key, rows, time.perf_counter() - t0)
    return _frame(rows)


def corruption_slopes(df):
    """Per corruption: least-squares slope of DDM against σ (through all levels) in nats and bits per
    unit σ (and, for noise, per 8-bit grey level σ = 1/255); ``monotone``: DDM never falls with
    non-overlapping 95 % intervals and ends clearly above clean; ``strict``: it rises at every level;
    ``flat_levels``: levels whose DDM stays within the previous level's interval."""
    import pandas as pd

    rows = []
    for kind, g in df.groupby("corruption", sort=False):
        g = g.sort_values("sigma")
        x, y = g["sigma"].to_numpy(float), g["ddm"].to_numpy(float)
        lo = g["ci_low"].astype(float).fillna(g["ddm"]).to_numpy() if "ci_low" in g else y
        hi = g["ci_high"].astype(float).fillna(g["ddm"]).to_numpy() if "ci_high" in g else y
        slope = float(np.polyfit(x, y, 1)[0]) if len(x) > 1 and np.ptp(x) > 0 else float("nan")
        falls = [i for i in range(1, len(y)) if hi[i] < lo[i - 1]]
        flat = [float(x[i]) for i in range(1, len(y)) if lo[i - 1] <= y[i] <= hi[i - 1]]
        rows.append(dict(corruption=kind, unit=UNITS.get(kind, "σ"), nats_per_sigma=slope, bits_per_sigma=slope / LN2,
                         bits_per_grey_level=slope / LN2 / 255 if kind in ("gaussian", "uniform") else float("nan"),
                         max_delta_bits=float((y[-1] - y[0]) / LN2),
                         monotone=bool(not falls and len(y) > 1 and lo[-1] > hi[0]),
                         strict=bool(np.all(np.diff(y) > 0)), flat_levels=flat))
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- verdicts
def _f(v: float | None, nd: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:.{nd}g}" if abs(v) < 1e5 else f"{v:.3e}"


def _names(order: Sequence[str]) -> str:
    return " < ".join(order)


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


def _join(a, b):
    import pandas as pd

    return pd.concat({"a": a, "b": b}, axis=1).dropna()


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


def verdict_corruptions(df) -> str:
    """Does DDM worsen with every corruption, and by how many bits per unit σ (§3.4.6)?"""
    sl = corruption_slopes(df)
    per = []
    for r in sl.itertuples():
        t = f"{r.corruption} {_f(r.bits_per_sigma)} bits per {r.unit}"
        if math.isfinite(r.bits_per_grey_level):
            t += f" (= {_f(r.bits_per_grey_level)} bits per 8-bit grey level of σ)"
        t += f", {_f(r.max_delta_bits)} bits from clean to the strongest level"
        per.append(t)
    txt = "Least-squares DDM change per unit σ: " + "; ".join(per) + ". "
    flat = [f"{r.corruption} at σ = {', '.join(_f(v) for v in r.flat_levels)}" for r in sl.itertuples() if r.flat_levels]
    if flat:
        txt += "DDM stays within the previous level's 95 % interval for " + "; ".join(flat) + ". "
    txt += ("The thesis reports about 10 bits per unit σ for blur and about 12 for additive noise on ImageNet "
            "(another embedding, image size and unstated σ units), so the magnitudes compare only loosely. ")
    if sl["monotone"].all():
        return txt + "Agrees with the thesis: DDM never decreases significantly and ends far above clean for every corruption."
    bad = ", ".join(sl.loc[~sl["monotone"], "corruption"])
    return txt + f"Partly agrees with the thesis: DDM falls significantly somewhere (or does not rise) for {bad}."


# --------------------------------------------------------------------------- plots
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


def plot_corruptions(df):
    """DDM change (bits) against corruption strength, one panel per kind (thesis §3.4.6)."""
    import matplotlib.pyplot as plt

    kinds = list(dict.fromkeys(df["corruption"]))
    fig, axes = plt.subplots(1, len(kinds), figsize=(3.8 * len(kinds), 3.4), squeeze=False)
    sl = corruption_slopes(df).set_index("corruption")
    for ax, k in zip(axes[0], kinds):
        g = df[df["corruption"] == k].sort_values("sigma")
        ax.plot(g["sigma"], g["delta_bits"], marker="o", ms=3,
                label=f"slope {_f(sl.loc[k, 'bits_per_sigma'])} bits per unit σ")
        ax.set_xlabel(UNITS.get(k, "σ"))
        ax.set_ylabel("DDM change from clean (bits)")
        ax.set_title(k, fontsize=10)
        ax.legend(fontsize=7)
    fig.suptitle("DDM under corruptions, in information units (thesis §3.4.6)", fontsize=11)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- everything
def verdicts(res: dict[str, Any]) -> dict[str, str]:
    """The verdict sentences of a :func:`run_ddm_study` / :func:`load_ddm_study` result."""
    ot = res["over_training"]
    st = res.get("settings") or {}
    tol = float((st.get("missing_modes") or {}).get("tol", 0.01))
    return {
        "ranking": verdict_ranking(ot),
        "likelihoods": verdict_likelihoods(ot, res.get("ais")),
        "embeddings": verdict_agreement(res["agreement"]["embeddings"], "embeddings"),
        "networks": verdict_networks(res["agreement"]["networks"], res["classifiers"].to_dict("records")),
        "missing_modes": verdict_missing_modes(res["missing_modes"], tol),
        "corruptions": verdict_corruptions(res["corruptions"]),
    }


@single_thread
def run_ddm_study(profile: str, progress: bool = True) -> dict[str, Any]:
    """Run (or load from ``runs/<profile>/ddm_study/``) every experiment of the study for a profile.

    Returns ``{"settings", "classifiers", "over_training", "ais", "agreement" ({"embeddings",
    "networks"}), "missing_modes", "corruptions", "verdicts", "seconds"}`` (DataFrames, dicts of
    DataFrames, a dict of sentences and of wall times); ``summary.json`` gets the verdicts,
    saturation points, AIS spread, slopes and timings.
    """
    t0 = time.perf_counter()
    st = settings(profile)
    study = prepare(profile, st, progress)
    secs: dict[str, float] = {"prepare": study.timings["prepare"], "train_classifiers": study.timings["train_classifiers"]}
    res: dict[str, Any] = {"settings": st}

    def timed(name: str, fn, *a, **kw):
        t = time.perf_counter()
        out = fn(*a, **kw)
        secs[name] = time.perf_counter() - t
        return out

    res["classifiers"] = timed("classifiers", classifiers, st, profile, study, progress)
    res["over_training"] = timed("over_training", over_training, st, profile, study, progress)
    res["ais"] = timed("ais", ais, st, profile, study, progress)
    res["agreement"] = timed("agreement", agreement, st, profile, res["over_training"], study, progress)
    res["missing_modes"] = timed("missing_modes", missing_modes, st, profile, study, progress)
    res["corruptions"] = timed("corruptions", corruptions, st, profile, study, progress)
    res["verdicts"] = verdicts(res)
    secs["total"] = time.perf_counter() - t0
    res["seconds"] = secs
    _write_summary(study.out, res)
    return res


def _write_summary(out: Path, res: dict[str, Any]) -> None:
    ot = res["over_training"]
    st = res["settings"]
    summary = dict(
        profile_settings=st, verdicts=res["verdicts"], seconds=res["seconds"],
        ddm_final={f: final_values(ot, "ddm", f) for f in sorted(set(ot.loc[ot["metric"] == "ddm", "feature"]))},
        fid_final=final_values(ot, "fid", "prelogits"),
        parzen_final={f: final_values(ot, "parzen_ll", f) for f in ("pixels", "pca95")},
        baseline={f"{r.metric}.{r.feature}": r.value for r in ot[ot["model"] == "real_train"].itertuples()},
        ais_spread=ais_spread(res["ais"]) if len(res["ais"]) else {},
        saturation=saturation(res["missing_modes"], float(st["missing_modes"]["tol"])),
        corruption_slopes=corruption_slopes(res["corruptions"]).to_dict("records"),
        classifiers=res["classifiers"].to_dict("records"),
        agreement={k: v.to_dict("records") for k, v in res["agreement"].items()},
    )
    io.write_json(out / "summary.json", _clean(summary))


def load_ddm_study(profile: str) -> dict[str, Any]:
    """The results :func:`run_ddm_study` wrote for ``profile`` (for notebook 04), without computing."""
    import pandas as pd

    out = study_dir(profile)
    if not (out / "summary.json").is_file():
        raise DataError(f"no DDM study results in {out}; run ganreport.ddm_study.run_ddm_study({profile!r}) "
                        "(notebook 02) first")

    def rows(name: str):
        return pd.DataFrame(json.loads((out / name).read_text())["rows"])

    ag = json.loads((out / "agreement.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    res = {"settings": summary["profile_settings"], "classifiers": rows("classifiers.json"),
           "over_training": rows("over_training.json"), "ais": rows("ais.json"),
           "agreement": {k: pd.DataFrame(v) for k, v in ag.items()}, "missing_modes": rows("missing_modes.json"),
           "corruptions": rows("corruptions.json"), "seconds": summary["seconds"]}
    res["verdicts"] = summary["verdicts"]
    return res
