"""ModNet, the conditional modification network of the ModNet thesis (seed 004, chapter 2, §2.5).

The generator is a small U-Net (Ronneberger et al. 2015; as a GAN generator: Isola et al. 2017)
that takes a real image ``x`` and a target class ``y_t`` (one-hot, broadcast as ``K`` extra input
channels and again at the bottleneck) and outputs a **delta image** that is added to the input
(thesis §2.5.1, Fig. 2.5)::

    δ = 2 · tanh(U(x, y_t))            ∈ (−2, 2)   (tanh-bounded delta, as in the thesis)
    G(x, y_t) = clip(x + δ, −1, 1)                  (thesis: "we either clip or renormalize")

A pixel can go from black (−1) to white (+1) and back; the last 1x1 convolution is initialised to
zero (``zero_init=True``), so an untrained ModNet is the identity ``G(x, y_t) = x`` and training
starts from the inputs. (Squashing the *sum* with ``tanh`` would not return the input unchanged and
has vanishing gradients at the black MNIST background, so the tanh bounds the delta instead.)

Loss (thesis eqs. 2.3–2.7, the "interpretability" variant of §2.5.2 with a separate, frozen
classifier ``C``; the discriminator ``D`` is the registry's DCGAN discriminator)::

    L_D = E[ −log σ(D(x)) − log(1 − σ(D(G(x_t, y_t)))) ]                      (2.4)
    L_G = E[ −log σ(D(G(x_t, y_t))) ]                                          (2.3)
          + w_label · E[ CE(C(G(x_t, y_t)), y_t) ]                             (2.5, C frozen)
          + λ · E[ mean_pixels |G(x_t, y_t) − x_t| ]                           (2.6)

with ``x`` and ``x_t`` independent batches of real training images and ``y_t`` drawn uniformly
from the classes other than the label of ``x_t`` (as in the thesis' augmentation experiment,
"the target label not equal the source label"). The extra terms are the training hook
:class:`ganreport.train.tasks.ModNetTask` (``ModelSpec.task = "modnet"``): this module holds the
architecture only. ``C`` is the feature classifier of :mod:`ganreport.metrics.features` (trained
once and cached, deterministic): it is never updated,
is not in any optimiser and is not stored in the checkpoints, whose metadata record its cache key
and accuracy instead (``frozen_classifier``).

Interface with the rest of the package: the generator's "latent" is the **packed input**
``z = [flatten(x), onehot(y_t)]`` of size ``C·H·W + K``, so ``G(z)`` maps ``(B, z_dim)`` to images
like every generator and the trainer, DDP, ``torch.compile`` and ``train.sample`` work unchanged.
``G.modify(x, target)`` is the explicit API. ``G.sample_z(n, rng)`` draws source images from an
attached source set (:meth:`ModNetGenerator.attach_source`; ``train.load_generator`` attaches the
real **test** split), so "samples" of a trained ModNet are modified test images with random target
classes, seeded like any generator's samples.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, DataError
from .base import Discriminator, Generator, ModelSpec, check_img_shape, register
from .dcgan import DCGANDiscriminator


def _norm(ch: int) -> nn.Module:
    """GroupNorm (batch-independent: a sample does not depend on the rest of its batch)."""
    return nn.GroupNorm(min(8, ch), ch)


def _conv_block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    k, p = (4, 1) if stride == 2 else (3, 1)
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, p), _norm(cout), nn.LeakyReLU(0.2, True))


class _Up(nn.Module):
    """x2 transposed conv, concatenate the encoder's skip features, 3x3 conv."""

    def __init__(self, cin: int, cskip: int, cout: int) -> None:
        super().__init__()
        self.up = nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, 2, 1), _norm(cout), nn.ReLU(True))
        self.conv = nn.Sequential(nn.Conv2d(cout + cskip, cout, 3, 1, 1), _norm(cout), nn.ReLU(True))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([self.up(x), skip], 1))


