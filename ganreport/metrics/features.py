"""Feature extractors (a registry): ``classifier``, ``pixels``, ``inception``.

Every extractor maps images (N, C, H, W) in [-1, 1] to a dict of 2-D feature tensors:

- ``classifier`` — a small CNN (:class:`ganreport.models.classifier.SmallCNN`) trained on the real
  training split with light affine augmentation, seeded; outputs ``logits`` and ``prelogits``
  (the embedding of the ModNet thesis, seed 004 §3.2.1). Trained once and cached as
  safetensors + JSON under ``config.CACHE_DIR/classifier/`` keyed by a hash of (dataset, split,
  data seed, seed, training and architecture settings, data hash). Intermediate activations
  (for hypercolumns) come from :meth:`ClassifierExtractor.activations`.
- ``pixels`` — flattened pixels.
- ``inception`` — torchvision's Inception-v3 ``pool`` (2048-d) features and ``logits``, with
  weights read from a file the user gives (``weights=PATH``); it never downloads.

Real-data features and their statistics (mean, covariance) are cached by a hash of
(extractor, dataset, split, data seed, data hash), the way stylegan2-ada caches its dataset
statistics.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from .. import config, io
from .. import data as data_mod
from ..data import data_hash
from ..errors import CheckpointError, ConfigError, DataError
from ..fit import fit
from ..models.classifier import SmallCNN
from ..registry import Registry

EXTRACTORS: Registry[Callable[..., "Extractor"]] = Registry("feature extractor")


class Extractor:
    """Base class. ``outputs`` names the feature tensors; ``main`` is the one used for FID, KID,
    PRDC, MMD and C2ST; ``logits`` (or None) the one used for IS and DDM; ``key`` identifies
    the extractor and its weights in cache hashes."""

    name: str = ""
    outputs: tuple[str, ...] = ()
    main: str = ""
    logits: str | None = None
    key: str = ""

    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:  # one batch
        raise TypeError(f"{type(self).__name__} must implement __call__(images) -> {{output: features}}")

    def feature_name(self, output: str) -> str:
        """Label of an output in result rows, e.g. ``classifier.prelogits``."""
        return f"{self.name}.{output}" if output != self.name else self.name


def get_extractor(name: str, **kw: Any) -> Extractor:
    """Build the extractor registered as ``name`` (``EXTRACTORS.names()``) with options ``kw``."""
    return EXTRACTORS.get(name)(**kw)


@torch.no_grad()
def extract(extractor: Extractor, images: torch.Tensor, batch_size: int = 256,
            progress: bool = False) -> dict[str, torch.Tensor]:
    """Features of ``images`` (N, C, H, W) computed in batches of ``batch_size``; float32, CPU.

    The extractors are in eval mode, so the result does not depend on ``batch_size``.
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise DataError(f"images must be a (N, C, H, W) tensor, got {getattr(images, 'shape', type(images))}")
    if len(images) == 0:
        raise DataError("no images to extract features from (empty tensor)")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in extractor.outputs}
    starts = range(0, len(images), batch_size)
    for i in tqdm(starts, desc=f"features {extractor.name}", disable=not progress, ncols=100, mininterval=2.0):
        out = extractor(images[i:i + batch_size].float())
        for k in extractor.outputs:
            parts[k].append(out[k].detach().float().cpu().reshape(len(out[k]), -1))
    return {k: torch.cat(v) for k, v in parts.items()}


# --------------------------------------------------------------------------- pixels
class PixelExtractor(Extractor):
    name = "pixels"
    outputs = ("pixels",)
    main = "pixels"
    logits = None
    key = "pixels-v1"

    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"pixels": images.reshape(len(images), -1)}


@EXTRACTORS.register("pixels")
def pixels(**_: Any) -> PixelExtractor:
    """Flattened pixels in [-1, 1] (C*H*W features)."""
    return PixelExtractor()


# --------------------------------------------------------------------------- classifier
CLASSIFIER_DEFAULTS: dict[str, Any] = dict(
    width=16, prelogit_dim=128, dropout=0.25, epochs=30, batch_size=64, lr=2e-3, weight_decay=1e-4,
    augment=True, max_rotate=10.0, max_translate=0.1, max_scale=0.1,
)


