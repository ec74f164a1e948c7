"""A compact StyleGAN2-style generator (Karras et al. 2019, 2020) for 28x28 / 32x32 images.

What is kept from StyleGAN2 (Karras et al. 2020, "Analyzing and Improving the Image Quality of
StyleGAN", CVPR) and what is simplified:

- **Mapping network** ``z -> w``: pixel-norm of ``z`` (``z / sqrt(mean(z²) + 1e-8)``), then
  ``map_depth`` equalised-lr fully connected layers with leaky ReLU and learning-rate multiplier
  0.01 (StyleGAN §2 / App. C). ``w`` is broadcast to ``num_ws`` per-layer styles.
- **Learned constant input**: 4x4 for 32x32 output and 7x7 for 28x28 output (MNIST), so the
  28x28 model synthesises its native size directly instead of generating 32x32 and cropping
  (same base resolutions as the DCGAN in this package).
- **Modulated convolution with demodulation** (StyleGAN2 eq. 1-3): per sample the 3x3 weights are
  scaled by the style ``s = A(w)``, ``w'_{ijk} = s_i w_{ijk}``, then demodulated
  ``w''_{ijk} = w'_{ijk} / sqrt(Σ_{i,k} w'_{ijk}² + 1e-8)``. Implemented in the non-fused form
  (scale the input, convolve, scale the output), which StyleGAN2 shows to be equivalent.
- **Per-layer noise** ``(B, 1, H, W)`` added after each conv with a learned per-layer scale
  (initialised to 0). ``noise_mode``: ``"random"`` draws it from the ``torch.Generator`` passed in
  (the trainer's seeded one), ``"const"`` uses fixed buffers drawn once from a fixed seed (so
  ``G(z)`` is deterministic), ``"none"`` turns it off.
- **Equalised learning rate** (Karras et al. 2018, ProGAN §4.1): weights are stored ``N(0, 1)``
  and scaled at run time by ``1/sqrt(fan_in)``.
- **Skip ("output skips") generator**: a ToRGB per resolution, summed after bilinear upsampling.
  Simplifications: the upsampling convs are 4x4 stride-2 transposed modulated convs without the
  FIR blur of the official code (on the CPU this is ~3x faster than bilinear upsampling followed
  by a 3x3 conv at the higher resolution), the RGB skips use bilinear upsampling, no
  path-length regularisation, and a final ``tanh`` because every generator of this package
  returns images in [-1, 1].
- **Style mixing** (StyleGAN §3.1) in :meth:`StyleGenerator.train_forward`: with probability
  ``style_mixing`` a second latent's ``w`` replaces the styles from a random cut-off layer on.
- **Truncation** (StyleGAN §3.2 / App. B): ``w' = w_avg + ψ (w − w_avg)``, with ``w_avg`` a buffer
  (exponential moving average of ``w`` updated by :meth:`train_forward`, decay ``w_avg_beta``).

Style indices (``num_ws = 2·n_up + 2``) follow StyleGAN2: block 0 (base resolution) uses
``ws[:, 0]`` for its conv; block ``b ≥ 1`` uses ``ws[:, 2b-1]`` and ``ws[:, 2b]`` for its two
convs; the ToRGB of block ``b`` uses the index after the block's last conv (shared with the next
block's first conv). ``G.block_ws`` lists the indices per block name.

Registered as ``stylegan`` with the DCGAN-style discriminator of this package without
normalisation (``d_norm="none"``; batch norm and R1 do not mix), the non-saturating loss, lazy R1
(γ = 1, every 4 steps, done by the trainer), Adam lr 2e-3, β = (0, 0.99) (StyleGAN2's settings,
lr slightly lower), and an EMA of G with β = 0.995 (a half-life of ~140 steps ≈ 9k images,
StyleGAN2 uses 10k images) used for sampling. On the CPU the 1x1 ToRGB convs are batched
matmuls (same result, ~10x faster than ``conv2d`` with one output channel).
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .base import Generator, ModelSpec, check_img_shape, register
from .dcgan import DCGANDiscriminator, _stages

NOISE_MODES = ("random", "const", "none")
LRELU_GAIN = math.sqrt(2.0)


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    """Leaky ReLU (slope 0.2) times sqrt(2), keeping activations at unit scale (StyleGAN2)."""
    return F.leaky_relu(x, 0.2) * LRELU_GAIN


class EqualLinear(nn.Module):
    """Fully connected layer with equalised learning rate.

    ``y = x (W · lr_mul / sqrt(in))ᵀ + b · lr_mul`` with ``W ~ N(0, 1/lr_mul²)`` stored.
    """

    def __init__(self, in_dim: int, out_dim: int, bias_init: float = 0.0, lr_mul: float = 1.0,
                 activate: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init) / lr_mul))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activate = activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)
        return _lrelu(y) if self.activate else y


class MappingNetwork(nn.Module):
    """``z (B, z_dim) -> w (B, w_dim)``: pixel norm then ``depth`` equalised-lr FC + lrelu layers."""

    def __init__(self, z_dim: int, w_dim: int, depth: int, lr_mul: float = 0.01) -> None:
        super().__init__()
        if depth < 1:
            raise ConfigError(f"map_depth must be >= 1, got {depth}")
        dims = [z_dim] + [w_dim] * depth
        self.net = nn.Sequential(*[EqualLinear(a, b, lr_mul=lr_mul, activate=True) for a, b in zip(dims[:-1], dims[1:])])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + 1e-8)  # pixel norm
        return self.net(z)


class ModulatedConv(nn.Module):
    """Modulated (and optionally demodulated) convolution, StyleGAN2 eq. 1-3, non-fused form.

    ``y = d ⊙ conv(x ⊙ s, W / sqrt(in·k²))`` with style ``s = A(w)`` (B, in) and demodulation
    ``d_j = 1 / sqrt(Σ_{i,k} (s_i W_{jik} / sqrt(in·k²))² + 1e-8)`` (B, out).
    With ``upsample=True`` the conv is a 4x4 stride-2 transposed conv (as StyleGAN2's upsampling
    layers, without the FIR blur), times a gain of 2 because each output pixel sees a quarter of
    the taps.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, w_dim: int, demodulate: bool = True,
                 upsample: bool = False) -> None:
        super().__init__()
        if upsample and kernel != 4:
            raise ValueError("the upsampling modulated conv is a 4x4 stride-2 transposed conv; use kernel=4")
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.scale = 1.0 / math.sqrt(in_ch * kernel * kernel)
        self.affine = EqualLinear(w_dim, in_ch, bias_init=1.0)  # styles start at 1
        self.demodulate, self.upsample, self.padding = demodulate, upsample, kernel // 2
        # a stride-2 transposed conv feeds each output pixel k²/4 of the k² taps: gain 2 restores unit variance
        self.gain = 2.0 if upsample else 1.0

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        s = self.affine(w)  # (B, in)
        weight = self.weight * self.scale  # (out, in, k, k)
        if self.upsample:  # (B, in, r, r) -> (B, out, 2r, 2r)
            y = F.conv_transpose2d(x * s[:, :, None, None], weight.transpose(0, 1), stride=2, padding=1)
        elif weight.shape[-1] == 1:
            # 1x1 (ToRGB): per-sample weights s_i W_ji in one batched matmul (B, out, in) @ (B, in, H·W);
            # on the CPU ~10x faster than modulating x and calling conv2d with a single output channel
            b, _, h, w_ = x.shape
            y = torch.bmm(s[:, None, :] * weight[None, :, :, 0, 0], x.flatten(2)).view(b, -1, h, w_)
        else:  # (B, in, r, r) -> (B, out, r, r)
            y = F.conv2d(x * s[:, :, None, None], weight, padding=self.padding)
        if self.demodulate:
            # Σ_{i,k} (s_i W_jik)² = Σ_i s_i² Σ_k W_jik²  -> (B, out)
            d = torch.rsqrt(s.pow(2) @ weight.pow(2).sum(dim=(2, 3)).t() + 1e-8) * self.gain
            y = y * d[:, :, None, None]
        return y


