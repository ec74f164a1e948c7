"""Small CNN classifier: the default feature extractor of the metrics (logits / pre-logits).

The ModNet thesis (seed 004, §3.2.1) computes DDM on "the logits of a classifier trained on the
dataset of interest"; FID/KID/PRDC/MMD here use its pre-logits the way the Inception-based
versions use Inception's pool features. This is *not* a GAN architecture, so it is not in the
GAN model registry; :mod:`ganreport.metrics.features` trains, caches and loads it.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from ..errors import ConfigError


class SmallCNN(nn.Module):
    """Four 3x3 conv layers (BN + ReLU), two 2x2 max-pools, a ``prelogit_dim`` hidden layer, logits.

    Parameters
    ----------
    img_shape : (C, H, W) with H, W divisible by 4.
    num_classes : number of output logits.
    width : channels of the first two convs (the last two have ``2 * width``).
    prelogit_dim : size of the pre-logit embedding.
    dropout : dropout before the pre-logit layer (training only).
    """

    def __init__(self, img_shape: tuple[int, int, int] = (1, 28, 28), num_classes: int = 10, width: int = 16,
                 prelogit_dim: int = 128, dropout: float = 0.25) -> None:
        super().__init__()
        c, h, w = self._settings(img_shape, num_classes, width, prelogit_dim)
        w1, w2 = width, 2 * width
        self.block1 = nn.Sequential(
            nn.Conv2d(c, w1, 3, 1, 1, bias=False), nn.BatchNorm2d(w1), nn.ReLU(True),   # (B, C, H, W) -> (B, w, H, W)
            nn.Conv2d(w1, w1, 3, 1, 1, bias=False), nn.BatchNorm2d(w1), nn.ReLU(True),  # -> (B, w, H, W)
            nn.MaxPool2d(2),                                                          # -> (B, w, H/2, W/2)
        )
        self.block2 = nn.Sequential(
            nn.Conv2d(w1, w2, 3, 1, 1, bias=False), nn.BatchNorm2d(w2), nn.ReLU(True),  # -> (B, 2w, H/2, W/2)
            nn.Conv2d(w2, w2, 3, 1, 1, bias=False), nn.BatchNorm2d(w2), nn.ReLU(True),  # -> (B, 2w, H/2, W/2)
            nn.MaxPool2d(2),                                                          # -> (B, 2w, H/4, W/4)
        )
        self.prelogits = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout),                                        # -> (B, 2w*H/4*W/4)
            nn.Linear(w2 * (h // 4) * (w // 4), prelogit_dim), nn.ReLU(True),        # -> (B, prelogit_dim)
        )
        self.fc = nn.Linear(prelogit_dim, num_classes)                                # -> (B, num_classes)

    def _settings(self, img_shape: tuple[int, int, int], num_classes: int, width: int,
                  prelogit_dim: int) -> tuple[int, int, int]:
        """Check the input shape and class count, store the settings; returns ``(C, H, W)``."""
        c, h, w = img_shape
        if h % 4 or w % 4 or c < 1:
            raise ConfigError(f"classifier needs (C, H, W) with H, W divisible by 4, got {img_shape}")
        if num_classes < 2:
            raise ConfigError(f"classifier needs at least 2 classes, got {num_classes}")
        self.img_shape = (c, h, w)
        self.num_classes, self.width, self.prelogit_dim = num_classes, width, prelogit_dim
        return c, h, w

    def embed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits, prelogits)`` of images ``x`` (B, C, H, W) in [-1, 1]."""
        if x.ndim != 4 or tuple(x.shape[1:]) != self.img_shape:
            raise ValueError(f"classifier expects images of shape (B, {', '.join(map(str, self.img_shape))}), "
                             f"got {tuple(x.shape)}")
        p = self.prelogits(self.block2(self.block1(x)))
        return self.fc(p), p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(x)[0]

    def layers(self) -> "OrderedDict[str, nn.Module]":
        """Blocks whose outputs are meaningful activations (for hooks, e.g. hypercolumns)."""
        return OrderedDict(block1=self.block1, block2=self.block2, prelogits=self.prelogits, logits=self.fc)

    @torch.no_grad()
    def activations(self, x: torch.Tensor, names: tuple[str, ...] | list[str]) -> dict[str, torch.Tensor]:
        """Outputs of the blocks ``names`` (keys of :meth:`layers`) for images ``x``, via forward hooks."""
        layers = self.layers()
        unknown = [n for n in names if n not in layers]
        if unknown:
            raise ConfigError(f"unknown classifier layer(s) {unknown}; known: {', '.join(layers)}")
        out: dict[str, torch.Tensor] = {}
        handles = [layers[n].register_forward_hook(lambda m, i, o, n=n: out.__setitem__(n, o.detach()))
                   for n in names]
        try:
            self.embed(x)
        finally:
            for h in handles:
                h.remove()
        return out


class LeNetCNN(SmallCNN):
    """A second embedding architecture (ModNet thesis §3.4.4, "insensitivity to architecture"):
    LeNet-style, two 5x5 conv layers (BN + ReLU) each followed by a 2x2 max-pool, a
    ``prelogit_dim`` hidden layer, logits. Same interface as :class:`SmallCNN` (``embed``,
    ``layers``, ``activations``; blocks ``block1``, ``block2``, ``prelogits``, ``logits``).
    """

    def __init__(self, img_shape: tuple[int, int, int] = (1, 28, 28), num_classes: int = 10, width: int = 16,
                 prelogit_dim: int = 128, dropout: float = 0.25) -> None:
        nn.Module.__init__(self)
        c, h, w = self._settings(img_shape, num_classes, width, prelogit_dim)
        w1, w2 = width, 2 * width
        self.block1 = nn.Sequential(
            nn.Conv2d(c, w1, 5, 1, 2, bias=False), nn.BatchNorm2d(w1), nn.ReLU(True),   # (B, C, H, W) -> (B, w, H, W)
            nn.MaxPool2d(2),                                                          # -> (B, w, H/2, W/2)
        )
        self.block2 = nn.Sequential(
            nn.Conv2d(w1, w2, 5, 1, 2, bias=False), nn.BatchNorm2d(w2), nn.ReLU(True),  # -> (B, 2w, H/2, W/2)
            nn.MaxPool2d(2),                                                          # -> (B, 2w, H/4, W/4)
        )
        self.prelogits = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout),                                        # -> (B, 2w*H/4*W/4)
            nn.Linear(w2 * (h // 4) * (w // 4), prelogit_dim), nn.ReLU(True),        # -> (B, prelogit_dim)
        )
        self.fc = nn.Linear(prelogit_dim, num_classes)                                # -> (B, num_classes)


#: Embedding architectures by name (the DDM study trains extra classifiers of these).
ARCHITECTURES = {"smallcnn": SmallCNN, "lenet": LeNetCNN}
