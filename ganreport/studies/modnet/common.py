"""ModNet study, shared parts: the profile settings, the output folder, loading the trained ModNet and
its two classifiers, and the change measures.

Distances between an input ``x`` and its modification ``x' = G(x, y_t)`` are measured on
intensities ``u = (x + 1) / 2`` in [0, 1]:

- ``L1 = mean_pixels |u(x') − u(x)|`` (mean absolute change per pixel, [0, 1] intensity units);
- ``L2 = ‖u(x') − u(x)‖₂`` over all pixels of the image (Euclidean norm, same units);
- ``SSIM(u(x), u(x'))`` (Wang et al. 2004; :func:`ganreport.metrics.quality.ssim`), 1 = unchanged.

A modification **fools** a classifier ``C`` when ``argmax C(x') = y_t ≠ y``; it fools it **while
staying close** when also ``SSIM(x, x') ≥ ssim_min`` (a profile setting). The *frozen* classifier is
the one ModNet was trained against (the feature classifier); the *transfer* classifier is a second
classifier (another seed and width) it never saw — its fooling rate measures how far the
modifications are class changes rather than adversarial noise specific to one network.

Profile settings: the ``modnet:`` block of ``profiles/<profile>.yaml`` (keys of
:data:`MODNET_DEFAULTS`).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ... import config, train
from ... import settings as settings_mod
from ...errors import CheckpointError, ConfigError
from ...metrics.features import classifier
from ...metrics.quality import ssim as _ssim
from ...models.modnet import ModNetGenerator

MODEL = "modnet"

#: Experiment sizes; a profile's ``modnet:`` block overrides them (unknown keys are an error).
#: Defaults of the profile's ``modnet`` block (declared with their ranges in :class:`ganreport.settings.ModNetStudy`).
MODNET_DEFAULTS: dict[str, Any] = settings_mod.defaults(settings_mod.ModNetStudy)


# ---------------------------------------------------------------------------- settings and loading
def settings(prof: settings_mod.Profile) -> dict[str, Any]:
    """The resolved profile's ``modnet:`` block (over :data:`MODNET_DEFAULTS`), plus ``dataset``,
    ``data_seed``, ``seed``, ``batch_size`` and ``device`` of the profile."""
    s = settings_mod.as_dict(prof.modnet)
    s.update(dataset=prof.dataset, data_seed=prof.data_seed, seed=prof.seed, batch_size=prof.batch_size,
             device=prof.device)
    return s


def out_dir(profile: str) -> Path:
    """``runs/<profile>/modnet/``: the experiments' CSV / NPZ / JSON files."""
    return config.results_dir(profile, "modnet")


def load_modnet(prof: settings_mod.Profile, dataset: str | None = None) -> tuple[ModNetGenerator, dict[str, Any]]:
    """The trained ModNet generator of the profile (eval mode, test split attached as sample source)."""
    profile, dataset = prof.profile, dataset or prof.dataset
    G, meta = train.load_generator(config.model_dir(profile, MODEL, dataset))
    if not isinstance(G, ModNetGenerator):
        raise CheckpointError(f"the checkpoint in {config.model_dir(profile, MODEL, dataset)} is not a modnet")
    return G, meta


def samples(prof: settings_mod.Profile, n: int, seed: int = 0, dataset: str | None = None) -> torch.Tensor:
    """``n`` "samples" of the trained ModNet: modified **test** images with random target classes
    (targets ≠ true labels), drawn from ``seed`` — what notebooks 02/03 use as its generated images
    (``train.load_generator`` + ``train.sample`` give the same images)."""
    G, _ = load_modnet(prof, dataset)
    return train.sample(G, n, seed=seed)


def frozen_classifier(meta: dict[str, Any], train_if_missing: bool = False):
    """The classifier ModNet was trained against (from the feature-classifier cache), from checkpoint
    ``meta``; trained again only with ``train_if_missing`` (otherwise a missing one is a DataError)."""
    fc = meta.get("frozen_classifier")
    if not fc:
        raise CheckpointError("modnet checkpoint metadata has no 'frozen_classifier'; retrain the model")
    ext = classifier(dataset=meta["dataset"], data_seed=int(meta.get("data_seed") or 0), seed=int(fc["seed"]),
                     progress=False, train_if_missing=train_if_missing, **dict(fc["settings"]))
    if ext.meta.get("cache_key") != fc["cache_key"]:
        warnings.warn("the frozen classifier differs from the one modnet was trained against "
                      f"({ext.meta.get('cache_key')} vs {fc['cache_key']})", stacklevel=2)
    return ext


def transfer_classifier(prof: settings_mod.Profile, meta: dict[str, Any], train_if_missing: bool = False):
    """The second classifier (``transfer_classifier`` settings: another seed/width), cached; trained
    only with ``train_if_missing`` (notebook 01, :func:`~.tradeoff.train_lambda_finetunes`), otherwise a
    missing one is a :class:`DataError` that names notebook 01."""
    tc = dict(prof.modnet.transfer_classifier)
    seed = int(tc.pop("seed", 1))
    if seed == int(meta["frozen_classifier"]["seed"]) and all(
            meta["frozen_classifier"]["settings"].get(k) == v for k, v in tc.items()):
        raise ConfigError("the transfer classifier must differ from the frozen one (seed or settings)")
    return classifier(dataset=meta["dataset"], data_seed=int(meta.get("data_seed") or 0), seed=seed,
                      progress=False, train_if_missing=train_if_missing, **tc)


# ---------------------------------------------------------------------------- distances
def change_stats(x: torch.Tensor, x_mod: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image ``l1`` (mean |Δu|), ``l2`` (‖Δu‖₂) and ``ssim`` of inputs ``x`` and modifications
    ``x_mod`` (both in [-1, 1]; measured on ``u = (x + 1) / 2``)."""
    u, v = (x.double() + 1) / 2, (x_mod.double() + 1) / 2
    d = (v - u).flatten(1)
    s = torch.cat([_ssim(u[i:i + 512], v[i:i + 512]) for i in range(0, len(u), 512)])
    return {"l1": d.abs().mean(1).float(), "l2": d.norm(dim=1).float(), "ssim": s.float()}


@torch.no_grad()
def _probs(model, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    return torch.cat([F.softmax(model(x[i:i + batch_size]).float(), 1) for i in range(0, len(x), batch_size)])


@torch.no_grad()
def _modify(G: ModNetGenerator, x: torch.Tensor, t: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    return torch.cat([G.modify(x[i:i + batch_size], t[i:i + batch_size]) for i in range(0, len(x), batch_size)])
