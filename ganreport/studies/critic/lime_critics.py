"""LIME on the critics of the capacity grid (Liaudanskas 2018, seed 001 §LIME): do critics of
different capacity look at the same features? Concentration of the maps, overlap of their top
superpixels, and how much of the attribution falls on the digit strokes ("the critic appears to
mostly focus on the data features that make intuitive sense").

:func:`lime_across_critics` computes the maps (cached under ``runs/<profile>/experiments/``) into a
:class:`LimeAcross`; :func:`superpixel_weights`, :func:`top_jaccard`, :func:`chance_jaccard` and
:func:`stroke_share` are its measures; :func:`plot_lime_across_critics` and :func:`verdict_lime` read it.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import stats
from tqdm import tqdm

from ... import io
from ... import data as data_mod
from ...errors import DataError
from ...interpret import save_arrays
from ...interpret.lime import feature_masks, lime
from ...interpret.measures import concentration
from ...metrics.base import torch_threads
from ...settings import Profile
from ...train import checkpoint_sha256, load_discriminator
from ..verdict_text import AGREE, DISAGREE, INCONCLUSIVE, WEAK_RHO, _fmt, _rho
from .capacity import capacity_grid, load_capacity_grid
from .common import _cached, _key, _write_frame, experiments_dir, settings

@dataclass
class LimeAcross:
    """LIME maps of every grid critic on the same real images and superpixels.

    Attributes
    ----------
    summary : one row per critic (``cell, g_width, d_width, ratio, d_params, concentration,
        stroke_share, stroke_enrichment, mean_jaccard, mean_spearman``).
    jaccard, spearman : critic × critic overlap matrices (mean over images).
    chance : expected Jaccard of two random top-``k`` superpixel sets.
    images, masks, maps : the explained images ``(B, C, H, W)``, their superpixels ``(B, H, W)`` and
        each critic's maps ``{cell: (B, H, W)}``.
    """

    summary: pd.DataFrame
    jaccard: pd.DataFrame
    spearman: pd.DataFrame
    chance: float
    images: torch.Tensor
    masks: torch.Tensor
    maps: dict[str, torch.Tensor] = field(default_factory=dict)
    top: float = 0.2


def superpixel_weights(maps: torch.Tensor, masks: torch.Tensor) -> list[np.ndarray]:
    """The LIME coefficient of each superpixel: mean of the map over its pixels, per image."""
    out = []
    for m, s in zip(maps, masks):
        s = s.long().flatten()
        k = int(s.max()) + 1
        tot = torch.zeros(k, dtype=torch.float64).index_add_(0, s, m.double().flatten())
        cnt = torch.bincount(s, minlength=k).double()
        out.append((tot / cnt.clamp_min(1)).numpy())
    return out


def top_jaccard(a: np.ndarray, b: np.ndarray, top: float = 0.2) -> float:
    """Jaccard index of the top-``k`` entries of ``|a|`` and ``|b|``, ``k = max(1, round(top · K))``."""
    k = max(1, int(round(top * len(a))))
    sa = set(np.argsort(-np.abs(a), kind="stable")[:k].tolist())
    sb = set(np.argsort(-np.abs(b), kind="stable")[:k].tolist())
    return len(sa & sb) / len(sa | sb)


def chance_jaccard(n_items: int, top: float = 0.2) -> float:
    """Expected Jaccard index of two independent uniformly random ``k``-subsets of ``n_items``
    (hypergeometric overlap ``i``: ``E[i / (2k − i)]``)."""
    k = max(1, int(round(top * n_items)))
    from scipy.stats import hypergeom

    i = np.arange(0, k + 1)
    p = hypergeom(n_items, k, k).pmf(i)
    return float((p * i / (2 * k - i)).sum())


def stroke_share(maps: torch.Tensor, images: torch.Tensor, threshold: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Share of ``|map|`` mass on stroke pixels (image intensity, mean over channels, > ``threshold``
    in [-1, 1]) and the stroke area fraction, per image. Their ratio > 1: the map favours strokes."""
    stroke = images.float().mean(1) > threshold
    mass = maps.abs().double()
    share = (mass * stroke).flatten(1).sum(1) / mass.flatten(1).sum(1).clamp_min(1e-300)
    area = stroke.flatten(1).double().mean(1)
    return share.numpy(), area.numpy()


