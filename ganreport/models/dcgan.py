"""DCGAN (Radford, Metz & Chintala 2016): transposed convs + BatchNorm + ReLU; D with LeakyReLU.

Works at 28x28 (base 7x7) and 32x32 (base 4x4), 1 or 3 channels. ``batchnorm=False`` gives the
"weakened" variant of the ModNet thesis (§3.3.2, §3.4.2); ``depth`` removes an upsampling stage for
the "small" variant (the first stage then starts larger). Both are registered as variants of
``dcgan`` (same discriminator, same training settings, only the generator differs):

- ``dcgan_weak``: generator without any BatchNorm (the thesis: "a weaker generator by removing all of
  the batch-normalization layers"); its convs get biases instead.
- ``dcgan_small``: generator with one upsampling layer fewer (the thesis' "small DCGAN": "removed
  convolutional layer 4 and modified the third convolutional layer to match the output of
  convolutional layer 4"): at 28x28 the projection starts at 14x14 instead of 7x7.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .base import Discriminator, Generator, ModelSpec, check_img_shape, register


def _stages(size: int) -> tuple[int, int]:
    """(base resolution, number of x2 upsamplings) for output side ``size``."""
    return (7, 2) if size == 28 else (4, 3)


class DCGANGenerator(Generator):
    def __init__(self, img_shape: tuple[int, int, int], z_dim: int = 64, width: int = 32,
                 batchnorm: bool = True, depth: int | None = None) -> None:
        super().__init__()
        c, size, _ = check_img_shape(img_shape)
        self.z_dim, self.img_shape = z_dim, (c, size, size)
        base, n_up = _stages(size)
        if depth is not None:  # fewer upsampling stages: start from a larger map
            if not 1 <= depth <= n_up:
                raise ValueError(f"depth must be in 1..{n_up} for size {size}, got {depth}")
            base, n_up = base * 2 ** (n_up - depth), depth
        norm = (lambda ch: nn.BatchNorm2d(ch)) if batchnorm else (lambda ch: nn.Identity())
        ch = width * 2 ** n_up
        blocks: "OrderedDict[str, nn.Module]" = OrderedDict()
        # (B, z, 1, 1) -> (B, ch, base, base)
        blocks["fc"] = nn.Sequential(nn.ConvTranspose2d(z_dim, ch, base, 1, 0, bias=not batchnorm), norm(ch), nn.ReLU(True))
        for i in range(n_up - 1):
            # (B, ch, s, s) -> (B, ch/2, 2s, 2s)
            blocks[f"up{i + 1}"] = nn.Sequential(
                nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=not batchnorm), norm(ch // 2), nn.ReLU(True))
            ch //= 2
        # (B, ch, S/2, S/2) -> (B, C, S, S) in [-1, 1]
        blocks["out"] = nn.Sequential(nn.ConvTranspose2d(ch, c, 4, 2, 1), nn.Tanh())
        self.net = nn.Sequential(blocks)
        self.apply(_dcgan_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (B, {self.z_dim}), got {tuple(z.shape)}")
        return self.net(z[:, :, None, None])

    def layers(self) -> "OrderedDict[str, nn.Module]":
        return OrderedDict(self.net.named_children())


class DCGANDiscriminator(Discriminator):
    def __init__(self, img_shape: tuple[int, int, int], width: int = 32, batchnorm: bool = True,
                 norm: str | None = None) -> None:
        super().__init__()
        c, size, _ = check_img_shape(img_shape)
        self.img_shape = (c, size, size)
        base, n_down = _stages(size)
        kind = norm or ("batch" if batchnorm else "none")

        def normf(ch: int, s: int) -> nn.Module:
            if kind == "batch":
                return nn.BatchNorm2d(ch)
            if kind == "layer":
                return nn.GroupNorm(1, ch)  # LayerNorm over (C, H, W), safe for the gradient penalty
            if kind == "none":
                return nn.Identity()
            raise ValueError(f"unknown norm {kind!r}; known: batch, layer, none")

        blocks: "OrderedDict[str, nn.Module]" = OrderedDict()
        # (B, C, S, S) -> (B, w, S/2, S/2); no normalisation on the first layer (DCGAN paper)
        blocks["conv1"] = nn.Sequential(nn.Conv2d(c, width, 4, 2, 1), nn.LeakyReLU(0.2, True))
        ch, s = width, size // 2
        for i in range(n_down - 1):
            # (B, ch, s, s) -> (B, 2ch, s/2, s/2)
            blocks[f"conv{i + 2}"] = nn.Sequential(
                nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=kind != "batch"), normf(ch * 2, s // 2), nn.LeakyReLU(0.2, True))
            ch, s = ch * 2, s // 2
        # (B, ch, base, base) -> (B, 1, 1, 1)
        blocks["out"] = nn.Conv2d(ch, 1, base, 1, 0)
        self.net = nn.Sequential(blocks)
        self.apply(_dcgan_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or tuple(x.shape[1:]) != self.img_shape:
            raise ValueError(f"images must have shape (B, {', '.join(map(str, self.img_shape))}), got {tuple(x.shape)}")
        return self.net(x).flatten()

    def layers(self) -> "OrderedDict[str, nn.Module]":
        return OrderedDict(self.net.named_children())


def _dcgan_init(m: nn.Module) -> None:
    """N(0, 0.02) conv weights, N(1, 0.02) BN scales (DCGAN paper, §4)."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


