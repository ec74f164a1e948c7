"""Figures: image grids, loss curves, saving (atomic) and closing."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

import numpy as np
import torch

from . import io


def to_numpy_images(x: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> (N, H, W, C) float in [0, 1] (C squeezed when 1)."""
    if x.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got {tuple(x.shape)}")
    a = ((x.detach().cpu().float().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).numpy()
    return a[..., 0] if a.shape[-1] == 1 else a


def make_grid(x: torch.Tensor, nrow: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile images (N, C, H, W) in [-1, 1] into one (H', W', 3) float array in [0, 1]."""
    imgs = to_numpy_images(x)
    if imgs.ndim == 3:
        imgs = np.repeat(imgs[..., None], 3, axis=-1)
    n, h, w, _ = imgs.shape
    nrow = nrow or int(math.ceil(math.sqrt(n)))
    ncol = int(math.ceil(n / nrow))
    grid = np.ones((ncol * (h + pad) + pad, nrow * (w + pad) + pad, 3), np.float32)
    for i in range(n):
        r, c = divmod(i, nrow)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = imgs[i]
    return grid


def save_grid(x: torch.Tensor, path: str | Path, nrow: int | None = None) -> Path:
    """Write a PNG grid of ``x`` atomically."""
    from PIL import Image

    arr = (make_grid(x, nrow) * 255).round().astype(np.uint8)
    path = Path(path)
    io.atomic_write(path, lambda p: Image.fromarray(arr).save(p, format="PNG"))
    return path


def show_grid(x: torch.Tensor, title: str = "", nrow: int | None = None, ax=None, scale: float = 0.45):
    """Draw a grid of images on ``ax`` (a new figure when None); returns the axes."""
    import matplotlib.pyplot as plt

    grid = make_grid(x, nrow)
    if ax is None:
        h, w = grid.shape[:2]
        _, ax = plt.subplots(figsize=(max(2.0, scale * w / 10), max(2.0, scale * h / 10)))
    ax.imshow(grid, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def savefig(fig, path: str | Path, dpi: int = 110) -> Path:
    """Save ``fig`` as PNG atomically (the notebook still shows it when it is the cell's result)."""
    path = Path(path)
    io.atomic_write(path, lambda p: fig.savefig(p, dpi=dpi, bbox_inches="tight", format="png"))
    return path


def plot_losses(logs: dict[str, list[dict]], keys: tuple[str, ...] = ("d_loss", "g_loss")):
    """Loss curves of several models: one panel per model, loss vs step."""
    import matplotlib.pyplot as plt

    n = max(1, len(logs))
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.0), squeeze=False)
    for ax, (name, rows) in zip(axes[0], logs.items()):
        steps = [r["step"] for r in rows]
        for k in keys:
            if rows and k in rows[0]:
                ax.plot(steps, [r[k] for r in rows], label=k)
        ax.set_title(name)
        ax.set_xlabel("training step")
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


__all__ = ["make_grid", "save_grid", "show_grid", "savefig", "plot_losses", "to_numpy_images", "matplotlib"]


def plot_sample_progress(model_dirs: dict[str, Path], max_steps: int = 4):
    """Progress grids (fixed noise batch) at up to ``max_steps`` checkpoints, one row per model."""
    import matplotlib.pyplot as plt
    from PIL import Image

    rows = {}
    for name, d in model_dirs.items():
        files = sorted(Path(d, "samples").glob("step_*.png"))
        if len(files) > max_steps:
            pick = np.linspace(0, len(files) - 1, max_steps).round().astype(int)
            files = [files[i] for i in pick]
        rows[name] = files
    ncol = max((len(f) for f in rows.values()), default=1) or 1
    fig, axes = plt.subplots(len(rows) or 1, ncol, figsize=(2.6 * ncol, 2.8 * max(1, len(rows))), squeeze=False)
    for r, (name, files) in enumerate(rows.items()):
        for c in range(ncol):
            ax = axes[r][c]
            ax.set_axis_off()
            if c < len(files):
                with Image.open(files[c]) as im:
                    ax.imshow(np.asarray(im), interpolation="nearest")
                ax.set_title(f"{name} · step {int(files[c].stem.split('_')[1])}", fontsize=9)
    fig.tight_layout()
    return fig
