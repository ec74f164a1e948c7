"""Base classes of generators and discriminators and the model registry (see the package docstring)."""

from __future__ import annotations

import math
import numbers

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..registry import Registry
from ..settings import did_you_mean, range_text


class Generator(nn.Module):
    """Base class of generators: ``z_dim``, ``img_shape`` and the hooks the trainer uses."""

    z_dim: int
    img_shape: tuple[int, int, int]

    def train_forward(self, z: torch.Tensor, rng: torch.Generator | None = None) -> torch.Tensor:
        return self(z)

    def sample_z(self, n: int, rng: torch.Generator | None = None, device: torch.device | str = "cpu") -> torch.Tensor:
        """Standard normal latents from the seeded generator ``rng`` (drawn on CPU, then moved)."""
        return torch.randn(n, self.z_dim, generator=rng).to(device)

    def layers(self) -> "OrderedDict[str, nn.Module]":
        raise TypeError(f"{type(self).__name__} must implement layers() (an ordered {{name: block}} of its feature maps)")


class Discriminator(nn.Module):
    """Base class of discriminators/critics: ``D(x) -> (B,)`` scores."""

    img_shape: tuple[int, int, int]

    def layers(self) -> "OrderedDict[str, nn.Module]":
        raise TypeError(f"{type(self).__name__} must implement layers() (an ordered {{name: block}} of its feature maps)")


@dataclass(frozen=True)
class ModelSpec:
    """How to build and train one architecture.

    Attributes
    ----------
    build_g, build_d : callables ``(img_shape, **kwargs) -> module``.
    loss : ``"ns"`` (non-saturating GAN loss) or ``"wgan_gp"``.
    defaults : default keyword arguments (widths, z_dim, learning rates, n_critic...).
    g_keys, d_keys : which keyword arguments go to ``build_g`` / ``build_d``.
    base : the architecture this one is a variant of (``dcgan_weak`` -> ``dcgan``), or None. A
        profile's ``model_kwargs`` entry of ``base`` applies to a variant that has none of its own
        (see :func:`profile_kwargs`).
    task : for generators that modify real images instead of mapping noise (``modnet``): the name
        of its training hooks in ``ganreport.train.tasks.TASKS`` (the trainer builds them with
        ``TASKS.get(task)(trainer)``; they give the packed generator inputs of a batch, the terms
        added to the generator loss and checkpoint metadata); None for ``G(z)`` models.
    on_load : ``on_load(G, meta) -> G``, applied by ``train.load_generator`` after loading the
        weights (``modnet`` attaches the real test split as the source of its samples), or None.
    """

    name: str
    build_g: Callable[..., Generator]
    build_d: Callable[..., Discriminator]
    loss: str = "ns"
    defaults: dict[str, Any] = field(default_factory=dict)
    g_keys: tuple[str, ...] = ()
    d_keys: tuple[str, ...] = ()
    description: str = ""
    base: str | None = None
    task: str | None = None
    on_load: Callable[[Generator, dict], Generator] | None = None


MODELS: Registry[ModelSpec] = Registry("model")

TRAIN_KEYS = ("lr_g", "lr_d", "betas", "n_critic", "gp_lambda", "r1_gamma", "ema", "style_mixing")


def register(spec: ModelSpec) -> ModelSpec:
    MODELS.add(spec.name, spec)
    return spec


def resolve_kwargs(name: str, **kw: Any) -> dict[str, Any]:
    """The spec's defaults updated with ``kw``; unknown keys are an error that lists the valid ones."""
    spec = MODELS.get(name)
    params = dict(spec.defaults)
    valid = set(spec.g_keys) | set(spec.d_keys) | set(TRAIN_KEYS) | set(spec.defaults)
    for k, v in kw.items():
        if v is None:
            continue
        if k not in valid:
            raise ConfigError(f"model {name!r} has no parameter {k!r}{did_you_mean(k, sorted(valid))}; "
                              f"valid: {', '.join(sorted(valid))}")
        check_param(name, k, v, spec.defaults.get(k))
        params[k] = v
    return params


