"""GAN losses.

- Non-saturating loss (Goodfellow et al. 2014, §3): ``L_D = softplus(-D(x)) + softplus(D(G(z)))``,
  ``L_G = softplus(-D(G(z)))``.
- Wasserstein loss with gradient penalty (Gulrajani et al. 2017, Alg. 1):
  ``L_D = D(G(z)) - D(x) + λ (‖∇_x̂ D(x̂)‖₂ − 1)²`` with ``x̂ = ε x + (1 − ε) G(z)``, ε ~ U[0, 1];
  ``L_G = −D(G(z))``.
- R1 penalty (Mescheder et al. 2018): ``γ/2 · E‖∇_x D(x)‖²`` on real images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def ns_d_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()


def ns_g_loss(d_fake: torch.Tensor) -> torch.Tensor:
    return F.softplus(-d_fake).mean()


def wgan_d_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    return d_fake.mean() - d_real.mean()


def wgan_g_loss(d_fake: torch.Tensor) -> torch.Tensor:
    return -d_fake.mean()


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                     rng: torch.Generator | None = None, eps: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of ``(‖∇_x̂ D(x̂)‖₂ − 1)²`` over random interpolates ``x̂ = ε real + (1−ε) fake``.

    ``ε`` is drawn per sample from ``rng`` on the CPU (deterministic), then moved to the device;
    or given as ``eps`` of shape ``(B, 1, 1, 1)`` (distributed training draws it for the global
    batch and passes each rank its slice).
    """
    if real.shape != fake.shape:
        raise ValueError(f"real and fake batches differ in shape: {tuple(real.shape)} vs {tuple(fake.shape)}")
    if eps is None:
        eps = torch.rand(real.shape[0], 1, 1, 1, generator=rng)
    eps = eps.to(real.device, real.dtype)
    x_hat = (eps * real + (1 - eps) * fake).detach().requires_grad_(True)
    out = critic(x_hat)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    norms = grad.flatten(1).norm(2, dim=1)
    return ((norms - 1) ** 2).mean()


def r1_penalty(d: nn.Module, real: torch.Tensor) -> torch.Tensor:
    """``E‖∇_x D(x)‖²`` on real images (multiply by γ/2)."""
    x = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(d(x).sum(), x, create_graph=True)
    return grad.flatten(1).pow(2).sum(1).mean()