register(ModelSpec(
    name="dcgan",
    build_g=lambda shape, g_width=32, z_dim=64, batchnorm=True, depth=None: DCGANGenerator(shape, z_dim, g_width, batchnorm, depth),
    build_d=lambda shape, d_width=32, batchnorm=True: DCGANDiscriminator(shape, d_width, batchnorm),
    loss="ns",
    defaults=dict(z_dim=64, g_width=32, d_width=32, batchnorm=True, depth=None,
                  lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999), n_critic=1, ema=0.0),
    g_keys=("g_width", "z_dim", "batchnorm", "depth"),
    d_keys=("d_width", "batchnorm"),
    description="DCGAN (Radford et al. 2016), non-saturating loss",
))


def small_depth(img_shape: tuple[int, int, int]) -> int:
    """Upsampling stages of the ``dcgan_small`` generator: one fewer than ``dcgan``'s."""
    return _stages(check_img_shape(img_shape)[1])[1] - 1


_VARIANT_DEFAULTS = dict(z_dim=64, g_width=32, d_width=32, lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999), n_critic=1, ema=0.0)

def _register_variant(name: str, build_g, description: str) -> None:
    """A DCGAN variant of the ModNet thesis (§3.3.2): its own generator, dcgan's discriminator and
    defaults; a profile's ``dcgan`` settings apply to it (``base``)."""
    register(ModelSpec(
        name=name,
        build_g=build_g,
        build_d=lambda shape, d_width=32: DCGANDiscriminator(shape, d_width, batchnorm=True),
        loss="ns",
        defaults=dict(_VARIANT_DEFAULTS),
        g_keys=("g_width", "z_dim"),
        d_keys=("d_width",),
        description=description,
        base="dcgan",
    ))


_register_variant("dcgan_weak", lambda shape, g_width=32, z_dim=64: DCGANGenerator(shape, z_dim, g_width, batchnorm=False),
                  "weakened DCGAN (ModNet thesis §3.3.2): generator without BatchNorm, dcgan's discriminator")
_register_variant("dcgan_small",
                  lambda shape, g_width=32, z_dim=64: DCGANGenerator(shape, z_dim, g_width, True, small_depth(shape)),
                  "small DCGAN (ModNet thesis §3.3.2): generator with one upsampling layer fewer, dcgan's discriminator")
