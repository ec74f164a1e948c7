"""The metric registry, the result type, input checks and the shared numerical helpers.

Kept apart from ``__init__`` so that each metric module can import it without a cycle.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError, DataError
from ..fit import torch_threads  # noqa: F401 - re-exported: the metrics' thread pinning
from ..registry import Registry
from ..results import DIRECTION_TEXT, DIRECTIONS

# DIRECTIONS and DIRECTION_TEXT: see ganreport.results (rows carry the direction too)
INPUTS = ("features", "logits", "images", "scores")


@dataclass
class Result:
    """A metric value with its confidence interval.

    Attributes
    ----------
    value : the estimate.
    ci_low, ci_high : a 95 % interval (bootstrap, subsets or blocks; the metric's docstring says
        which), ``nan`` when not computed (``n_boot=0``).
    n : number of generated (``fake``) samples the estimate used.
    direction : ``"lower"`` or ``"higher"`` is better, ``"target"`` when the real-vs-real value is
        best (two-sided), ``"none"`` for descriptive statistics.
    extra : further outputs, e.g. per-sample scores (``per_sample``), the kernel bandwidth.
    name : the metric's registry name.
    """

    value: float
    ci_low: float
    ci_high: float
    n: int
    direction: str
    extra: dict[str, Any] = field(default_factory=dict)
    name: str = ""

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {self.direction!r}")
        self.value, self.ci_low, self.ci_high = float(self.value), float(self.ci_low), float(self.ci_high)
        self.n = int(self.n)

    def row(self, model: str, **fields: Any) -> dict[str, Any]:
        """A tidy row for :func:`ganreport.results.record` (``results.make_row``)."""
        from ..results import make_row

        ci = {k: (None if not math.isfinite(v) else v) for k, v in (("ci_low", self.ci_low), ("ci_high", self.ci_high))}
        return make_row(model, fields.pop("metric", self.name), self.value, n=self.n, direction=self.direction,
                        **ci, **fields)

    def __repr__(self) -> str:
        return (f"Result({self.name or 'metric'}={self.value:.6g}, 95% CI [{self.ci_low:.6g}, {self.ci_high:.6g}], "
                f"n={self.n}, {DIRECTION_TEXT.get(self.direction, self.direction)})")



@dataclass(frozen=True)
class MetricSpec:
    """A registered metric: the function and what it expects.

    ``inputs``: ``features`` (2-D, same dim), ``logits`` (2-D, fake only), ``images``
    (4-D, same C/H/W), ``scores`` (1-D critic outputs). ``needs_real``: whether ``real`` is used.
    """

    name: str
    fn: Callable[..., Result]
    direction: str
    inputs: str = "features"
    needs_real: bool = True


METRICS: Registry[MetricSpec] = Registry("metric")


def register(name: str, direction: str, inputs: str = "features", needs_real: bool = True) -> Callable:
    """Decorator registering ``fn(real, fake, *, seed, **kw) -> Result`` under ``name``."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    if inputs not in INPUTS:
        raise ValueError(f"inputs must be one of {INPUTS}, got {inputs!r}")

    def add(fn: Callable[..., Result]) -> Callable[..., Result]:
        METRICS.add(name, MetricSpec(name, fn, direction, inputs, needs_real))
        return fn

    return add


# --------------------------------------------------------------------------- input checks
def as_tensor(x: Any, what: str) -> torch.Tensor:
    """``x`` (torch tensor, numpy array or nested list) as a float64 CPU tensor."""
    if x is None:
        raise DataError(f"{what} is missing (None); pass a tensor or numpy array")
    if isinstance(x, torch.Tensor):
        t = x.detach().cpu()
    else:
        try:
            t = torch.as_tensor(np.asarray(x))
        except (TypeError, ValueError) as e:
            raise DataError(f"{what} cannot be read as a numeric array ({e})") from None
    if t.dtype == torch.bool or t.is_complex() or not (t.is_floating_point() or t.dtype in (
            torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)):
        raise DataError(f"{what} must hold real numbers, got dtype {t.dtype}")
    return t.to(torch.float64)


def _check_common(t: torch.Tensor, what: str, min_n: int) -> None:
    if t.numel() == 0:
        raise DataError(f"{what} is empty (shape {tuple(t.shape)}); compute features of at least {min_n} samples")
    if len(t) < min_n:
        raise DataError(f"{what} has {len(t)} sample(s); this metric needs at least {min_n}")
    if not torch.isfinite(t).all():
        bad = int((~torch.isfinite(t)).reshape(len(t), -1).any(1).sum())
        raise DataError(f"{what} holds NaN or inf values in {bad} sample(s); remove them or fix the model "
                        "that produced them")


def check_features(x: Any, what: str = "features", min_n: int = 2) -> torch.Tensor:
    """(N, D) float64 features, N >= ``min_n``, D >= 1, finite; else :class:`DataError`."""
    t = as_tensor(x, what)
    if t.ndim != 2:
        raise DataError(f"{what} must be a 2-D (samples, features) array, got shape {tuple(t.shape)}; "
                        "flatten images or extract features first")
    if t.shape[1] == 0:
        raise DataError(f"{what} has 0 feature dimensions (shape {tuple(t.shape)})")
    _check_common(t, what, min_n)
    return t


