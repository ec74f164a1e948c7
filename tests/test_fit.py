"""The one supervised fit loop (ganreport.fit): its two batch modes, its seeding, its errors."""

import pytest
import torch
from torch import nn

from ganreport.errors import ConfigError
from ganreport.fit import fit


def toy(n=120, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()  # linearly separable
    return x, y


def net(seed=0, dropout=0.0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 2))


def weights(m):
    return torch.cat([p.detach().flatten() for p in m.parameters()])


@pytest.mark.parametrize("mode", [dict(epochs=15, schedule="onecycle"), dict(steps=150, schedule="cosine")])
def test_fit_learns_and_is_seeded(mode):
    x, y = toy()
    a, b, c = net(), net(), net()
    res = fit(a, x, y, torch.Generator().manual_seed(1), batch_size=16, lr=0.05, **mode)
    fit(b, x, y, torch.Generator().manual_seed(1), batch_size=16, lr=0.05, **mode)
    fit(c, x, y, torch.Generator().manual_seed(2), batch_size=16, lr=0.05, **mode)
    assert torch.equal(weights(a), weights(b)) and not torch.equal(weights(a), weights(c))
    assert res.steps == (15 * 8 if "epochs" in mode else 150)  # ceil(120 / 16) = 8 batches per epoch
    assert not a.training and (a(x).argmax(1) == y).float().mean() > 0.9


def test_dropout_is_seeded_and_leaves_the_global_generator_alone():
    x, y = toy()
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a, b = net(dropout=0.5), net(dropout=0.5)
    fit(a, x, y, torch.Generator().manual_seed(0), batch_size=16, lr=0.05, epochs=3, dropout_seed=7)
    assert torch.equal(torch.random.get_rng_state(), before)
    fit(b, x, y, torch.Generator().manual_seed(0), batch_size=16, lr=0.05, epochs=3, dropout_seed=7)
    assert torch.equal(weights(a), weights(b))


def test_augment_sees_the_batch_and_the_generator():
    x, y = toy()
    seen = []

    def augment(xb, yb, g):
        seen.append((len(xb), isinstance(g, torch.Generator)))
        return xb + 0.01 * torch.randn(xb.shape, generator=g), yb

    fit(net(), x, y, torch.Generator().manual_seed(0), batch_size=50, lr=0.01, epochs=1, augment=augment)
    assert seen == [(50, True), (50, True), (20, True)]


@pytest.mark.parametrize("kw, match", [
    (dict(epochs=1, steps=1), "exactly one"), (dict(), "exactly one"), (dict(epochs=0), ">= 1"),
    (dict(epochs=1, schedule="step"), "unknown schedule"), (dict(epochs=1, batch_size=0), ">= 1"),
])
def test_bad_settings(kw, match):
    x, y = toy()
    kw = {"batch_size": 8, **kw}
    with pytest.raises(ConfigError, match=match):
        fit(net(), x, y, torch.Generator(), lr=0.01, **kw)
    with pytest.raises(ConfigError, match="as many labels"):
        fit(net(), x, y[:5], torch.Generator(), lr=0.01, batch_size=8, epochs=1)
