"""What every interpretability method shares: input checks, the attribution-method registry
(``METHODS``; saliency and LIME register into it), the score function of a discriminator, and
atomic array files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import DataError
from ..registry import Registry


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


def save_arrays(path, **arrays) -> Path:
    """Write ``arrays`` (tensors or numpy arrays) to a compressed ``.npz`` file atomically."""
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


Attribution = Callable[..., torch.Tensor]
METHODS: Registry[Attribution] = Registry("attribution method")


def score_function(D: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``x -> D(x)`` as a ``(B,)`` tensor; raises :class:`DataError` when D returns another shape."""

    def f(x: torch.Tensor) -> torch.Tensor:
        out = D(x)
        if out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        if out.shape != (x.shape[0],):
            raise DataError(
                f"the discriminator must return one score per image, shape ({x.shape[0]},), got {tuple(out.shape)}"
            )
        return out

    return f


def attribute(method: str, D: nn.Module, x: torch.Tensor, **kw: Any) -> torch.Tensor:
    """Attributions of ``D`` on ``x`` by the registered ``method`` (``METHODS.names()``)."""
    return METHODS.get(method)(D, x, **kw)