def lime_across_critics(prof: Profile, grid: pd.DataFrame | None = None, overrides: dict[str, Any] | None = None,
                        progress: bool = True, force: bool = False, root: Path | None = None) -> LimeAcross:
    """LIME (:func:`ganreport.interpret.lime.lime`) of every capacity-grid critic on the same
    ``n_images`` real test images, with the same SLIC superpixels and the same seeded perturbations,
    so the maps differ only through the critics.

    Per critic: ``concentration`` (share of ``|map|`` in the top 10 % of pixels,
    :func:`ganreport.interpret.measures.concentration`), ``stroke_share`` / ``stroke_enrichment``
    (share of ``|map|`` on the digit's strokes, and that share over the strokes' area fraction;
    > 1 = attends to strokes). Between critics: Jaccard index of their top-``top`` superpixels by
    ``|w|`` and Spearman ρ of the superpixel weights ``w``, averaged over images (chance level of the
    Jaccard index from :func:`chance_jaccard`). Settings: the profile's ``experiments.lime``
    (``n_images``, ``samples`` perturbations per image, ``segments`` SLIC superpixels, ``top``, ``seed``,
    ``cpu_threads``).
    Written to ``experiments/lime_across_critics.{csv,npz}`` and the two overlap matrices; reused while
    the settings and the grid match. Empty (no critics) when ``experiments.lime.enabled`` is false or
    the grid is empty.
    """
    profile = prof.profile
    s = settings(prof, {"lime": overrides or {}})["lime"]
    if grid is None and s["enabled"]:
        grid = capacity_grid(prof, progress=progress, root=root)
    if not s["enabled"] or grid is None or grid.empty:
        empty = pd.DataFrame()
        return LimeAcross(empty, empty, empty, float("nan"), torch.zeros(0, 1, 1, 1), torch.zeros(0, 1, 1, dtype=torch.long),
                          {}, float(s["top"]))
    out_dir = experiments_dir(profile, root)
    path = out_dir / "lime_across_critics.csv"
    cells = grid[["cell", "g_width", "d_width", "ratio", "d_params", "model_dir"]].copy()
    critics = {r.cell: checkpoint_sha256(r.model_dir)
               for r in cells.itertuples(index=False)}  # keyed on the critics' weights, not only the settings
    key = _key({"lime": s, "cells": cells.drop(columns="model_dir").to_dict("list"),
                "fid": grid["fid"].round(6).tolist() if "fid" in grid else None, "critics": critics, "version": 2})
    npz = out_dir / "lime_across_critics.npz"
    if not force and _cached(path, key) and npz.is_file():
        return _read(out_dir, float(s["top"]))
    test = data_mod.load(prof.dataset, "test", seed=prof.data_seed)
    g = torch.Generator().manual_seed(int(s["seed"]))
    idx = torch.randperm(len(test), generator=g)[:int(s["n_images"])]
    x = test.images[idx].float()
    masks = feature_masks(x, "slic", n_segments=int(s["segments"]))
    maps: dict[str, torch.Tensor] = {}
    weights: dict[str, list[np.ndarray]] = {}
    rows = []
    for r in tqdm(list(cells.itertuples(index=False)), desc="LIME across critics", disable=not progress, ncols=100,
                  mininterval=2.0):
        D, _ = load_discriminator(r.model_dir)
        with torch.random.fork_rng(devices=[]), torch_threads(s["cpu_threads"]):
            a = lime(D, x, n_samples=int(s["samples"]), masks=masks, seed=int(s["seed"]))
        m = a.mean(1)  # the coefficient is painted on every channel
        maps[r.cell] = m
        weights[r.cell] = superpixel_weights(m, masks)
        share, area = stroke_share(m, x)
        rows.append(dict(cell=r.cell, g_width=r.g_width, d_width=r.d_width, ratio=r.ratio, d_params=r.d_params,
                         concentration=float(concentration(m).double().mean()), stroke_share=float(share.mean()),
                         stroke_area=float(area.mean()), stroke_enrichment=float((share / np.maximum(area, 1e-12)).mean())))
    names = [r["cell"] for r in rows]
    jac = pd.DataFrame(np.nan, index=names, columns=names)
    rho = pd.DataFrame(np.nan, index=names, columns=names)
    for a, b in itertools.product(names, names):
        js, rs = [], []
        for wa, wb in zip(weights[a], weights[b]):
            js.append(top_jaccard(wa, wb, float(s["top"])))
            ok = np.std(wa) > 0 and np.std(wb) > 0
            rs.append(float(stats.spearmanr(wa, wb).statistic) if ok else float("nan"))
        jac.loc[a, b], rho.loc[a, b] = float(np.mean(js)), float(np.nanmean(rs)) if np.isfinite(rs).any() else float("nan")
    off = ~np.eye(len(names), dtype=bool)
    summary = pd.DataFrame(rows)
    if len(names) > 1:
        summary["mean_jaccard"] = [float(jac.to_numpy()[i][off[i]].mean()) for i in range(len(names))]
        summary["mean_spearman"] = [float(np.nanmean(rho.to_numpy()[i][off[i]])) for i in range(len(names))]
    chance = float(np.mean([chance_jaccard(int(mk.max()) + 1, float(s["top"])) for mk in masks]))
    io.write_text(out_dir / "lime_overlap_jaccard.csv", jac.to_csv())
    io.write_text(out_dir / "lime_overlap_spearman.csv", rho.to_csv())
    save_arrays(npz, images=x, masks=masks, maps=torch.stack([maps[n] for n in names]))
    _write_frame(path, summary, key, {"settings": s, "chance": chance})
    return LimeAcross(summary, jac, rho, chance, x, masks, maps, float(s["top"]))


