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


# --------------------------------------------------------------------------- interpretability figures
# (added for notebook 03: heatmap overlays, image tables, neighbour grids, frame strips and sliders)
def _suptitle(fig, title: str, fontsize: int = 10) -> None:
    """A figure title just above the axes (after ``tight_layout``; ``savefig`` keeps it in the box)."""
    fig.suptitle(title, fontsize=fontsize, y=1.0, va="bottom")


def _one_image(x: torch.Tensor) -> np.ndarray:
    """(C, H, W) in [-1, 1] -> (H, W) grey or (H, W, 3) float in [0, 1]."""
    return to_numpy_images(x[None])[0]


def overlay(ax, image: torch.Tensor, heat: torch.Tensor | np.ndarray, signed: bool = False, alpha: float | None = None,
            cmap: str | None = None, vmax: float | None = None, clip: float = 99.0):
    """Draw a heatmap ``heat`` (H, W) with ``image`` (C, H, W) on ``ax``; returns the heatmap artist.

    Grey images are drawn as their outline (a contour at mid-grey) on top of the opaque heatmap, so
    the map's colours stay readable; colour images sit under a translucent heatmap (``alpha`` 0.6).
    Unsigned maps use ``inferno`` from 0 to ``vmax`` (default: the map's ``clip`` percentile, so a
    few extreme pixels do not wash out the rest); signed maps (``signed=True``, e.g. LIME /
    integrated gradients) use ``RdBu_r`` symmetric about 0 (red: raises D's score, blue: lowers it).
    """
    img = _one_image(image)
    h = np.asarray(heat.detach().cpu() if isinstance(heat, torch.Tensor) else heat, dtype=float)
    grey = img.ndim == 2
    if not grey:
        ax.imshow(img, vmin=0, vmax=1, interpolation="nearest")
    a = (1.0 if grey else 0.6) if alpha is None else alpha
    if signed:
        lim = vmax or float(np.percentile(np.abs(h), clip)) or float(np.abs(h).max()) or 1.0
        art = ax.imshow(h, cmap=cmap or "RdBu_r", vmin=-lim, vmax=lim, alpha=a, interpolation="nearest")
    else:
        top = vmax or float(np.percentile(h, clip)) or float(h.max()) or 1.0
        art = ax.imshow(h, cmap=cmap or "inferno", vmin=0, vmax=top, alpha=a, interpolation="nearest")
    if grey and img.max() > img.min():
        ax.contour(img, levels=[0.5], colors=["black" if signed else "cyan"], linewidths=0.7)
    ax.set_axis_off()
    return art


