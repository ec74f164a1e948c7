"""Generator layers, forward hooks and seeded latents shared by every step of GAN Dissection.

- :func:`generator_layers`, :func:`check_layers`, :func:`layer_units`, :func:`last_hidden_layer` —
  the named feature-map blocks of ``G.layers()``.
- :func:`record_layers` — record layer outputs; :func:`intervene` — rewrite them
  (``r' = r + α m (k − r)``, Bau et al. 2019, §2.2), with :func:`unit_alpha` for a hard α.
- :func:`latents` — the seeded latent stream (blocks of ``Z_BLOCK``, batch-size independent).
- :func:`concept_index` and small device / segmenter-label helpers.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

from ...errors import ConfigError

Z_BLOCK = 256  # latents are drawn in blocks of this size, each from its own seed (batch-size independent)


def generator_layers(G: nn.Module) -> "OrderedDict[str, nn.Module]":
    """``G.layers()``: the generator's named blocks whose outputs are feature maps."""
    try:
        layers = G.layers()
    except (AttributeError, NotImplementedError, TypeError):
        raise ConfigError(f"{type(G).__name__} does not list its layers (needs a layers() method)") from None
    if not layers:
        raise ConfigError(f"{type(G).__name__}.layers() is empty; nothing to dissect")
    return OrderedDict(layers)


def check_layers(G: nn.Module, layers: str | Sequence[str] | None) -> list[str]:
    """Validated layer names (``None``: all); unknown names raise an error listing the valid ones."""
    valid = list(generator_layers(G))
    if layers is None:
        return valid
    names = [layers] if isinstance(layers, str) else list(layers)
    if not names:
        raise ConfigError(f"no layer chosen; valid layers: {', '.join(valid)}")
    for n in names:
        if n not in valid:
            raise ConfigError(f"unknown layer {n!r} of {type(G).__name__}; valid layers: {', '.join(valid)}")
    return names


def _feature_map(out: Any, layer: str) -> torch.Tensor:
    t = out[0] if isinstance(out, (tuple, list)) else out
    if not isinstance(t, torch.Tensor) or t.ndim != 4:
        shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
        raise ConfigError(f"layer {layer!r} does not output a (B, units, h, w) feature map (got {shape}); "
                          "dissect another layer")
    return t


def _replace(out: Any, new: torch.Tensor) -> Any:
    if isinstance(out, tuple):
        return (new, *out[1:])
    if isinstance(out, list):
        return [new, *out[1:]]
    return new


@contextmanager
def record_layers(G: nn.Module, layers: Sequence[str], track_grad: bool = False) -> Iterator[dict[str, torch.Tensor]]:
    """Context manager: a dict that holds the latest output of each named layer after ``G(z)``.

    ``track_grad``: outputs that do not require gradients (computed from constants) are marked as
    requiring them, so gradients with respect to every recorded layer can be taken.
    """
    mods = generator_layers(G)
    store: dict[str, torch.Tensor] = {}
    handles = []
    for name in check_layers(G, layers):
        def hook(mod, inp, out, name=name):
            t = _feature_map(out, name)
            if track_grad and torch.is_grad_enabled() and not t.requires_grad:
                t.requires_grad_(True)
            store[name] = t
        handles.append(mods[name].register_forward_hook(hook))
    try:
        yield store
    finally:
        for h in handles:
            h.remove()


@contextmanager
def intervene(G: nn.Module, layer: str, alpha: torch.Tensor, values: torch.Tensor | float = 0.0,
              positions: torch.Tensor | None = None) -> Iterator[None]:
    """Context manager: while active, layer ``layer`` outputs ``r' = r + α m (k − r)``.

    Parameters
    ----------
    alpha : ``(units,)`` coefficients in [0, 1] (1 for the chosen units, 0 elsewhere for a hard
        intervention; a tensor with ``requires_grad`` for the optimal-set search).
    values : ``k``: scalar or ``(units,)`` (0 = ablation).
    positions : ``m``: ``(h, w)`` or ``(B, h, w)`` mask at the layer's resolution (None: everywhere).
    """
    mod = generator_layers(G)[check_layers(G, layer)[0]]

    def hook(m, inp, out):
        r = _feature_map(out, layer)
        if alpha.shape != (r.shape[1],):
            raise ConfigError(f"alpha must have shape ({r.shape[1]},) for layer {layer!r}, got {tuple(alpha.shape)}")
        k = torch.as_tensor(values, dtype=r.dtype, device=r.device)
        k = k.view(1, -1, 1, 1) if k.ndim == 1 else k
        a = alpha.to(r.device, r.dtype).view(1, -1, 1, 1)
        if positions is None:
            mask = torch.ones(1, 1, *r.shape[-2:], dtype=r.dtype, device=r.device)
        else:
            p = positions.to(r.device, r.dtype)
            if p.shape[-2:] != r.shape[-2:]:
                raise ConfigError(f"positions must have the layer's resolution {tuple(r.shape[-2:])}, "
                                  f"got {tuple(p.shape)}")
            mask = p.view(1, 1, *p.shape) if p.ndim == 2 else p[:, None]
        return _replace(out, r + a * mask * (k - r))

    h = mod.register_forward_hook(hook)
    try:
        yield
    finally:
        h.remove()