#: Slack on the [-1, 1] pixel range (float32 round-off of tanh outputs and rescaled images).
RANGE_TOL = 1e-4


def check_images(x: Any, what: str = "images", min_n: int = 2, min_side: int = 1) -> torch.Tensor:
    """(N, C, H, W) float64 images in [-1, 1], N >= ``min_n``, H and W >= ``min_side``, finite;
    else :class:`DataError` naming the problem (for the range: the values found and how to rescale)."""
    t = as_tensor(x, what)
    if t.ndim != 4:
        raise DataError(f"{what} must be (N, C, H, W) images in [-1, 1], got shape {tuple(t.shape)}")
    _check_common(t, what, min_n)
    if min(t.shape[2:]) < min_side:
        raise DataError(f"{what} must be at least {min_side}x{min_side} pixels, got {t.shape[2]}x{t.shape[3]}")
    lo, hi = float(t.min()), float(t.max())
    if lo < -1 - RANGE_TOL or hi > 1 + RANGE_TOL:
        raise DataError(f"{what} must be in [-1, 1] (the generators' range), got values in [{lo:.4g}, {hi:.4g}]; "
                        "rescale [0, 1] images with 2x - 1 and [0, 255] images with x / 127.5 - 1")
    return t


def check_scores(x: Any, what: str = "scores", min_n: int = 2) -> torch.Tensor:
    """(N,) float64 critic scores (an (N, 1) array is accepted), N >= ``min_n``, finite."""
    t = as_tensor(x, what)
    if t.ndim == 2 and t.shape[1] == 1:
        t = t[:, 0]
    if t.ndim != 1:
        raise DataError(f"{what} must be a 1-D array of critic outputs, got shape {tuple(t.shape)}")
    _check_common(t, what, min_n)
    return t


def check_same_dim(a: torch.Tensor, b: torch.Tensor, what_a: str = "real", what_b: str = "fake") -> None:
    if tuple(a.shape[1:]) != tuple(b.shape[1:]):
        raise DataError(f"{what_a} and {what_b} differ in shape per sample: {tuple(a.shape[1:])} vs "
                        f"{tuple(b.shape[1:])}; use the same feature extractor (and image size) for both")


# --------------------------------------------------------------------------- numerics
#: Inputs with at most this many real + fake samples are scored on one torch thread (see
#: :func:`torch_threads`); larger ones use torch's thread setting.
SINGLE_THREAD_MAX = 6000