def plot_attributions(images: torch.Tensor, maps: dict[str, torch.Tensor], row_labels: list[str] | None = None,
                      signed: tuple[str, ...] = (), title: str = "", size: float = 1.5):
    """One row per image: the image, then each method's map overlaid on it (columns = ``maps`` keys).

    ``maps[name]`` is ``(B, H, W)``; methods named in ``signed`` are drawn with a diverging colour map.
    """
    import matplotlib.pyplot as plt

    n, ncol = len(images), 1 + len(maps)
    fig, axes = plt.subplots(n, ncol, figsize=(size * ncol, size * n + (0.35 if title else 0)), squeeze=False)
    for r in range(n):
        axes[r][0].imshow(_one_image(images[r]), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axes[r][0].set_axis_off()
        if row_labels:
            axes[r][0].text(-0.08, 0.5, row_labels[r], transform=axes[r][0].transAxes, rotation=90,
                            ha="right", va="center", fontsize=8)
        for c, (name, m) in enumerate(maps.items(), start=1):
            overlay(axes[r][c], images[r], m[r], signed=name in signed)
            if r == 0:
                axes[r][c].set_title(name, fontsize=8)
    if ncol and n:
        axes[0][0].set_title("image", fontsize=8)
    fig.tight_layout()
    if title:
        _suptitle(fig, title, 10)
    return fig


def plot_perturbation_curves(curves: dict[str, dict[str, object]]):
    """Deletion/insertion curves: mean ``|D(x_f) - D(x_0)|`` against the fraction ``f`` of pixels
    changed, map order (solid) vs random order (dashed); one column per model, one row per mode.

    ``curves[model][mode]`` is a :class:`ganreport.interpret.measures.CurveResult`.
    """
    import matplotlib.pyplot as plt

    models = list(curves)
    modes = ("deletion", "insertion")
    fig, axes = plt.subplots(2, max(1, len(models)), figsize=(3.3 * max(1, len(models)), 5.2), squeeze=False)
    for c, name in enumerate(models):
        for r, mode in enumerate(modes):
            ax, cur = axes[r][c], curves[name][mode]
            f = cur.fractions
            sal = np.abs(cur.salient - cur.salient[:, :1]).mean(0)
            rnd = np.abs(cur.random - cur.random[..., :1]).mean((0, 1))
            ax.plot(f, sal, label=f"map order (AUC {np.mean(cur.auc):.3g})")
            ax.plot(f, rnd, "--", label=f"random (AUC {np.mean(cur.auc_random):.3g})")
            ax.set_title(f"{name} · {mode}", fontsize=9)
            ax.set_xlabel("fraction of pixels " + ("removed" if mode == "deletion" else "inserted"), fontsize=8)
            ax.set_ylabel("|D(x_f) - D(x_0)|", fontsize=8)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def image_table(images: torch.Tensor, row_labels: list[str] | None = None, col_labels: list[str] | None = None,
                title: str = "", size: float = 1.0):
    """Images ``(R, S, C, H, W)`` as an R x S table with optional row/column labels."""
    import matplotlib.pyplot as plt

    if images.ndim != 5:
        raise ValueError(f"image_table needs (rows, cols, C, H, W), got {tuple(images.shape)}")
    nr, nc = images.shape[:2]
    fig, axes = plt.subplots(nr, nc, figsize=(size * nc + 0.6, size * nr + (0.4 if title else 0.1)), squeeze=False)
    for r in range(nr):
        for c in range(nc):
            ax = axes[r][c]
            img = _one_image(images[r, c])
            ax.imshow(img, cmap=None if img.ndim == 3 else "gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            for s in ax.spines.values():
                s.set_visible(False)
            if r == 0 and col_labels:
                ax.set_title(col_labels[c], fontsize=7)
            if c == 0 and row_labels:
                ax.set_ylabel(row_labels[r], fontsize=7, rotation=0, ha="right", va="center")
    fig.tight_layout(pad=0.3)
    if title:
        _suptitle(fig, title, 10)
    return fig


def plot_style_mixing(mix: dict[str, torch.Tensor], title: str = "", size: float = 0.9):
    """Style-mixing grids (Karras et al. 2019, Fig. 3): top row sources B, left column sources A;
    one block of rows per style range (coarse / middle / fine styles taken from B)."""
    import matplotlib.pyplot as plt

    ranges = [k for k in ("coarse", "middle", "fine") if k in mix]
    na, nb = len(mix["a"]), len(mix["b"])
    nr, nc = 1 + na * len(ranges), 1 + nb
    fig, axes = plt.subplots(nr, nc, figsize=(size * nc + 0.8, size * nr + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        for s in ax.spines.values():
            s.set_visible(False)

    def show(ax, x):
        img = _one_image(x)
        ax.imshow(img, cmap=None if img.ndim == 3 else "gray", vmin=0, vmax=1, interpolation="nearest")

    for j in range(nb):
        show(axes[0][j + 1], mix["b"][j])
        axes[0][j + 1].set_title(f"B{j}", fontsize=7)
    for k, name in enumerate(ranges):
        for i in range(na):
            r = 1 + k * na + i
            show(axes[r][0], mix["a"][i])
            axes[r][0].set_ylabel(f"A{i} + {name} of B", fontsize=7, rotation=0, ha="right", va="center")
            for j in range(nb):
                show(axes[r][j + 1], mix[name][i, j])
    fig.tight_layout(pad=0.3)
    if title:
        _suptitle(fig, title, 10)
    return fig


def plot_path_norms(norms: dict[str, torch.Tensor | np.ndarray], reference: float | None = None, title: str = "",
                    ax=None):
    """Latent norm along interpolation paths (x: step); ``reference`` e.g. sqrt(d), the shell radius."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 2.8))
    for name, v in norms.items():
        v = np.asarray(v.detach().cpu() if isinstance(v, torch.Tensor) else v, dtype=float)
        ax.plot(np.linspace(0, 1, len(v)), v, marker=".", label=name)
    if reference is not None:
        ax.axhline(reference, color="grey", ls=":", label=f"sqrt(d) = {reference:.2f}")
    ax.set_xlabel("t")
    ax.set_ylabel("|z(t)|")
    if title:
        ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return ax


def plot_neighbours(queries: torch.Tensor, reference: torch.Tensor, indices: torch.Tensor, distances: torch.Tensor,
                    title: str = "", size: float = 1.1, row_labels: list[str] | None = None):
    """One row per generated image (framed red): the image, then its k nearest reference images,
    nearest first, each titled with its distance."""
    import matplotlib.pyplot as plt

    q, k = indices.shape
    fig, axes = plt.subplots(q, k + 1, figsize=(size * (k + 1), size * q + (0.45 if title else 0.15)), squeeze=False)
    for r in range(q):
        cells = [(queries[r], "generated" if r == 0 else "")]
        cells += [(reference[int(indices[r, j])], f"d={float(distances[r, j]):.2f}") for j in range(k)]
        for c, (img, lab) in enumerate(cells):
            ax = axes[r][c]
            a = _one_image(img)
            ax.imshow(a, cmap=None if a.ndim == 3 else "gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(lab, fontsize=7, pad=2)
            if c == 0:
                for s in ax.spines.values():
                    s.set_edgecolor("tab:red")
                    s.set_linewidth(1.5)
                if row_labels:
                    ax.set_ylabel(row_labels[r], fontsize=7, rotation=0, ha="right", va="center")
    fig.tight_layout(pad=0.3)
    if title:
        _suptitle(fig, title, 9)
    return fig


def frame_strip(frames: torch.Tensor, labels: list[str] | None = None, title: str = "", size: float = 1.0,
                max_frames: int = 16):
    """Static fallback of a slider: the frames ``(N, C, H, W)`` side by side (at most ``max_frames``,
    evenly spaced, first and last kept) with their labels."""
    import matplotlib.pyplot as plt

    n = len(frames)
    pick = np.linspace(0, n - 1, min(n, max_frames)).round().astype(int)
    aspect = frames.shape[-1] / frames.shape[-2]
    per = min(size, 14.0 / len(pick))  # frame width in inches; the strip stays <= ~14 in wide
    fig, axes = plt.subplots(1, len(pick), figsize=(per * len(pick) + 0.2, per / aspect + 0.35), squeeze=False)
    for ax, i in zip(axes[0], pick):
        a = _one_image(frames[i])
        ax.imshow(a, cmap=None if a.ndim == 3 else "gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(labels[i] if labels else str(i), fontsize=7)
    fig.tight_layout(pad=0.2)
    if title:
        _suptitle(fig, title, 9)
    return fig


def _png_bytes(x: torch.Tensor, scale: int = 4) -> bytes:
    """One image (C, H, W) in [-1, 1] as PNG bytes, upscaled ``scale`` times (nearest)."""
    import io as _io

    from PIL import Image

    a = (np.clip(_one_image(x), 0, 1) * 255).round().astype(np.uint8)
    im = Image.fromarray(a)
    im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    buf = _io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def html_slider(frames: torch.Tensor, labels: list[str] | None = None, title: str = "", scale: int = 4):
    """An offline HTML/JS slider over pre-rendered frames ``(N, C, H, W)``: an ``IPython.display.HTML``.

    Every frame is embedded as a base64 PNG ``<img>``; a range input shows one at a time through
    an inline ``oninput`` handler. No widget state, no kernel, no external script: it works in the
    exported HTML report and in a saved notebook.
    """
    import base64
    import hashlib
    import html as _html

    from IPython.display import HTML

    if frames.ndim != 4 or len(frames) == 0:
        raise ValueError(f"frames must be (N, C, H, W) with N >= 1, got {tuple(frames.shape)}")
    labels = labels or [str(i) for i in range(len(frames))]
    if len(labels) != len(frames):
        raise ValueError(f"{len(labels)} labels for {len(frames)} frames")
    pngs = [_png_bytes(f, scale) for f in frames]
    uid = "gr" + hashlib.sha1(b"".join(pngs) + title.encode()).hexdigest()[:10]
    imgs = "".join(
        f'<img data-label="{_html.escape(lab)}" src="data:image/png;base64,{base64.b64encode(p).decode()}" '
        f'style="image-rendering:pixelated;display:{"inline" if i == 0 else "none"}">'
        for i, (p, lab) in enumerate(zip(pngs, labels)))
    handler = (f"var b=document.getElementById('{uid}');var im=b.querySelectorAll('img');"
               "for(var i=0;i<im.length;i++){im[i].style.display=(i==this.value)?'inline':'none';}"
               "b.querySelector('span').textContent=im[this.value].getAttribute('data-label');")
    head = f"<div style='font-weight:bold;margin-bottom:4px'>{_html.escape(title)}</div>" if title else ""
    body = (f"<div id='{uid}' style='font-family:sans-serif;font-size:12px'>{head}<div>{imgs}</div>"
            f"<input type='range' min='0' max='{len(frames) - 1}' value='0' step='1' style='width:{max(160, 28 * scale)}px' "
            f"oninput=\"{handler}\"> <span>{_html.escape(labels[0])}</span></div>")
    return HTML(body)


def widget_slider(frames: torch.Tensor, labels: list[str] | None = None, scale: int = 4, description: str = "frame"):
    """An ipywidgets slider over frames (interactive in JupyterLab; blank offline — pair it with
    :func:`frame_strip` or :func:`html_slider`). Returns the widget box."""
    import ipywidgets as widgets

    pngs = [_png_bytes(f, scale) for f in frames]
    labels = labels or [str(i) for i in range(len(frames))]
    img = widgets.Image(value=pngs[0], format="png")
    lab = widgets.Label(value=labels[0])
    slider = widgets.IntSlider(value=0, min=0, max=len(frames) - 1, step=1, description=description,
                               continuous_update=True)

    def update(change):
        img.value = pngs[change["new"]]
        lab.value = labels[change["new"]]

    slider.observe(update, names="value")
    return widgets.VBox([widgets.HBox([slider, lab]), img])


__all__ += ["overlay", "plot_attributions", "plot_perturbation_curves", "image_table", "plot_style_mixing",
            "plot_path_norms", "plot_neighbours", "frame_strip", "html_slider", "widget_slider"]
