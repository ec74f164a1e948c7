"""Nearest training images of generated images (Brownlee 2019, "How to evaluate GANs": a sample
that is a near copy of a training image means memorisation; one far from all of them is novel).

Distances are Euclidean, ``d(q, r) = ||f(q) - f(r)||_2`` with ``f`` the flattened pixels (default)
or a feature function (the classifier's pre-logits, ...). The search is exact and chunked over
both queries and references: squared distances ``|q|^2 + |r|^2 - 2 q.r`` are computed in float64
for a ``(query_chunk, ref_chunk)`` block at a time and merged into a running top-k, so memory is
``O(query_chunk * (ref_chunk + k))``, never ``O(n_q * n_r)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ConfigError, DataError
from .base import check_images
from .latent import FeatureFn, apply_features


@dataclass
class Neighbours:
    """``distances`` ``(Q, k)`` ascending and ``indices`` ``(Q, k)`` into the reference set."""

    distances: torch.Tensor
    indices: torch.Tensor
    space: str


def knn(queries: torch.Tensor, reference: torch.Tensor, k: int = 3, query_chunk: int = 256,
        ref_chunk: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact k nearest rows of ``reference`` ``(R, F)`` for each row of ``queries`` ``(Q, F)``.

    Returns ``(distances, indices)``, each ``(Q, k)``, distances Euclidean and ascending.
    """
    if queries.ndim != 2 or reference.ndim != 2 or queries.shape[1] != reference.shape[1]:
        raise DataError(f"queries and reference must be (n, F) with the same F, got {tuple(queries.shape)} "
                        f"and {tuple(reference.shape)}")
    if not 1 <= k <= len(reference):
        raise ConfigError(f"k must be in 1..{len(reference)} (the reference size), got {k}")
    if query_chunk < 1 or ref_chunk < 1:
        raise ConfigError("chunk sizes must be >= 1")
    ref = reference.double()
    ref_sq = ref.pow(2).sum(1)
    out_d, out_i = [], []
    for qs in range(0, len(queries), query_chunk):
        q = queries[qs:qs + query_chunk].double()
        q_sq = q.pow(2).sum(1, keepdim=True)
        best_d = torch.full((len(q), k), float("inf"), dtype=torch.float64)
        best_i = torch.zeros((len(q), k), dtype=torch.long)
        for rs in range(0, len(ref), ref_chunk):
            r = ref[rs:rs + ref_chunk]
            d2 = (q_sq + ref_sq[rs:rs + ref_chunk][None] - 2.0 * q @ r.T).clamp_min_(0.0)
            cand_d = torch.cat([best_d, d2], 1)
            cand_i = torch.cat([best_i, torch.arange(rs, rs + len(r)).expand(len(q), -1)], 1)
            best_d, pos = cand_d.topk(k, dim=1, largest=False, sorted=True)
            best_i = cand_i.gather(1, pos)
        out_d.append(best_d.sqrt())
        out_i.append(best_i)
    return torch.cat(out_d).float(), torch.cat(out_i)


@torch.no_grad()
def nearest_neighbours(generated: torch.Tensor, train: torch.Tensor, k: int = 3, feature_fn: FeatureFn | None = None,
                       batch_size: int = 256, query_chunk: int = 256, ref_chunk: int = 2048,
                       space: str | None = None, train_features: torch.Tensor | None = None) -> Neighbours:
    """The ``k`` nearest training images of each generated image, in pixels or in ``feature_fn``'s space.

    Parameters
    ----------
    generated, train : images ``(N, C, H, W)`` of the same shape.
    feature_fn : ``images -> (B, F)`` features (or an extractor returning a dict; its ``main``
        output is used); ``None`` = pixel L2.
    batch_size : images per feature-function call.
    space : label stored in the result (default ``pixels`` or ``features``).
    train_features : precomputed ``feature_fn`` features of ``train`` ``(N, F)`` (e.g. the cached
        real-data features of :func:`ganreport.metrics.features.real_features`), skipping their
        recomputation.
    """
    generated = check_images(generated, None, "generated images")
    train = check_images(train, tuple(generated.shape[1:]), "training images")

    def feats(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([apply_features(feature_fn, x[i:i + batch_size]).float().cpu()
                          for i in range(0, len(x), batch_size)])

    if train_features is not None:
        if feature_fn is None:
            raise ConfigError("train_features need the feature_fn that produced them (for the generated images)")
        if len(train_features) != len(train):
            raise DataError(f"train_features has {len(train_features)} rows for {len(train)} training images")
        ref = train_features.reshape(len(train), -1).float().cpu()
    else:
        ref = feats(train)
    d, i = knn(feats(generated), ref, k, query_chunk, ref_chunk)
    return Neighbours(d, i, space or ("pixels" if feature_fn is None else "features"))


__all__ = ["knn", "nearest_neighbours", "Neighbours"]
