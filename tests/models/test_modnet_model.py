"""ModNet architecture (seed 004, §2.5): the U-Net delta generator and its training hooks.

The study built on it (fooling, λ trade-off, augmentation, memorisation) is tested in
``tests/studies/test_modnet.py``."""

import math

import pytest
import torch

from _toy import MODNET_CLF_KW as CLF_KW, MODNET_TINY as TINY
from ganreport import data, io, models, train
from ganreport.errors import ConfigError, DataError
from ganreport.metrics import features
from ganreport.models.modnet import ModNetGenerator, random_targets



@pytest.fixture(scope="module")
def mnist_small():
    """64 real MNIST training images (the subset keeps the split's data seed)."""
    tr = data.load("mnist", "train")
    return tr.subset(torch.arange(0, len(tr), len(tr) // 64)[:64])


def cfg(steps=3, **kw):
    base = dict(steps=steps, batch_size=8, ckpt_every=2, log_every=1, grid_every=100, n_grid=4, seed=0, device="cpu")
    base.update(kw)
    return train.TrainConfig(**base)


def g_random(shape=(1, 28, 28), **kw):
    torch.manual_seed(0)
    return ModNetGenerator(shape, zero_init=False, width=4, **kw).eval()


# ----------------------------------------------------------------------------- the generator
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_output_shape_and_range(shape):
    G = g_random(shape)
    x = torch.rand(5, *shape) * 2 - 1
    out = G.modify(x, torch.tensor([0, 1, 2, 3, 9]))
    assert out.shape == x.shape and out.min() >= -1 and out.max() <= 1
    assert not torch.equal(out, x)
    assert (out - x).abs().max() <= G.delta_scale
    z = G.pack(x, 3)
    assert z.shape == (5, G.z_dim) == (5, x[0].numel() + 10)
    xu, y = G.unpack(z)
    assert torch.equal(xu, x) and torch.equal(y.argmax(1), torch.full((5,), 3))
    assert torch.equal(G(z), G.modify(x, 3))
    # the target matters, and a sample does not depend on the rest of its batch (GroupNorm, no BatchNorm)
    assert not torch.equal(G.modify(x, 0), G.modify(x, 1))
    torch.testing.assert_close(G.modify(x[:2], 4), G.modify(x, 4)[:2], rtol=0, atol=1e-6)


def test_zero_initialised_last_layer_returns_the_input():
    G, D, p = models.build("modnet", (1, 28, 28), g_width=4)
    assert p["zero_init"] and torch.count_nonzero(G.out.weight) == 0
    x = torch.rand(6, 1, 28, 28) * 2 - 1
    x[0] = -1.0  # saturated pixels too
    x[1] = 1.0
    assert torch.equal(G.modify(x, torch.arange(6)), x)
    assert D(x).shape == (6,)
    assert models.MODELS.get("modnet").task is not None


def test_invalid_target_and_image_size_errors():
    G = g_random()
    x = torch.zeros(2, 1, 28, 28)
    with pytest.raises(ConfigError, match=r"invalid target class 10: must be in 0\.\.9"):
        G.modify(x, torch.tensor([1, 10]))
    with pytest.raises(ConfigError, match="invalid target class -1"):
        G.modify(x, -1)
    with pytest.raises(ConfigError, match="must be integers"):
        G.modify(x, torch.tensor([0.5, 1.0]))
    with pytest.raises(ConfigError, match="one target class per image"):
        G.modify(x, torch.tensor([1, 2, 3]))
    with pytest.raises(DataError, match=r"expects images of shape \(B, 1, 28, 28\).*got \(2, 1, 32, 32\)"):
        G.modify(torch.zeros(2, 1, 32, 32), 0)
    with pytest.raises(DataError, match="built for"):
        G.modify(torch.zeros(1, 28, 28), 0)
    with pytest.raises(ValueError, match=r"shape \(B, 794\)"):
        G(torch.zeros(2, 10))
    with pytest.raises(ConfigError, match="at least 2 classes"):
        ModNetGenerator((1, 28, 28), num_classes=1)


def test_random_targets_differ_from_labels():
    labels = torch.arange(10).repeat(50)
    t = random_targets(labels, 10, torch.Generator().manual_seed(0))
    assert t.shape == labels.shape and not bool((t == labels).any()) and set(t.tolist()) == set(range(10))
    assert torch.equal(t, random_targets(labels, 10, torch.Generator().manual_seed(0)))


def test_sample_z_needs_a_source_or_warns():
    G = g_random()
    with pytest.warns(UserWarning, match="no source images attached"):
        z = G.sample_z(3, torch.Generator().manual_seed(0))
    assert G(z).shape == (3, 1, 28, 28)
    src = torch.rand(7, 1, 28, 28) * 2 - 1
    lab = torch.arange(7) % 10
    G.attach_source(src, lab)
    z1 = G.sample_z(10, torch.Generator().manual_seed(1))
    assert torch.equal(z1, G.sample_z(10, torch.Generator().manual_seed(1)))
    x, y = G.unpack(z1)
    # every source appears (a permutation, cycled) and no target equals its source's label
    idx = [int(torch.nonzero((src.flatten(1) == xi.flatten()).all(1))[0]) for xi in x]
    assert set(idx[:7]) == set(range(7))
    assert not any(int(y[i].argmax()) == int(lab[j]) for i, j in enumerate(idx))
    with pytest.raises(DataError):
        G.attach_source(torch.zeros(3, 1, 32, 32))


# ----------------------------------------------------------------------------- training
def test_training_keeps_the_classifier_frozen_and_out_of_checkpoints(tmp_cache, mnist_small, tmp_path):
    t = train.Trainer("modnet", mnist_small, tmp_path, cfg(steps=4), **TINY)
    clf = t.task.classifier
    before = {k: v.clone() for k, v in clf.state_dict().items()}
    assert not any(p.requires_grad for p in clf.parameters())
    in_opt = {id(p) for opt in (t.opt_g, t.opt_d) for grp in opt.param_groups for p in grp["params"]}
    assert not in_opt & {id(p) for p in clf.parameters()}
    g0 = {k: v.clone() for k, v in t.G.state_dict().items()}
    res = t.fit(progress=False)
    after = clf.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BN statistics untouched
    assert any(not torch.equal(g0[k], v) for k, v in t.G.state_dict().items())  # G did learn
    row = res.log[-1]
    assert {"label_loss", "l1", "fool_rate"} <= set(row) and all(math.isfinite(row[k]) for k in ("g_loss", "d_loss"))
    tensors, meta = io.load_checkpoint(train.latest_checkpoint(tmp_path))
    assert {k.split(".")[0] for k in tensors} <= {"G", "D", "opt_g", "opt_d", "rng_state"}
    assert meta["frozen_classifier"]["cache_key"] and meta["data_seed"] == 0 and meta["model"] == "modnet"
    # the frozen classifier is the cached feature classifier of the same settings
    ext = features.classifier(dataset="mnist", progress=False, **CLF_KW)
    assert ext.meta["cache_key"] == meta["frozen_classifier"]["cache_key"]


def test_resume_equals_uninterrupted(tmp_cache, mnist_small, tmp_path):
    a = train.Trainer("modnet", mnist_small, tmp_path / "a", cfg(steps=4), **TINY)
    a.fit(progress=False)
    b = train.Trainer("modnet", mnist_small, tmp_path / "b", cfg(steps=4), **TINY)
    b.fit(steps=2, progress=False)
    b2 = train.Trainer("modnet", mnist_small, tmp_path / "b", cfg(steps=4), **TINY)
    assert b2.step == 2
    b2.fit(progress=False)
    for k, v in a.G.state_dict().items():
        assert torch.equal(v, b2.G.state_dict()[k]), k
    assert torch.equal(a.rng.get_state(), b2.rng.get_state())


def test_load_generator_attaches_the_test_split(tmp_cache, mnist_small, tmp_path):
    train.Trainer("modnet", mnist_small, tmp_path, cfg(steps=2), **TINY).fit(progress=False)
    G, meta = train.load_generator(tmp_path)
    test = data.load("mnist", "test")
    assert isinstance(G, ModNetGenerator) and torch.equal(G._source[0], test.images)
    s1 = train.sample(G, 20, seed=3, batch_size=7)
    torch.testing.assert_close(s1, train.sample(G, 20, seed=3, batch_size=20), rtol=0, atol=1e-6)
    assert s1.shape == (20, 1, 28, 28) and s1.abs().max() <= 1


def test_errors_for_unlabelled_or_unknown_data(tmp_cache, mnist_small, tmp_path):
    unlabelled = data.ImageData("mnist", "train", mnist_small.images)
    with pytest.raises(DataError, match="needs class labels"):
        train.Trainer("modnet", unlabelled, tmp_path / "a", cfg(), **TINY)
    with pytest.raises(ConfigError, match="num_classes=10"):
        train.Trainer("modnet", mnist_small, tmp_path / "b", cfg(), num_classes=5, **TINY)
    toy = data.ImageData("toy", "train", mnist_small.images, mnist_small.labels)
    with pytest.raises(ConfigError, match="not one"):
        train.Trainer("modnet", toy, tmp_path / "c", cfg(), **TINY)