def rng_for(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def chunks(n: int, size: int) -> Iterator[slice]:
    for i in range(0, n, max(1, int(size))):
        yield slice(i, min(n, i + max(1, int(size))))


def auto_chunk(n_cols: int, budget: int = 1 << 22) -> int:
    """Rows per chunk so that a (rows, n_cols) float64 block stays near ``budget`` elements (32 MiB)."""
    return max(1, min(65536, budget // max(1, n_cols)))


def sq_dists(a: torch.Tensor, b: torch.Tensor, b_sq: torch.Tensor | None = None) -> torch.Tensor:
    """Squared Euclidean distances (len(a), len(b)) = |a|^2 + |b|^2 - 2 a.b, clamped at 0."""
    a_sq = (a * a).sum(1, keepdim=True)
    if b_sq is None:
        b_sq = (b * b).sum(1)
    return (a_sq + b_sq[None, :] - 2.0 * (a @ b.T)).clamp_min_(0.0)


def knn_sq_radius(x: torch.Tensor, k: int, chunk: int | None = None) -> torch.Tensor:
    """Squared distance of each row of ``x`` to its k-th nearest *other* row (chunked)."""
    n = len(x)
    if not 1 <= k < n:
        raise ConfigError(f"k must be in 1..{n - 1} for {n} samples, got {k}")
    x_sq = (x * x).sum(1)
    out = torch.empty(n, dtype=x.dtype)
    for sl in chunks(n, chunk or auto_chunk(n)):
        d = sq_dists(x[sl], x, x_sq)
        d[torch.arange(sl.stop - sl.start), torch.arange(sl.start, sl.stop)] = float("inf")  # exclude self
        out[sl] = d.topk(k, dim=1, largest=False).values[:, -1]
    return out


def nearest(a: torch.Tensor, b: torch.Tensor, chunk: int | None = None,
            exclude_self: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """For each row of ``a``: (squared distance to, index of) its nearest row of ``b`` (chunked).

    ``exclude_self`` (``a is b``) skips the identical index.
    """
    b_sq = (b * b).sum(1)
    dist = torch.empty(len(a), dtype=a.dtype)
    idx = torch.empty(len(a), dtype=torch.long)
    for sl in chunks(len(a), chunk or auto_chunk(len(b))):
        d = sq_dists(a[sl], b, b_sq)
        if exclude_self:
            d[torch.arange(sl.stop - sl.start), torch.arange(sl.start, sl.stop)] = float("inf")
        dist[sl], idx[sl] = d.min(1)
    return dist, idx


def bootstrap_mean_ci(values: torch.Tensor | np.ndarray, seed: int = 0, n_boot: int = 1000,
                      alpha: float = 0.05, batch: int = 64) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-sample ``values`` (seeded, batched)."""
    v = torch.as_tensor(np.asarray(values), dtype=torch.float64).reshape(-1)
    if n_boot <= 0 or len(v) < 2:
        return float("nan"), float("nan")
    g = rng_for(seed)
    means = []
    for b in chunks(n_boot, batch):
        idx = torch.randint(len(v), (b.stop - b.start, len(v)), generator=g)
        means.append(v[idx].mean(1))
    m = torch.cat(means)
    return float(torch.quantile(m, alpha / 2)), float(torch.quantile(m, 1 - alpha / 2))


def bootstrap_stat_ci(stat: Callable[[torch.Tensor, torch.Tensor], float], n_a: int, n_b: int, seed: int = 0,
                      n_boot: int = 200, alpha: float = 0.05, method: str = "percentile",
                      estimate: float | None = None) -> tuple[float, float, np.ndarray]:
    """Bootstrap a two-sample statistic ``stat(idx_a, idx_b)`` resampling both sides independently.

    ``method="percentile"``: the alpha/2, 1-alpha/2 quantiles of the replicates;
    ``method="normal"``: ``estimate +- z * sd(replicates)`` (always contains the estimate; used
    for statistics such as FID whose replicates are biased upwards by duplicated samples).
    """
    if n_boot <= 0:
        return float("nan"), float("nan"), np.zeros(0)
    g = rng_for(seed)
    reps = np.empty(n_boot)
    for i in range(n_boot):
        reps[i] = stat(torch.randint(n_a, (n_a,), generator=g), torch.randint(n_b, (n_b,), generator=g))
    if method == "normal":
        if estimate is None:
            raise ValueError("method='normal' needs the point estimate")
        z = _norm_ppf(1 - alpha / 2)
        sd = float(reps.std(ddof=1)) if n_boot > 1 else float("nan")
        return estimate - z * sd, estimate + z * sd, reps
    return float(np.quantile(reps, alpha / 2)), float(np.quantile(reps, 1 - alpha / 2)), reps


def half_sample_ci(stat: Callable[..., float], sizes: Sequence[int], estimate: float, seed: int = 0,
                   n_rep: int = 100, alpha: float = 0.05) -> tuple[float, float, np.ndarray]:
    """Interval of a statistic of several sets from **half-samples of every set** (the delete-half
    jackknife: Shao & Wu 1989, "A general theory for jackknife variance estimation").

    Each of ``n_rep`` replicates draws ``⌊n/2⌋`` indices without replacement from each set
    (``sizes``) and evaluates ``stat(idx_0, idx_1, ...)``. For a smooth statistic the spread of
    half-sample values around the full-sample one equals the sampling variance of the full
    estimate (``σ²(1/m − 1/n) = σ²/n`` at ``m = n/2``), from every set at once — unlike a bootstrap
    of one set with the others fixed, which misses their variability, or a bootstrap with
    replacement, whose duplicates break k-NN radii and kernel sums. For degenerate U-statistics
    (MMD² between equal distributions) it is conservative (about √3 too wide). Returns
    ``estimate ± t_{n_rep−1} · sd(replicates)`` and the replicates.
    """
    if n_rep < 2:
        return float("nan"), float("nan"), np.zeros(0)
    reps = np.array([stat(*idx) for idx in half_samples(sizes, seed, n_rep)])
    lo, hi = t_interval(estimate, reps, alpha)
    return lo, hi, reps


def half_samples(sizes: Sequence[int], seed: int = 0, n_rep: int = 100) -> Iterator[tuple[torch.Tensor, ...]]:
    """The index tuples of :func:`half_sample_ci` (``⌊n/2⌋`` of each set, without replacement,
    seeded), for statistics that give several values per replicate (precision … coverage)."""
    if min(sizes) < 4:
        raise DataError(f"half-sampling needs at least 4 items per set, got sizes {list(sizes)}")
    g = rng_for(seed)
    for _ in range(int(n_rep)):
        yield tuple(torch.randperm(n, generator=g)[:n // 2] for n in sizes)


def _norm_ppf(p: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(p))


def t_interval(estimate: float, replicates: np.ndarray, alpha: float = 0.05, scale: float = 1.0) -> tuple[float, float]:
    """``estimate +- t_{m-1} * sd(replicates) * scale`` (m = number of replicates)."""
    from scipy.stats import t as student_t

    r = np.asarray(replicates, dtype=float)
    if len(r) < 2:
        return float("nan"), float("nan")
    half = float(student_t.ppf(1 - alpha / 2, len(r) - 1)) * float(r.std(ddof=1)) * scale
    return estimate - half, estimate + half
