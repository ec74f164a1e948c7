"""Numbers for sensitivity maps, so notebook 04 can relate them to the quantitative metrics.

- **Deletion / insertion curves** (Petsiuk et al. 2018, RISE, arXiv:1806.07421), adapted to a
  discriminator whose score is unbounded: pixels are removed (set to ``baseline``) — or, for
  insertion, copied from the image into a ``baseline`` canvas — in order of decreasing map value,
  ``f`` = fraction of pixels changed, ``s(f)`` = D's score. The faithfulness of a map is how fast
  the score moves away from where it started:

      AUC = int_0^1 |s(f) - s(0)| df   (trapezoid rule on the ``n_steps + 1`` fractions)

  compared with the same AUC for uniformly random pixel orders. ``auc_ratio = mean AUC(map) /
  mean AUC(random)``: > 1 means the map ranks pixels better than chance; it is scale-free, so
  logits (DCGAN, StyleGAN) and critic values (WGAN-GP) are comparable.
- **Concentration**: the share of ``|attribution|`` mass in the top ``q`` (10 %) of pixels,
  ``sum_{top k} |m| / sum |m|`` with ``k = max(1, round(q H W))``. A uniform map gives ``k/(HW)``,
  a one-pixel map 1.
- **Model-randomisation sanity check** (Adebayo et al. 2018, "Sanity checks for saliency maps",
  arXiv:1810.03292): maps of a copy of D whose weights are re-initialised (all blocks, or the
  top ``k`` blocks in the cascading variant) must differ from the trained D's maps. Reported:
  mean SSIM (Wang et al. 2004; scikit-image) of the maps scaled to [0, 1], and mean Spearman rank
  correlation (scipy) of the absolute maps. Low values = the method passes (it depends on what
  D learned); values near 1 = the map mostly reflects the input, not the model.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, DataError
from ..results import make_row
from .base import attribute, check_images, model_img_shape, score_function
from .saliency import to_map

SECTION = "qualitative"
AttributionFn = Callable[[nn.Module, torch.Tensor], torch.Tensor]


# ----------------------------------------------------------------------------- concentration
def concentration(maps: torch.Tensor, top: float = 0.1) -> torch.Tensor:
    """Share of ``|map|`` mass in the top ``top`` fraction of pixels, per map: ``(B,)``.

    ``maps`` is ``(B, H, W)`` (or ``(B, C, H, W)``, reduced with ``abs_sum``). A map with no mass
    gives NaN.
    """
    if not 0 < top <= 1:
        raise ConfigError(f"concentration needs 0 < top <= 1, got {top}")
    if maps.ndim == 4:
        maps = to_map(maps, "abs_sum")
    if maps.ndim != 3:
        raise DataError(f"maps must be (B, H, W), got {tuple(maps.shape)}")
    flat = maps.detach().abs().flatten(1).double()
    k = max(1, int(round(top * flat.shape[1])))
    total = flat.sum(1)
    top_mass = flat.topk(k, dim=1).values.sum(1)
    out = top_mass / total
    out[total == 0] = float("nan")
    return out.float()


# ----------------------------------------------------------------------------- deletion / insertion
def pixel_order(maps: torch.Tensor) -> torch.Tensor:
    """Pixel indices (into ``H*W``) by decreasing map value, ties in raster order: ``(B, H*W)``."""
    if maps.ndim != 3:
        raise DataError(f"maps must be (B, H, W), got {tuple(maps.shape)}")
    return torch.argsort(maps.detach().flatten(1).double(), dim=1, descending=True, stable=True)


@dataclass
class CurveResult:
    """Scores along deletion or insertion paths.

    Attributes
    ----------
    mode : ``deletion`` or ``insertion``.
    fractions : ``(n_steps + 1,)`` fraction of pixels changed.
    salient : ``(B, n_steps + 1)`` D's score with the map's order.
    random : ``(B, n_random, n_steps + 1)`` D's score with random orders.
    auc : ``(B,)`` AUC of ``|s(f) - s(0)|`` with the map's order.
    auc_random : ``(B,)`` the same, averaged over the random orders.
    """

    mode: str
    fractions: np.ndarray
    salient: np.ndarray
    random: np.ndarray
    auc: np.ndarray
    auc_random: np.ndarray

    @property
    def auc_ratio(self) -> float:
        """``mean(auc) / mean(auc_random)``: > 1 means the map beats random order."""
        den = float(np.mean(self.auc_random))
        return float(np.mean(self.auc)) / den if den > 0 else float("nan")


def change_auc(scores: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """``int |s(f) - s(0)| df`` by the trapezoid rule along the last axis."""
    dev = np.abs(scores - scores[..., :1])
    from scipy.integrate import trapezoid

    return trapezoid(dev, fractions, axis=-1)


@torch.no_grad()
def perturbation_curve(D: nn.Module, x: torch.Tensor, maps: torch.Tensor, mode: str = "deletion",
                       n_steps: int = 20, baseline: float | torch.Tensor = 0.0, n_random: int = 4, seed: int = 0,
                       batch_size: int = 512) -> CurveResult:
    """Deletion or insertion curve of ``D`` on images ``x`` ordered by ``maps`` vs random orders.

    Parameters
    ----------
    x : images ``(B, C, H, W)``; maps : ``(B, H, W)`` (or ``(B, C, H, W)``, reduced ``abs_sum``).
    mode : ``deletion`` (set the top-f pixels, all channels, to ``baseline``) or ``insertion``
        (start from ``baseline`` and copy the top-f pixels from ``x``).
    n_steps : the curve has ``n_steps + 1`` points, ``f = 0, 1/n_steps, ..., 1``.
    baseline : a float or a tensor broadcastable to one image ``(C, H, W)``.
    n_random : random pixel orders per image (``torch.Generator().manual_seed(seed)``).
    """
    if mode not in ("deletion", "insertion"):
        raise ConfigError(f"mode must be 'deletion' or 'insertion', got {mode!r}")
    if n_steps < 1 or n_random < 1:
        raise ConfigError(f"need n_steps >= 1 and n_random >= 1, got {n_steps}, {n_random}")
    x = check_images(x, model_img_shape(D)).detach().cpu()
    if maps.ndim == 4:
        maps = to_map(maps, "abs_sum")
    b, c, h, w = x.shape
    if tuple(maps.shape) != (b, h, w):
        raise DataError(f"maps must have shape {(b, h, w)} to match the images, got {tuple(maps.shape)}")
    hw = h * w
    base = (torch.as_tensor(baseline, dtype=x.dtype).expand(c, h, w) if isinstance(baseline, torch.Tensor)
            else torch.full((c, h, w), float(baseline)))
    fractions = np.linspace(0.0, 1.0, n_steps + 1)
    counts = torch.as_tensor(np.round(fractions * hw).astype(np.int64))
    rng = torch.Generator().manual_seed(seed)
    orders = [pixel_order(maps)] + [torch.stack([torch.randperm(hw, generator=rng) for _ in range(b)])
                                    for _ in range(n_random)]
    f = score_function(D)
    param = next(iter(D.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    scores = np.zeros((len(orders), b, n_steps + 1))
    for oi, order in enumerate(orders):
        rank = torch.empty_like(order)
        rank.scatter_(1, order, torch.arange(hw).expand(b, -1).contiguous())
        changed = (rank[:, None, :] < counts[None, :, None]).view(b, n_steps + 1, 1, h, w)  # (B, S, 1, H, W)
        src, dst = (base, x[:, None]) if mode == "deletion" else (x[:, None], base)
        imgs = torch.where(changed, src, dst).reshape(-1, c, h, w)
        out = torch.cat([f(imgs[i:i + batch_size].to(device)).double().cpu() for i in range(0, len(imgs), batch_size)])
        scores[oi] = out.view(b, n_steps + 1).numpy()
    salient, random = scores[0], np.moveaxis(scores[1:], 0, 1)
    return CurveResult(mode, fractions, salient, random, change_auc(salient, fractions),
                       change_auc(random, fractions).mean(1))


# ----------------------------------------------------------------------------- randomisation
def randomized_copy(D: nn.Module, seed: int = 0, top_blocks: int | None = None) -> nn.Module:
    """A copy of ``D`` with re-initialised weights (Adebayo et al. 2018, model randomisation).

    ``top_blocks=None`` re-initialises every module: those with ``reset_parameters`` (conv, linear,
    normalisation layers, whose running statistics are reset too) by it, custom layers by redrawing
    each of their own parameters from ``N(0, std)`` with the parameter's current std. ``top_blocks=k`` re-initialises
    only the last ``k`` blocks of ``D.layers()`` (the cascading variant, from the output down).
    Initialisation runs inside ``torch.random.fork_rng`` seeded with ``seed``.
    """
    Dr = copy.deepcopy(D)
    if top_blocks is None:
        targets: list[nn.Module] = [Dr]
    else:
        blocks = list(Dr.layers().values())
        if not 1 <= top_blocks <= len(blocks):
            raise ConfigError(f"top_blocks must be in 1..{len(blocks)} for this model, got {top_blocks}")
        targets = blocks[len(blocks) - top_blocks:]
    n_reset = 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for t in targets:
            for m in t.modules():
                if hasattr(m, "reset_parameters") and callable(m.reset_parameters):
                    m.reset_parameters()
                    n_reset += 1
                else:  # custom layers: redraw each own parameter from N(0, its current std)
                    with torch.no_grad():
                        for p in m.parameters(recurse=False):
                            std = float(p.std()) if p.numel() > 1 else 0.0
                            p.normal_(0.0, std if std > 0 else 0.02)
                            n_reset += 1
                if hasattr(m, "reset_running_stats"):
                    m.reset_running_stats()
    if n_reset == 0:
        raise ConfigError(f"{type(D).__name__} has no parameters to re-initialise; cannot randomise it")
    return Dr.eval()


def _unit(m: np.ndarray) -> np.ndarray:
    m = np.abs(m).astype(np.float64)
    top = m.max()
    return m / top if top > 0 else m


def map_similarity(a: torch.Tensor, b: torch.Tensor) -> dict[str, np.ndarray]:
    """Per-pair SSIM (maps scaled to [0, 1]) and Spearman rank correlation of ``|a|`` and ``|b|``.

    ``a``, ``b``: ``(B, H, W)``. Returns arrays ``ssim`` and ``spearman`` of length ``B``.
    """
    from scipy.stats import spearmanr
    from skimage.metrics import structural_similarity

    if a.shape != b.shape or a.ndim != 3:
        raise DataError(f"maps to compare must both be (B, H, W), got {tuple(a.shape)} and {tuple(b.shape)}")
    a_np, b_np = a.detach().double().cpu().numpy(), b.detach().double().cpu().numpy()
    ssim, rho = [], []
    win = min(7, a.shape[1], a.shape[2])
    win -= 1 - win % 2  # odd window
    for ma, mb in zip(a_np, b_np):
        ua, ub = _unit(ma), _unit(mb)
        ssim.append(structural_similarity(ua, ub, data_range=1.0, win_size=win))
        r = spearmanr(np.abs(ma).ravel(), np.abs(mb).ravel()).statistic
        rho.append(float(r) if np.isfinite(r) else 0.0)
    return {"ssim": np.asarray(ssim), "spearman": np.asarray(rho)}


def sanity_check(D: nn.Module, x: torch.Tensor, method: str | AttributionFn = "smoothgrad",
                 method_kw: dict[str, Any] | None = None, seed: int = 0, cascade: bool = False,
                 reference_maps: torch.Tensor | None = None) -> list[dict[str, Any]]:
    """Compare maps of ``D`` with maps of re-initialised copies (model-randomisation test).

    Returns one dict per randomisation level: ``{"blocks": k or "all", "ssim": (B,), "spearman":
    (B,), "maps": (B, H, W)}``; with ``cascade`` the levels are the top 1, 2, ... blocks and then
    all, else only all. ``reference_maps`` ``(B, H, W)``: the trained D's maps when already computed.
    """
    fn = _method_fn(method, method_kw)
    ref = to_map(fn(D, x), "abs_sum") if reference_maps is None else reference_maps
    levels: list[int | None] = []
    if cascade:
        levels += list(range(1, len(D.layers())))  # the last level, all blocks, is "all" below
    levels.append(None)
    out = []
    for lv in levels:
        Dr = randomized_copy(D, seed=seed + 1, top_blocks=lv)
        m = to_map(fn(Dr, x), "abs_sum")
        sim = map_similarity(ref, m)
        out.append({"blocks": "all" if lv is None else lv, "ssim": sim["ssim"], "spearman": sim["spearman"],
                    "maps": m})
    return out


def _method_fn(method: str | AttributionFn, method_kw: dict[str, Any] | None) -> AttributionFn:
    kw = dict(method_kw or {})
    if callable(method):
        return lambda D, x: method(D, x, **kw)
    return lambda D, x: attribute(method, D, x, **kw)


# ----------------------------------------------------------------------------- rows
def mean_ci(values: Sequence[float] | np.ndarray, z: float = 1.96) -> tuple[float, float, float]:
    """Mean and normal-approximation 95 % interval ``mean +- z * sd / sqrt(n)`` (NaNs dropped)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    m = float(v.mean())
    if len(v) < 2:
        return m, m, m
    half = z * float(v.std(ddof=1)) / math.sqrt(len(v))
    return m, m - half, m + half


