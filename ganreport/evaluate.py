"""Checkpoint -> samples -> the metric suite -> tidy result rows.

The glue one level above :mod:`ganreport.metrics`, whose functions see only samples and features
(as dgm-eval keeps model loading out of its metrics): :func:`load_real` loads the real splits and
their cached features, :func:`evaluate_model` loads a trained checkpoint, samples it with seeded
latents and scores the samples with :func:`ganreport.metrics.suite.evaluate_samples`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from . import config
from . import data as data_mod
from . import train as train_mod
from .errors import CheckpointError, ConfigError
from .metrics.base import Result
from .metrics.features import get_extractor, real_features
from .metrics.suite import (RealData, evaluate_samples, matched_size, reference_split, rows_from, score_at_matched_size,
                            size_fields)


def load_real(dataset: str = "mnist", feature: str = "classifier", data_seed: int = 0,
              feature_kw: dict[str, Any] | None = None, cache_dir: str | Path | None = None) -> RealData:
    """Load the train and test splits and their features (extracted once, cached by hash).

    ``feature_kw`` goes to the extractor: e.g. ``{"epochs": 2}`` for ``classifier``,
    ``{"weights": "/path/inception_v3.safetensors"}`` for ``inception``.
    """
    kw = dict(feature_kw or {})
    if feature == "classifier":
        kw = {"dataset": dataset, "data_seed": data_seed, "cache_dir": cache_dir, **kw}
    ext = get_extractor(feature, **kw)
    train = data_mod.load(dataset, "train", seed=data_seed)
    test = data_mod.load(dataset, "test", seed=data_seed)
    return RealData(dataset, data_seed, ext, train, test,
                    real_features(ext, dataset, "train", data_seed, cache_dir),
                    real_features(ext, dataset, "test", data_seed, cache_dir))


def evaluate_model(profile: str, model: str, dataset: str = "mnist", n_samples: int = 256, seed: int = 0,
                   real: RealData | None = None, feature: str = "classifier", data_seed: int = 0,
                   feature_kw: dict[str, Any] | None = None, metrics: Sequence[str] | None = None,
                   options: dict[str, dict[str, Any]] | None = None, model_dir: str | Path | None = None,
                   return_samples: bool = False) -> list[dict[str, Any]] | tuple[list[dict[str, Any]], torch.Tensor, dict[str, Result]]:
    """Rows of every metric for the trained ``model`` in ``config.model_dir(profile, model, dataset)``.

    Samples ``n = matched_size(n_samples, N_test)`` images with latents seeded by ``seed``
    (``train.sample``), compares them with ``n`` reference test images (features from ``real`` or
    loaded here; the same images :func:`~ganreport.metrics.suite.real_baselines` uses with this
    ``seed``) and evaluates the model's own discriminator as critic. Each row states ``n_fake``,
    ``n_real`` and a ``size_note`` when the test split is too small for ``n_samples``. A model that
    modifies real images (one with ``attach_source``, i.e. ModNet) modifies the ``n`` held-out test
    images of the ``real_test`` baseline, never the reference images it is compared with. With
    ``return_samples`` also returns the images and the ``{metric: Result}`` dict (per-sample scores
    for "most detectable" fakes and the like).
    """
    real = real or load_real(dataset, feature, data_seed, feature_kw)
    folder = Path(model_dir) if model_dir else config.model_dir(profile, model, dataset)
    G, meta = train_mod.load_generator(folder)
    D, _ = train_mod.load_discriminator(folder)
    n = matched_size(n_samples, len(real.test))
    if hasattr(G, "attach_source"):  # a model that modifies real images (ModNet) draws them from the held-out
        _, held = reference_split(len(real.test), n, seed)  # half, never from the reference set it is scored against
        G.attach_source(real.test.images[held], None if real.test.labels is None else real.test.labels[held])
    fake = train_mod.sample(G, n, seed=seed)
    res = score_at_matched_size(fake, real, n_samples, seed, critic=D, metrics=metrics, options=options)
    rows = rows_from(res, model, profile=profile, dataset=dataset, seed=seed, step=meta.get("step"),
                     **size_fields(n_samples, len(real.test)))
    return (rows, fake, res) if return_samples else rows


def evaluate_all(profile: str, models: Sequence[str], dataset: str = "mnist", n_samples: int = 256, seed: int = 0,
                 real: RealData | None = None, feature: str = "classifier", data_seed: int = 0,
                 feature_kw: dict[str, Any] | None = None, metrics: Sequence[str] | None = None,
                 options: dict[str, dict[str, Any]] | None = None, missing: str = "raise") -> list[dict[str, Any]]:
    """:func:`evaluate_model` for each of ``models``; ``missing="skip"`` skips untrained ones with a warning."""
    if missing not in ("raise", "skip"):
        raise ConfigError(f"missing must be 'raise' or 'skip', got {missing!r}")
    real = real or load_real(dataset, feature, data_seed, feature_kw)
    rows: list[dict[str, Any]] = []
    for m in models:
        try:
            rows += evaluate_model(profile, m, dataset, n_samples, seed, real, metrics=metrics, options=options)
        except CheckpointError as e:
            if missing == "raise":
                raise
            warnings.warn(f"skipping {m}: {e}", stacklevel=2)
    return rows


__all__ = ["load_real", "evaluate_model", "evaluate_all"]
