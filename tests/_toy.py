"""Tiny training fixtures shared by the trainer and model tests."""

import torch

from ganreport import train
from ganreport.data import ImageData


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
