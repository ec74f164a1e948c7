"""Metric directions that cannot reward copying or noise (issue #35, item 3).

``memorization`` and ``ddm_train`` are two-sided (``direction="target"``): the value unseen real
data scores is best. A generator that copies the training set, one that adds noise and an honest
one (new draws of the data distribution) are scored by the real metric functions and ranked by
``stats.ranked`` with the ``real_test`` baseline as the target: the honest one wins both. Under the
old one-sided directions the copier won ``ddm_train`` ("lower") and the noise won ``memorization``
("higher").
"""

import pandas as pd
import pytest
import torch

from ganreport import stats
from ganreport.metrics import METRICS
from ganreport.metrics.validate import LADDER_METRICS, MODES_METRICS


def sets(seed=0, n=200, shape=(1, 4, 4)):
    g = torch.Generator().manual_seed(seed)

    def draw(k):
        return (torch.rand(k, *shape, generator=g, dtype=torch.float64) * 2 - 1) * 0.5

    train, test, held, honest = draw(400), draw(n), draw(n), draw(n)
    return {"train": train, "test": test, "real_test": held, "honest": honest,
            "copier": train[torch.randperm(400, generator=g)[:n]], "noise": (3 * honest).clamp(-1.5, 1.5)}


@pytest.mark.parametrize("metric", ["memorization", "ddm_train"])
def test_two_sided_metrics_rank_the_honest_generator_first(metric):
    s = sets()
    spec = METRICS.get(metric)
    assert spec.direction == "target"
    rows = []
    for model in ("real_test", "honest", "copier", "noise"):
        if metric == "memorization":
            r = spec.fn(s["train"], s[model], heldout=s["test"], n_boot=20)
        else:
            r = spec.fn(s["test"].flatten(1), s[model].flatten(1), reference=s["train"].flatten(1), n_boot=10)
        rows.append(r.row(model, metric=metric, feature="x", section="quantitative"))
    df = pd.DataFrame(rows)
    table = stats.ranked(df, ["honest", "copier", "noise"])
    assert table.loc[f"{metric} (x)", "winner"] == "honest", df[["model", "value"]]
    # what the old one-sided direction would have crowned
    old = df.assign(direction="lower" if metric == "ddm_train" else "higher")
    assert stats.ranked(old, ["honest", "copier", "noise"]).loc[f"{metric} (x)", "winner"] != "honest"


def test_ddm_train_is_not_a_missing_modes_metric():
    assert "ddm_train" not in MODES_METRICS and "ddm_train" in LADDER_METRICS


def test_target_rows_without_a_baseline_are_not_ranked():
    df = pd.DataFrame([dict(model=m, metric="memorization", feature="", section="q", step=None, value=v,
                            direction="target") for m, v in (("a", 0.9), ("b", 1.3))])
    assert stats.ranked(df, ["a", "b"]).empty