class StyleLayer(nn.Module):
    """Modulated conv (3x3, or 4x4 stride-2 transposed when upsampling) + learned-scale noise
    + bias + lrelu at one resolution."""

    def __init__(self, in_ch: int, out_ch: int, w_dim: int, resolution: int, upsample: bool, noise_seed: int) -> None:
        super().__init__()
        self.conv = ModulatedConv(in_ch, out_ch, 4 if upsample else 3, w_dim, demodulate=True, upsample=upsample)
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.resolution = resolution
        g = torch.Generator().manual_seed(noise_seed)
        self.register_buffer("noise_const", torch.randn(1, 1, resolution, resolution, generator=g))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "const",
                rng: torch.Generator | None = None) -> torch.Tensor:
        x = self.conv(x, w)
        if noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, generator=rng).to(x.device, x.dtype)
            x = x + noise * self.noise_strength
        elif noise_mode == "const":
            x = x + self.noise_const * self.noise_strength
        return _lrelu(x + self.bias[None, :, None, None])


class ToRGB(nn.Module):
    """Modulated 1x1 conv without demodulation (StyleGAN2 tRGB) + bias."""

    def __init__(self, in_ch: int, out_ch: int, w_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv(in_ch, out_ch, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(out_ch))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w) + self.bias[None, :, None, None]


