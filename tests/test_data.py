import numpy as np
import pytest
import torch
from PIL import Image

from ganreport import data
from ganreport.errors import DataError


def test_mnist_split_sizes_and_stratification():
    parts = {s: data.load("mnist", s, seed=0) for s in ("train", "val", "test")}
    assert [len(parts[s]) for s in ("train", "val", "test")] == [2000, 500, 2500]
    for s, d in parts.items():
        counts = torch.bincount(d.labels, minlength=10)
        assert counts.min() == counts.max(), (s, counts)  # 500 per class, split in proportion
        assert d.images.min() >= -1 and d.images.max() <= 1
        assert d.shape == (1, 28, 28)
    # disjoint splits: no image appears in two splits
    flat = {s: {bytes(x.numpy().tobytes()) for x in d.images} for s, d in parts.items()}
    assert not (flat["train"] & flat["test"]) and not (flat["train"] & flat["val"])


def test_split_depends_on_seed_and_is_deterministic():
    a, b, c = (data.load("mnist", "train", seed=s) for s in (0, 0, 1))
    assert torch.equal(a.images, b.images)
    assert not torch.equal(a.images, c.images)


def test_sample_is_seeded_distinct_and_covers_classes():
    d = data.load("mnist", "train", seed=0)
    assert torch.unique(d.labels[:64]).numel() == 1  # the split keeps the source's (sorted) order
    a, b, c = d.sample(64, seed=0), d.sample(64, seed=0), d.sample(64, seed=1)
    assert torch.equal(a.images, b.images) and not torch.equal(a.images, c.images)
    assert torch.unique(a.labels).numel() == 10  # P(a class missing from 64 of 2,000) < 1e-2 per class
    flat = {bytes(x.numpy().tobytes()) for x in a.images}
    assert len(flat) == 64 and flat <= {bytes(x.numpy().tobytes()) for x in d.images}
    for bad in (0, len(d) + 1):
        with pytest.raises(DataError, match="cannot sample"):
            d.sample(bad)


def test_stratified_split_exact_sizes_uneven_classes():
    labels = np.array([0] * 7 + [1] * 13 + [2] * 30)
    idx = data.stratified_split(labels, (10, 5, 35), seed=3)
    assert [len(idx[k]) for k in ("train", "val", "test")] == [10, 5, 35]
    assert len(set(np.concatenate(list(idx.values())))) == 50
    with pytest.raises(DataError, match="need 60"):
        data.stratified_split(labels, (30, 10, 20), seed=0)


def test_digits_upsampled():
    d = data.load("digits", "test", size=32)
    assert d.shape == (1, 32, 32) and len(d) > 800


def test_shapes_masks_agree_with_images():
    d = data.load("shapes", "all", n=40, seed=5)
    assert d.images.shape == (40, 3, 32, 32) and d.masks.shape == (40, 32, 32)
    imgs = (d.images + 1) / 2
    for ci, name in enumerate(data.SHAPES_CONCEPTS):
        sel = d.masks == ci
        if sel.sum() == 0:
            continue
        pix = imgs.permute(0, 2, 3, 1)[sel]
        if name == "sky":
            assert (pix[:, 2] > pix[:, 0]).float().mean() > 0.95  # sky pixels are blue
        if name == "ground":
            assert (pix[:, 1] > pix[:, 0]).float().mean() > 0.95  # grass is green
        if name == "sun":
            assert (pix[:, 0] > 0.8).float().mean() > 0.95
    # doors only on houses: every door pixel's column has house pixels in the same scene
    for m in d.masks:
        door = m == data.SHAPES_CONCEPTS.index("door")
        if door.any():
            cols = door.any(0)
            assert (m[:, cols] == data.SHAPES_CONCEPTS.index("house")).any()


def test_shapes_deterministic_and_prefix_stable():
    a = data.make_shapes(10, seed=1)
    b = data.make_shapes(20, seed=1)
    assert torch.equal(a.images, b.images[:10]) and torch.equal(a.masks, b.masks[:10])


def test_shapes_door_in_sky():
    d = data.make_shapes(30, seed=2, door_in_sky=True)
    door = data.SHAPES_CONCEPTS.index("door")
    sky_rows = [(m == door)[:12].any() for m in d.masks]
    assert sum(bool(x) for x in sky_rows) >= 20


def test_folder_dataset(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(6):
            arr = np.full((10, 12, 3), 40 * i, np.uint8)
            Image.fromarray(arr).save(tmp_path / cls / f"{i}.png")
    d = data.load("folder", "all", path=tmp_path, size=32)
    assert d.images.shape == (12, 3, 32, 32) and d.classes == ("a", "b")
    tr = data.load("folder", "train", path=tmp_path, size=32, sizes=(4, 2, 6))
    assert len(tr) == 4 and torch.bincount(tr.labels).tolist() == [2, 2]


def test_bad_inputs(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        data.load("folder", "train", path=tmp_path / "missing")
    with pytest.raises(DataError, match="holds no images"):
        data.load("folder", "train", path=tmp_path)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="broken.png"):
        data.load("folder", "all", path=tmp_path)
    with pytest.raises(ValueError, match="unknown dataset 'nope'; known: digits, folder, mnist, shapes"):
        data.load("nope")
    with pytest.raises(DataError, match="empty"):
        data.load("mnist", "val", sizes=(2000, 0, 2500))
    with pytest.raises(DataError, match="unknown split"):
        data.load("mnist", "training")


def _write_idx(path, arr: np.ndarray) -> None:
    """An IDX file (the MNIST format: big-endian magic, dims, uint8 data)."""
    magic = 0x800 + arr.ndim  # 0x08 = unsigned byte
    header = np.array([magic, *arr.shape], dtype=">i4").tobytes()
    path.write_bytes(header + arr.astype(np.uint8).tobytes())


@pytest.fixture()
def local_mnist_cache(tmp_path, monkeypatch):
    """A data/cache holding tiny torchvision MNIST files, so ``download=True`` runs offline."""
    from ganreport import config

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 60), ("t10k", 40)):
        labels = np.arange(n) % 10
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    monkeypatch.setattr(config, "CACHE_DIR", tmp_path)
    data._mnist_all.cache_clear()
    yield tmp_path
    data._mnist_all.cache_clear()


def test_mnist_download_path_reads_torchvision_files(local_mnist_cache):
    everything = data.load("mnist", "all", download=True)
    assert everything.images.shape == (100, 1, 28, 28) and everything.images.min() >= -1
    parts = {s: data.load("mnist", s, download=True) for s in ("train", "val", "test")}
    assert [len(parts[s]) for s in ("train", "val", "test")] == [40, 10, 50]  # test split the largest
    for d in parts.values():
        assert torch.bincount(d.labels, minlength=10).tolist() == [len(d) // 10] * 10


def test_mnist_download_failure_is_a_clear_error(local_mnist_cache, monkeypatch):
    from torchvision.datasets import MNIST

    (local_mnist_cache / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()  # so torchvision would download

    def offline(self):
        raise RuntimeError("Error downloading t10k-labels-idx1-ubyte.gz: no network")

    monkeypatch.setattr(MNIST, "download", offline)  # never touches the network
    with pytest.raises(DataError, match="cannot download MNIST .*download=False"):
        data.load("mnist", "train", download=True)
