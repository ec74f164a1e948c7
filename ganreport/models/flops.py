"""Parameter counts and forward FLOPs per sample of each architecture's G and D.

FLOPs are counted by :class:`torch.utils.flop_counter.FlopCounterMode`, which counts the matrix
products of convolutions (also transposed), linear layers and matmuls at the aten level:
``2 · MACs`` (one multiply + one add per multiply-accumulate), e.g. ``2 · C_in · C_out · k² · H_out · W_out``
for a convolution. Element-wise work (activations, normalisation, noise, upsampling) is not
counted; it is small next to the convolutions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .base import MODELS, build, count_params


def forward_flops(module: nn.Module, x: torch.Tensor, **kw: Any) -> float:
    """FLOPs per sample of ``module(x, **kw)`` (counted on the batch ``x``, divided by its size).

    The module is run in eval mode (restored afterwards), so batch norm uses running statistics
    and StyleGAN uses its constant noise; neither changes the count. (Autograd stays on: the
    counter's module tracker rejects views of parameters made under ``no_grad``.)
    """
    if x.ndim < 1 or x.shape[0] < 1:
        raise ValueError(f"x needs a non-empty batch dimension, got shape {tuple(x.shape)}")
    was_training = module.training
    module.eval()
    try:
        with FlopCounterMode(display=False) as counter:
            module(x, **kw)
    finally:
        module.train(was_training)
    return counter.get_total_flops() / x.shape[0]


def model_costs(name: str, img_shape: tuple[int, int, int] = (1, 28, 28), batch: int = 2,
                **model_kw: Any) -> list[dict[str, Any]]:
    """Rows ``{model, net, params, flops_per_sample, mflops_per_sample}`` for G and D of ``name``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # weight values do not change the counts; keep the global RNG untouched
        G, D, params = build(name, tuple(img_shape), **model_kw)
    z = G.sample_z(batch, torch.Generator().manual_seed(0))
    x = torch.zeros(batch, *img_shape)
    rows = []
    for net, mod, inp in (("G", G, z), ("D", D, x)):
        f = forward_flops(mod, inp)
        rows.append({"model": name, "net": net, "params": count_params(mod), "flops_per_sample": f,
                     "mflops_per_sample": f / 1e6, "n_critic": int(params.get("n_critic", 1))})
    return rows


def cost_table(models: Iterable[str] | None = None, img_shape: tuple[int, int, int] = (1, 28, 28),
               model_kwargs: Mapping[str, Mapping[str, Any]] | None = None) -> pd.DataFrame:
    """Parameter counts and forward FLOPs per sample of G and D, one row per (model, net).

    Parameters
    ----------
    models : registry names (default: every registered model).
    img_shape : (C, H, W) of the images.
    model_kwargs : per-model overrides, e.g. a profile's ``model_kwargs`` section.

    Returns
    -------
    DataFrame with columns ``model, net, params, flops_per_sample, mflops_per_sample, n_critic``.
    ``n_critic`` is the number of D steps per G step, so the training cost of a G step is roughly
    ``3·(n_critic + 1)·FLOPs_D + (n_critic + 3)·FLOPs_G`` (backward ≈ 2 × forward).
    """
    names = list(models) if models is not None else MODELS.names()
    model_kwargs = model_kwargs or {}
    rows: list[dict[str, Any]] = []
    for name in names:
        rows.extend(model_costs(name, img_shape, **dict(model_kwargs.get(name) or {})))
    return pd.DataFrame(rows, columns=["model", "net", "params", "flops_per_sample", "mflops_per_sample", "n_critic"])