class SynthesisBlock(nn.Module):
    """One resolution: (upsampling conv +) conv. ``forward(x, ws)`` returns the feature map.

    ``ws`` holds this block's styles ``(B, n_layers, w_dim)``. The first block starts from the
    learned constant and has one conv; later blocks double the resolution and have two convs.
    """

    def __init__(self, in_ch: int, out_ch: int, w_dim: int, resolution: int, first: bool, noise_seed: int) -> None:
        super().__init__()
        self.first, self.resolution, self.out_ch = first, resolution, out_ch
        if first:
            self.const = nn.Parameter(torch.randn(out_ch, resolution, resolution))
            self.convs = nn.ModuleList([StyleLayer(out_ch, out_ch, w_dim, resolution, False, noise_seed)])
        else:
            self.convs = nn.ModuleList([
                StyleLayer(in_ch, out_ch, w_dim, resolution, True, noise_seed),
                StyleLayer(out_ch, out_ch, w_dim, resolution, False, noise_seed + 1),
            ])

    @property
    def num_conv(self) -> int:
        return len(self.convs)

    def forward(self, x: torch.Tensor | None, ws: torch.Tensor, noise_mode: str = "const",
                rng: torch.Generator | None = None) -> torch.Tensor:
        if self.first:
            x = self.const[None].expand(ws.shape[0], -1, -1, -1)
        for i, layer in enumerate(self.convs):
            x = layer(x, ws[:, i], noise_mode, rng)
        return x


