"""Image quality on pixel samples (N, C, H, W) in [-1, 1]; computed on intensities mapped to [0, 1].

- ``sharpness``: variance of the Laplacian (Pech-Pacheco et al. 2000), per image; higher = more
  high-frequency content. Blur lowers it; noise raises it (so it is no quality score alone).
- ``noise``: Immerkær's (1996, "Fast noise variance estimation") estimate of the noise standard
  deviation ``σ = sqrt(π/2) / (6 (W−2)(H−2)) Σ |I * N|`` with the kernel
  ``N = [[1, −2, 1], [−2, 4, −2], [1, −2, 1]]``; lower is better.
- ``ssim_nn``: SSIM (Wang et al. 2004; Gaussian window σ = 1.5, 11x11, K1 = 0.01, K2 = 0.03,
  data range 1, as ``skimage.metrics.structural_similarity(gaussian_weights=True,
  use_sample_covariance=False)``) between each fake and its nearest real image in pixel L2;
  higher = the fake has the structure of some real image.

Each value is the mean over fakes; ``extra["per_sample"]`` keeps the distribution and, when
``real`` is given, ``extra["real_mean"]`` / ``extra["real_per_sample"]`` the same statistic on
real images. CIs: percentile bootstrap over fakes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import DataError
from .base import Result, bootstrap_mean_ci, check_images, nearest, register

LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
IMMERKAER = torch.tensor([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]], dtype=torch.float64)


def _unit(x: torch.Tensor) -> torch.Tensor:
    return (x.to(torch.float64) + 1.0) / 2.0


def _conv_per_channel(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    n, c, h, w = x.shape
    return F.conv2d(x.reshape(n * c, 1, h, w), kernel[None, None].to(x.dtype)).reshape(n, c, h - 2, w - 2)


def laplacian_variance(images: torch.Tensor, batch: int = 1024) -> torch.Tensor:
    """Per-image variance (population) of the 4-neighbour Laplacian of [0, 1] intensities ('valid' border)."""
    out = [_conv_per_channel(_unit(images[i:i + batch]), LAPLACIAN).flatten(1).var(1, unbiased=False)
           for i in range(0, len(images), batch)]
    return torch.cat(out)


def noise_sigma(images: torch.Tensor, batch: int = 1024) -> torch.Tensor:
    """Per-image Immerkær noise standard deviation of [0, 1] intensities (mean over channels)."""
    _, _, h, w = images.shape
    out = []
    for i in range(0, len(images), batch):
        r = _conv_per_channel(_unit(images[i:i + batch]), IMMERKAER).abs().sum((2, 3))
        out.append((r * math.sqrt(math.pi / 2) / (6.0 * (w - 2) * (h - 2))).mean(1))
    return torch.cat(out)


def _gauss1d(sigma: float = 1.5, truncate: float = 3.5) -> torch.Tensor:
    r = int(truncate * sigma + 0.5)
    x = torch.arange(-r, r + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def ssim(a: torch.Tensor, b: torch.Tensor, sigma: float = 1.5, data_range: float = 1.0,
         k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Per-pair mean SSIM of images ``a``, ``b`` (N, C, H, W) already in [0, data_range].

    Gaussian-weighted local statistics (population covariance), mean over the 'valid' region and
    channels — equal to ``skimage.metrics.structural_similarity(..., gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, data_range=data_range, channel_axis=0)``.
    """
    g = _gauss1d(sigma).to(a.dtype)
    r = len(g) // 2
    n, c, h, w = a.shape
    if h <= 2 * r or w <= 2 * r:
        raise DataError(f"ssim needs images larger than {2 * r + 1}x{2 * r + 1}, got {h}x{w}")
    gh, gw = g.view(1, 1, -1, 1), g.view(1, 1, 1, -1)

    def filt(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(x.reshape(n * c, 1, h, w), gh), gw)

    ux, uy = filt(a), filt(b)
    vx = filt(a * a) - ux * ux
    vy = filt(b * b) - uy * uy
    vxy = filt(a * b) - ux * uy
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.reshape(n, c, -1).mean(2).mean(1)


def _images(fake: torch.Tensor, real: torch.Tensor | None, min_side: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Checked images (range [-1, 1], at least ``min_side`` pixels a side: the 3x3 filters and SSIM's
    11x11 window need them)."""
    fake = check_images(fake, "fake images", min_n=1, min_side=min_side)
    return fake, None if real is None else check_images(real, "real images", min_n=1, min_side=min_side)


def _result(per: torch.Tensor, direction: str, seed: int, n_boot: int, alpha: float,
            real_per: torch.Tensor | None = None, **extra) -> Result:
    lo, hi = bootstrap_mean_ci(per, seed, n_boot, alpha)
    ex = {"per_sample": per.numpy(), **extra}
    if real_per is not None:
        ex.update(real_mean=float(real_per.mean()), real_per_sample=real_per.numpy())
    return Result(float(per.mean()), lo, hi, len(per), direction, ex)


@register("sharpness", "higher", inputs="images", needs_real=False)
def sharpness(real: torch.Tensor | None, fake: torch.Tensor, *, seed: int = 0, n_boot: int = 1000,
              alpha: float = 0.05) -> Result:
    """Mean variance of the Laplacian of the fakes ([0, 1] intensities). Higher = sharper.

    ``sharpness(x) = Var( x * [[0,1,0],[1,-4,1],[0,1,0]] )`` per image. Not a quality score on
    its own: noise raises it too — compare with ``extra["real_mean"]`` (the real images' value).
    """
    fake, real = _images(fake, real, 3)
    return _result(laplacian_variance(fake), "higher", seed, n_boot, alpha,
                   None if real is None else laplacian_variance(real))


@register("noise", "lower", inputs="images", needs_real=False)
def noise(real: torch.Tensor | None, fake: torch.Tensor, *, seed: int = 0, n_boot: int = 1000,
          alpha: float = 0.05) -> Result:
    """Mean Immerkær noise σ of the fakes, in [0, 1] intensity units. Lower is better.

    ``σ = sqrt(π/2) / (6 (W−2)(H−2)) Σ_{x,y} |(I * N)(x, y)|`` (Immerkær 1996). Edges also
    contribute, so compare with ``extra["real_mean"]``.
    """
    fake, real = _images(fake, real, 3)
    return _result(noise_sigma(fake), "lower", seed, n_boot, alpha, None if real is None else noise_sigma(real))


@register("ssim_nn", "higher", inputs="images")
def ssim_nn(real: torch.Tensor, fake: torch.Tensor, *, seed: int = 0, n_boot: int = 1000, chunk: int | None = None,
            alpha: float = 0.05) -> Result:
    """Mean SSIM between each fake and its nearest real image (pixel L2). Higher is better.

    ``ssim_nn = (1/M) Σ_j SSIM(f_j, argmin_i ‖f_j − r_i‖₂)`` (Wang et al. 2004).
    ``extra["nn_index"]``: the nearest real image of each fake.
    """
    fake, real = _images(fake, real, 12)
    _, idx = nearest(fake.flatten(1), real.flatten(1), chunk)
    per = torch.cat([ssim(_unit(fake[i:i + 512]), _unit(real[idx[i:i + 512]])) for i in range(0, len(fake), 512)])
    return _result(per, "higher", seed, n_boot, alpha, nn_index=idx.numpy())


__all__ = ["sharpness", "noise", "ssim_nn", "ssim", "laplacian_variance", "noise_sigma"]