def unit_alpha(n_units: int, units: Sequence[int] | torch.Tensor) -> torch.Tensor:
    """``(n_units,)`` float with 1 at ``units`` (a hard intervention's α)."""
    idx = torch.as_tensor(list(units) if not isinstance(units, torch.Tensor) else units, dtype=torch.long)
    if idx.numel() and (idx.min() < 0 or idx.max() >= n_units):
        raise ConfigError(f"unit indices must be in 0..{n_units - 1}, got {idx.tolist()}")
    a = torch.zeros(n_units)
    a[idx] = 1.0
    return a


def latents(G: nn.Module, seed: int, start: int, stop: int) -> torch.Tensor:
    """Latents ``z_start .. z_{stop-1}`` of the seeded stream ``seed`` (blocks of ``Z_BLOCK`` each
    drawn from ``torch.Generator().manual_seed(seed * 1_000_003 + block)``), so sample ``i`` is the
    same whatever the batch size and only the current batch is ever held."""
    if stop <= start:
        raise ConfigError(f"empty latent range {start}..{stop}")
    out = []
    for b in range(start // Z_BLOCK, (stop - 1) // Z_BLOCK + 1):
        z = G.sample_z(Z_BLOCK, torch.Generator().manual_seed(seed * 1_000_003 + b), "cpu")
        lo, hi = max(start - b * Z_BLOCK, 0), min(stop - b * Z_BLOCK, Z_BLOCK)
        out.append(z[lo:hi])
    return torch.cat(out)


def _device(G: nn.Module) -> torch.device:
    p = next(iter(G.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def _concepts_of(seg: nn.Module) -> tuple[str, ...]:
    c = getattr(seg, "concepts", None)
    if not c:
        raise ConfigError(f"{type(seg).__name__} has no 'concepts' attribute; use models.segmenter.Segmenter")
    return tuple(c)


def concept_index(seg: nn.Module, concept: str | int) -> int:
    """Index of ``concept`` in the segmenter's labels; unknown concepts raise an error listing them."""
    concepts = _concepts_of(seg)
    if isinstance(concept, (int, np.integer)) and not isinstance(concept, bool):
        if not 0 <= int(concept) < len(concepts):
            raise ConfigError(f"concept index {concept} out of range 0..{len(concepts) - 1}")
        return int(concept)
    if concept not in concepts:
        raise ConfigError(f"concept {concept!r} is not labelled by the segmenter; known: {', '.join(concepts)}")
    return concepts.index(concept)


def _labels(seg: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return seg(x).argmax(1)


def _layer_units(G: nn.Module, layer: str) -> int:
    with torch.no_grad(), record_layers(G, [layer]) as acts:
        G(latents(G, 0, 0, 1).to(_device(G)))
    return int(acts[layer].shape[1])


def layer_units(G: nn.Module) -> "OrderedDict[str, int]":
    """Number of units (channels) of every layer of ``G.layers()`` (one forward pass of one sample)."""
    names = list(generator_layers(G))
    with torch.no_grad(), record_layers(G, names) as acts:
        G(latents(G, 0, 0, 1).to(_device(G)))
    return OrderedDict((n, int(acts[n].shape[1])) for n in names)


def last_hidden_layer(G: nn.Module, img_channels: int | None = None) -> str:
    """The last layer of ``G.layers()`` with more units than image channels (skips an RGB output)."""
    ch = img_channels or int(getattr(G, "img_shape", (3,))[0])
    units = layer_units(G)
    hidden = [n for n, u in units.items() if u > ch]
    return hidden[-1] if hidden else list(units)[-1]


__all__ = ["Z_BLOCK", "generator_layers", "check_layers", "record_layers", "intervene", "unit_alpha", "latents",
           "concept_index", "layer_units", "last_hidden_layer"]
