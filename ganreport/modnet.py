"""ModNet experiments (seed 004, chapter 2, §2.5): fooling examples, transfer, the λ trade-off,
data augmentation and memorisation — one call per notebook cell.

The model itself is :mod:`ganreport.models.modnet` (trained like every architecture with
``train.train_model("modnet", "mnist", profile=...)``). Everything here reads the trained
checkpoint of a profile, writes its results atomically under ``config.run_dir(profile)/modnet/``
and returns a DataFrame or a small result object; the ``plot_*`` functions return figures.

Distances between an input ``x`` and its modification ``x' = G(x, y_t)`` are measured on
intensities ``u = (x + 1) / 2`` in [0, 1]:

- ``L1 = mean_pixels |u(x') − u(x)|`` (mean absolute change per pixel, [0, 1] intensity units);
- ``L2 = ‖u(x') − u(x)‖₂`` over all pixels of the image (Euclidean norm, same units);
- ``SSIM(u(x), u(x'))`` (Wang et al. 2004; :func:`ganreport.metrics.quality.ssim`), 1 = unchanged.

A modification **fools** a classifier ``C`` when ``argmax C(x') = y_t ≠ y``; it fools it **while
staying close** when also ``SSIM(x, x') ≥ ssim_min`` (a profile setting). The *frozen* classifier is
the one ModNet was trained against (the feature classifier); the *transfer* classifier is a second
classifier (another seed and width) it never saw — its fooling rate measures how far the
modifications are class changes rather than adversarial noise specific to one network.

Profile settings: the ``modnet:`` block of ``profiles/<profile>.yaml`` (keys of
:data:`MODNET_DEFAULTS`).
"""

from __future__ import annotations

import json
import math
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm import tqdm

from . import config, io, results
from .errors import CheckpointError, ConfigError
from .metrics.quality import ssim as _ssim
from .models.modnet import ModNetGenerator, random_targets

MODEL = "modnet"

#: Experiment sizes; a profile's ``modnet:`` block overrides them (unknown keys are an error).
MODNET_DEFAULTS: dict[str, Any] = dict(
    n_per_pair=20,            # fooling: test images per source class, each modified to every class
    ssim_min=0.5,             # "close": SSIM(x, x') >= ssim_min
    transfer_classifier={"seed": 1, "width": 8, "epochs": 5},  # the classifier ModNet was not trained against
    lambdas=[1.0, 3.0, 10.0, 30.0],  # λ trade-off: fine-tune the trained model with each λ ...
    tradeoff_steps=25,        # ... for this many steps ...
    tradeoff_n=500,           # ... and evaluate on this many test images (random targets)
    aug_sizes=[10, 100, 1000],  # augmentation: real training images
    aug_seeds=[0, 1, 2],
    aug_steps=250,            # LeNet-5 training steps (the same for every condition)
    aug_batch=32,
    aug_lr=3e-3,
    aug_max_generated=2000,   # cap on generated images per run (all K-1 other targets per image below it)
    n_memorization=500,       # memorisation: modified train / test images checked
    n_neighbours=4,           # neighbours shown per row in the figure
)


# ---------------------------------------------------------------------------- settings and loading
def settings(profile: str) -> dict[str, Any]:
    """:data:`MODNET_DEFAULTS` updated with the profile's ``modnet:`` block, plus ``dataset``,
    ``data_seed``, ``seed``, ``batch_size`` and ``device`` of the profile."""
    prof = config.load_profile(profile)
    block = dict(prof.get("modnet") or {})
    unknown = set(block) - set(MODNET_DEFAULTS)
    if unknown:
        raise ConfigError(f"unknown modnet setting(s) {sorted(unknown)} in profile {profile!r}; "
                          f"valid: {', '.join(sorted(MODNET_DEFAULTS))}")
    s = {**MODNET_DEFAULTS, **block}
    s.update(dataset=prof.get("dataset", "mnist"), data_seed=int(prof.get("data_seed", 0)),
             seed=int(prof.get("seed", 0)), batch_size=int(prof.get("batch_size", 64)),
             device=prof.get("device", "auto"))
    return s


