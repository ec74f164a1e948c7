"""Tiny fixtures shared by the tests: training data and settings, recorded result rows."""

import torch

from ganreport import results, train
from ganreport.data import ImageData

#: ModNet settings small enough for a unit test: a tiny frozen classifier (cached in ``tmp_cache``)
MODNET_CLF_KW = {"epochs": 1, "width": 4, "prelogit_dim": 16}
MODNET_TINY = dict(g_width=4, d_width=4, classifier_kw=MODNET_CLF_KW)


def tiny_data(n: int = 64, shape=(1, 28, 28), seed: int = 0) -> ImageData:
    """``n`` uniform-noise images in [-1, 1] (enough to exercise the training loop)."""
    g = torch.Generator().manual_seed(seed)
    return ImageData("toy", "train", torch.rand(n, *shape, generator=g) * 2 - 1, torch.zeros(n, dtype=torch.long))


def tiny_cfg(steps: int, batch_size: int, ckpt_every: int, grid_every: int, **kw) -> train.TrainConfig:
    """A CPU ``TrainConfig`` logging every step; ``kw`` overrides anything."""
    base = dict(steps=steps, batch_size=batch_size, ckpt_every=ckpt_every, log_every=1, grid_every=grid_every,
                n_grid=4, seed=0, device="cpu")
    base.update(kw)
    return train.TrainConfig(**base)


def record_quant(root):
    """Quantitative rows (DDM, IS, FID) of models a, b, c and the real baselines, and one qualitative
    measure of a, b, c, recorded for profile "t" under ``root``."""
    rows = []
    vals = {"a": (20.0, 5.0, 100.0), "b": (25.0, 4.0, 150.0), "c": (22.0, 6.0, 90.0),
            "real_train": (10.0, 9.5, 2.0), "real_test": (11.0, 9.3, 5.0)}
    for m, (ddm, is_, fid) in vals.items():
        rows.append(results.make_row(m, "ddm", ddm, ci_low=ddm - 1, ci_high=ddm + 1, n=100, feature="clf.logits",
                                     section="quantitative", direction="lower"))
        rows.append(results.make_row(m, "is", is_, feature="clf.logits", section="quantitative", direction="higher"))
        rows.append(results.make_row(m, "fid", fid, feature="clf.pre", section="quantitative", direction="lower"))
    rows.append(results.make_row("a", "attr_deletion_auc_ratio", 1.5, section="qualitative", direction="higher"))
    rows.append(results.make_row("b", "attr_deletion_auc_ratio", 1.1, section="qualitative", direction="higher"))
    rows.append(results.make_row("c", "attr_deletion_auc_ratio", 1.3, section="qualitative", direction="higher"))
    results.record("t", rows, root=root)