class StyleGenerator(Generator):
    """Compact StyleGAN2-style generator.

    Parameters
    ----------
    img_shape : (C, S, S) with C in (1, 3), S in (28, 32).
    z_dim, w_dim : latent and intermediate latent sizes.
    width : channels at the output resolution; each lower resolution doubles it (capped at
        ``max_ch``), e.g. width 16 at 28x28 -> 64 @ 7x7, 32 @ 14x14, 16 @ 28x28.
    map_depth : number of FC layers of the mapping network (StyleGAN: 8).
    style_mixing : probability of mixing two latents in :meth:`train_forward`.
    w_avg_beta : decay of the running average ``w_avg`` used by truncation.

    Shapes (28x28, width 16): const (64, 7, 7) -> b7 (B, 64, 7, 7) -> b14 (B, 32, 14, 14)
    -> b28 (B, 16, 28, 28); ToRGB at each resolution summed with upsampling -> (B, C, 28, 28).
    """

    def __init__(self, img_shape: tuple[int, int, int], z_dim: int = 64, w_dim: int = 64, width: int = 16,
                 map_depth: int = 2, style_mixing: float = 0.9, w_avg_beta: float = 0.995,
                 max_ch: int = 256) -> None:
        super().__init__()
        c, size, _ = check_img_shape(img_shape)
        if not 0.0 <= style_mixing <= 1.0:
            raise ConfigError(f"style_mixing is a probability in [0, 1], got {style_mixing}")
        if not 0.0 <= w_avg_beta < 1.0:
            raise ConfigError(f"w_avg_beta must be in [0, 1), got {w_avg_beta}")
        self.z_dim, self.w_dim, self.img_shape = z_dim, w_dim, (c, size, size)
        self.style_mixing, self.w_avg_beta = float(style_mixing), float(w_avg_beta)
        base, n_up = _stages(size)
        self.mapping_net = MappingNetwork(z_dim, w_dim, map_depth)
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.blocks = nn.ModuleDict()
        self.torgbs = nn.ModuleDict()
        self.block_ws: "OrderedDict[str, tuple[int, ...]]" = OrderedDict()
        in_ch, res, idx = 0, base, 0
        for b in range(n_up + 1):
            out_ch = min(width * 2 ** (n_up - b), max_ch)
            name = f"b{res}"
            # (B, in_ch, res/2, res/2) -> (B, out_ch, res, res); block 0 starts from the constant
            block = SynthesisBlock(in_ch, out_ch, w_dim, res, first=b == 0, noise_seed=1000 + 10 * b)
            self.blocks[name] = block
            self.torgbs[name] = ToRGB(out_ch, c, w_dim)  # (B, out_ch, res, res) -> (B, C, res, res)
            self.block_ws[name] = tuple(range(idx, idx + block.num_conv))
            idx += block.num_conv
            in_ch, res = out_ch, res * 2
        self.num_ws = idx + 1  # the last ToRGB uses one more style

    # ------------------------------------------------------------------ latent spaces
    def mapping(self, z: torch.Tensor, truncation: float = 1.0, update_w_avg: bool = False) -> torch.Tensor:
        """Per-layer styles ``ws`` of shape ``(B, num_ws, w_dim)`` for latents ``z`` ``(B, z_dim)``.

        ``truncation`` ψ gives ``w_avg + ψ (w − w_avg)`` (ψ = 1: untouched, ψ = 0: ``w_avg``).
        ``update_w_avg`` moves the running average towards the batch mean of ``w`` (training).
        """
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (B, {self.z_dim}), got {tuple(z.shape)}")
        w = self.mapping_net(z)
        if update_w_avg:
            with torch.no_grad():
                self.w_avg.lerp_(w.detach().float().mean(0), 1.0 - self.w_avg_beta)
        if truncation != 1.0:
            w = self.w_avg.lerp(w, float(truncation))
        return w[:, None, :].expand(-1, self.num_ws, -1)

    def truncate(self, ws: torch.Tensor, truncation: float) -> torch.Tensor:
        """``w_avg + ψ (ws − w_avg)`` for styles ``ws`` of any leading shape."""
        return ws if truncation == 1.0 else self.w_avg.lerp(ws, float(truncation))

    def synthesis(self, ws: torch.Tensor, noise_mode: str = "const", rng: torch.Generator | None = None) -> torch.Tensor:
        """Images ``(B, C, S, S)`` in [-1, 1] from per-layer styles ``ws`` ``(B, num_ws, w_dim)``.

        ``noise_mode``: ``"const"`` (fixed noise buffers, deterministic), ``"random"`` (drawn from
        ``rng``, required) or ``"none"``.
        """
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must have shape (B, {self.num_ws}, {self.w_dim}), got {tuple(ws.shape)}")
        if noise_mode not in NOISE_MODES:
            raise ConfigError(f"unknown noise_mode {noise_mode!r}; known: {', '.join(NOISE_MODES)}")
        if noise_mode == "random" and rng is None:
            raise ConfigError("noise_mode='random' needs a seeded torch.Generator rng (no global RNG is used)")
        x, img = None, None
        for name, block in self.blocks.items():
            idx = self.block_ws[name]
            x = block(x, ws[:, idx[0]: idx[-1] + 1], noise_mode, rng)
            y = self.torgbs[name](x, ws[:, idx[-1] + 1])
            img = y if img is None else y + F.interpolate(img, scale_factor=2, mode="bilinear", align_corners=False)
        return torch.tanh(img)

    def forward(self, z: torch.Tensor, truncation: float = 1.0, noise_mode: str = "const",
                rng: torch.Generator | None = None) -> torch.Tensor:
        """``synthesis(mapping(z, truncation))``; deterministic for a given ``z`` with ``noise_mode='const'``."""
        return self.synthesis(self.mapping(z, truncation), noise_mode, rng)

    def mix_styles(self, ws_a: torch.Tensor, ws_b: torch.Tensor, cutoff: int) -> torch.Tensor:
        """Styles ``ws_a`` for layers ``< cutoff`` and ``ws_b`` from layer ``cutoff`` on."""
        if not 0 <= cutoff <= self.num_ws:
            raise ValueError(f"cutoff must be in 0..{self.num_ws}, got {cutoff}")
        return torch.cat([ws_a[:, :cutoff], ws_b[:, cutoff:]], dim=1)

    def train_forward(self, z: torch.Tensor, rng: torch.Generator | None = None) -> torch.Tensor:
        """Training pass: random noise and style mixing drawn from ``rng``; updates ``w_avg``.

        With probability ``style_mixing`` (one draw per batch, as in StyleGAN2) a second latent
        ``z2`` replaces the styles from a cut-off drawn uniformly in ``1..num_ws-1``.
        """
        if rng is None:
            raise ConfigError("train_forward needs the trainer's seeded torch.Generator rng")
        ws = self.mapping(z, update_w_avg=True)
        if self.style_mixing > 0:
            u = float(torch.rand((), generator=rng))
            cutoff = int(torch.randint(1, self.num_ws, (), generator=rng))
            if u < self.style_mixing:
                z2 = self.sample_z(z.shape[0], rng, z.device)
                ws = self.mix_styles(ws, self.mapping(z2, update_w_avg=False), cutoff)
        return self.synthesis(ws, "random", rng)

    def layers(self) -> "OrderedDict[str, nn.Module]":
        """The synthesis blocks ``b7, b14, b28`` (or ``b4 .. b32``); each outputs a feature map."""
        return OrderedDict(self.blocks.items())


register(ModelSpec(
    name="stylegan",
    build_g=lambda shape, g_width=16, z_dim=64, w_dim=64, map_depth=2, style_mixing=0.9: StyleGenerator(
        shape, z_dim, w_dim, g_width, map_depth, style_mixing),
    build_d=lambda shape, d_width=32, d_norm="none": DCGANDiscriminator(shape, d_width, norm=d_norm),
    loss="ns",
    defaults=dict(z_dim=64, w_dim=64, g_width=16, map_depth=2, style_mixing=0.9, d_width=32, d_norm="none",
                  lr_g=2e-3, lr_d=2e-3, betas=(0.0, 0.99), n_critic=1, r1_gamma=1.0, ema=0.995),
    g_keys=("g_width", "z_dim", "w_dim", "map_depth", "style_mixing"),
    d_keys=("d_width", "d_norm"),
    description="compact StyleGAN2-style generator (Karras et al. 2020) + DCGAN-style D, "
                "non-saturating loss, lazy R1",
))
