"""The sharded feature pass: features of images (or of fresh samples) computed over the ranks of a
process group and gathered in order (as stylegan2-ada's ``metric_utils`` does).

With one process it equals :func:`ganreport.metrics.features.extract`; the process-group plumbing
(``shard``, ``gather_cat``) is in :mod:`ganreport.distributed`.
"""

from __future__ import annotations

from typing import Any

import torch

from ..distributed import gather_cat, shard
from .features import extract as extract_features


@torch.no_grad()
def extract(extractor: Any, images: torch.Tensor, batch_size: int = 256) -> dict[str, torch.Tensor]:
    """Features of ``images`` (every rank holds all of them) computed sharded and gathered in order.

    Equals :func:`ganreport.metrics.features.extract` on the same images (extractors are in eval
    mode, so features do not depend on how the images are batched).
    """
    part = images[shard(len(images))]
    if len(part) == 0:  # more ranks than images: contribute empty blocks of the right width
        probe = extract_features(extractor, images[:1], batch_size)
        mine = {k: v[:0] for k, v in probe.items()}
    else:
        mine = extract_features(extractor, part, batch_size)
    return {k: gather_cat(v) for k, v in mine.items()}


@torch.no_grad()
def sample_features(G: torch.nn.Module, extractor: Any, n: int, seed: int = 0, batch_size: int = 256,
                    device: str | torch.device = "cpu", return_images: bool = False,
                    **kw: Any) -> dict[str, torch.Tensor]:
    """Generate ``n`` samples and extract their features, both sharded; only features are gathered.

    Returns the extractor's outputs (and ``"images"`` when ``return_images``), identical on
    every rank and equal to the single-process ``extract(extractor, train.sample(G, n, seed))``.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    z = G.sample_z(n, torch.Generator().manual_seed(seed), "cpu")[shard(n)]
    imgs = [G(z[i:i + batch_size].to(device), **kw).cpu() for i in range(0, len(z), batch_size)]
    mine_imgs = torch.cat(imgs) if imgs else torch.empty(0, *G.img_shape)
    if len(mine_imgs):
        mine = extract_features(extractor, mine_imgs, batch_size)
    else:
        probe = extract_features(extractor, torch.zeros(1, *G.img_shape), 1)
        mine = {k: v[:0] for k, v in probe.items()}
    out = {k: gather_cat(v) for k, v in mine.items()}
    if return_images:
        out["images"] = gather_cat(mine_imgs)
    return out