def out_dir(profile: str) -> Path:
    """``runs/<profile>/modnet/``: the experiments' CSV / NPZ / JSON files."""
    return config.results_dir(profile, "modnet")


def load_modnet(profile: str, dataset: str | None = None) -> tuple[ModNetGenerator, dict[str, Any]]:
    """The trained ModNet generator of ``profile`` (eval mode, test split attached as sample source)."""
    from . import train

    dataset = dataset or settings(profile)["dataset"]
    G, meta = train.load_generator(config.model_dir(profile, MODEL, dataset))
    if not isinstance(G, ModNetGenerator):
        raise CheckpointError(f"the checkpoint in {config.model_dir(profile, MODEL, dataset)} is not a modnet")
    return G, meta


def samples(profile: str, n: int, seed: int = 0, dataset: str | None = None) -> torch.Tensor:
    """``n`` "samples" of the trained ModNet: modified **test** images with random target classes
    (targets ≠ true labels), drawn from ``seed`` — what notebooks 02/03 use as its generated images
    (``train.load_generator`` + ``train.sample`` give the same images)."""
    from . import train

    G, _ = load_modnet(profile, dataset)
    return train.sample(G, n, seed=seed)


def frozen_classifier(meta: dict[str, Any]):
    """The classifier ModNet was trained against (from the feature-classifier cache), from checkpoint ``meta``."""
    from .metrics.features import classifier

    fc = meta.get("frozen_classifier")
    if not fc:
        raise CheckpointError("modnet checkpoint metadata has no 'frozen_classifier'; retrain the model")
    ext = classifier(dataset=meta["dataset"], data_seed=int(meta.get("data_seed") or 0), seed=int(fc["seed"]),
                     progress=False, **dict(fc["settings"]))
    if ext.meta.get("cache_key") != fc["cache_key"]:
        warnings.warn("the frozen classifier differs from the one modnet was trained against "
                      f"({ext.meta.get('cache_key')} vs {fc['cache_key']})", stacklevel=2)
    return ext


def transfer_classifier(profile: str, meta: dict[str, Any]):
    """The second classifier (``transfer_classifier`` settings: another seed/width), trained once and cached."""
    from .metrics.features import classifier

    tc = dict(settings(profile)["transfer_classifier"])
    seed = int(tc.pop("seed", 1))
    if seed == int(meta["frozen_classifier"]["seed"]) and all(
            meta["frozen_classifier"]["settings"].get(k) == v for k, v in tc.items()):
        raise ConfigError("the transfer classifier must differ from the frozen one (seed or settings)")
    return classifier(dataset=meta["dataset"], data_seed=int(meta.get("data_seed") or 0), seed=seed,
                      progress=False, **tc)


