"""Classifier two-sample tests (C2ST): 0.5 = indistinguishable, 1.0 = perfectly separable.

- ``c2st_1nn``: leave-one-out 1-nearest-neighbour accuracy on the pooled real + fake features
  (Xu et al. 2018, "An empirical study on evaluation metrics of GANs"; Lopez-Paz & Oquab 2017).
- ``c2st_net``: a small MLP trained on half of the (balanced) pooled set, accuracy on the other
  half (Lopez-Paz & Oquab 2017, "Revisiting classifier two-sample tests").

Both report *balanced* accuracy ``(acc_real + acc_fake) / 2`` so that unequal set sizes keep 0.5
as the chance level. Lower (towards 0.5) is better; values below 0.5 are chance fluctuations
(1-NN also drops below 0.5 when fakes copy training images). ``extra["detectability"]`` gives a
per-fake score (higher = easier to tell apart) for showing the most detectable fakes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import DataError
from .base import Result, chunks, half_sample_ci, nearest, register, rng_for


def _balanced_ci(correct_real: torch.Tensor, correct_fake: torch.Tensor, seed: int, n_boot: int,
                 alpha: float, batch: int = 64) -> tuple[float, float]:
    """Stratified percentile bootstrap of ``(mean(correct_real) + mean(correct_fake)) / 2``."""
    if n_boot <= 0:
        return float("nan"), float("nan")
    g = rng_for(seed)
    a, b = correct_real.double(), correct_fake.double()
    reps = []
    for sl in chunks(n_boot, batch):
        m = sl.stop - sl.start
        ia = torch.randint(len(a), (m, len(a)), generator=g)
        ib = torch.randint(len(b), (m, len(b)), generator=g)
        reps.append((a[ia].mean(1) + b[ib].mean(1)) / 2)
    r = torch.cat(reps)
    return float(torch.quantile(r, alpha / 2)), float(torch.quantile(r, 1 - alpha / 2))


def _loo_1nn(real: torch.Tensor, fake: torch.Tensor, chunk: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Correctness of the leave-one-out 1-NN label of every real and every fake sample."""
    n_r = len(real)
    z = torch.cat([real, fake])
    _, idx = nearest(z, z, chunk, exclude_self=True)
    pred_fake = idx >= n_r
    return ~pred_fake[:n_r], pred_fake[n_r:]


@register("c2st_1nn", "lower")
def c2st_1nn(real: torch.Tensor, fake: torch.Tensor, *, seed: int = 0, n_boot: int = 100,
             chunk: int | None = None, alpha: float = 0.05) -> Result:
    """Leave-one-out 1-NN two-sample accuracy (Xu et al. 2018). Lower (→ 0.5) is better.

    Each pooled sample is labelled by its nearest *other* sample (Euclidean); balanced accuracy
    ``(acc_real + acc_fake)/2``. ``extra["detectability"]`` per fake: distance to the nearest
    real minus distance to the nearest other fake. CI: ``n_boot`` half-samples of both sets
    (:func:`~ganreport.metrics.base.half_sample_ci`). A bootstrap of the correctness indicators
    treats them as independent although each depends on its neighbours in both sets; its
    intervals covered the expected accuracy in 72 % of independent draws (``tests/metrics/test_coverage.py``).
    """
    correct_real, correct_fake = _loo_1nn(real, fake, chunk)
    acc_r, acc_f = float(correct_real.double().mean()), float(correct_fake.double().mean())
    value = (acc_r + acc_f) / 2

    def stat(i: torch.Tensor, j: torch.Tensor) -> float:
        cr, cf = _loo_1nn(real[i], fake[j], chunk)
        return (float(cr.double().mean()) + float(cf.double().mean())) / 2

    lo, hi, _ = half_sample_ci(stat, (len(real), len(fake)), value, seed, n_boot, alpha)
    lo, hi = max(lo, 0.0), min(hi, 1.0)  # an accuracy (nan stays nan)
    d_fr = nearest(fake, real, chunk)[0].sqrt()
    d_ff = nearest(fake, fake, chunk, exclude_self=True)[0].sqrt()
    return Result(value, lo, hi, len(fake), "lower",
                  {"acc_real": acc_r, "acc_fake": acc_f, "detectability": (d_fr - d_ff).numpy(),
                   "fake_detected": correct_fake.numpy()})


@register("c2st_net", "lower")
def c2st_net(real: torch.Tensor, fake: torch.Tensor, *, seed: int = 0, hidden: int = 64, steps: int = 300,
             lr: float = 1e-2, weight_decay: float = 1e-3, n_boot: int = 1000, alpha: float = 0.05) -> Result:
    """Neural classifier two-sample test (Lopez-Paz & Oquab 2017). Lower (→ 0.5) is better.

    Both sets are subsampled to the same size ``m = min(N_real, N_fake)`` (seeded), each split in
    halves; an MLP ``D -> hidden -> 1`` (ReLU) is trained full-batch with Adam for ``steps`` steps
    on standardised features of the first halves, and the value is its balanced accuracy on the
    held-out halves. ``extra["detectability"]``: held-out fakes' predicted probability of being
    fake (``extra["heldout_fake_index"]`` maps them back to rows of ``fake``). CI: stratified
    bootstrap of the held-out correctness indicators.
    """
    g = rng_for(seed)
    m = min(len(real), len(fake))
    if m < 4:
        raise DataError(f"c2st_net needs at least 4 samples in each set (2 to train, 2 to test), got {len(real)} real "
                        f"and {len(fake)} fake")
    ir = torch.randperm(len(real), generator=g)[:m]
    jf = torch.randperm(len(fake), generator=g)[:m]
    h = m // 2
    xr, xf = real[ir].float(), fake[jf].float()
    x_tr = torch.cat([xr[:h], xf[:h]])
    y_tr = torch.cat([torch.zeros(h), torch.ones(h)])
    mu, sd = x_tr.mean(0), x_tr.std(0).clamp_min(1e-6)
    x_tr = (x_tr - mu) / sd
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        net = nn.Sequential(nn.Linear(x_tr.shape[1], hidden), nn.ReLU(), nn.Linear(hidden, 1))
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(int(steps)):
        loss = F.binary_cross_entropy_with_logits(net(x_tr)[:, 0], y_tr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        p_real = torch.sigmoid(net((xr[h:] - mu) / sd)[:, 0])
        p_fake = torch.sigmoid(net((xf[h:] - mu) / sd)[:, 0])
    correct_real, correct_fake = p_real < 0.5, p_fake >= 0.5
    value = (float(correct_real.double().mean()) + float(correct_fake.double().mean())) / 2
    lo, hi = _balanced_ci(correct_real, correct_fake, seed, n_boot, alpha)
    return Result(value, lo, hi, len(fake), "lower",
                  {"detectability": p_fake.double().numpy(), "heldout_fake_index": jf[h:].numpy(),
                   "train_loss": float(loss.detach()), "n_test": 2 * (m - h)})


__all__ = ["c2st_1nn", "c2st_net"]
