"""ModNet data augmentation (thesis §2.5.4, Fig. 2.7): a LeNet-5 trained on few real images, without and
with ModNet (and DCGAN) images; the classifier, the experiment, its table and its figure."""

from __future__ import annotations

import math
import time
import warnings
from typing import Any

import pandas as pd
import torch
from tqdm import tqdm

from ... import config, data as data_mod, io, train
from ...errors import CheckpointError, ConfigError, DataError
from ...fit import fit
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
def train_lenet(images: torch.Tensor, labels: torch.Tensor, seed: int, steps: int = 250, batch_size: int = 32,
                lr: float = 3e-3, num_classes: int = 10) -> LeNet5:
    """Train a :class:`LeNet5` for ``steps`` Adam steps (cosine learning-rate decay) on batches drawn
    with replacement from ``(images, labels)`` (:func:`ganreport.fit.fit`); return it in eval mode.

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
    fit(model, images, labels, torch.Generator().manual_seed(seed), batch_size=batch_size, lr=lr, steps=steps,
        schedule="cosine", threads=1)
    return model


def train_eval_classifier(images: torch.Tensor, labels: torch.Tensor, test_images: torch.Tensor,
                          test_labels: torch.Tensor, seed: int, steps: int = 250, batch_size: int = 32,
                          lr: float = 3e-3, num_classes: int = 10) -> float:
    """:func:`train_lenet` on ``(images, labels)``, then its accuracy on the test images."""
    model = train_lenet(images, labels, seed, steps=steps, batch_size=batch_size, lr=lr, num_classes=num_classes)
    with torch_threads(1):
        return accuracy(model, test_images, test_labels)


def _aug_plan(prof: Profile, sizes: list[int] | None, seeds: list[int] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The experiment's settings and the key of what its classifiers depend on (settings, the ModNet
    and DCGAN checkpoints, the data seed)."""
    s = settings(prof)
    plan = dict(sizes=[int(v) for v in (sizes if sizes is not None else s["aug_sizes"])],
                seeds=[int(v) for v in (seeds if seeds is not None else s["aug_seeds"])],
                steps=int(s["aug_steps"]), batch=int(s["aug_batch"]), lr=float(s["aug_lr"]),
                cap=int(s["aug_max_generated"]), seed=int(s["seed"]))
    ckpts = {m: train.checkpoint_sha256(config.model_dir(prof.profile, m, prof.dataset)) for m in ("modnet", "dcgan")}
    return plan, dict(plan, checkpoints=ckpts, version=1)


def _aug_dir(profile: str):
    return out_dir(profile) / "augmentation"