def _read(out_dir: Path, top: float) -> LimeAcross:
    """The :class:`LimeAcross` that :func:`lime_across_critics` wrote into ``out_dir``."""
    path = out_dir / "lime_across_critics.csv"
    with np.load(out_dir / "lime_across_critics.npz") as z:
        arrays = {k: z[k] for k in z.files}
    summary = pd.read_csv(path)
    names = list(summary["cell"])
    jac = pd.read_csv(out_dir / "lime_overlap_jaccard.csv", index_col=0)
    rho = pd.read_csv(out_dir / "lime_overlap_spearman.csv", index_col=0)
    meta = json.loads(path.with_suffix(".json").read_text())
    return LimeAcross(summary, jac, rho, float(meta["chance"]), torch.from_numpy(arrays["images"]),
                      torch.from_numpy(arrays["masks"]), {n: torch.from_numpy(arrays["maps"][i]) for i, n in enumerate(names)},
                      top)


def load_lime_across_critics(prof: Profile, root: Path | None = None) -> LimeAcross:
    """What :func:`lime_across_critics` wrote for ``prof`` (notebook 04: reads, never computes).

    Empty when ``experiments.lime`` is disabled or the capacity grid is empty (nothing to explain); a
    :class:`DataError` saying what to run when results should exist but are not on disk."""
    s = settings(prof)["lime"]
    out_dir = experiments_dir(prof.profile, root)
    if not s["enabled"] or load_capacity_grid(prof, root).empty:  # nothing was explained
        empty = pd.DataFrame()
        return LimeAcross(empty, empty, empty, float("nan"), torch.zeros(0, 1, 1, 1), torch.zeros(0, 1, 1, dtype=torch.long),
                          {}, float(s["top"]))
    if not (out_dir / "lime_across_critics.npz").is_file():
        raise DataError(f"no LIME-across-critics results in {out_dir}; run notebook 02 "
                        f"(critic.lime_across_critics) for profile {prof.profile!r} first")
    return _read(out_dir, float(s["top"]))