# ---------------------------------------------------------------------------- distances
def change_stats(x: torch.Tensor, x_mod: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image ``l1`` (mean |Δu|), ``l2`` (‖Δu‖₂) and ``ssim`` of inputs ``x`` and modifications
    ``x_mod`` (both in [-1, 1]; measured on ``u = (x + 1) / 2``)."""
    u, v = (x.double() + 1) / 2, (x_mod.double() + 1) / 2
    d = (v - u).flatten(1)
    s = torch.cat([_ssim(u[i:i + 512], v[i:i + 512]) for i in range(0, len(u), 512)])
    return {"l1": d.abs().mean(1).float(), "l2": d.norm(dim=1).float(), "ssim": s.float()}


@torch.no_grad()
def _probs(model, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    return torch.cat([F.softmax(model(x[i:i + batch_size]).float(), 1) for i in range(0, len(x), batch_size)])


@torch.no_grad()
def _modify(G: ModNetGenerator, x: torch.Tensor, t: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    return torch.cat([G.modify(x[i:i + batch_size], t[i:i + batch_size]) for i in range(0, len(x), batch_size)])


# ---------------------------------------------------------------------------- fooling examples
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
        from .metrics.base import bootstrap_mean_ci

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


def fooling(profile: str, n_per_pair: int | None = None, seed: int | None = None, record: bool = True) -> FoolingResult:
    """Modify ``n_per_pair`` test images of every class towards every class; score with the frozen
    and the transfer classifier.

    Writes ``fooling.npz`` (images, probabilities, distances), ``fooling_summary.csv``,
    ``fooling_pairs.csv`` under :func:`out_dir`, and (``record``) rows of section ``modnet`` to
    ``metrics.jsonl``: ``fool_rate`` / ``fool_close_rate`` per classifier, ``change_l1/l2/ssim``.
    """
    from . import data as data_mod
    from .interpret import save_arrays

    s = settings(profile)
    n = int(n_per_pair or s["n_per_pair"])
    seed = s["seed"] if seed is None else int(seed)
    t0 = time.perf_counter()
    G, meta = load_modnet(profile)
    test = data_mod.load(meta["dataset"], "test", seed=int(meta.get("data_seed") or 0))
    clfs = {"frozen": frozen_classifier(meta), "transfer": transfer_classifier(profile, meta)}
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


# ---------------------------------------------------------------------------- λ trade-off
@torch.no_grad()
def _score(G: ModNetGenerator, x: torch.Tensor, y: torch.Tensor, t: torch.Tensor, clfs: dict[str, Any],
           ssim_min: float) -> dict[str, float]:
    mod = _modify(G, x, t)
    st = change_stats(x, mod)
    out = {k: float(v.mean()) for k, v in st.items()}
    close = st["ssim"] >= ssim_min
    for name, ext in clfs.items():
        hit = _probs(ext.model, mod).argmax(1) == t
        out[f"fool_rate_{name}"] = float(hit.float().mean())
        out[f"fool_close_rate_{name}"] = float((hit & close).float().mean())
    return out


def lambda_tradeoff(profile: str, lambdas: list[float] | None = None, steps: int | None = None,
                    progress: bool = True) -> pd.DataFrame:
    """The L1 weight λ trades class change against closeness (thesis eq. 2.7, §2.2).

    For each λ the trained ModNet is fine-tuned for ``tradeoff_steps`` steps with
    ``L_G + L_label + λ·L1`` (same trainer, seed and data; own folder
    ``modnet/tradeoff/lambda_<λ>/``, resumed when already done), then scored on ``tradeoff_n`` test
    images with random targets: fooling rate (frozen, transfer), fooled-and-close rate, L1, L2,
    SSIM. Writes ``tradeoff.csv``; returns one row per λ.
    """
    from . import data as data_mod, train

    s = settings(profile)
    lambdas = [float(v) for v in (lambdas if lambdas is not None else s["lambdas"])]
    steps = int(steps or s["tradeoff_steps"])
    base_dir = config.model_dir(profile, MODEL, s["dataset"])
    ckpt = train.latest_checkpoint(base_dir)
    if ckpt is None:
        raise CheckpointError(f"no checkpoint in {base_dir / 'checkpoints'}; train the model first (notebook 01)")
    tensors, meta = train._read_model_checkpoint(ckpt)
    data_seed = int(meta.get("data_seed") or 0)
    train_data = data_mod.load(meta["dataset"], "train", seed=data_seed)
    test = data_mod.load(meta["dataset"], "test", seed=data_seed)
    clfs = {"frozen": frozen_classifier(meta), "transfer": transfer_classifier(profile, meta)}
    g = torch.Generator().manual_seed(s["seed"] + 17)
    n = min(int(s["tradeoff_n"]), len(test))
    idx = torch.randperm(len(test), generator=g)[:n]
    x, y = test.images[idx], test.labels[idx]
    t = random_targets(y, int(meta["params"]["num_classes"]), g)
    base = {k: v for k, v in meta["params"].items() if k != "l1_lambda"}
    stamp = {"base_checkpoint_sha256": io.sha256(ckpt), "steps": steps}  # redo when the base model changes
    rows = []
    for lam in tqdm(lambdas, desc="modnet λ trade-off", disable=not progress, ncols=100):
        folder = out_dir(profile) / "tradeoff" / f"lambda_{lam:g}"
        marker = folder / "base.json"
        stale = not marker.is_file() or json.loads(marker.read_text()) != json.loads(json.dumps(stamp))
        if folder.exists() and stale:
            shutil.rmtree(folder)  # fine-tuned from another base model (or interrupted before the marker): redo
        cfg = train.TrainConfig(steps=meta["step"] + steps, batch_size=s["batch_size"], ckpt_every=meta["step"] + steps,
                                log_every=max(1, steps // 4), grid_every=meta["step"] + steps, seed=s["seed"],
                                device=s["device"])
        kw = {**{k: (tuple(v) if k == "betas" else v) for k, v in base.items()}, "l1_lambda": lam}
        t0 = time.perf_counter()
        tr = train.Trainer(MODEL, train_data, folder, cfg, **kw)
        if tr.step == 0:  # start from the trained model's weights (G, D); fresh optimisers
            tr.G.load_state_dict(train._strip(tensors, "G"))
            tr.D.load_state_dict(train._strip(tensors, "D"))
            if tr.G_ema is not None:
                tr.G_ema.load_state_dict(train._strip(tensors, "G_ema" if meta.get("ema") else "G"))
            tr.step = int(meta["step"])
            io.write_json(marker, stamp)
        tr.fit(progress=False)
        G = tr.generator.eval()
        rows.append({"lambda": lam, "steps": steps, **_score(G, x, y, t, clfs, float(s["ssim_min"])),
                     "seconds": round(time.perf_counter() - t0, 2)})
    df = pd.DataFrame(rows)
    io.write_text(out_dir(profile) / "tradeoff.csv", df.to_csv(index=False))
    return df


def plot_tradeoff(df: pd.DataFrame):
    """λ trade-off: fooling rates and closeness against λ (log scale), and fooling rate against L2."""
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    lam = df["lambda"].to_numpy()
    a.plot(lam, df["fool_rate_frozen"], "o-", label="fooling rate, frozen classifier")
    a.plot(lam, df["fool_rate_transfer"], "s--", label="fooling rate, transfer classifier")
    a.plot(lam, df["fool_close_rate_frozen"], "^:", label="fooled & close (frozen)")
    a.plot(lam, df["ssim"], "d-.", color="0.4", label="mean SSIM(x, x')")
    a.set_xscale("log")
    a.set_xlabel("λ (weight of the L1 term)")
    a.set_ylabel("share / SSIM")
    a.set_ylim(-0.02, 1.02)
    a.grid(alpha=0.3)
    a.legend(fontsize=7)
    a.set_title("class change vs closeness as λ grows", fontsize=9)
    b.plot(df["l2"], df["fool_rate_frozen"], "o-", label="frozen classifier")
    b.plot(df["l2"], df["fool_rate_transfer"], "s--", label="transfer classifier")
    for _, r in df.iterrows():
        b.annotate(f"λ={r['lambda']:g}", (r["l2"], r["fool_rate_frozen"]), fontsize=7, xytext=(3, 3),
                   textcoords="offset points")
    b.set_xlabel("mean L2 change ‖x' − x‖₂ ([0,1] intensity units)")
    b.set_ylabel("fooling rate")
    b.set_ylim(-0.02, 1.02)
    b.grid(alpha=0.3)
    b.legend(fontsize=7)
    b.set_title("fooling rate vs size of the change", fontsize=9)
    fig.suptitle(f"ModNet λ trade-off (fine-tuned {int(df['steps'].iloc[0])} steps per λ)", fontsize=10)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------- augmentation
def _stratified(labels: torch.Tensor, n: int, k: int, g: torch.Generator) -> torch.Tensor:
    """``n`` indices, ``n // k`` per class (the remainder spread over the first classes), seeded."""
    if n < k:
        raise ConfigError(f"augmentation size {n} is smaller than the number of classes {k}")
    out = []
    for c in range(k):
        members = torch.nonzero(labels == c).flatten()
        m = n // k + (1 if c < n % k else 0)
        if len(members) < m:
            raise ConfigError(f"class {c} has {len(members)} training images, need {m} for size {n}")
        out.append(members[torch.randperm(len(members), generator=g)[:m]])
    return torch.cat(out)


class LeNet5(torch.nn.Module):
    """LeNet-5 (LeCun et al. 1998) with ReLU and max-pooling: the augmentation experiment's classifier.

    (B, C, S, S) -> conv5 (6) -> pool -> conv5 (16) -> pool -> 120 -> 84 -> K logits; about 0.3 M
    multiply-adds per 28x28 image, small enough to train 27 classifiers in seconds on a CPU.
    """

    def __init__(self, img_shape: tuple[int, int, int] = (1, 28, 28), num_classes: int = 10) -> None:
        super().__init__()
        c, h, w = img_shape
        nn = torch.nn
        fh, fw = ((h - 4) // 2 - 4) // 2, ((w - 4) // 2 - 4) // 2
        if fh < 1 or fw < 1:
            raise ConfigError(f"LeNet-5 needs images of at least 16x16, got {img_shape}")
        self.net = nn.Sequential(
            nn.Conv2d(c, 6, 5), nn.ReLU(), nn.MaxPool2d(2),        # (B, C, S, S) -> (B, 6, (S-4)/2, .)
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),       # -> (B, 16, fh, fw)
            nn.Flatten(), nn.Linear(16 * fh * fw, 120), nn.ReLU(),  # -> (B, 120)
            nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, num_classes))  # -> (B, 84) -> (B, K)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@torch.enable_grad()  # trains even when called under no_grad (e.g. from a tracking callback)
