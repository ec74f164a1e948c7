"""The shared state of one profile's DDM study (:class:`Study`): settings, embedding networks, real
test/validation data, their embeddings and PCA, and :meth:`Study.score` (DDM on every embedding,
FID, IS, Parzen log-likelihoods of a set of images). :func:`prepare` builds it once per run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ...errors import ConfigError
from ...metrics import compute
from ...metrics.base import torch_threads
from ...metrics.features import ClassifierExtractor, classifier as main_classifier, extract, pool_hypercolumns
from ...metrics.likelihood import PCA, fit_pca, parzen_score
from ...settings import Profile
from .common import settings, single_thread, study_dir
from .networks import _net_name, train_embedding_net


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
def prepare(prof: Profile, st: dict[str, Any] | None = None, progress: bool = True, train: bool = False) -> Study:
    """Load the embedding networks and the real data the experiments share. The networks are
    trained only with ``train=True`` (notebook 01, :func:`~.run.train_ddm_study`); otherwise a
    missing one is a :class:`DataError` that names notebook 01."""
    from ... import data as data_mod

    t0 = time.perf_counter()
    profile = prof.profile
    st = st or settings(prof)
    ds, dseed = st["dataset"], prof.data_seed
    qkw = dict(prof.quantitative.classifier_kw)
    from ...train import pick_device

    dev = pick_device(prof.device)
    main = main_classifier(ds, data_seed=dseed, progress=progress, device=str(dev), train_if_missing=train, **qkw)
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
        ext = train_embedding_net(ds, dseed, progress=progress, train_if_missing=train, **spec)
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
    study.timings["nets"] = t_nets
    return study