def plot_lime_across_critics(res: LimeAcross, max_images: int = 4):
    """Rows: critics (by parameter ratio); columns: images with the signed LIME map (red raises the
    critic's score, blue lowers it); last column: the Jaccard overlap matrix."""
    import matplotlib.pyplot as plt

    from ...viz import overlay

    if res.summary.empty:
        fig, ax = plt.subplots(figsize=(5, 1.5))
        ax.text(0.5, 0.5, "LIME across critics not run (disabled or no capacity grid)", ha="center", va="center")
        ax.set_axis_off()
        return fig
    summ = res.summary.sort_values(["g_width", "ratio"])
    names = list(summ["cell"])
    nb = min(max_images, len(res.images))
    fig = plt.figure(figsize=(1.35 * nb + 4.2, max(2.6, 1.3 * len(names) + 0.6)))
    gs = fig.add_gridspec(len(names), nb + 1, width_ratios=[1] * nb + [3.0])
    for i, (n, r) in enumerate(zip(names, summ.itertuples(index=False))):
        for j in range(nb):
            ax = fig.add_subplot(gs[i, j])
            overlay(ax, res.images[j], res.maps[n][j], signed=True)
            if j == 0:
                ax.text(-0.08, 0.5, f"G{r.g_width}/D{r.d_width}\n{r.ratio:.2g}×", transform=ax.transAxes, ha="right",
                        va="center", fontsize=7)
            if i == 0:
                ax.set_title(f"image {j + 1}", fontsize=8)
    ax = fig.add_subplot(gs[:, nb])
    jac = res.jaccard.loc[names, names].to_numpy(float)
    im = ax.imshow(jac, vmin=0, vmax=1, cmap="magma")
    labels = [f"G{r.g_width}/{r.ratio:.2g}×" for r in summ.itertuples(index=False)]
    ax.set_xticks(range(len(names)), labels, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(names)), labels, fontsize=7)
    fig.colorbar(im, ax=ax, fraction=0.046, label=f"Jaccard of top-{res.top:.0%} superpixels (chance {res.chance:.2f})")
    ax.set_title("overlap of LIME maps between critics", fontsize=9)
    fig.suptitle("LIME on critics of different capacity (rows: generator width / critic-to-generator parameter ratio)",
                 fontsize=9)
    fig.tight_layout()
    return fig


def verdict_lime(res: LimeAcross) -> str:
    """Do the critics attend to the strokes (seed 001), and do critics of different capacity look at
    the same features?"""
    finding = "(Liaudanskas 2018: the critic mostly focuses on data features that make intuitive sense)"
    s = res.summary
    if s.empty:
        return f"{INCONCLUSIVE} {finding}: no critic was explained."
    enr = s["stroke_enrichment"]
    n = len(s)
    off = ~np.eye(n, dtype=bool)
    mj = float(res.jaccard.to_numpy(float)[off].mean()) if n > 1 else float("nan")
    ms = float(np.nanmean(res.spearman.to_numpy(float)[off])) if n > 1 else float("nan")
    same = ("" if n < 2 else
            f"; between critics of different capacity the top-{res.top:.0%} superpixels overlap with Jaccard "
            f"{_fmt(mj, 2)} (chance {_fmt(res.chance, 2)}) and the superpixel weights correlate with mean ρ = {_rho(ms)}, so they "
            + ("look at largely the same features" if mj >= 2 * res.chance and ms >= WEAK_RHO else
               "look at different features" if mj < 1.5 * res.chance and ms < 0.2 else "partly share features"))
    what = (f"LIME puts {_fmt(s['stroke_share'].mean(), 2)} of its attribution mass on the strokes, which cover "
            f"{_fmt(s['stroke_area'].mean(), 2)} of the image (enrichment {_fmt(enr.min(), 3)}–{_fmt(enr.max(), 3)} over {n} critics)")
    if (enr > 1).all():
        return f"{AGREE} {finding}: {what}{same}."
    if (enr <= 1).all():
        return f"{DISAGREE} {finding}: {what}, no more than the strokes' share of the area{same}."
    return f"{INCONCLUSIVE} {finding}: {what}, above 1 for only {int((enr > 1).sum())} of {n} critics{same}."


__all__ = ["LimeAcross", "superpixel_weights", "top_jaccard", "chance_jaccard", "stroke_share", "lime_across_critics",
           "plot_lime_across_critics", "verdict_lime"]