class ModNetGenerator(Generator):
    """U-Net delta generator conditioned on a target class.

    Parameters
    ----------
    img_shape : (C, S, S) with S in (28, 32), C in (1, 3).
    num_classes : number of target classes ``K``.
    width : channels of the first encoder level (then ``2w``, ``4w``).
    delta_scale : bound of the delta image, ``δ = delta_scale · tanh(·)``; 2 lets a pixel cross
        the whole range [−1, 1].
    zero_init : zero the last layer, so the untrained network returns its input unchanged.
    """

    def __init__(self, img_shape: tuple[int, int, int], num_classes: int = 10, width: int = 16,
                 delta_scale: float = 2.0, zero_init: bool = True) -> None:
        super().__init__()
        c, s, _ = check_img_shape(img_shape)
        if num_classes < 2:
            raise ConfigError(f"modnet needs at least 2 classes, got num_classes={num_classes}")
        if delta_scale <= 0:
            raise ConfigError(f"delta_scale must be > 0, got {delta_scale}")
        self.img_shape, self.num_classes, self.delta_scale = (c, s, s), int(num_classes), float(delta_scale)
        self.n_pixels = c * s * s
        self.z_dim = self.n_pixels + self.num_classes
        k, w = self.num_classes, width
        self.enc1 = nn.Sequential(_conv_block(c + k, w), _conv_block(w, w))          # (B, C+K, S, S) -> (B, w, S, S)
        self.enc2 = nn.Sequential(_conv_block(w, 2 * w, 2), _conv_block(2 * w, 2 * w))  # -> (B, 2w, S/2, S/2)
        self.down3 = _conv_block(2 * w, 4 * w, 2)                                   # -> (B, 4w, S/4, S/4)
        self.bottleneck = _conv_block(4 * w + k, 4 * w)                             # [., onehot] -> (B, 4w, S/4, S/4)
        self.up2 = _Up(4 * w, 2 * w, 2 * w)                                         # -> (B, 2w, S/2, S/2)
        self.up1 = _Up(2 * w, w, w)                                                 # -> (B, w, S, S)
        self.out = nn.Conv2d(w, c, 1)                                               # -> (B, C, S, S) raw delta
        if zero_init:
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)
        self._source: tuple[torch.Tensor, torch.Tensor | None] | None = None
        self._warned = False

    # ------------------------------------------------------------------ packing
    def pack(self, x: torch.Tensor, target: torch.Tensor | int) -> torch.Tensor:
        """``z = [flatten(x), onehot(target)]`` of shape ``(B, z_dim)``; validates both."""
        x = self._check_x(x)
        t = self._check_target(target, len(x), x.device)
        return torch.cat([x.reshape(len(x), -1), F.one_hot(t, self.num_classes).to(x.dtype)], 1)

    def unpack(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)`` of a packed ``z``: images ``(B, C, H, W)`` and (soft) one-hot targets ``(B, K)``."""
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"modnet input z must have shape (B, {self.z_dim}) = (B, C*H*W + num_classes) "
                             f"= [flattened image, one-hot target], got {tuple(z.shape)}")
        return z[:, :self.n_pixels].reshape(len(z), *self.img_shape), z[:, self.n_pixels:]

    def _check_x(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or tuple(x.shape[1:]) != self.img_shape:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise DataError(f"modnet expects images of shape (B, {', '.join(map(str, self.img_shape))}) in [-1, 1], "
                            f"got {got}; it was built for {self.img_shape} images")
        return x

    def _check_target(self, target: torch.Tensor | int, n: int, device: torch.device) -> torch.Tensor:
        t = torch.as_tensor(target, device=device)
        if t.dtype.is_floating_point or t.dtype == torch.bool:
            raise ConfigError(f"target classes must be integers, got dtype {t.dtype}")
        if t.ndim == 0:
            t = t.expand(n)
        if t.shape != (n,):
            raise ConfigError(f"need one target class per image ({n}), got shape {tuple(t.shape)}")
        bad = (t < 0) | (t >= self.num_classes)
        if bool(bad.any()):
            raise ConfigError(f"invalid target class {int(t[bad][0])}: must be in 0..{self.num_classes - 1}")
        return t.long()

    # ------------------------------------------------------------------ forward
    def delta_logits(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Raw U-Net output for images ``x`` and (soft) one-hot targets ``y`` (B, K)."""
        b, _, h, w = x.shape
        e1 = self.enc1(torch.cat([x, y[:, :, None, None].expand(b, -1, h, w)], 1))
        e2 = self.enc2(e1)
        e3 = self.down3(e2)
        bt = self.bottleneck(torch.cat([e3, y[:, :, None, None].expand(-1, -1, *e3.shape[2:])], 1))
        return self.out(self.up1(self.up2(bt, e2), e1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Modified images ``clip(x + δ, −1, 1)`` of the packed inputs ``z`` (see :meth:`pack`)."""
        x, y = self.unpack(z)
        delta = self.delta_scale * torch.tanh(self.delta_logits(x, y))
        return (x + delta).clamp(-1.0, 1.0)

    def modify(self, x: torch.Tensor, target: torch.Tensor | int) -> torch.Tensor:
        """``G(x, y_t)``: images ``x`` (B, C, H, W) in [-1, 1] changed towards class(es) ``target``."""
        return self(self.pack(x, target))

    def layers(self) -> "OrderedDict[str, nn.Module]":
        return OrderedDict(enc1=self.enc1, enc2=self.enc2, down3=self.down3, bottleneck=self.bottleneck,
                           up2=self.up2, up1=self.up1, out=self.out)

    # ------------------------------------------------------------------ sampling
    def attach_source(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> "ModNetGenerator":
        """Images (and labels) that :meth:`sample_z` draws its inputs from (e.g. the real test split)."""
        images = self._check_x(images)
        if labels is not None and (labels.shape != (len(images),)):
            raise DataError(f"source labels must have shape ({len(images)},), got {tuple(labels.shape)}")
        self._source = (images.detach().float().cpu(), None if labels is None else labels.detach().long().cpu())
        return self

    def sample_z(self, n: int, rng: torch.Generator | None = None, device: torch.device | str = "cpu") -> torch.Tensor:
        """Packed inputs of ``n`` source images with random target classes, all drawn from ``rng``.

        Sources: a random permutation of the attached source images (cycled when ``n`` exceeds
        them); targets: uniform over the classes other than the source label (any class when the
        source has no labels). Without an attached source, uniform-noise images stand in (with a
        warning) — enough for shape checks and FLOP counts, meaningless as samples.
        """
        if self._source is None:
            if not self._warned:
                warnings.warn("modnet has no source images attached (G.attach_source(images, labels); "
                              "train.load_generator attaches the test split): using uniform-noise inputs",
                              stacklevel=2)
                self._warned = True
            x = torch.rand(n, *self.img_shape, generator=rng) * 2 - 1
            t = torch.randint(self.num_classes, (n,), generator=rng)
            return self.pack(x, t).to(device)
        images, labels = self._source
        reps = -(-n // len(images))
        idx = torch.cat([torch.randperm(len(images), generator=rng) for _ in range(reps)])[:n]
        t = random_targets(None if labels is None else labels[idx], self.num_classes, rng, n)
        return self.pack(images[idx], t).to(device)


def random_targets(labels: torch.Tensor | None, num_classes: int, rng: torch.Generator | None,
                   n: int | None = None) -> torch.Tensor:
    """Target classes uniform over ``{0..K-1} \\ {label}`` (``(label + U{1..K-1}) mod K``); uniform over
    all classes when ``labels`` is None."""
    if labels is None:
        return torch.randint(num_classes, (int(n),), generator=rng)
    shift = torch.randint(1, num_classes, (len(labels),), generator=rng)
    return (labels.cpu() + shift) % num_classes


def attach_test_source(G: Generator, meta: dict[str, Any]) -> Generator:
    """``ModelSpec.on_load`` of modnet: attach the real test split of the training dataset as source."""
    from .. import data as data_mod

    try:
        test = data_mod.load(meta["dataset"], "test", seed=int(meta.get("data_seed") or 0))
    except (ConfigError, DataError) as e:  # e.g. a custom dataset: the user attaches a source
        warnings.warn(f"modnet: could not load the test split of {meta.get('dataset')!r} as sample source ({e}); "
                      "call G.attach_source(images, labels)", stacklevel=3)
        return G
    if tuple(test.shape) == tuple(G.img_shape):
        G.attach_source(test.images, test.labels)
    return G


def _build_g(shape: tuple[int, int, int], g_width: int = 16, num_classes: int = 10, delta_scale: float = 2.0,
             zero_init: bool = True) -> ModNetGenerator:
    return ModNetGenerator(shape, num_classes, g_width, delta_scale, zero_init)


def _build_d(shape: tuple[int, int, int], d_width: int = 32) -> Discriminator:
    return DCGANDiscriminator(shape, d_width, batchnorm=True)


register(ModelSpec(
    name="modnet",
    build_g=_build_g,
    build_d=_build_d,
    loss="ns",
    defaults=dict(g_width=16, d_width=32, num_classes=10, delta_scale=2.0, zero_init=True,
                  l1_lambda=10.0, label_weight=1.0, classifier_kw={}, classifier_seed=0,
                  lr_g=1e-3, lr_d=4e-4, betas=(0.5, 0.999), n_critic=1, ema=0.0),
    g_keys=("g_width", "num_classes", "delta_scale", "zero_init"),
    d_keys=("d_width",),
    description="ModNet (seed 004, §2.5): U-Net delta generator conditioned on a target class, "
                "DCGAN discriminator, frozen-classifier label loss + λ·L1",
    task="modnet",  # its training hooks: ganreport.train.tasks.ModNetTask
    on_load=attach_test_source,
))