class ClassifierExtractor(Extractor):
    """Logits and pre-logits of a trained :class:`SmallCNN` (eval mode)."""

    name = "classifier"
    outputs = ("prelogits", "logits")
    main = "prelogits"
    logits = "logits"

    def __init__(self, model: SmallCNN, meta: dict[str, Any], device: str | torch.device = "cpu") -> None:
        self.model = model.to(device).eval().requires_grad_(False)
        self.meta = meta
        self.device = torch.device(device)
        # the weights themselves, not only the settings that trained them: a retrained network (other
        # thread count, deleted checkpoint) never meets real features cached from its predecessor
        self.key = f"classifier-{meta['cache_key']}-{io.tensors_sha256(self.model.state_dict())[:16]}"

    @property
    def test_accuracy(self) -> float:
        """Held-out accuracy on the real test split, measured after training."""
        return float(self.meta["test_accuracy"])

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        logits, pre = self.model.embed(images.to(self.device))
        return {"prelogits": pre, "logits": logits}

    @torch.no_grad()
    def activations(self, images: torch.Tensor, names: tuple[str, ...] | list[str],
                    batch_size: int = 256) -> dict[str, torch.Tensor]:
        """Intermediate activations (``SmallCNN.layers()`` names, e.g. ``block1``, ``block2``), batched."""
        parts: dict[str, list[torch.Tensor]] = {n: [] for n in names}
        for i in range(0, len(images), batch_size):
            out = self.model.activations(images[i:i + batch_size].float().to(self.device), names)
            for n in names:
                parts[n].append(out[n].cpu())
        return {n: torch.cat(v) for n, v in parts.items()}

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Predicted class labels of ``images``."""
        return extract(self, images, batch_size)["logits"].argmax(1)


def _affine_augment(x: torch.Tensor, rng: torch.Generator, max_rotate: float, max_translate: float,
                    max_scale: float) -> torch.Tensor:
    """Random rotation (degrees), translation (fraction of the side) and scale; background stays -1."""
    b = len(x)
    u = torch.rand(b, 4, generator=rng) * 2 - 1
    ang = u[:, 0] * math.radians(max_rotate)
    s = 1 + u[:, 1] * max_scale
    tx, ty = u[:, 2] * 2 * max_translate, u[:, 3] * 2 * max_translate
    cos, sin = torch.cos(ang) / s, torch.sin(ang) / s
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x + 1, grid, align_corners=False, padding_mode="zeros") - 1


def _classifier_key(dataset: str, split: str, data_seed: int, seed: int, data_hash: str,
                    settings: dict[str, Any], data_kw: dict[str, Any]) -> str:
    blob = json.dumps(dict(dataset=dataset, split=split, data_seed=data_seed, seed=seed, data_hash=data_hash,
                           settings=settings, data_kw=data_kw, version=1), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 512) -> float:
    """Fraction of ``images`` whose arg-max logit equals ``labels``."""
    was = model.training
    model.eval()
    correct = 0
    for i in range(0, len(images), batch_size):
        correct += int((model(images[i:i + batch_size]).argmax(1) == labels[i:i + batch_size]).sum())
    model.train(was)
    return correct / len(images)


@torch.enable_grad()  # trains even when called under no_grad (e.g. from a tracking callback)
def train_classifier(dataset: str = "mnist", data_seed: int = 0, seed: int = 0, split: str = "train",
                     progress: bool = True, data_kw: dict[str, Any] | None = None,
                     **settings: Any) -> tuple[SmallCNN, dict[str, Any]]:
    """Train a :class:`SmallCNN` on the real ``split`` of ``dataset`` (labels required).

    Adam with a one-cycle learning-rate schedule (:func:`ganreport.fit.fit`), light random affine
    augmentation, every random draw (initialisation, shuffling, augmentation, dropout) from
    ``seed``. Returns the model (eval mode) and metadata with the held-out ``test_accuracy`` on the
    test split.

    Parameters
    ----------
    settings : overrides of ``CLASSIFIER_DEFAULTS`` (``epochs``, ``width``, ``lr``...).
    """

    unknown = set(settings) - set(CLASSIFIER_DEFAULTS)
    if unknown:
        raise ConfigError(f"unknown classifier setting(s) {sorted(unknown)}; valid: {', '.join(sorted(CLASSIFIER_DEFAULTS))}")
    s = {**CLASSIFIER_DEFAULTS, **settings}
    data_kw = dict(data_kw or {})
    train = data_mod.load(dataset, split, seed=data_seed, **data_kw)
    test = data_mod.load(dataset, "test", seed=data_seed, **data_kw)
    if train.labels is None:
        raise DataError(f"dataset {dataset!r} has no class labels; the 'classifier' extractor needs them "
                        "(use feature='pixels' or 'inception')")
    n_classes = max(train.num_classes, int(train.labels.max()) + 1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SmallCNN(train.shape, n_classes, width=int(s["width"]), prelogit_dim=int(s["prelogit_dim"]),
                         dropout=float(s["dropout"]))
    rng = torch.Generator().manual_seed(seed)
    epochs, bs = int(s["epochs"]), int(s["batch_size"])
    if epochs < 1 or bs < 1:
        raise ConfigError(f"classifier epochs and batch_size must be >= 1, got {epochs}, {bs}")
    t0 = time.perf_counter()

    def augment(x: torch.Tensor, y: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return _affine_augment(x, g, float(s["max_rotate"]), float(s["max_translate"]), float(s["max_scale"])), y

    fit(model, train.images, train.labels, rng, batch_size=bs, lr=float(s["lr"]), epochs=epochs,
        weight_decay=float(s["weight_decay"]), schedule="onecycle", pct_start=0.15,
        augment=augment if s["augment"] else None, dropout_seed=seed + 1, progress=progress, desc="train classifier")
    model.eval()
    meta = dict(dataset=dataset, split=split, data_seed=data_seed, seed=seed, settings=s, data_kw=data_kw,
                img_shape=list(train.shape), num_classes=n_classes, n_train=len(train), n_test=len(test),
                train_accuracy=accuracy(model, train.images, train.labels),
                test_accuracy=accuracy(model, test.images, test.labels) if test.labels is not None else None,
                train_seconds=round(time.perf_counter() - t0, 2), torch=torch.__version__)
    return model, meta


@EXTRACTORS.register("classifier")
def classifier(dataset: str = "mnist", data_seed: int = 0, seed: int = 0, split: str = "train",
               cache_dir: str | Path | None = None, device: str = "cpu", progress: bool = True,
               retrain: bool = False, data_kw: dict[str, Any] | None = None, train_if_missing: bool = True,
               **settings: Any) -> ClassifierExtractor:
    """The trained classifier of ``dataset`` from the cache, training it first when absent.

    Cached as ``<cache_dir>/classifier/<dataset>_<hash>.safetensors`` (+ ``.json``), where the hash
    covers dataset, split, data seed, seed, settings and a hash of the training images. With
    ``train_if_missing=False`` (the scoring notebooks) a missing or unreadable cache entry is a
    :class:`DataError` that names notebook 01 instead of a silent training run.
    """

    s = {**CLASSIFIER_DEFAULTS, **settings}
    unknown = set(settings) - set(CLASSIFIER_DEFAULTS)
    if unknown:
        raise ConfigError(f"unknown classifier setting(s) {sorted(unknown)}; valid: {', '.join(sorted(CLASSIFIER_DEFAULTS))}")
    train = data_mod.load(dataset, split, seed=data_seed, **(data_kw or {}))
    key = _classifier_key(dataset, split, data_seed, seed, data_hash(train), s, dict(data_kw or {}))
    root = Path(cache_dir) if cache_dir is not None else config.CACHE_DIR
    path = root / "classifier" / f"{dataset}_{key}.safetensors"
    if path.is_file() and io.meta_path(path).is_file() and not retrain:
        try:
            tensors, meta = io.load_checkpoint(path)
            model = SmallCNN(tuple(meta["img_shape"]), meta["num_classes"], width=int(s["width"]),
                             prelogit_dim=int(s["prelogit_dim"]), dropout=float(s["dropout"]))
            model.load_state_dict(tensors)
            return ClassifierExtractor(model.eval(), meta, device)
        except (CheckpointError, RuntimeError, KeyError):
            pass  # corrupt or incompatible cache entry: retrain and overwrite it
    if not train_if_missing:
        raise DataError(f"no trained {dataset} classifier (seed {seed}) in {path.parent}; run notebook 01, which "
                        "trains it, first")
    model, meta = train_classifier(dataset, data_seed, seed, split, progress=progress, data_kw=data_kw, **settings)
    meta["cache_key"] = key
    io.save_checkpoint(path, model.state_dict(), meta)
    return ClassifierExtractor(model, meta, device)


#: Layers pooled into hypercolumns by default (keys of ``SmallCNN.layers()``).
HYPERCOLUMN_LAYERS = ("block1", "block2", "prelogits", "logits")


@torch.no_grad()
def hypercolumns(extractor: ClassifierExtractor, images: torch.Tensor,
                 layers: tuple[str, ...] | list[str] = HYPERCOLUMN_LAYERS, grid: int = 1,
                 batch_size: int = 256) -> torch.Tensor:
    """Hypercolumn embedding of ``images``: the activations of several classifier layers, each
    conv map average-pooled to ``grid`` x ``grid`` cells, flattened and concatenated
    (Hariharan et al. 2015, "Hypercolumns for object segmentation and fine-grained
    localization"; the ModNet thesis §3.4.3 uses them as an alternative DDM embedding).

    Output shape ``(N, Σ_l C_l · grid² + Σ_vector-layers D_l)``: for :class:`SmallCNN` of width
    ``w`` with the default layers, ``w·g² + 2w·g² + prelogit_dim + num_classes``.
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or len(images) == 0:
        raise DataError(f"images must be a non-empty (N, C, H, W) tensor, got {getattr(images, 'shape', type(images))}")
    _check_hypercolumn_args(layers, grid)
    return pool_hypercolumns(extractor.activations(images, tuple(layers), batch_size), layers, grid)


def _check_hypercolumn_args(layers: tuple[str, ...] | list[str], grid: int) -> None:
    if int(grid) < 1:
        raise ConfigError(f"hypercolumn grid must be >= 1, got {grid}")
    if not layers:
        raise ConfigError("hypercolumns need at least one layer")


def pool_hypercolumns(acts: dict[str, torch.Tensor], layers: tuple[str, ...] | list[str],
                      grid: int = 1) -> torch.Tensor:
    """Concatenate ``acts[layer]`` for ``layers``: conv maps (N, C, H, W) average-pooled to
    ``grid`` x ``grid`` and flattened, vectors (N, D) as they are (see :func:`hypercolumns`)."""
    _check_hypercolumn_args(layers, grid)
    parts = []
    for name in layers:
        a = acts[name].float()
        if a.ndim == 4:
            if int(grid) > min(a.shape[-2:]):
                raise ConfigError(f"hypercolumn grid {grid} exceeds layer {name!r}'s {a.shape[-2]}x{a.shape[-1]} map")
            a = F.adaptive_avg_pool2d(a, int(grid))
        parts.append(a.reshape(len(a), -1))
    return torch.cat(parts, 1)


# --------------------------------------------------------------------------- inception
class InceptionExtractor(Extractor):
    """torchvision Inception-v3: ``pool`` = 2048-d average-pool features, ``logits`` = fc output.

    Images in [-1, 1] are resized (bilinear, antialiased) to ``size`` x ``size`` and grey images
    repeated to 3 channels; with ``transform_input=False`` Inception-v3 expects exactly [-1, 1].
    """

    name = "inception"
    outputs = ("pool", "logits")
    main = "pool"
    logits = "logits"

    def __init__(self, model: nn.Module, key: str, size: int = 299, device: str | torch.device = "cpu") -> None:
        self.model = model.to(device).eval().requires_grad_(False)
        self.size, self.device, self.key = size, torch.device(device), key
        self._pool: torch.Tensor | None = None
        self.model.avgpool.register_forward_hook(lambda m, i, o: setattr(self, "_pool", o.flatten(1)))

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = images.to(self.device).float()
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        if x.shape[1] != 3:
            raise DataError(f"inception needs 1- or 3-channel images, got {x.shape[1]} channels")
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
        logits = self.model(x)
        return {"pool": self._pool, "logits": logits}


@EXTRACTORS.register("inception")
def inception(weights: str | Path | None = None, size: int = 299, device: str = "cpu", **_: Any) -> InceptionExtractor:
    """Inception-v3 from a local weight file (a torchvision ``inception_v3`` state dict saved as
    ``.safetensors`` or ``.pth``/``.pt``; read with ``weights_only=True``). Never downloads."""
    from torchvision.models import inception_v3

    if weights is None:
        raise ConfigError("feature extractor 'inception' needs its weights: pass inception_weights=PATH "
                          "(a torchvision inception_v3 state dict file, .safetensors or .pth); it never downloads")
    path = Path(weights)
    if not path.is_file():
        raise ConfigError(f"inception_weights file {path} does not exist; give the path of a torchvision "
                          "inception_v3 state dict (.safetensors or .pth)")
    if size < 75:
        raise ConfigError(f"inception input size must be >= 75, got {size}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise ConfigError(f"inception_weights file {path} cannot be read ({e})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    state = {k: v for k, v in state.items() if not k.startswith("AuxLogits.")}
    num_classes = state["fc.weight"].shape[0] if "fc.weight" in state else 1000
    model = inception_v3(weights=None, aux_logits=False, init_weights=False, transform_input=False,
                         num_classes=num_classes)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ConfigError(f"inception_weights file {path} is not a torchvision inception_v3 state dict: "
                          f"{str(e).splitlines()[0]}") from None
    return InceptionExtractor(model, f"inception-{io.sha256(path)[:16]}-{size}", size, device)


# --------------------------------------------------------------------------- real-data cache
def _features_path(extractor: Extractor, dataset: str, split: str, data_seed: int, dhash: str,
                   cache_dir: Path) -> Path:
    blob = json.dumps(dict(extractor=extractor.key, dataset=dataset, split=split, data_seed=data_seed,
                           data_hash=dhash, version=1), sort_keys=True)
    key = hashlib.sha256(blob.encode()).hexdigest()[:16]
    return cache_dir / "features" / f"{dataset}_{split}_{extractor.name}_{key}.safetensors"


def real_features(extractor: Extractor, dataset: str = "mnist", split: str = "test", data_seed: int = 0,
                  cache_dir: str | Path | None = None, batch_size: int = 256,
                  data_kw: dict[str, Any] | None = None) -> dict[str, torch.Tensor]:
    """Features of a real split, cached by a hash of (extractor, dataset, split, data seed, data).

    The extractor's ``key`` names its weights (``ClassifierExtractor``: settings and a SHA-256 of the
    state dict), so features cached from another network are never read."""

    data = data_mod.load(dataset, split, seed=data_seed, **(data_kw or {}))
    root = Path(cache_dir) if cache_dir is not None else config.CACHE_DIR
    dhash = data_hash(data)
    path = _features_path(extractor, dataset, split, data_seed, dhash, root)
    key = dict(extractor=extractor.key, dataset=dataset, split=split, data_seed=data_seed, data_hash=dhash)
    if io.read_keyed(io.meta_path(path), key) is not None:  # the studies' keyed-cache check (ganreport.io)
        try:
            tensors, _ = io.load_checkpoint(path)
            if set(tensors) == set(extractor.outputs):
                return tensors
        except CheckpointError:
            pass
    feats = extract(extractor, data.images, batch_size)
    io.save_checkpoint(path, feats, dict(key=key, extractor=extractor.key, dataset=dataset, split=split,
                                         data_seed=data_seed, n=len(data)))
    return feats


def feature_stats(features: torch.Tensor) -> dict[str, torch.Tensor]:
    """Mean and unbiased covariance (float64) of (N, D) features."""
    x = features.double()
    mu = x.mean(0)
    xc = x - mu
    return {"mu": mu, "cov": xc.T @ xc / (len(x) - 1), "n": torch.tensor(len(x))}


def real_stats(extractor: Extractor, dataset: str = "mnist", split: str = "test", output: str | None = None,
               data_seed: int = 0, cache_dir: str | Path | None = None,
               data_kw: dict[str, Any] | None = None) -> dict[str, torch.Tensor]:
    """``{"mu", "cov", "n"}`` of a real split's ``output`` features (default ``extractor.main``), cached."""

    output = output or extractor.main
    if output not in extractor.outputs:
        raise ConfigError(f"extractor {extractor.name!r} has no output {output!r}; known: {', '.join(extractor.outputs)}")
    data = data_mod.load(dataset, split, seed=data_seed, **(data_kw or {}))
    root = Path(cache_dir) if cache_dir is not None else config.CACHE_DIR
    dhash = data_hash(data)
    fpath = _features_path(extractor, dataset, split, data_seed, dhash, root)
    path = fpath.with_name(fpath.stem + f"_stats_{output}.safetensors")
    key = dict(extractor=extractor.key, dataset=dataset, split=split, data_seed=data_seed, data_hash=dhash,
               output=output)
    if io.read_keyed(io.meta_path(path), key) is not None:
        try:
            return io.load_checkpoint(path)[0]
        except CheckpointError:
            pass
    stats = feature_stats(real_features(extractor, dataset, split, data_seed, root, data_kw=data_kw)[output])
    io.save_checkpoint(path, stats, dict(key=key, extractor=extractor.key, dataset=dataset, split=split, output=output))
    return stats
