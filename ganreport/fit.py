"""One supervised fit loop for the small networks the study trains besides its GANs: the feature
classifier (:func:`ganreport.metrics.features.train_classifier`), the DDM study's embedding
networks, the LeNet-5 of the ModNet augmentation study and the ``shapes`` segmenter.

Written here rather than with a training framework (Lightning, Ignite) because what matters is
that every random draw comes from one seeded generator in a fixed order, so that a cached network
is reproduced exactly; the loop is twenty lines and the frameworks add their own seeding. It sits at
the ground layer so that ``metrics`` and ``models`` may call it.

Two ways to draw batches:

- ``epochs``: each epoch a permutation of the training set (``torch.randperm(n, generator=rng)``),
  cut into batches of ``batch_size``; ``schedule="onecycle"`` (Smith & Topin 2019) over all steps;
- ``steps``: ``steps`` batches drawn with replacement (``torch.randint``), the same compute
  whatever the training-set size; ``schedule="cosine"`` decays the rate to 0 over the steps.

``augment(x, y, rng)`` may change a batch (drawing from the same ``rng``); ``dropout_seed`` seeds
the global generator, from which dropout draws, inside a forked RNG state so the caller's global
state is untouched. ``threads`` pins torch's intra-op threads on the CPU while training.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from .errors import ConfigError

SCHEDULES = ("onecycle", "cosine")
Augment = Callable[[torch.Tensor, torch.Tensor, torch.Generator], "tuple[torch.Tensor, torch.Tensor]"]


@dataclass
class FitResult:
    """What :func:`fit` did: optimiser steps, the last batch loss and the wall time (seconds)."""

    steps: int
    last_loss: float
    seconds: float


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` intra-op torch threads (None: unchanged), then restore.

    Many small tensor operations (the metrics on a few thousand samples, these small networks) run
    several times slower with a second OpenMP thread on a busy CPU, so callers pin one thread.
    Kept at the ground layer so that training here and the metrics (``ganreport.metrics.base``
    re-exports it) share one implementation.
    """
    before = torch.get_num_threads()
    if n is not None and n != before:
        torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


@torch.enable_grad()  # trains even when called under no_grad (e.g. from a tracking callback)
def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, rng: torch.Generator, *, batch_size: int, lr: float,
        epochs: int | None = None, steps: int | None = None, weight_decay: float = 0.0, schedule: str = "onecycle",
        pct_start: float = 0.3, augment: Augment | None = None, loss_weight: torch.Tensor | None = None,
        dropout_seed: int | None = None, threads: int | None = None, progress: bool = False,
        desc: str = "fit") -> FitResult:
    """Train ``model`` on ``(x, y)`` with Adam and cross-entropy (``loss_weight`` per class), one
    of ``epochs`` or ``steps`` (see the module docstring); leaves it in eval mode.

    Raises
    ------
    ConfigError
        For a bad ``epochs``/``steps``/``batch_size``/``schedule`` or mismatched ``x``/``y``.
    """
    if (epochs is None) == (steps is None):
        raise ConfigError("fit needs exactly one of epochs (shuffled passes) or steps (batches drawn with replacement)")
    if batch_size < 1 or (epochs is not None and epochs < 1) or (steps is not None and steps < 1):
        raise ConfigError(f"fit needs batch_size, epochs/steps >= 1, got {batch_size}, "
                          f"{epochs if steps is None else steps}")
    if schedule not in SCHEDULES:
        raise ConfigError(f"unknown schedule {schedule!r}; known: {', '.join(SCHEDULES)}")
    if len(x) != len(y) or len(x) == 0:
        raise ConfigError(f"fit needs as many labels as inputs (> 0), got {len(x)} inputs and {len(y)} labels")
    n = len(x)
    per_epoch = math.ceil(n / batch_size)
    total = epochs * per_epoch if epochs is not None else int(steps)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    if schedule == "onecycle":
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total, pct_start=pct_start)
    else:
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, total)

    def batches():
        if epochs is not None:
            for _ in range(epochs):
                order = torch.randperm(n, generator=rng)
                for i in range(0, n, batch_size):
                    yield order[i:i + batch_size]
        else:
            for _ in range(total):
                yield torch.randint(n, (batch_size,), generator=rng)

    t0 = time.perf_counter()
    last = float("nan")
    model.train()
    rng_state = torch.random.fork_rng(devices=[]) if dropout_seed is not None else contextlib.nullcontext()
    with rng_state, torch_threads(threads), tqdm(total=total, desc=desc, disable=not progress, ncols=100,
                                             mininterval=2.0) as bar:
        if dropout_seed is not None:
            torch.manual_seed(int(dropout_seed))  # dropout draws from the global generator: seeded and local
        for idx in batches():
            xb, yb = x[idx], y[idx]
            if augment is not None:
                xb, yb = augment(xb, yb, rng)
            loss = F.cross_entropy(model(xb), yb, weight=loss_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            last = float(loss.detach())
            bar.update(1)
            if bar.n % per_epoch == 0:
                bar.set_postfix(loss=f"{last:.3f}", refresh=False)
    model.eval()
    return FitResult(total, last, time.perf_counter() - t0)


__all__ = ["SCHEDULES", "FitResult", "fit", "torch_threads"]
