"""Gradient sensitivity maps of a discriminator/critic: plain gradient, SmoothGrad, integrated
gradients (all through captum).

The explained quantity is the raw score ``D(x)`` of shape ``(B,)`` (a logit for the
non-saturating loss, a critic value for WGAN-GP): "which pixels would change D's verdict most".

- Gradient (Simonyan et al. 2014, arXiv:1312.6034): ``M(x) = |dD/dx|``.
- SmoothGrad (Smilkov et al. 2017, arXiv:1706.03825):
  ``M_hat(x) = (1/n) sum_i M(x + e_i),  e_i ~ N(0, sigma^2 I)``; captum ``NoiseTunnel(Saliency)``
  with ``nt_type='smoothgrad'``. The paper sets ``sigma`` as a fraction (10-20 %) of the input
  range; images here span [-1, 1], so the default ``sigma = 0.3`` is 15 % of it.
- Integrated gradients (Sundararajan et al. 2017, arXiv:1703.01365):
  ``IG_i(x) = (x_i - b_i) * int_0^1 dD(b + a (x - b))/dx_i da``; completeness:
  ``sum_i IG_i = D(x) - D(b)`` up to the quadrature error.

Attributions come back with the image's shape ``(B, C, H, W)``; :func:`to_map` reduces the
channel axis to a ``(B, H, W)`` map for display and for the measures.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError, DataError
from .base import METHODS, check_images, model_img_shape, score_function

REDUCTIONS = ("abs_sum", "abs_max", "sum")


def _prepare(D: nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = check_images(x, model_img_shape(D))
    param = next(iter(D.parameters()), None)
    device = param.device if param is not None else x.device
    return x.detach().to(device)


def to_map(attr: torch.Tensor, reduce: str = "abs_sum") -> torch.Tensor:
    """Reduce attributions ``(B, C, H, W)`` to maps ``(B, H, W)``.

    ``abs_sum``: sum over channels of ``|a|`` (default; mass measures use it); ``abs_max``: max over
    channels of ``|a|`` (Simonyan et al.); ``sum``: signed sum (keeps the sign of IG / LIME).
    """
    if attr.ndim != 4:
        raise DataError(f"attributions must be (B, C, H, W), got {tuple(attr.shape)}")
    if reduce == "abs_sum":
        return attr.abs().sum(1)
    if reduce == "abs_max":
        return attr.abs().amax(1)
    if reduce == "sum":
        return attr.sum(1)
    raise ConfigError(f"unknown map reduction {reduce!r}; known: {', '.join(REDUCTIONS)}")


@METHODS.register("gradient")
def gradient(D: nn.Module, x: torch.Tensor, abs: bool = True) -> torch.Tensor:
    """Plain input gradient ``dD(x)/dx`` (captum ``Saliency``); ``abs=True`` returns ``|dD/dx|``.

    Returns
    -------
    Tensor ``(B, C, H, W)`` on the CPU.
    """
    from captum.attr import Saliency

    x = _prepare(D, x)
    with torch.enable_grad():
        a = Saliency(score_function(D)).attribute(x.clone().requires_grad_(True), abs=abs)
    return a.detach().cpu()


@METHODS.register("smoothgrad")
def smoothgrad(D: nn.Module, x: torch.Tensor, sigma: float = 0.3, n_samples: int = 32, seed: int = 0,
               batch_size: int | None = 64, abs: bool = True) -> torch.Tensor:
    """SmoothGrad: the mean of ``|dD/dx|`` over ``n_samples`` noisy copies ``x + N(0, sigma^2)``.

    Smilkov et al. 2017, eq. 3: ``M_hat(x) = (1/n) sum_{i=1}^n M(x + N(0, sigma^2))``.
    captum ``NoiseTunnel(Saliency)``; captum draws the noise from torch's global generator, so the
    call runs inside ``torch.random.fork_rng`` seeded with ``seed`` (deterministic, global state
    untouched). ``sigma = 0`` gives exactly :func:`gradient`.

    Parameters
    ----------
    sigma : noise standard deviation in image units ([-1, 1] images: 0.3 = 15 % of the range).
    n_samples : noisy copies per image.
    batch_size : noisy copies evaluated per forward pass (memory bound).
    """
    from captum.attr import NoiseTunnel, Saliency

    if sigma < 0:
        raise ConfigError(f"SmoothGrad sigma must be >= 0, got {sigma}")
    if n_samples < 1:
        raise ConfigError(f"SmoothGrad n_samples must be >= 1, got {n_samples}")
    x = _prepare(D, x)
    nt = NoiseTunnel(Saliency(score_function(D)))
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.enable_grad():
        torch.manual_seed(seed)
        a = nt.attribute(x.clone().requires_grad_(True), nt_type="smoothgrad", nt_samples=int(n_samples),
                         nt_samples_batch_size=None if batch_size is None else max(1, int(batch_size)),
                         stdevs=float(sigma), abs=abs)
    return a.detach().cpu()


@METHODS.register("integrated_gradients")
def integrated_gradients(D: nn.Module, x: torch.Tensor, baseline: float | torch.Tensor = 0.0, n_steps: int = 32,
                         internal_batch_size: int | None = 256, return_delta: bool = False
                         ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Integrated gradients from ``baseline`` to ``x`` (captum, Gauss-Legendre quadrature).

    Signed attributions ``(B, C, H, W)``; with ``return_delta`` also the completeness error
    ``sum_i IG_i - (D(x) - D(baseline))`` per image.
    """
    from captum.attr import IntegratedGradients

    if n_steps < 2:
        raise ConfigError(f"integrated gradients needs n_steps >= 2, got {n_steps}")
    x = _prepare(D, x)
    b = baseline.to(x.device) if isinstance(baseline, torch.Tensor) else float(baseline)
    with torch.enable_grad():
        out = IntegratedGradients(score_function(D)).attribute(
            x, baselines=b, n_steps=int(n_steps), internal_batch_size=internal_batch_size,
            return_convergence_delta=return_delta)
    if return_delta:
        a, delta = out
        return a.detach().cpu(), delta.detach().cpu()
    return out.detach().cpu()


__all__ = ["gradient", "smoothgrad", "integrated_gradients", "to_map"]
