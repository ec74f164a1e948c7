"""Base classes of generators and discriminators and the model registry (see the package docstring)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..registry import Registry


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
            raise ConfigError(f"model {name!r} has no parameter {k!r}; valid: {', '.join(sorted(valid))}")
        params[k] = v
    return params


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