def train_eval_classifier(images: torch.Tensor, labels: torch.Tensor, test_images: torch.Tensor,
                          test_labels: torch.Tensor, seed: int, steps: int = 250, batch_size: int = 32,
                          lr: float = 3e-3, num_classes: int = 10) -> float:
    """Train a :class:`LeNet5` for ``steps`` Adam steps (cosine learning-rate decay) on batches drawn
    with replacement from ``(images, labels)``; return its accuracy on the test images.

    Every draw (initialisation, batches) comes from ``seed``; the step count does not depend on the
    training-set size, so conditions with and without generated images get the same compute. Runs
    on one intra-op thread: the operations are tiny, and on a busy 2-core CPU a second OpenMP thread
    made a run 10-40x slower (measured), while on an idle one it saves ~20 %.
    """
    from .metrics.base import torch_threads
    from .metrics.features import accuracy

    if steps < 1 or batch_size < 1:
        raise ConfigError(f"steps and batch_size must be >= 1, got {steps}, {batch_size}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LeNet5(tuple(images.shape[1:]), num_classes)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    model.train()
    with torch_threads(1):
        for _ in range(steps):
            idx = torch.randint(len(images), (batch_size,), generator=g)
            loss = F.cross_entropy(model(images[idx]), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        return accuracy(model.eval(), test_images, test_labels)


def augmentation_experiment(profile: str, sizes: list[int] | None = None, seeds: list[int] | None = None,
                            progress: bool = True) -> pd.DataFrame:
    """Test accuracy of a small classifier trained on ``n`` real training images (``aug_sizes``),
    without and with generated images (thesis §2.5.4, second experiment; Fig. 2.7):

    - ``real``: the ``n`` real images only (stratified, chosen by the seed);
    - ``real + modnet``: plus every real image modified to each of the K−1 other classes, labelled
      with the target class (at most ``aug_max_generated`` (image, target) pairs, drawn at random);
    - ``real + dcgan``: plus as many DCGAN samples, labelled by the frozen classifier's arg-max
      (skipped with a warning when ``dcgan`` is not trained in this profile).

    Every condition trains a LeNet-5 for the same ``aug_steps`` steps (:func:`train_eval_classifier`) and is
    scored on the whole real test split; one row per (n, method, seed). Caveat (also the thesis'):
    ModNet, its frozen classifier and DCGAN were trained on the full labelled training split, so
    the generated images carry information from more than ``n`` images. Writes ``augmentation.csv``.
    """
    from . import data as data_mod, train

    s = settings(profile)
    sizes = [int(v) for v in (sizes if sizes is not None else s["aug_sizes"])]
    seeds = [int(v) for v in (seeds if seeds is not None else s["aug_seeds"])]
    G, meta = load_modnet(profile)
    data_seed = int(meta.get("data_seed") or 0)
    tr = data_mod.load(meta["dataset"], "train", seed=data_seed)
    test = data_mod.load(meta["dataset"], "test", seed=data_seed)
    k = G.num_classes
    cap = int(s["aug_max_generated"])
    n_gen = {n: min(n * (k - 1), cap) for n in sizes}
    dcgan_pool = None
    try:
        D_G, _ = train.load_generator(config.model_dir(profile, "dcgan", meta["dataset"]))
        clf = frozen_classifier(meta)
        with torch.no_grad():
            pool = train.sample(D_G, max(n_gen.values()), seed=s["seed"] + 101)
            dcgan_pool = (pool, _probs(clf.model, pool).argmax(1))
    except CheckpointError as e:
        warnings.warn(f"augmentation: no DCGAN baseline ({e})", stacklevel=2)
    kw = dict(steps=int(s["aug_steps"]), batch_size=int(s["aug_batch"]), lr=float(s["aug_lr"]), num_classes=k)
    rows = []
    total = len(sizes) * len(seeds) * (3 if dcgan_pool is not None else 2)
    bar = tqdm(total=total, desc="modnet augmentation", disable=not progress, ncols=100)
    for seed in seeds:
        for n in sizes:
            g = torch.Generator().manual_seed(1_000 * seed + n)
            idx = _stratified(tr.labels, n, k, g)
            x, y = tr.images[idx], tr.labels[idx]
            # (image, target) pairs: every other class of every image, at most `cap` of them
            src = torch.arange(n).repeat_interleave(k - 1)
            tgt = (y[src] + torch.arange(1, k).repeat(n)) % k
            pick = torch.randperm(len(src), generator=g)[:n_gen[n]]
            x_mod = _modify(G, x[src[pick]], tgt[pick])
            sets = {"real": (x, y), "real + modnet": (torch.cat([x, x_mod]), torch.cat([y, tgt[pick]]))}
            if dcgan_pool is not None:
                j = torch.randperm(len(dcgan_pool[0]), generator=g)[:n_gen[n]]
                sets["real + dcgan"] = (torch.cat([x, dcgan_pool[0][j]]), torch.cat([y, dcgan_pool[1][j]]))
            for method, (xs, ys) in sets.items():
                t0 = time.perf_counter()
                acc = train_eval_classifier(xs, ys, test.images, test.labels, seed=seed, **kw)
                rows.append({"n_real": n, "method": method, "seed": seed, "n_generated": len(xs) - n,
                             "accuracy": acc, "seconds": round(time.perf_counter() - t0, 3)})
                bar.update(1)
    bar.close()
    df = pd.DataFrame(rows)
    io.write_text(out_dir(profile) / "augmentation.csv", df.to_csv(index=False))
    return df


def augmentation_table(df: pd.DataFrame | str) -> pd.DataFrame:
    """``n_real x method`` table of test accuracy ``mean ± std`` (%) over seeds (a frame or a profile name)."""
    if isinstance(df, str):
        path = out_dir(df) / "augmentation.csv"
        if not path.is_file():
            raise CheckpointError(f"no {path}; run modnet.augmentation_experiment({df!r}) first")
        df = pd.read_csv(path)
    agg = df.groupby(["n_real", "method"])["accuracy"].agg(["mean", "std", "count"]).reset_index()
    agg["cell"] = [f"{100 * m:.1f} ± {100 * (0 if math.isnan(sd) else sd):.1f}"
                   for m, sd in zip(agg["mean"], agg["std"])]
    table = agg.pivot(index="n_real", columns="method", values="cell")
    table.columns.name = f"test accuracy % (mean ± std over {int(agg['count'].max())} seeds)"
    return table


def plot_augmentation(df: pd.DataFrame):
    """Test accuracy against the number of real training images (log scale), one line per method,
    error bars = std over seeds."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    for i, (method, d) in enumerate(df.groupby("method", sort=False)):
        a = d.groupby("n_real")["accuracy"].agg(["mean", "std"]).fillna(0)
        ax.errorbar(a.index, 100 * a["mean"], yerr=100 * a["std"], marker="osd^"[i % 4], capsize=3, label=method)
    ax.set_xscale("log")
    ax.set_xlabel("real training images (log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    n_seeds = df["seed"].nunique()
    ax.set_title(f"Augmentation with ModNet / DCGAN images (mean ± std, {n_seeds} seeds)", fontsize=9)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------- memorisation
@dataclass
class MemorizationResult:
    """Nearest training images (pixel L2) of modified images.

    ``summary``: a table; ``queries`` / ``indices`` / ``distances`` / ``labels``: the modified test
    images shown in :func:`plot_memorization` with their neighbours in ``train``.
    """

    summary: pd.DataFrame
    queries: torch.Tensor
    train: torch.Tensor
    indices: torch.Tensor
    distances: torch.Tensor
    labels: list[str]


def memorization_check(profile: str, n: int | None = None, progress: bool = False) -> MemorizationResult:
    """Does ModNet retrieve training images of the target class? (thesis §2.5.5)

    - modified **training** images (random targets ≠ label): the share whose nearest training image
      is their own source (the thesis: "always closest to the image they were conditioned on");
    - modified **test** images: the share whose nearest training image has the target label, and
      the share with the source label; their mean nearest-neighbour distance next to that of the
      unmodified test images (a modification that copied a training image would be at ~0).

    Writes ``memorization.csv``.
    """
    from . import data as data_mod
    from .interpret.neighbours import nearest_neighbours

    s = settings(profile)
    n = int(n or s["n_memorization"])
    G, meta = load_modnet(profile)
    data_seed = int(meta.get("data_seed") or 0)
    tr = data_mod.load(meta["dataset"], "train", seed=data_seed)
    test = data_mod.load(meta["dataset"], "test", seed=data_seed)
    g = torch.Generator().manual_seed(s["seed"] + 29)
    k = G.num_classes
    i_tr = torch.randperm(len(tr), generator=g)[:min(n, len(tr))]
    t_tr = random_targets(tr.labels[i_tr], k, g)
    nn_tr = nearest_neighbours(_modify(G, tr.images[i_tr], t_tr), tr.images, k=1)
    i_te = torch.randperm(len(test), generator=g)[:min(n, len(test))]
    t_te = random_targets(test.labels[i_te], k, g)
    q = _modify(G, test.images[i_te], t_te)
    kk = int(s["n_neighbours"])
    nn_te = nearest_neighbours(q, tr.images, k=kk)
    nn_real = nearest_neighbours(test.images[i_te], tr.images, k=1)
    nn_lab = tr.labels[nn_te.indices[:, 0]]
    summary = pd.DataFrame([
        {"check": "modified train images: nearest training image is the source", "value": float(
            (nn_tr.indices[:, 0] == i_tr).float().mean()), "n": len(i_tr)},
        {"check": "modified test images: nearest training image has the target label",
         "value": float((nn_lab == t_te).float().mean()), "n": len(i_te)},
        {"check": "modified test images: nearest training image has the source label",
         "value": float((nn_lab == test.labels[i_te]).float().mean()), "n": len(i_te)},
        {"check": "modified test images: mean NN distance (pixel L2, [-1,1] units)",
         "value": float(nn_te.distances[:, 0].mean()), "n": len(i_te)},
        {"check": "unmodified test images: mean NN distance (pixel L2, [-1,1] units)",
         "value": float(nn_real.distances[:, 0].mean()), "n": len(i_te)},
    ]).set_index("check")
    io.write_text(out_dir(profile) / "memorization.csv", summary.to_csv())
    show = torch.arange(min(8, len(q)))
    labels = [f"{int(test.labels[i_te][j])}→{int(t_te[j])}" for j in show]
    return MemorizationResult(summary, q[show], tr.images, nn_te.indices[show], nn_te.distances[show], labels)


def plot_memorization(res: MemorizationResult):
    """Modified test images (row label source→target) with their nearest training images (pixel L2)."""
    from .viz import plot_neighbours

    return plot_neighbours(res.queries, res.train, res.indices, res.distances, row_labels=res.labels,
                           title="ModNet: modified test images (left) and their nearest training images")


__all__ = ["MODNET_DEFAULTS", "settings", "out_dir", "load_modnet", "samples", "frozen_classifier",
           "transfer_classifier", "change_stats", "FoolingResult", "fooling", "fooling_table", "plot_fooling_grid",
           "plot_fooling_matrix", "lambda_tradeoff", "plot_tradeoff", "LeNet5", "train_eval_classifier",
           "augmentation_experiment", "augmentation_table", "plot_augmentation", "MemorizationResult",
           "memorization_check", "plot_memorization"]
