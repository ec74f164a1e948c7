"""Models and real baselines are compared at matched sizes (issue #34, item 1).

Synthetic features whose answer is known: train, test and a "perfect generator" drawn from one
Gaussian. At every profile's sample size, the perfect generator's FID must lie within the
``real_test`` baseline's interval; scored against the whole test split (the old way) it lies below.
"""

import pytest
import torch

from ganreport.data import ImageData
from ganreport.errors import DataError
from ganreport.metrics.features import Extractor
from ganreport.metrics.suite import (RealData, matched_size, real_baselines, reference_split,
                                     score_at_matched_size, size_fields)

D = 128  # the dimension of the example (a classifier's pre-logits are 128-d)
N_TEST = 2500  # the offline MNIST test split


class _Features(Extractor):
    name, outputs, main, logits, key = "feat", ("feat",), "feat", None, "synthetic"


def _gaussian(n: int, g: torch.Generator) -> torch.Tensor:
    return torch.randn(n, D, generator=g, dtype=torch.float64)


def _images(n: int) -> ImageData:
    return ImageData("synthetic", "x", torch.zeros(n, 1, 2, 2))


def synthetic_real(seed: int = 0) -> RealData:
    g = torch.Generator().manual_seed(seed)
    train, test = _gaussian(3000, g), _gaussian(N_TEST, g)
    return RealData("synthetic", 0, _Features(), _images(3000), _images(N_TEST), {"feat": train}, {"feat": test})


def test_matched_size_and_reference_split():
    assert matched_size(256, N_TEST) == 256 and matched_size(2000, N_TEST) == 1250 == matched_size(10_000, N_TEST)
    ref, held = reference_split(N_TEST, 1250, seed=3)
    assert len(ref) == len(held) == 1250 and not set(ref.tolist()) & set(held.tolist())
    assert torch.equal(reference_split(N_TEST, 1250, seed=3)[0], ref)  # seeded
    assert size_fields(256, N_TEST) == {"n_fake": 256, "n_real": 256, "size_note": ""}
    note = size_fields(10_000, N_TEST)["size_note"]
    assert "1250" in note and "10000" in note and "2500" in note
    with pytest.raises(DataError, match="disjoint"):
        reference_split(100, 60)
    with pytest.raises(DataError):
        matched_size(0, N_TEST)


@pytest.mark.parametrize("n_samples", [256, 2000, 10_000])  # the smoke, quick and full profiles
def test_a_perfect_generator_scores_like_the_real_baseline(n_samples):
    real = synthetic_real()
    base = {r["model"]: r for r in real_baselines(real, n_samples, seed=0, metrics=["fid"])}
    n = matched_size(n_samples, N_TEST)
    assert base["real_test"]["n_fake"] == base["real_test"]["n_real"] == n == base["real_train"]["n_real"]
    perfect = _gaussian(n, torch.Generator().manual_seed(123))
    fid = score_at_matched_size(_images(n).images, real, n_samples, seed=0, fake_feats={"feat": perfect},
                                metrics=["fid"])["fid"]
    lo, hi = base["real_test"]["ci_low"], base["real_test"]["ci_high"]
    assert lo <= fid.value <= hi, (fid.value, lo, hi)
    # the old comparison: the same fakes against all 2,500 test images sit below the baseline's interval
    from ganreport.metrics.fid_kid_is import fid as fid_fn

    unmatched = fid_fn(real.test_feats["feat"], perfect, n_boot=0).value
    assert unmatched < lo


def test_matched_comparison_needs_enough_fakes():
    with pytest.raises(DataError, match="needed"):
        score_at_matched_size(_images(10).images, synthetic_real(), 256, fake_feats={"feat": torch.zeros(10, D)},
                              metrics=["fid"])
