"""ModNet fooling examples (thesis §2.5): every source class modified to every target class and scored
by the frozen and the transfer classifier; the summary table and the two figures."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from ... import data as data_mod, io, results
from ...errors import CheckpointError, ConfigError
from ...interpret import save_arrays
from ...metrics.base import bootstrap_mean_ci
from ...settings import Profile
from .common import (MODEL, _modify, _probs, change_stats, frozen_classifier, load_modnet, out_dir, settings,
                     transfer_classifier)


@dataclass
class FoolingResult:
    """Every source class x target class modification of ``n`` test images per class.

    ``sources`` (K, n, C, H, W); ``modified`` (K_source, K_target, n, C, H, W); ``probs[name]`` =
    ``(before (K, n, K), after (K, K, n, K))`` softmax outputs of classifier ``name`` (``frozen``,
    ``transfer``); ``l1``/``l2``/``ssim`` (K, K, n); ``ssim_min`` the "close" threshold.
    """

    sources: torch.Tensor
    modified: torch.Tensor
    probs: dict[str, tuple[torch.Tensor, torch.Tensor]]
    l1: torch.Tensor
    l2: torch.Tensor
    ssim: torch.Tensor
    ssim_min: float
    classes: tuple[str, ...]
    accuracy: dict[str, float] = field(default_factory=dict)
    seconds: float = float("nan")

    @property
    def num_classes(self) -> int:
        return self.sources.shape[0]

    def fooled(self, name: str) -> torch.Tensor:
        """(K, K, n) bool: ``argmax C(x') == target``, with the diagonal (target = source) False."""
        k = self.num_classes
        hit = self.probs[name][1].argmax(-1) == torch.arange(k)[None, :, None]
        return hit & ~torch.eye(k, dtype=torch.bool)[:, :, None]

    def pair_table(self) -> pd.DataFrame:
        """One row per (source, target) pair: fooling rates, mean p(target) before/after, distances."""
        k = self.num_classes
        rows = []
        for s in range(k):
            for t in range(k):
                r = {"source": self.classes[s], "target": self.classes[t]}
                for name, (before, after) in self.probs.items():
                    r[f"fool_rate_{name}"] = float(self.fooled(name)[s, t].float().mean()) if s != t else float("nan")
                    r[f"p_target_before_{name}"] = float(before[s, :, t].mean())
                    r[f"p_target_after_{name}"] = float(after[s, t, :, t].mean())
                r.update(l1=float(self.l1[s, t].mean()), l2=float(self.l2[s, t].mean()),
                         ssim=float(self.ssim[s, t].mean()))
                rows.append(r)
        return pd.DataFrame(rows)

    def summary(self) -> pd.DataFrame:
        """Per classifier: clean accuracy, fooling rate, fooled-and-close rate, p(target) before/after,
        and the distances (mean ± std) of the off-diagonal modifications."""
        k = self.num_classes
        off = ~torch.eye(k, dtype=torch.bool)
        close = self.ssim[off] >= self.ssim_min
        rows = []
        for name, (before, after) in self.probs.items():
            fooled = self.fooled(name)[off]
            p_before = torch.stack([before[s, :, t] for s in range(k) for t in range(k) if s != t])
            p_after = torch.stack([after[s, t, :, t] for s in range(k) for t in range(k) if s != t])
            rows.append({
                "classifier": name, "clean accuracy": self.accuracy.get(name, float("nan")),
                "fooling rate": float(fooled.float().mean()),
                f"fooled & SSIM ≥ {self.ssim_min:g}": float((fooled & close).float().mean()),
                "p(target) before": float(p_before.mean()), "p(target) after": float(p_after.mean()),
                "L1 [0,1] mean": float(self.l1[off].mean()), "L1 std": float(self.l1[off].std()),
                "L2 [0,1] mean": float(self.l2[off].mean()), "L2 std": float(self.l2[off].std()),
                "SSIM mean": float(self.ssim[off].mean()), "SSIM std": float(self.ssim[off].std()),
                "n modified": int(off.sum()) * self.sources.shape[1],
            })
        return pd.DataFrame(rows).set_index("classifier")

    def rows(self, profile: str, dataset: str, seed: int) -> list[dict[str, Any]]:
        """Tidy result rows (section ``modnet``) with bootstrap 95 % CIs, for ``metrics.jsonl``."""
        off = ~torch.eye(self.num_classes, dtype=torch.bool)
        close = (self.ssim[off] >= self.ssim_min).float()
        kw = dict(profile=profile, dataset=dataset, seed=seed, section="modnet")
        out = []

        def add(metric: str, per: torch.Tensor, direction: str, feature: str) -> None:
            lo, hi = bootstrap_mean_ci(per, seed, 200)
            out.append(results.make_row(MODEL, metric, float(per.float().mean()), ci_low=lo, ci_high=hi,
                                        n=len(per), direction=direction, feature=feature, **kw))

        for name in self.probs:
            f = self.fooled(name)[off].float()
            add("fool_rate", f, "higher", f"classifier.{name}")
            add("fool_close_rate", f * close, "higher", f"classifier.{name}")
        add("change_l1", self.l1[off], "lower", "pixels")
        add("change_l2", self.l2[off], "lower", "pixels")
        add("change_ssim", self.ssim[off], "higher", "pixels")
        return out


def fooling(prof: Profile, n_per_pair: int | None = None, seed: int | None = None, record: bool = True) -> FoolingResult:
    """Modify ``n_per_pair`` test images of every class towards every class; score with the frozen
    and the transfer classifier.

    Writes ``fooling.npz`` (images, probabilities, distances), ``fooling_summary.csv``,
    ``fooling_pairs.csv`` under :func:`out_dir`, and (``record``) rows of section ``modnet`` to
    ``metrics.jsonl``: ``fool_rate`` / ``fool_close_rate`` per classifier, ``change_l1/l2/ssim``.
    """
    profile = prof.profile
    s = settings(prof)
    n = int(n_per_pair or s["n_per_pair"])
    seed = s["seed"] if seed is None else int(seed)
    t0 = time.perf_counter()
    G, meta = load_modnet(prof)
    test = data_mod.load(meta["dataset"], "test", seed=int(meta.get("data_seed") or 0))
    clfs = {"frozen": frozen_classifier(meta), "transfer": transfer_classifier(prof, meta)}
    k = G.num_classes
    g = torch.Generator().manual_seed(seed)
    idx = []
    for c in range(k):
        members = torch.nonzero(test.labels == c).flatten()
        if len(members) < n:
            raise ConfigError(f"class {c} has only {len(members)} test images; lower n_per_pair (is {n})")
        idx.append(members[torch.randperm(len(members), generator=g)[:n]])
    idx = torch.stack(idx)                                       # (K, n)
    src = test.images[idx]                                       # (K, n, C, H, W)
    flat = src.flatten(0, 1)                                     # (K*n, C, H, W), class-major
    mods = torch.stack([_modify(G, flat, torch.full((len(flat),), t)) for t in range(k)], 1)  # (K*n, K, ...)
    mods = mods.reshape(k, n, k, *src.shape[2:]).transpose(1, 2).contiguous()             # (K, K, n, ...)
    probs, acc = {}, {}
    for name, ext in clfs.items():
        before = _probs(ext.model, flat).reshape(k, n, k)
        after = _probs(ext.model, mods.flatten(0, 2)).reshape(k, k, n, k)
        probs[name] = (before, after)
        acc[name] = float((before.argmax(-1) == torch.arange(k)[:, None]).float().mean())
    st = change_stats(src[:, None].expand_as(mods).flatten(0, 2), mods.flatten(0, 2))
    st = {key: v.reshape(k, k, n) for key, v in st.items()}
    res = FoolingResult(src, mods, probs, st["l1"], st["l2"], st["ssim"], float(s["ssim_min"]),
                        tuple(test.classes) or tuple(str(i) for i in range(k)), acc,
                        time.perf_counter() - t0)
    d = out_dir(profile)
    save_arrays(d / "fooling.npz", sources=src, modified=mods, l1=res.l1, l2=res.l2, ssim=res.ssim,
                **{f"p_before_{nm}": p[0] for nm, p in probs.items()},
                **{f"p_after_{nm}": p[1] for nm, p in probs.items()})
    io.write_text(d / "fooling_summary.csv", res.summary().to_csv())
    io.write_text(d / "fooling_pairs.csv", res.pair_table().to_csv(index=False))
    if record:
        results.record(profile, res.rows(profile, meta["dataset"], seed))
    return res


def fooling_table(res: FoolingResult | str) -> pd.DataFrame:
    """Summary table of :func:`fooling` (a result, or a profile name: read from ``fooling_summary.csv``)."""
    if isinstance(res, str):
        path = out_dir(res) / "fooling_summary.csv"
        if not path.is_file():
            raise CheckpointError(f"no {path}; run modnet.fooling({res!r}) first")
        return pd.read_csv(path, index_col=0)
    return res.summary()


def plot_fooling_grid(res: FoolingResult, index: int = 0, classifier: str = "frozen", size: float = 0.55):
    """Three panels for test image ``index`` of every class: the inputs, the K x K grid of modified
    images (row = source class, column = target class, each titled with the classifier's p(target):
    green when its arg-max is the target, red when not, grey on the diagonal) and the K x K delta
    images ``x' − x`` in intensity units (red = ink added, blue = ink removed)."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import TwoSlopeNorm

    k = res.num_classes
    src = (res.sources[:, index] + 1) / 2                         # (K, C, H, W) in [0, 1]
    mod = (res.modified[:, :, index] + 1) / 2                     # (K, K, C, H, W)
    delta = (mod - src[:, None]).mean(2)                          # (K, K, H, W), channel mean
    p_after = res.probs[classifier][1][:, :, index]               # (K, K, K)
    fig = plt.figure(figsize=(size * (2 * k + 1.25) + 1.6, size * k * 1.12 + 1.2))
    gs = fig.add_gridspec(k, 2 * k + 2, width_ratios=[1] + [1] * k + [0.25] + [1] * k, wspace=0.06, hspace=0.3,
                          left=0.06, right=0.92, bottom=0.1, top=0.88)
    cmap_img = "gray" if src.shape[1] == 1 else None
    norm = TwoSlopeNorm(vmin=-1, vcenter=0, vmax=1)

    def show(ax, img):
        ax.imshow(img.permute(1, 2, 0).squeeze(-1).numpy(), cmap=cmap_img, vmin=0, vmax=1, interpolation="nearest")

    grid, dgrid, inputs = [], [], []
    for s in range(k):
        ax = fig.add_subplot(gs[s, 0])
        show(ax, src[s])
        ax.set_ylabel(res.classes[s], fontsize=8, rotation=0, ha="right", va="center")
        inputs.append(ax)
        row, drow = [], []
        for t in range(k):
            ax = fig.add_subplot(gs[s, 1 + t])
            show(ax, mod[s, t])
            p = float(p_after[s, t, t])
            colour = "0.45" if s == t else ("tab:green" if int(p_after[s, t].argmax()) == t else "tab:red")
            ax.set_title(f"{p:.2f}", fontsize=6, pad=1, color=colour)
            ax2 = fig.add_subplot(gs[s, k + 2 + t])
            im = ax2.imshow(delta[s, t].numpy(), cmap="RdBu_r", norm=norm, interpolation="nearest")
            row.append(ax)
            drow.append(ax2)
        grid.append(row)
        dgrid.append(drow)
    for ax in fig.axes:
        ax.set_xticks([])
        ax.set_yticks([])
    for t in range(k):
        grid[-1][t].set_xlabel(res.classes[t], fontsize=8)
        dgrid[-1][t].set_xlabel(res.classes[t], fontsize=8)
    inputs[0].set_title("input", fontsize=8)
    lo = grid[-1][0].get_position()
    hi = grid[0][-1].get_position()
    dlo, dhi = dgrid[-1][0].get_position(), dgrid[0][-1].get_position()
    fig.text((lo.x0 + hi.x1) / 2, lo.y0 - 0.07, f"target class  (title: p(target) after; green = {classifier} "
             "classifier fooled)", ha="center", va="top", fontsize=8)
    fig.text((dlo.x0 + dhi.x1) / 2, lo.y0 - 0.07, "target class  (delta x' − x)", ha="center", va="top", fontsize=8)
    fig.text(inputs[0].get_position().x0 - 0.035, (lo.y0 + hi.y1) / 2, "source class", rotation=90, ha="center",
             va="center", fontsize=8)
    cax = fig.add_axes([dhi.x1 + 0.012, lo.y0, 0.01, hi.y1 - lo.y0])
    cb = fig.colorbar(im, cax=cax)
    cb.set_label("delta (intensity, [0, 1] units)", fontsize=7)
    cb.ax.tick_params(labelsize=6)
    fig.suptitle(f"ModNet fooling examples: test image #{index} of each class modified to every target class",
                 fontsize=10)
    return fig


def plot_fooling_matrix(res: FoolingResult):
    """Heatmaps source x target: fooling rate of the frozen and of the transfer classifier, and mean L2."""
    import matplotlib.pyplot as plt

    k = res.num_classes
    panels = [(f"fooling rate, {nm} classifier", res.fooled(nm).float().mean(-1).numpy(), "share fooled", (0, 1))
              for nm in res.probs]
    l2 = res.l2.mean(-1).numpy().copy()
    panels.append(("mean L2 change ‖x' − x‖₂", l2, "L2 ([0,1] intensity units)", (0, float(l2.max()) or 1)))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.0 * len(panels), 3.6))
    for ax, (title, m, unit, (lo, hi)) in zip(axes, panels):
        m = m.copy()
        if "fooling" in title:
            m[np.eye(k, dtype=bool)] = np.nan
        im = ax.imshow(m, vmin=lo, vmax=hi, cmap="viridis")
        ax.set_xticks(range(k), res.classes, fontsize=7)
        ax.set_yticks(range(k), res.classes, fontsize=7)
        ax.set_xlabel("target class")
        ax.set_ylabel("source class")
        ax.set_title(title, fontsize=9)
        cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        cb.set_label(unit, fontsize=7)
    fig.suptitle(f"ModNet per (source, target) pair, {res.sources.shape[1]} test images each", fontsize=10)
    fig.tight_layout()
    return fig
