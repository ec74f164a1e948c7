"""LIME on the discriminator/critic (Ribeiro et al. 2016, arXiv:1602.04938) through captum ``Lime``.

The image is cut into superpixels (SLIC, Achanta et al. 2012, from scikit-image) or square grid
cells. LIME draws ``n_samples`` binary vectors ``z' in {0,1}^K`` (each superpixel kept with
probability 1/2), builds the perturbed image (superpixels with ``z'_k = 0`` set to ``baseline``),
scores it with ``D`` and fits a weighted linear model

    g(z') = w0 + sum_k w_k z'_k,   minimise  sum_j pi(z'_j) (D(x_j) - g(z'_j))^2 + alpha ||w||^2

with the LIME image kernel ``pi(z') = exp(-d(1, z')^2 / width^2)``, ``d`` the cosine distance
between the all-ones vector (the unperturbed image) and ``z'`` (width 0.25 as in the reference
``lime`` package). ``w_k`` is the attribution of superpixel ``k``; it is painted onto the
superpixel's pixels, so maps have the image's shape. The binary draws come from a seeded
``torch.Generator`` (image ``i`` uses ``seed + i``).

The Liaudanskas (2018) study ran LIME on a WGAN-GP critic and found it attends to the digit
strokes; :mod:`ganreport.interpret.measures` makes that comparable across architectures.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, DataError
from .base import METHODS, check_images, model_img_shape, score_function

MASKS = ("slic", "grid")
SURROGATES = ("ridge", "linear", "lasso")


def grid_mask(h: int, w: int, cell: int = 4) -> torch.Tensor:
    """Square cells of side ``cell`` (the last row/column of cells may be smaller): ``(H, W)`` ids 0..K-1."""
    if cell < 1:
        raise ConfigError(f"grid cell size must be >= 1, got {cell}")
    rows = torch.arange(h) // cell
    cols = torch.arange(w) // cell
    return rows[:, None] * int(math.ceil(w / cell)) + cols[None, :]


def slic_mask(image: torch.Tensor, n_segments: int = 25, compactness: float = 0.3, sigma: float = 0.5) -> torch.Tensor:
    """SLIC superpixels of one image ``(C, H, W)`` in [-1, 1]: ``(H, W)`` ids 0..K-1 (contiguous).

    ``compactness`` trades colour similarity against spatial regularity; values are in [0, 1]
    intensity units here (scikit-image's default of 10 suits 0-100 Lab values, not these).
    """
    from skimage.segmentation import slic

    if image.ndim != 3:
        raise DataError(f"slic_mask needs one image (C, H, W), got {tuple(image.shape)}")
    arr = ((image.detach().cpu().float().clamp(-1, 1) + 1) / 2).permute(1, 2, 0).numpy().astype(np.float64)
    if arr.shape[-1] == 1:
        seg = slic(arr[..., 0], n_segments=n_segments, compactness=compactness, sigma=sigma,
                   channel_axis=None, start_label=0, enforce_connectivity=True)
    else:
        seg = slic(arr, n_segments=n_segments, compactness=compactness, sigma=sigma, channel_axis=-1,
                   convert2lab=False, start_label=0, enforce_connectivity=True)
    _, inv = np.unique(seg, return_inverse=True)  # contiguous ids 0..K-1
    return torch.from_numpy(inv.reshape(seg.shape).astype(np.int64))


def feature_masks(x: torch.Tensor, kind: str = "slic", n_segments: int = 25, compactness: float = 0.3,
                  cell: int = 4) -> torch.Tensor:
    """One segmentation per image: ``(B, H, W)`` int64 ids 0..K_i-1 (``kind`` = ``slic`` or ``grid``)."""
    x = check_images(x)
    if kind == "slic":
        return torch.stack([slic_mask(im, n_segments, compactness) for im in x])
    if kind == "grid":
        return grid_mask(x.shape[2], x.shape[3], cell).expand(x.shape[0], -1, -1).clone()
    raise ConfigError(f"unknown LIME mask {kind!r}; known: {', '.join(MASKS)}")


def _surrogate(name: str, alpha: float):
    from captum._utils.models.linear_model import SkLearnLasso, SkLearnLinearRegression, SkLearnRidge

    if name == "ridge":
        return SkLearnRidge(alpha=alpha)
    if name == "lasso":
        return SkLearnLasso(alpha=alpha)
    if name == "linear":
        return SkLearnLinearRegression()
    raise ConfigError(f"unknown LIME surrogate {name!r}; known: {', '.join(SURROGATES)}")


def lime_kernel(kernel_width: float = 0.25):
    """LIME's image similarity: ``exp(-d^2 / width^2)``, ``d`` = cosine distance of ``z'`` to all-ones."""

    def sim(original_inp: Any, perturbed_inp: Any, interp: torch.Tensor, **kw: Any) -> torch.Tensor:
        z = interp.float().flatten()
        n = z.norm()
        cos = z.sum() / (n * math.sqrt(z.numel())) if n > 0 else torch.tensor(0.0)
        d = 1.0 - cos
        return torch.exp(-(d ** 2) / kernel_width ** 2)

    return sim


@METHODS.register("lime")
def lime(D: nn.Module, x: torch.Tensor, n_samples: int = 200, mask: str = "slic", n_segments: int = 25,
         compactness: float = 0.3, cell: int = 4, baseline: float = 0.0, surrogate: str = "ridge",
         alpha: float = 1.0, kernel_width: float = 0.25, seed: int = 0, masks: torch.Tensor | None = None,
         batch_size: int = 100) -> torch.Tensor:
    """LIME attributions of ``D(x)``, one surrogate model per image, painted onto the superpixels.

    Parameters
    ----------
    n_samples : perturbed images per explained image.
    mask : ``slic`` superpixels or ``grid`` cells (``cell`` pixels square); ignored when ``masks``
        (``(B, H, W)`` ids) is given.
    baseline : value that replaces a switched-off superpixel (0 = mid-grey in [-1, 1]).
    surrogate : ``ridge`` (``alpha``; LIME's default), ``lasso`` or ``linear`` (no penalty).
    seed : image ``i`` draws its binary vectors from ``torch.Generator().manual_seed(seed + i)``.

    Returns
    -------
    Tensor ``(B, C, H, W)``: the coefficient ``w_k`` of each pixel's superpixel (same on every channel).
    """
    from captum.attr import Lime

    if n_samples < 2:
        raise ConfigError(f"LIME needs n_samples >= 2, got {n_samples}")
    x = check_images(x, model_img_shape(D)).detach()
    if masks is None:
        masks = feature_masks(x, mask, n_segments, compactness, cell)
    if masks.shape != (x.shape[0], x.shape[2], x.shape[3]):
        raise DataError(f"LIME masks must have shape {(x.shape[0], x.shape[2], x.shape[3])}, got {tuple(masks.shape)}")
    param = next(iter(D.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    f = score_function(D)
    out = []
    for i in range(x.shape[0]):
        rng = torch.Generator().manual_seed(seed + i)
        m = masks[i].long()
        k = int(m.max()) + 1

        def perturb(original_inp: Any, **kw: Any) -> torch.Tensor:
            return torch.bernoulli(torch.full((1, k), 0.5), generator=rng).long().to(device)

        explainer = Lime(f, interpretable_model=_surrogate(surrogate, alpha), similarity_func=lime_kernel(kernel_width),
                         perturb_func=perturb)
        fm = m[None, None].expand(1, x.shape[1], -1, -1).to(device)
        with torch.no_grad():
            a = explainer.attribute(x[i:i + 1].to(device), baselines=float(baseline), feature_mask=fm,
                                    n_samples=int(n_samples), perturbations_per_eval=max(1, int(batch_size)))
        out.append(a.detach().cpu())
    return torch.cat(out)


__all__ = ["lime", "feature_masks", "slic_mask", "grid_mask", "lime_kernel", "MASKS"]