#: Declared ranges of the model and training parameters: ``(low, high, low open, high open)``.
PARAM_RANGES: dict[str, tuple[float | None, float | None, bool, bool]] = {
    "z_dim": (1, None, False, False), "w_dim": (1, None, False, False), "g_width": (1, None, False, False),
    "d_width": (1, None, False, False), "map_depth": (1, None, False, False), "depth": (1, None, False, False),
    "num_classes": (2, None, False, False), "n_critic": (1, None, False, False),
    "classifier_seed": (0, None, False, False), "lr_g": (0, None, True, False), "lr_d": (0, None, True, False),
    "gp_lambda": (0, None, False, False), "r1_gamma": (0, None, False, False), "ema": (0, 1, False, True),
    "style_mixing": (0, 1, False, False), "delta_scale": (0, None, True, False), "l1_lambda": (0, None, False, False),
    "label_weight": (0, None, False, False),
}
_INT_KEYS = {"z_dim", "w_dim", "g_width", "d_width", "map_depth", "depth", "num_classes", "n_critic", "classifier_seed"}


def check_param(model: str, key: str, v: Any, default: Any = None) -> None:
    """Type and range of one parameter, before anything is built: one :class:`ConfigError` line naming
    the model, the key, the value and what is allowed (``g_width=-3`` would otherwise surface as a
    torch "negative dimension" traceback)."""
    def bad(what: str) -> ConfigError:
        return ConfigError(f"model {model!r}: {key} = {v!r}: must be {what}")

    lo, hi, lo_open, hi_open = PARAM_RANGES.get(key, (None, None, False, False))
    rng = range_text(lo, hi, lo_open, hi_open)
    if key in _INT_KEYS or (isinstance(default, int) and not isinstance(default, bool)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise bad(f"an integer {rng}".rstrip())
    elif isinstance(default, bool):
        if not isinstance(v, bool):
            raise bad("true or false")
    elif isinstance(default, float) or key in PARAM_RANGES:
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise bad(f"a number {rng}".rstrip())
    elif key == "betas":
        if not (isinstance(v, (tuple, list)) and len(v) == 2
                and all(isinstance(b, numbers.Real) and not isinstance(b, bool) and 0 <= b < 1 for b in v)):
            raise bad("two numbers in [0, 1), e.g. (0.5, 0.999)")
        return
    elif isinstance(default, dict):
        if not isinstance(v, dict):
            raise bad("a mapping")
        return
    elif isinstance(default, str):
        if not isinstance(v, str):
            raise bad("a string")
        return
    else:
        return
    if isinstance(v, bool):
        return
    if (lo is not None and (v <= lo if lo_open else v < lo)) or (hi is not None and (v >= hi if hi_open else v > hi)):
        raise bad(f"{'an integer' if isinstance(v, numbers.Integral) else 'a number'} {rng}")


def profile_kwargs(name: str, model_kwargs: dict[str, Any] | None) -> dict[str, Any]:
    """Model keyword arguments of ``name`` from a profile's ``model_kwargs`` section.

    The entry of ``name`` itself when present; otherwise, for a registered variant (``spec.base``),
    the entry of its base architecture restricted to the keys the variant accepts (so
    ``dcgan_weak`` and ``dcgan_small`` inherit ``dcgan``'s widths); otherwise ``{}``.
    """
    model_kwargs = model_kwargs or {}
    if model_kwargs.get(name) is not None:
        return dict(model_kwargs[name])
    spec = MODELS.get(name)
    if spec.base is None or model_kwargs.get(spec.base) is None:
        return {}
    valid = set(spec.g_keys) | set(spec.d_keys) | set(TRAIN_KEYS) | set(spec.defaults)
    return {k: v for k, v in dict(model_kwargs[spec.base]).items() if k in valid}


def build(name: str, img_shape: tuple[int, int, int], **kw: Any) -> tuple[Generator, Discriminator, dict[str, Any]]:
    """Build ``(G, D, params)`` for architecture ``name`` on images of shape ``img_shape``."""
    spec = MODELS.get(name)
    params = resolve_kwargs(name, **kw)
    g = spec.build_g(tuple(img_shape), **{k: params[k] for k in spec.g_keys if k in params})
    d = spec.build_d(tuple(img_shape), **{k: params[k] for k in spec.d_keys if k in params})
    return g, d, params


def count_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def check_img_shape(img_shape: tuple[int, int, int], allowed_sizes: tuple[int, ...] = (28, 32)) -> tuple[int, int, int]:
    c, h, w = img_shape
    if h != w or h not in allowed_sizes or c not in (1, 3):
        raise ConfigError(
            f"image shape {img_shape} not supported: need (C, S, S) with C in (1, 3) and S in {allowed_sizes}"
        )
    return img_shape
