"""Interpretability of trained GANs: what the discriminator/critic looks at, and how the latent
space is organised.

- :mod:`.saliency` — gradient, SmoothGrad (captum ``NoiseTunnel(Saliency)``), integrated gradients.
- :mod:`.lime` — LIME (captum ``Lime``) on SLIC superpixels or a square grid.
- :mod:`.measures` — deletion/insertion curves, concentration, model-randomisation sanity check;
  tidy result rows for ``runs/<profile>/metrics.jsonl`` (``section='qualitative'``).
- :mod:`.latent` — lerp/slerp, sweeps, attribute vectors, circles, StyleGAN W / mixing /
  truncation, perceptual path length.
- :mod:`.neighbours` — nearest training images of generated images (pixel L2 or features).

Every random draw is seeded; captum's own draws (SmoothGrad noise) run inside
``torch.random.fork_rng`` so the global generator is left untouched.
"""

from __future__ import annotations

import torch

from ..errors import DataError


def check_images(x: torch.Tensor, img_shape: tuple[int, ...] | None = None, name: str = "images") -> torch.Tensor:
    """Return ``x`` as float32 ``(B, C, H, W)``; raise :class:`DataError` on a wrong shape.

    Parameters
    ----------
    x : images in [-1, 1].
    img_shape : the ``(C, H, W)`` the model expects (``D.img_shape``); ``None`` skips that check.
    name : what the images are, for the message.
    """
    if not isinstance(x, torch.Tensor):
        raise DataError(f"{name} must be a torch.Tensor of shape (B, C, H, W), got {type(x).__name__}")
    if x.ndim == 3 and img_shape is not None and tuple(x.shape) == tuple(img_shape):
        raise DataError(f"{name} has shape {tuple(x.shape)}: a single image; add a batch axis with x[None]")
    if x.ndim != 4 or x.shape[0] == 0:
        raise DataError(f"{name} must have shape (B, C, H, W) with B >= 1, got {tuple(x.shape)}")
    if img_shape is not None and tuple(x.shape[1:]) != tuple(img_shape):
        raise DataError(
            f"{name} have shape (B, {', '.join(map(str, x.shape[1:]))}) but the model expects "
            f"(B, {', '.join(map(str, img_shape))}); resize the images or use the matching checkpoint"
        )
    if not torch.is_floating_point(x):
        raise DataError(f"{name} must be floating point in [-1, 1], got dtype {x.dtype}")
    return x.float()


def model_img_shape(model: torch.nn.Module) -> tuple[int, int, int] | None:
    """``model.img_shape`` when the model declares one (all registry models do)."""
    shape = getattr(model, "img_shape", None)
    return tuple(shape) if shape is not None else None


def save_arrays(path, **arrays) -> "Path":
    """Write ``arrays`` (tensors or numpy arrays) to a compressed ``.npz`` file atomically."""
    from pathlib import Path

    import numpy as np

    from ..io import atomic_write

    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"array files end in .npz, got {path.name}")
    data = {k: (v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)) for k, v in arrays.items()}

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:  # a file object: numpy would append .npz to a path
            np.savez_compressed(fh, **data)

    atomic_write(path, write)
    return path


__all__ = ["check_images", "model_img_shape", "save_arrays"]