def ratio_ci(num: np.ndarray, den: np.ndarray, n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """``mean(num) / mean(den)`` with a percentile bootstrap 95 % interval over paired items."""
    num, den = np.asarray(num, float), np.asarray(den, float)
    value = float(num.mean() / den.mean()) if den.mean() > 0 else float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(num), size=(n_boot, len(num)))
    with np.errstate(divide="ignore", invalid="ignore"):
        boots = num[idx].mean(1) / den[idx].mean(1)
    boots = boots[np.isfinite(boots)]
    if len(boots) == 0:
        return value, float("nan"), float("nan")
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return value, float(lo), float(hi)


@dataclass
class AttributionReport:
    """Everything :func:`measure_attributions` computed (rows for the results file + arrays to plot)."""

    rows: list[dict[str, Any]]
    maps_real: torch.Tensor
    maps_fake: torch.Tensor
    deletion: CurveResult
    insertion: CurveResult
    sanity: list[dict[str, Any]]


def measure_attributions(model: str, D: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                         method: str = "smoothgrad", method_kw: dict[str, Any] | None = None, *,
                         profile: str = "", dataset: str = "", seed: int = 0, n_steps: int = 20,
                         n_random: int = 4, baseline: float = 0.0, top: float = 0.1,
                         maps_real: torch.Tensor | None = None, maps_fake: torch.Tensor | None = None,
                         cascade: bool = False) -> AttributionReport:
    """Concentration, deletion/insertion AUC and the sanity check of one method on one model.

    Rows (``section='qualitative'``, ``feature=method``):
    ``attr_concentration_real`` / ``_fake`` (top-``top`` mass share, mean over images),
    ``attr_deletion_auc_ratio`` / ``attr_insertion_auc_ratio`` (map AUC / random AUC on real and
    fake images together; higher = more faithful), ``attr_deletion_auc`` and
    ``attr_deletion_auc_random`` (raw, in D's units), ``attr_sanity_ssim`` and
    ``attr_sanity_spearman`` (trained vs fully re-initialised D; lower = passes).
    Precomputed maps can be passed to avoid recomputing them.
    """
    fn = _method_fn(method, method_kw)
    real = check_images(real, model_img_shape(D), "real images")
    fake = check_images(fake, model_img_shape(D), "generated images")
    if maps_real is None:
        maps_real = to_map(fn(D, real), "abs_sum")
    if maps_fake is None:
        maps_fake = to_map(fn(D, fake), "abs_sum")
    both = torch.cat([real, fake])
    maps = torch.cat([maps_real, maps_fake])
    dele = perturbation_curve(D, both, maps, "deletion", n_steps, baseline, n_random, seed)
    ins = perturbation_curve(D, both, maps, "insertion", n_steps, baseline, n_random, seed)
    sanity = sanity_check(D, both, fn, seed=seed, cascade=cascade, reference_maps=maps)
    full = sanity[-1]
    common = dict(feature=method, profile=profile, dataset=dataset, seed=seed, section=SECTION)
    rows = []
    for name, vals in (("real", concentration(maps_real, top)), ("fake", concentration(maps_fake, top))):
        m, lo, hi = mean_ci(vals.numpy())
        rows.append(make_row(model, f"attr_concentration_{name}", m, ci_low=lo, ci_high=hi, n=len(vals),
                             direction="none", top=top, **common))
    for cur in (dele, ins):
        v, lo, hi = ratio_ci(cur.auc, cur.auc_random, seed=seed)
        rows.append(make_row(model, f"attr_{cur.mode}_auc_ratio", v, ci_low=lo, ci_high=hi, n=len(cur.auc),
                             direction="higher", n_steps=n_steps, n_random=n_random, baseline=baseline, **common))
    for name, vals in (("attr_deletion_auc", dele.auc), ("attr_deletion_auc_random", dele.auc_random)):
        m, lo, hi = mean_ci(vals)
        rows.append(make_row(model, name, m, ci_low=lo, ci_high=hi, n=len(vals), direction="none", **common))
    for key in ("ssim", "spearman"):
        m, lo, hi = mean_ci(full[key])
        rows.append(make_row(model, f"attr_sanity_{key}", m, ci_low=lo, ci_high=hi, n=len(full[key]),
                             direction="lower", **common))
    return AttributionReport(rows, maps_real, maps_fake, dele, ins, sanity)


__all__ = ["concentration", "pixel_order", "perturbation_curve", "CurveResult", "change_auc", "randomized_copy",
           "map_similarity", "sanity_check", "mean_ci", "ratio_ci", "measure_attributions", "AttributionReport"]
