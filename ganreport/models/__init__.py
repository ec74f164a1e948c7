"""Architectures only (no trainer, metric or cache): :mod:`.base` holds the base classes and the
model registry, one file per architecture registers itself.

Model registry: a name builds a (generator, discriminator) pair and says how to train it.

Conventions every architecture follows (the rest of the package relies on them):

- ``G(z)`` maps ``z`` of shape ``(B, G.z_dim)`` to images ``(B, C, H, W)`` in [-1, 1] (tanh).
- ``G.train_forward(z, rng)`` is what the trainer calls (StyleGAN mixes styles there, drawing
  from the seeded ``torch.Generator`` ``rng``); it defaults to ``G(z)``.
- ``D(x)`` maps images to raw scores ``(B,)`` (logits for the non-saturating loss, critic
  values for WGAN-GP).
- ``G.layers()`` / ``D.layers()`` return an ordered ``{name: module}`` of the blocks whose
  outputs are meaningful feature maps (dissection and attribution hook them).
"""

from .base import (MODELS, TRAIN_KEYS, Discriminator, Generator, ModelSpec, build, check_img_shape,  # noqa: F401
                   count_params, profile_kwargs, register, resolve_kwargs)
from . import dcgan  # noqa: E402,F401  (registers the architectures)
from . import stylegan  # noqa: E402,F401
from . import wgan_gp  # noqa: E402,F401
from . import modnet  # noqa: E402,F401

__all__ = ["MODELS", "TRAIN_KEYS", "Discriminator", "Generator", "ModelSpec", "build", "check_img_shape", "count_params",
           "profile_kwargs", "register", "resolve_kwargs"]
