"""ModNet memorisation check (thesis §2.5.5): nearest training images of modified images; the table and
the neighbour figure."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch

from ... import data as data_mod, io
from ...interpret.neighbours import nearest_neighbours
from ...models.modnet import random_targets
from ...settings import Profile
from .common import _modify, load_modnet, out_dir, settings


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


def memorization_check(prof: Profile, n: int | None = None, progress: bool = False) -> MemorizationResult:
    """Does ModNet retrieve training images of the target class? (thesis §2.5.5)

    - modified **training** images (random targets ≠ label): the share whose nearest training image
      is their own source (the thesis: "always closest to the image they were conditioned on");
    - modified **test** images: the share whose nearest training image has the target label, and
      the share with the source label; their mean nearest-neighbour distance next to that of the
      unmodified test images (a modification that copied a training image would be at ~0).

    Writes ``memorization.csv``.
    """
    profile = prof.profile
    s = settings(prof)
    n = int(n or s["n_memorization"])
    G, meta = load_modnet(prof)
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
    from ...viz import plot_neighbours

    return plot_neighbours(res.queries, res.train, res.indices, res.distances, row_labels=res.labels,
                           title="ModNet: modified test images (left) and their nearest training images")
