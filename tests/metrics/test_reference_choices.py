"""Reference choices and input checks of the metrics (issue #35, item 4): precision/recall as
Kynkäänniemi et al. (k = 3, ``≤``) against the ``prdc`` package, density/coverage as Naeem et al.
(k = 5), IS splits as the reference implementation, and a clear error of the documented type for
each bad input."""

import numpy as np
import pytest
import torch

from ganreport.errors import ConfigError, DataError
from ganreport.metrics import METRICS
from ganreport.metrics.fid_kid_is import _split_scores


def gauss(n, d, seed, shift=0.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64) + shift


@pytest.mark.parametrize("seed", [0, 1])
def test_precision_recall_density_coverage_match_the_prdc_package(seed):
    from prdc import compute_prdc

    real, fake = gauss(300, 8, seed), gauss(280, 8, seed + 10, shift=0.3)
    at3 = compute_prdc(real.numpy(), fake.numpy(), nearest_k=3)
    at5 = compute_prdc(real.numpy(), fake.numpy(), nearest_k=5)
    ours = {m: METRICS.get(m).fn(real, fake, n_boot=0).value for m in ("precision", "recall", "density", "coverage")}
    assert ours["precision"] == pytest.approx(at3["precision"], abs=1e-12)  # default k = 3
    assert ours["recall"] == pytest.approx(at3["recall"], abs=1e-12)
    assert ours["density"] == pytest.approx(at5["density"], abs=1e-12)  # default k = 5
    assert ours["coverage"] == pytest.approx(at5["coverage"], abs=1e-12)


def test_precision_recall_on_identical_distributions_use_k3():
    real, fake = gauss(1000, 16, 3), gauss(1000, 16, 4)
    p = METRICS.get("precision").fn(real, fake, n_boot=0)
    assert p.extra["k"] == 3 and 0.7 < p.value < 0.85  # k = 5 gives about 0.88


def test_is_splits_as_the_reference():
    logits = torch.full((91, 10), -20.0, dtype=torch.float64)
    logits[torch.arange(91), torch.arange(91) % 10] = 20.0  # confident, all classes
    scores = _split_scores(torch.log_softmax(logits, 1), 10)
    sizes = [(i + 1) * 91 // 10 - i * 91 // 10 for i in range(10)]
    assert sorted(set(sizes)) == [9, 10] and scores.min() > 5  # torch.chunk left a 1-sample split scoring 1.0


@pytest.mark.parametrize("name, call, error, match", [
    ("kid", lambda f: f(gauss(10, 4, 0), gauss(10, 4, 1), subset_size=1), ConfigError, "subset_size >= 2"),
    ("c2st_net", lambda f: f(gauss(3, 4, 0), gauss(3, 4, 1)), DataError, "at least 4 samples"),
    ("is", lambda f: f(None, gauss(5, 3, 0), splits=10), ConfigError, "splits must be in 1..5"),
    ("ssim_nn", lambda f: f(torch.zeros(4, 1, 8, 8), torch.zeros(4, 1, 8, 8)), DataError, "at least 12x12"),
    ("sharpness", lambda f: f(None, torch.zeros(4, 1, 2, 2)), DataError, "at least 3x3"),
    ("noise", lambda f: f(None, torch.zeros(4, 1, 2, 2)), DataError, "at least 3x3"),
    ("noise", lambda f: f(None, torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 100),
     DataError, r"must be in \[-1, 1\]"),
    ("sharpness", lambda f: f(None, torch.rand(4, 1, 8, 8) * 255), DataError, r"x / 127.5 - 1"),
])
def test_bad_inputs_raise_the_documented_error(name, call, error, match):
    with pytest.raises(error, match=match):
        call(METRICS.get(name).fn)


def test_images_in_range_pass():
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert np.isfinite(METRICS.get("noise").fn(None, x, n_boot=10).value)
