"""The embedding networks of the DDM study (thesis §3.4.4): extra classifiers of other architectures
and seeds, trained once on the real training split and cached by a hash of their spec and the data
(:func:`train_embedding_net`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from ... import config, io
from ...errors import ConfigError, DataError
from ...fit import fit
from ...metrics.features import ClassifierExtractor, _affine_augment, accuracy
from .common import _key, CLASSIFIER_TRAIN_DEFAULTS, single_thread


@single_thread
@torch.enable_grad()  # trains even when called under no_grad (e.g. from a tracking callback)
def train_embedding_net(dataset: str = "mnist", data_seed: int = 0, progress: bool = False,
                        cache_dir: str | Path | None = None, train_if_missing: bool = True,
                        **spec: Any) -> ClassifierExtractor:
    """Train (or load from the cache) one extra embedding classifier described by ``spec``
    (keys of :data:`CLASSIFIER_TRAIN_DEFAULTS`; ``arch`` in ``models.classifier.ARCHITECTURES``).

    Adam + one-cycle schedule (:func:`ganreport.fit.fit`), light affine augmentation, every draw
    from ``seed``; the held-out test accuracy goes to ``extractor.meta["test_accuracy"]``. Cached as safetensors + JSON under
    ``<cache>/ddm_study_classifiers/`` by a hash of the spec and the training data. With
    ``train_if_missing=False`` (notebook 02 scores, notebook 01 trains) a missing entry is a
    :class:`DataError`.
    """
    from ... import data as data_mod
    from ...models.classifier import ARCHITECTURES
    from ...data import data_hash

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
    if not train_if_missing:
        raise DataError(f"no trained embedding network {_net_name(s)} in {path.parent}; run notebook 01 "
                        "(ddm.train_ddm_study) first")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(s["seed"]))
        model = build()
    rng = torch.Generator().manual_seed(int(s["seed"]))
    x_all, y_all = train.images, train.labels
    if s["n_train"] is not None:
        pick = torch.randperm(len(x_all), generator=rng)[:int(s["n_train"])]
        x_all, y_all = x_all[pick], y_all[pick]

    def augment(x: torch.Tensor, y: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return _affine_augment(x, g, 10.0, 0.1, 0.1), y

    t0 = time.perf_counter()
    fit(model, x_all, y_all, rng, batch_size=int(s["batch_size"]), lr=float(s["lr"]), epochs=int(s["epochs"]),
        weight_decay=float(s["weight_decay"]), schedule="onecycle", pct_start=0.15,
        augment=augment if s["augment"] else None, dropout_seed=int(s["seed"]) + 1, progress=progress,
        desc=f"train {s['arch']} (seed {s['seed']})")
    model.eval()
    meta = dict(s, dataset=dataset, data_seed=data_seed, cache_key=key, n_train=len(x_all), num_classes=n_classes,
                test_accuracy=accuracy(model, test.images, test.labels), n_test=len(test),
                train_seconds=round(time.perf_counter() - t0, 2))
    io.save_checkpoint(path, model.state_dict(), meta)
    return ClassifierExtractor(model, meta)


def _net_name(spec: dict[str, Any]) -> str:
    s = {**CLASSIFIER_TRAIN_DEFAULTS, **spec}
    return f"{s['arch']}-w{s['width']}-s{s['seed']}"
