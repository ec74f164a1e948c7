"""ModNet data augmentation (thesis §2.5.4, Fig. 2.7): a LeNet-5 trained on few real images, without and
with ModNet (and DCGAN) images; the classifier, the experiment, its table and its figure."""

from __future__ import annotations

import math
import time
import warnings

import pandas as pd
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ... import config, data as data_mod, io, train
from ...errors import CheckpointError, ConfigError
from ...metrics.base import torch_threads
from ...metrics.features import accuracy
from ...settings import Profile
from .common import _modify, _probs, frozen_classifier, load_modnet, out_dir, settings


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


def augmentation_experiment(prof: Profile, sizes: list[int] | None = None, seeds: list[int] | None = None,
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
    profile = prof.profile
    s = settings(prof)
    sizes = [int(v) for v in (sizes if sizes is not None else s["aug_sizes"])]
    seeds = [int(v) for v in (seeds if seeds is not None else s["aug_seeds"])]
    G, meta = load_modnet(prof)
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
