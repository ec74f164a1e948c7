"""Concept segmenter for GAN Dissection on ``shapes``: image -> per-pixel concept label.

GAN Dissection (Bau et al. 2019, §2.1) labels the concepts in *generated* images with a semantic
segmentation network trained on real scenes; our ``shapes`` dataset ships ground-truth masks, so a
small fully-convolutional network trained on them plays that role. It is trained on real
``shapes`` scenes, including a share of out-of-context scenes (``door_in_sky`` / ``tree_in_sky``),
so that a door painted into the sky is still *labelled* a door — otherwise the context test of
:mod:`ganreport.interpret.dissect` would confuse "the GAN refuses to draw a door there" with "the
segmenter never saw a door there".

Architecture (a tiny encoder–decoder with dilated context, receptive field ≈ 37 px)::

    (B, 3, 32, 32) -> enc: 2x [conv3x3 + BN + ReLU]            -> (B, w, 32, 32)
                   -> down: conv3x3 stride 2 + BN + ReLU        -> (B, 2w, 16, 16)
                   -> ctx: 3x [conv3x3, dilation 1/2/4 + BN + ReLU] -> (B, 2w, 16, 16)
                   -> up x2 (bilinear) ++ enc skip -> conv3x3 + BN + ReLU -> (B, w, 32, 32)
                   -> conv1x1                                    -> (B, C, 32, 32) logits

Trained weights are cached as safetensors + JSON (:func:`ganreport.io.save_checkpoint`) under
``config.CACHE_DIR / "segmenter"``, keyed by a hash of the settings, so every notebook and
benchmark reuses one network.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import config, io
from ..data import SHAPES_CONCEPTS, ImageData, make_shapes
from ..fit import fit
from ..errors import CheckpointError, ConfigError, DataError

SEGMENTER_VERSION = 1


def _cbr(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, dilation, dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Segmenter(nn.Module):
    """Fully-convolutional concept segmenter; ``forward`` returns logits ``(B, C, H, W)``.

    Parameters
    ----------
    concepts : names of the output classes (channel ``i`` is ``concepts[i]``).
    width : base channel count ``w``.
    in_channels : image channels.
    """

    def __init__(self, concepts: tuple[str, ...] = SHAPES_CONCEPTS, width: int = 16, in_channels: int = 3) -> None:
        super().__init__()
        if len(concepts) < 2:
            raise ConfigError(f"a segmenter needs at least 2 concepts, got {concepts!r}")
        self.concepts = tuple(concepts)
        self.width, self.in_channels = int(width), int(in_channels)
        w = self.width
        self.enc = nn.Sequential(_cbr(in_channels, w), _cbr(w, w))          # (B, w, H, W)
        self.down = _cbr(w, 2 * w, stride=2)                                  # (B, 2w, H/2, W/2)
        self.ctx = nn.Sequential(_cbr(2 * w, 2 * w, dilation=1), _cbr(2 * w, 2 * w, dilation=2),
                                 _cbr(2 * w, 2 * w, dilation=4))              # (B, 2w, H/2, W/2)
        self.fuse = _cbr(3 * w, w)                                            # (B, w, H, W)
        self.head = nn.Conv2d(w, len(self.concepts), 1)                       # (B, C, H, W)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise DataError(f"segmenter input must be (B, {self.in_channels}, H, W) in [-1, 1], got {tuple(x.shape)}")
        e = self.enc(x)
        c = self.ctx(self.down(e))
        c = F.interpolate(c, size=e.shape[-2:], mode="bilinear", align_corners=False)
        return self.head(self.fuse(torch.cat([e, c], 1)))

    def concept_index(self, concept: str | int) -> int:
        """Channel index of ``concept``; a clear error lists the known concepts."""
        if isinstance(concept, (int, np.integer)):
            if not 0 <= int(concept) < len(self.concepts):
                raise ConfigError(f"concept index {concept} out of range 0..{len(self.concepts) - 1}")
            return int(concept)
        try:
            return self.concepts.index(concept)
        except ValueError:
            raise ConfigError(
                f"concept {concept!r} is not labelled by the segmenter; known: {', '.join(self.concepts)}"
            ) from None

    @torch.no_grad()
    def segment(self, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """Hard labels ``(B, H, W)`` (int64 arg-max of the logits), computed in batches."""
        was = self.training
        self.eval()
        out = torch.cat([self(x[i:i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])
        self.train(was)
        return out


@dataclass(frozen=True)
class SegmenterConfig:
    """Training settings of the segmenter (all of them enter the cache key).

    ``out_of_context`` is the fraction of training scenes drawn with ``door_in_sky`` and the same
    fraction with ``tree_in_sky`` (so the segmenter labels objects wherever they appear).
    """

    width: int = 16
    n_train: int = 1200
    epochs: int = 3
    batch_size: int = 32
    lr: float = 5e-3
    seed: int = 0
    out_of_context: float = 0.15
    noise: float = 0.05
    class_weight_power: float = 0.5
    n_test: int = 1000

    def __post_init__(self) -> None:
        for k in ("width", "n_train", "epochs", "batch_size", "n_test"):
            v = getattr(self, k)
            if not isinstance(v, int) or v < 1:
                raise ConfigError(f"segmenter setting {k} must be a positive integer, got {v!r}")
        if not 0 <= self.out_of_context <= 0.5:
            raise ConfigError(f"out_of_context must be in [0, 0.5], got {self.out_of_context}")
        if self.lr <= 0 or self.noise < 0:
            raise ConfigError("segmenter lr must be > 0 and noise >= 0")

    def key(self) -> str:
        """Hash of the settings (and the code version): the cache file name."""
        blob = json.dumps({**asdict(self), "version": SEGMENTER_VERSION}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]


@dataclass
class SegmenterReport:
    """Held-out quality of a segmenter: pixel accuracy, mean IoU over concepts, IoU per concept."""

    pixel_accuracy: float
    mean_iou: float
    per_concept_iou: dict[str, float]
    n_images: int
    extra: dict[str, Any] = field(default_factory=dict)


def shapes_training_data(n: int, seed: int, out_of_context: float = 0.0) -> ImageData:
    """``n`` shapes scenes: ``1 - 2 f`` ordinary, ``f`` with a door in the sky, ``f`` with a tree in the sky.

    Scene sets use distinct seeds (``seed``, ``seed + 1``, ``seed + 2``), so they do not repeat.
    """
    n_ctx = int(round(out_of_context * n))
    parts = [make_shapes(n - 2 * n_ctx, seed=seed)] if n > 2 * n_ctx else []
    if n_ctx:
        parts.append(make_shapes(n_ctx, seed=seed + 1, door_in_sky=True))
        parts.append(make_shapes(n_ctx, seed=seed + 2, tree_in_sky=True))
    return ImageData("shapes", "segmenter", torch.cat([p.images for p in parts]), torch.cat([p.labels for p in parts]),
                     torch.cat([p.masks for p in parts]), SHAPES_CONCEPTS)


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, n_classes: int) -> torch.Tensor:
    """``(C, C)`` counts, rows = true class, columns = predicted class."""
    idx = target.flatten().long() * n_classes + pred.flatten().long()
    return torch.bincount(idx, minlength=n_classes * n_classes).view(n_classes, n_classes)


def scores_from_confusion(cm: torch.Tensor, concepts: tuple[str, ...]) -> SegmenterReport:
    """Pixel accuracy ``trace/total``; IoU_c = TP / (TP + FP + FN); mean IoU over concepts present.

    Concepts absent from both prediction and truth (IoU 0/0) are left out of the mean (as
    torchmetrics' ``JaccardIndex(average="macro")`` does).
    """
    cm = cm.double()
    tp = cm.diag()
    union = cm.sum(0) + cm.sum(1) - tp
    iou = torch.where(union > 0, tp / union.clamp_min(1), torch.full_like(tp, float("nan")))
    present = union > 0
    return SegmenterReport(
        pixel_accuracy=float(tp.sum() / cm.sum()),
        mean_iou=float(iou[present].mean()),
        per_concept_iou={c: float(v) for c, v in zip(concepts, iou.tolist())},
        n_images=0,
    )


def evaluate_segmenter(seg: Segmenter, data: ImageData, batch_size: int = 512) -> SegmenterReport:
    """Pixel accuracy and IoU per concept of ``seg`` on ``data`` (needs ground-truth ``masks``)."""
    if data.masks is None:
        raise DataError(f"{data.name}/{data.split} has no concept masks; evaluate the segmenter on 'shapes'")
    pred = seg.segment(data.images, batch_size)
    rep = scores_from_confusion(confusion_matrix(pred, data.masks, len(seg.concepts)), seg.concepts)
    rep.n_images = len(data)
    return rep


@torch.enable_grad()  # trains even when called under no_grad (e.g. from a tracking callback)
def train_segmenter(cfg: SegmenterConfig | None = None, progress: bool = True) -> tuple[Segmenter, dict[str, Any]]:
    """Train a segmenter on ``shapes`` (seeded; weights, batches and augmentation all drawn from seeds).

    Loss: per-pixel cross-entropy with class weights ``freq_c ** -class_weight_power`` (doors and
    windows cover < 1 % of the pixels; the weights make the network learn them). Augmentation: horizontal flips and Gaussian pixel noise
    (σ = ``cfg.noise``), which also makes the network tolerate the grain of GAN samples.
    Returns the network (eval mode) and metadata including held-out scores on ``cfg.n_test``
    ordinary scenes and on out-of-context scenes (seeds disjoint from training).
    """
    cfg = cfg or SegmenterConfig()
    t0 = time.perf_counter()
    train = shapes_training_data(cfg.n_train, seed=10_000 + cfg.seed, out_of_context=cfg.out_of_context)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        seg = Segmenter(SHAPES_CONCEPTS, cfg.width)
    rng = torch.Generator().manual_seed(cfg.seed)
    x_all, y_all = train.images, train.masks
    freq = torch.bincount(y_all.flatten(), minlength=len(SHAPES_CONCEPTS)).double().clamp_min(1)
    weight = (freq / freq.sum()) ** -cfg.class_weight_power
    weight = (weight / (weight * freq / freq.sum()).sum()).float()  # pixel-averaged weight = 1

    def augment(x: torch.Tensor, y: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        flip = torch.rand(len(x), generator=g) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        y = torch.where(flip[:, None, None], y.flip(-1), y)
        if cfg.noise > 0:
            x = (x + cfg.noise * torch.randn(x.shape, generator=g)).clamp(-1, 1)
        return x, y

    last = fit(seg, x_all, y_all, rng, batch_size=cfg.batch_size, lr=cfg.lr, epochs=cfg.epochs, schedule="onecycle",
               augment=augment, loss_weight=weight, progress=progress, desc="train segmenter").last_loss
    seg.eval().requires_grad_(False)
    secs = time.perf_counter() - t0
    test = make_shapes(cfg.n_test, seed=20_000 + cfg.seed)
    test_ctx = shapes_training_data(max(2, cfg.n_test // 2), seed=30_000 + cfg.seed, out_of_context=0.5)
    rep, rep_ctx = evaluate_segmenter(seg, test), evaluate_segmenter(seg, test_ctx)
    meta = {
        "settings": asdict(cfg), "key": cfg.key(), "concepts": list(SHAPES_CONCEPTS), "train_seconds": secs,
        "final_loss": last, "pixel_accuracy": rep.pixel_accuracy, "mean_iou": rep.mean_iou,
        "per_concept_iou": rep.per_concept_iou, "n_test": rep.n_images,
        "ooc_pixel_accuracy": rep_ctx.pixel_accuracy, "ooc_mean_iou": rep_ctx.mean_iou,
        "ooc_per_concept_iou": rep_ctx.per_concept_iou, "version": SEGMENTER_VERSION,
    }
    seg.meta = meta  # type: ignore[attr-defined]
    return seg, meta


def segmenter_path(cfg: SegmenterConfig, cache_dir: str | Path | None = None) -> Path:
    return Path(cache_dir or config.CACHE_DIR / "segmenter") / f"segmenter_{cfg.key()}.safetensors"


def load_segmenter(cfg: SegmenterConfig | None = None, cache_dir: str | Path | None = None,
                   train_if_missing: bool = True, progress: bool = True) -> Segmenter:
    """The cached segmenter for ``cfg`` (trained and cached on first use). ``seg.meta`` holds its scores.

    Raises
    ------
    CheckpointError
        When no cached network exists and ``train_if_missing`` is False, or the cache is corrupt.
    """
    cfg = cfg or SegmenterConfig()
    path = segmenter_path(cfg, cache_dir)
    if not path.is_file() or not io.meta_path(path).is_file():
        if not train_if_missing:
            raise CheckpointError(f"no cached segmenter at {path}; run notebook 01, which trains it "
                                  "(or call load_segmenter(train_if_missing=True))")
        seg, meta = train_segmenter(cfg, progress=progress)
        io.save_checkpoint(path, seg.state_dict(), meta)
        return seg
    tensors, meta = io.load_checkpoint(path)
    seg = Segmenter(tuple(meta["concepts"]), int(meta["settings"]["width"]))
    try:
        seg.load_state_dict(tensors)
    except RuntimeError as e:
        raise CheckpointError(f"cached segmenter {path} does not fit the current code ({e}); delete it") from None
    seg.eval().requires_grad_(False)
    seg.meta = meta  # type: ignore[attr-defined]
    return seg
