"""WGAN-GP (Gulrajani et al. 2017, "Improved Training of Wasserstein GANs", NeurIPS).

- **Critic** without batch normalisation (the penalty is taken per sample, and batch norm couples
  the samples of a batch; paper §4): the DCGAN-style convolutional critic of this package with
  layer normalisation (``GroupNorm(1, C)``, normalising over (C, H, W) of each sample — the paper's
  recommended replacement) or no normalisation (``d_norm="none"``).
- **Generator**: the DCGAN generator (batch norm in G is allowed by the paper).
- **Loss** (``losses.wgan_d_loss``, ``losses.wgan_g_loss``, ``losses.gradient_penalty``):
  ``L_D = E[D(G(z))] − E[D(x)] + λ E[(‖∇_x̂ D(x̂)‖₂ − 1)²]``, ``x̂ = ε x + (1 − ε) G(z)``,
  ``ε ~ U[0, 1]`` per sample; ``L_G = −E[D(G(z))]``; ``n_critic`` critic steps per G step
  (Alg. 1 defaults: λ = 10, n_critic = 5, Adam lr 1e-4, β = (0, 0.9)).
- ``g_width`` and ``d_width`` are **independent** (seed 001's asymmetric-capacity experiment varies
  the critic's capacity relative to the generator's).

Profiles: ``quick`` uses ``g_width = d_width = 16`` (n_critic 5, 1500 G steps) to fit the 2-core
CPU budget — a G step costs five critic steps with a penalty each, ~0.5-0.75 of a DCGAN step
at these widths, while the 32/32 defaults cost ~0.25 (digits are cleaner at 32/32); ``smoke`` uses
n_critic 2; ``full`` 64/64.

Shapes (28x28, widths w_g, w_d): G (B, z) -> (B, 4w_g, 7, 7) -> (B, 2w_g, 14, 14) -> (B, C, 28, 28);
critic (B, C, 28, 28) -> (B, w_d, 14, 14) -> (B, 2w_d, 7, 7) -> (B,).
"""

from __future__ import annotations

from ..errors import ConfigError
from .base import ModelSpec, register
from .dcgan import DCGANDiscriminator, DCGANGenerator

CRITIC_NORMS = ("layer", "none")


def build_critic(img_shape: tuple[int, int, int], d_width: int = 32, d_norm: str = "layer") -> DCGANDiscriminator:
    """DCGAN-style critic with layer norm (``GroupNorm(1, C)``) or no norm; never batch norm."""
    if d_norm not in CRITIC_NORMS:
        raise ConfigError(f"WGAN-GP critic norm must be one of {CRITIC_NORMS} (batch norm breaks the "
                          f"per-sample gradient penalty), got {d_norm!r}")
    return DCGANDiscriminator(img_shape, d_width, batchnorm=False, norm=d_norm)


def build_generator(img_shape: tuple[int, int, int], g_width: int = 32, z_dim: int = 64,
                    batchnorm: bool = True) -> DCGANGenerator:
    """DCGAN generator of width ``g_width`` (independent of the critic's ``d_width``)."""
    return DCGANGenerator(img_shape, z_dim, g_width, batchnorm)


register(ModelSpec(
    name="wgan_gp",
    build_g=build_generator,
    build_d=build_critic,
    loss="wgan_gp",
    defaults=dict(z_dim=64, g_width=32, d_width=32, batchnorm=True, d_norm="layer",
                  lr_g=1e-4, lr_d=1e-4, betas=(0.0, 0.9), n_critic=5, gp_lambda=10.0, ema=0.0),
    g_keys=("g_width", "z_dim", "batchnorm"),
    d_keys=("d_width", "d_norm"),
    description="WGAN-GP (Gulrajani et al. 2017): DCGAN generator, layer-norm critic, gradient penalty",
))
