"""Statistics of the discriminator / critic outputs (seed study 001, "approaches to understanding
GANs"): mean output on real and on fake images, their gap, and the offset of the equilibrium from
zero. The seed study found them uninformative for comparing sample quality (FID/KID were better)
and the critic's equilibrium offset from zero, especially for small critics; we report them so
that this finding can be checked.

Inputs are the critic's raw outputs ``D(x)`` (logits for the non-saturating loss, critic values
for WGAN-GP), 1-D: ``real = D(real images)``, ``fake = D(generated images)``. CIs: percentile
bootstrap (resampling real and fake outputs independently).
"""

from __future__ import annotations

import torch

from .base import Result, bootstrap_mean_ci, bootstrap_stat_ci, register


def _two_sample(real: torch.Tensor, fake: torch.Tensor, sign: float, half: bool, direction: str, seed: int,
                n_boot: int, alpha: float) -> Result:
    scale = 0.5 if half else 1.0

    def stat(i: torch.Tensor, j: torch.Tensor) -> float:
        return float(scale * (real[i].mean() + sign * fake[j].mean()))

    value = float(scale * (real.mean() + sign * fake.mean()))
    lo, hi, _ = bootstrap_stat_ci(stat, len(real), len(fake), seed, n_boot, alpha)
    return Result(value, lo, hi, len(fake), direction,
                  {"real_mean": float(real.mean()), "fake_mean": float(fake.mean()),
                   "fake_above_real_median": float((fake > real.median()).double().mean())})


@register("critic_real", "none", inputs="scores")
def critic_real(real: torch.Tensor, fake: torch.Tensor, *, seed: int = 0, n_boot: int = 1000,
                alpha: float = 0.05) -> Result:
    """Mean critic output on real images, ``E[D(x)]`` (descriptive; no better direction)."""
    lo, hi = bootstrap_mean_ci(real, seed, n_boot, alpha)
    return Result(float(real.mean()), lo, hi, len(real), "none", {"per_sample": real.numpy()})


@register("critic_fake", "none", inputs="scores")
def critic_fake(real: torch.Tensor, fake: torch.Tensor, *, seed: int = 0, n_boot: int = 1000,
                alpha: float = 0.05) -> Result:
    """Mean critic output on generated images, ``E[D(G(z))]`` (descriptive; no better direction)."""
    lo, hi = bootstrap_mean_ci(fake, seed, n_boot, alpha)
    return Result(float(fake.mean()), lo, hi, len(fake), "none", {"per_sample": fake.numpy()})


@register("critic_gap", "lower", inputs="scores")
def critic_gap(real: torch.Tensor, fake: torch.Tensor, *, seed: int = 0, n_boot: int = 1000,
               alpha: float = 0.05) -> Result:
    """``E[D(x)] − E[D(G(z))]``: for a WGAN critic the Wasserstein-1 estimate (Arjovsky et al.
    2017). Lower is better for the generator (the critic cannot tell the sets apart).
    ``extra["fake_above_real_median"]``: share of fakes the critic scores above the median real."""
    return _two_sample(real, fake, -1.0, False, "lower", seed, n_boot, alpha)


@register("critic_offset", "none", inputs="scores")
def critic_offset(real: torch.Tensor, fake: torch.Tensor, *, seed: int = 0, n_boot: int = 1000,
                  alpha: float = 0.05) -> Result:
    """``(E[D(x)] + E[D(G(z))]) / 2``: where the critic's decisions balance, relative to zero
    (seed 001: "the equilibrium ... at an offset from zero"). Descriptive (signed); 0 = centred."""
    return _two_sample(real, fake, 1.0, True, "none", seed, n_boot, alpha)