def train_augmentation_classifiers(prof: Profile, sizes: list[int] | None = None, seeds: list[int] | None = None,
                                   progress: bool = True) -> pd.DataFrame:
    """Train the classifiers of the augmentation experiment (thesis §2.5.4, Fig. 2.7; notebook 01).

    For each seed and each ``n`` of ``aug_sizes`` a LeNet-5 (:func:`train_lenet`, ``aug_steps``
    steps) is trained on

    - ``real``: ``n`` real training images (stratified, chosen by the seed);
    - ``real + modnet``: plus every real image modified to each of the K−1 other classes, labelled
      with the target class (at most ``aug_max_generated`` (image, target) pairs, drawn at random);
    - ``real + dcgan``: plus as many DCGAN samples, labelled by the frozen classifier's arg-max
      (skipped with a warning when ``dcgan`` is not trained in this profile).

    The weights go to ``runs/<profile>/modnet/augmentation/`` with a manifest keyed on the settings
    and the ModNet / DCGAN checkpoints; a finished set is reused. :func:`augmentation_experiment`
    scores them. Returns one row per classifier: ``n_real, method, seed, n_generated, train_s, file``.
    """
    plan, key = _aug_plan(prof, sizes, seeds)
    folder = _aug_dir(prof.profile)
    manifest = folder / "manifest.json"
    if (done := io.read_keyed(manifest, key)) is not None:
        return pd.DataFrame(done["rows"])[["n_real", "method", "seed", "n_generated", "train_s", "file"]]
    G, meta = load_modnet(prof)
    data_seed = int(meta.get("data_seed") or 0)
    tr = data_mod.load(meta["dataset"], "train", seed=data_seed)
    k = G.num_classes
    n_gen = {n: min(n * (k - 1), plan["cap"]) for n in plan["sizes"]}
    dcgan_pool = None
    try:
        D_G, _ = train.load_generator(config.model_dir(prof.profile, "dcgan", meta["dataset"]))
        clf = frozen_classifier(meta, train_if_missing=True)
        with torch.no_grad():
            pool = train.sample(D_G, max(n_gen.values()), seed=plan["seed"] + 101)
            dcgan_pool = (pool, _probs(clf.model, pool).argmax(1))
    except CheckpointError as e:
        warnings.warn(f"augmentation: no DCGAN baseline ({e})", stacklevel=2)
    kw = dict(steps=plan["steps"], batch_size=plan["batch"], lr=plan["lr"], num_classes=k)
    rows = []
    total = len(plan["sizes"]) * len(plan["seeds"]) * (3 if dcgan_pool is not None else 2)
    bar = tqdm(total=total, desc="modnet augmentation (train)", disable=not progress, ncols=100)
    for seed in plan["seeds"]:
        for n in plan["sizes"]:
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
                model = train_lenet(xs, ys, seed=seed, **kw)
                file = f"seed{seed}_n{n}_{method.replace(' + ', '+')}.safetensors"
                io.save_checkpoint(folder / file, model.state_dict(), {"img_shape": list(xs.shape[1:]),
                                                                      "num_classes": k})
                rows.append({"n_real": n, "method": method, "seed": seed, "n_generated": len(xs) - n,
                             "train_s": round(time.perf_counter() - t0, 3), "file": file})
                bar.update(1)
    bar.close()
    io.write_keyed(manifest, key, {"rows": rows})
    return pd.DataFrame(rows)


def augmentation_experiment(prof: Profile, sizes: list[int] | None = None, seeds: list[int] | None = None,
                            progress: bool = True) -> pd.DataFrame:
    """Test accuracy of the classifiers :func:`train_augmentation_classifiers` trained on ``n`` real
    training images (``aug_sizes``), without and with generated images (thesis §2.5.4, second
    experiment; Fig. 2.7), on the whole real test split; one row per (n, method, seed). Nothing is
    trained here: classifiers missing or trained for other settings or checkpoints are a
    :class:`DataError` that names notebook 01.

    Caveat (also the thesis'): ModNet, its frozen classifier and DCGAN were trained on the full
    labelled training split, so the generated images carry information from more than ``n`` images.
    Writes ``augmentation.csv``.
    """
    plan, key = _aug_plan(prof, sizes, seeds)
    folder = _aug_dir(prof.profile)
    manifest = folder / "manifest.json"
    done = io.read_keyed(manifest, key)
    if done is None:
        raise DataError(f"the augmentation classifiers of profile {prof.profile!r} are "
                        f"{'trained for other settings or checkpoints' if manifest.is_file() else 'not trained'} "
                        f"({folder}); run notebook 01 (modnet.train_augmentation_classifiers) first")
    test = data_mod.load(prof.dataset, "test", seed=prof.data_seed)
    rows = []
    for r in tqdm(done["rows"], desc="modnet augmentation (score)", disable=not progress, ncols=100):
        t0 = time.perf_counter()
        tensors, meta = io.load_checkpoint(folder / r["file"])
        model = LeNet5(tuple(meta["img_shape"]), int(meta["num_classes"]))
        model.load_state_dict(tensors)
        with torch_threads(1):
            acc = accuracy(model.eval(), test.images, test.labels)
        rows.append({"n_real": r["n_real"], "method": r["method"], "seed": r["seed"], "n_generated": r["n_generated"],
                     "accuracy": acc, "train_s": r["train_s"], "score_s": round(time.perf_counter() - t0, 3)})
    df = pd.DataFrame(rows)
    io.write_text(out_dir(prof.profile) / "augmentation.csv", df.to_csv(index=False))
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
