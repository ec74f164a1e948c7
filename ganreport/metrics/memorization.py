"""Memorisation: are the fakes closer to the training images than unseen real images are?

For every fake ``f`` and every held-out real image ``h`` the pixel-L2 distance to its nearest
training image is computed (chunked). A generator that copies training images puts its fakes
much nearer the training set than the held-out real images are; one that generalises (or simply
produces worse images) does not. This is the nearest-neighbour "distance ratio" test of the
memorisation literature (e.g. the ModNet thesis §3.4.2 discussion of Improved GAN memorising
SVHN; Webster et al. 2019 use the same idea with held-out data as the yardstick).
"""

from __future__ import annotations

import torch

from .base import Result, bootstrap_stat_ci, check_images, check_same_dim, nearest, register


@register("memorization", "target", inputs="images")
def memorization(real: torch.Tensor, fake: torch.Tensor, *, heldout: torch.Tensor | None = None, seed: int = 0,
                 n_boot: int = 500, chunk: int | None = None, quantile: float = 0.05, alpha: float = 0.05) -> Result:
    """Distance ratio ``median_f d(f, R) / median_h d(h, R)``; ``real`` = training images R,
    ``fake`` = generated images, ``heldout`` = real images not in R (required).

    ``d(x, R) = min_{r∈R} ‖x − r‖₂`` in pixel space ([-1, 1] images, flattened). **Two-sided**
    (direction ``target``): ≈ 1 — the value of unseen real images — is best; < 1 means fakes sit
    closer to training images than unseen real images do (copying), > 1 that they sit farther
    (noise and other unrealistic images: ×3 noise scored 2.5), so neither end is "better".
    ``extra``: per-fake distances and nearest training index (``nn_index``), and ``frac_close``,
    the fraction of fakes nearer than the ``quantile`` (5 %) quantile of held-out distances
    (≈ ``quantile`` without memorisation). CI: percentile bootstrap resampling fakes and
    held-out images.
    """
    if heldout is None:
        from ..errors import ConfigError

        raise ConfigError("memorization needs heldout=<real images not used for training> besides "
                          "real=<training images> and fake=<generated images>")
    held = check_images(heldout, "heldout")
    check_same_dim(real, held, "real (training images)", "heldout")
    r = real.flatten(1)
    d_fake, idx = nearest(fake.flatten(1), r, chunk)
    d_held, _ = nearest(held.flatten(1), r, chunk)
    d_fake, d_held = d_fake.sqrt(), d_held.sqrt()
    value = float(d_fake.median() / d_held.median().clamp_min(1e-12))

    def stat(i: torch.Tensor, j: torch.Tensor) -> float:
        return float(d_fake[i].median() / d_held[j].median().clamp_min(1e-12))

    lo, hi, _ = bootstrap_stat_ci(stat, len(d_fake), len(d_held), seed, n_boot, alpha)
    thr = float(torch.quantile(d_held, quantile))
    return Result(value, lo, hi, len(fake), "target",
                  {"per_sample": d_fake.numpy(), "heldout_distances": d_held.numpy(), "nn_index": idx.numpy(),
                   "frac_close": float((d_fake < thr).double().mean()), "quantile": quantile,
                   "median_fake": float(d_fake.median()), "median_heldout": float(d_held.median())})


__all__ = ["memorization"]
