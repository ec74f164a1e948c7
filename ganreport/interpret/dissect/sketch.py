"""Streaming per-unit quantiles in fixed memory (the dissection threshold ``t_u``).

:class:`QuantileSketch` is a vectorised DDSketch (Masson, Rim & Lee 2019, VLDB, "DDSketch: a fast
and fully-mergeable quantile sketch with relative-error guarantees"): log-spaced bins give every
quantile estimate a relative error ≤ ``rel_acc`` in a fixed number of counters per unit.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ...errors import ConfigError, DataError


class QuantileSketch:
    """Per-unit streaming quantiles with relative accuracy ``rel_acc`` in fixed memory (DDSketch).

    A value ``x`` with ``|x| ≥ min_abs`` falls in bin ``i = ceil(log_γ |x|)``, ``γ = (1 + a)/(1 − a)``,
    ``a = rel_acc``; bins hold counts (one signed set for positive and one for negative values, and
    a zero bin for ``|x| < min_abs``). The quantile at level ``q`` is the bin holding rank
    ``q (n − 1)``, reported as ``2 γ^i / (γ + 1)``: its relative error is ≤ ``a`` (Masson et al.
    2019, Prop. 3) for ``min_abs ≤ |x| ≤ max_abs`` (outside, values are clamped to that range; the
    exact per-unit minimum and maximum are kept and bound the estimates).

    Memory: ``units × (2 ⌈ln(max_abs/min_abs)/ln γ⌉ + 3)`` 64-bit counters, whatever the number of
    values added (``nbytes``).

    Parameters
    ----------
    n_units : number of independent streams (units / channels).
    rel_acc : relative accuracy ``a`` of every quantile estimate.
    min_abs, max_abs : magnitude range resolved by the bins.
    """

    def __init__(self, n_units: int, rel_acc: float = 0.005, min_abs: float = 1e-6, max_abs: float = 1e6) -> None:
        if not isinstance(n_units, (int, np.integer)) or n_units < 1:
            raise ConfigError(f"n_units must be a positive integer, got {n_units!r}")
        if not 0 < rel_acc < 0.5:
            raise ConfigError(f"rel_acc must be in (0, 0.5), got {rel_acc}")
        if not 0 < min_abs < max_abs:
            raise ConfigError(f"need 0 < min_abs < max_abs, got {min_abs}, {max_abs}")
        self.n_units, self.rel_acc, self.min_abs, self.max_abs = int(n_units), float(rel_acc), float(min_abs), float(max_abs)
        self.gamma = (1 + rel_acc) / (1 - rel_acc)
        self._lg = math.log(self.gamma)
        self.i_min = math.floor(math.log(min_abs) / self._lg)
        self.i_max = math.ceil(math.log(max_abs) / self._lg)
        self.n_mag = self.i_max - self.i_min + 1
        self.n_bins = 2 * self.n_mag + 1  # [negatives (descending magnitude) | zero | positives]
        self.counts = torch.zeros(self.n_units, self.n_bins, dtype=torch.int64)
        self.vmin = torch.full((self.n_units,), math.inf, dtype=torch.float64)
        self.vmax = torch.full((self.n_units,), -math.inf, dtype=torch.float64)
        self.count = 0

    @property
    def nbytes(self) -> int:
        """Bytes held by the sketch (constant: does not grow with the number of values)."""
        return sum(t.numel() * t.element_size() for t in (self.counts, self.vmin, self.vmax))

    def update(self, x: torch.Tensor) -> None:
        """Add the rows of ``x`` ``(N, n_units)``: column ``u`` goes to stream ``u``."""
        if x.ndim != 2 or x.shape[1] != self.n_units:
            raise DataError(f"sketch update needs (N, {self.n_units}) values, got {tuple(x.shape)}")
        if x.shape[0] == 0:
            return
        x = x.detach().to("cpu", torch.float64, copy=True)
        lo, hi = x.min(0).values, x.max(0).values  # NaN propagates through min/max
        if not (torch.isfinite(lo).all() and torch.isfinite(hi).all()):
            raise DataError("non-finite activations (NaN/inf) cannot be sketched; check the generator")
        n = int(x.shape[0])
        sign = torch.sign(x)
        a = x.abs_()
        sign.mul_(a >= self.min_abs)  # |x| < min_abs -> the zero bin
        # bin offset 1..n_mag of magnitude bin i = ceil(log_gamma |x|), in place on the copy
        a.clamp_(self.min_abs, self.max_abs).log_().div_(self._lg).ceil_().clamp_(self.i_min, self.i_max)
        slot = a.sub_(self.i_min - 1).mul_(sign).add_(self.n_mag).long()  # n_mag ± offset, n_mag for zeros
        slot += torch.arange(self.n_units, dtype=torch.long) * self.n_bins
        self.counts += torch.bincount(slot.view(-1), minlength=self.n_units * self.n_bins).view(self.n_units, self.n_bins)
        self.vmin = torch.minimum(self.vmin, lo)
        self.vmax = torch.maximum(self.vmax, hi)
        self.count += n

    def quantile(self, q: float) -> torch.Tensor:
        """Estimates ``(n_units,)`` float64 of the value at rank ``q (n − 1)`` of each stream."""
        if not 0.0 <= q <= 1.0:
            raise ConfigError(f"quantile level must be in [0, 1], got {q}")
        if self.count == 0:
            raise DataError("the sketch is empty; add values before asking for quantiles")
        cum = self.counts.cumsum(1).to(torch.float64)
        rank = torch.full((self.n_units, 1), q * (self.count - 1), dtype=torch.float64)
        b = torch.searchsorted(cum, rank, right=True).squeeze(1).clamp_max(self.n_bins - 1)
        pos = b > self.n_mag
        i = torch.where(pos, b - self.n_mag - 1, self.n_mag - 1 - b) + self.i_min
        mag = 2.0 * torch.pow(torch.tensor(self.gamma, dtype=torch.float64), i.double()) / (self.gamma + 1.0)
        est = torch.where(pos, mag, -mag)
        est = torch.where(b == self.n_mag, torch.zeros_like(est), est)
        return torch.minimum(torch.maximum(est, self.vmin), self.vmax)


__all__ = ["QuantileSketch"]
