"""Trainer overhead: steps/s of the Trainer vs a bare hand-written loop on the same DCGAN and batch.

Both loops train the quick profile's DCGAN on MNIST from the same seed; the Trainer runs at the
profile's own cadence (a log row every ``log_every`` steps, a sample grid and an atomic checkpoint
every ``grid_every`` / ``ckpt_every`` steps and at the end), the bare loop does none of that. They
draw the same batches and latents in the same order, so they do the same arithmetic: the script
checks that both end with bit-identical generator weights, i.e. the ratio compares equal work.

Two ratios (trainer steps/s / bare steps/s; target >= 0.95) are printed:

* **wall clock**: the median over ``--reps`` interleaved pairs (ABBA order, so a drift of the
  machine's speed hits both loops alike) of the ratio of whole-run times;
* **noise floor**: every step of every run is timed (the Trainer through a per-step callback; the
  last interval, from the last step to ``fit``'s return, holds the final checkpoint). Step ``i``
  does the same work in every repetition, so the minimum over repetitions of step ``i``'s time is
  its cost without the time a busy shared host steals (the ``timeit`` argument for the minimum),
  and the sum of those minima is a run's cost. Periodic work (logs, grids, checkpoints) falls on
  the same steps in every repetition, so it stays in the sum. This is the number to read on a
  noisy machine, where single runs vary by more than the overhead being measured.

Also printed: images/s, the trainer's overhead and the part of it that its periodic work takes, and the
share of this machine's measured matmul GFLOP/s that training reaches (FLOPs per step counted
with torch's FlopCounterMode).

Run: .venv/bin/python benchmarks/bench_train.py [--steps 400] [--reps 4]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from ganreport import config, data, losses, models, train


def bare_loop(imgs: torch.Tensor, kw: dict, steps: int, batch: int, seed: int = 0) -> tuple[list[float], dict]:
    """Hand-written NS-GAN loop; returns the ``steps`` per-step times (s) and G's final state dict."""
    torch.manual_seed(seed)
    G, D, p = models.build("dcgan", tuple(imgs.shape[1:]), **kw)
    og = torch.optim.Adam(G.parameters(), lr=p["lr_g"], betas=p["betas"])
    od = torch.optim.Adam(D.parameters(), lr=p["lr_d"], betas=p["betas"])
    g = torch.Generator().manual_seed(seed)
    stamps = [time.perf_counter()]
    for _ in range(steps):
        real = imgs[torch.randint(len(imgs), (batch,), generator=g)]
        with torch.no_grad():
            fake = G(torch.randn(batch, G.z_dim, generator=g))
        ld = losses.ns_d_loss(D(real), D(fake))
        od.zero_grad(set_to_none=True)
        ld.backward()
        od.step()
        lg = losses.ns_g_loss(D(G(torch.randn(batch, G.z_dim, generator=g))))
        og.zero_grad(set_to_none=True)
        lg.backward()
        og.step()
        stamps.append(time.perf_counter())
    return _diffs(stamps), G.state_dict()


def trainer_run(d: data.ImageData, kw: dict, steps: int, batch: int, cadence: dict) -> tuple[list[float], dict]:
    """``Trainer.fit`` at the profile's cadence; returns ``steps + 1`` interval times (s) and G's state dict.

    Interval ``i < steps`` ends at step ``i + 1``'s callback; the last one ends when ``fit`` returns.
    """
    with tempfile.TemporaryDirectory() as tmp:
        cfg = train.TrainConfig(steps=steps, batch_size=batch, seed=0, device="cpu", **cadence)
        t = train.Trainer("dcgan", d, tmp, cfg, **kw)
        stamps: list[float] = []
        t.add_callback(lambda _t, _s: stamps.append(time.perf_counter()), every=1)
        stamps.append(time.perf_counter())
        t.fit(progress=False)
        stamps.append(time.perf_counter())
        return _diffs(stamps), t.G.state_dict()


def _diffs(stamps: list[float]) -> list[float]:
    return [b - a for a, b in zip(stamps, stamps[1:])]


def step_minima(runs: list[list[float]]) -> list[float]:
    """Per step, the minimum over repetitions of that step's time (its sum is a run's noise-floor cost)."""
    return [min(col) for col in zip(*runs)]


def periodic_cost(floor: list[float], steps: int, cadence: dict) -> tuple[float, dict]:
    """Time of the trainer's periodic work (log rows, grids, checkpoints) per run, from its per-step
    minima ``floor``: the minima of the intervals holding that work, less the median of the others.

    Interval ``j`` ends at step ``j + 1``'s callback; logs and grids of step ``s`` run before that
    step's callback (interval ``s - 1``), checkpoints after it (interval ``s``; the last one is the
    final interval, up to ``fit``'s return).
    """
    logs = {s - 1 for s in range(1, steps + 1) if s % cadence["log_every"] == 0 or s == steps}
    grids = {s - 1 for s in range(1, steps + 1) if s % cadence["grid_every"] == 0 or s == steps}
    ckpts = {s for s in range(1, steps + 1) if s % cadence["ckpt_every"] == 0 or s == steps}
    events = logs | grids | ckpts
    base = statistics.median(f for j, f in enumerate(floor) if j not in events)
    # the final interval holds no training step, only the last checkpoint: all of it is periodic work
    cost = sum(floor[j] - (base if j < steps else 0.0) for j in events)
    return cost, {"log rows": len(logs), "grids": len(grids), "checkpoints": len(ckpts)}


def flops_per_step(shape, kw: dict, batch: int) -> float:
    G, D, _ = models.build("dcgan", shape, **kw)
    real = torch.zeros(batch, *shape)
    with FlopCounterMode(display=False) as fc:
        with torch.no_grad():
            fake = G(torch.randn(batch, G.z_dim))
        losses.ns_d_loss(D(real), D(fake)).backward()
        losses.ns_g_loss(D(G(torch.randn(batch, G.z_dim)))).backward()
    return float(fc.get_total_flops())


def matmul_gflops(n: int = 1024, reps: int = 20) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=400, help="steps per run (the quick cadence: 2 checkpoints and grids)")
    ap.add_argument("--reps", type=int, default=4, help="interleaved (bare, trainer) pairs")
    a = ap.parse_args()
    prof = config.profile_params("quick")
    kw = prof["model_kwargs"]["dcgan"]
    batch = prof["batch_size"]
    cadence = {k: min(int(prof[k]), a.steps) for k in ("log_every", "grid_every", "ckpt_every")}
    d = data.load("mnist", "train")
    bare_loop(d.images, kw, 20, batch)  # warm-up of both (allocator, first grid and checkpoint write)
    trainer_run(d, kw, 20, batch, cadence)
    runners = {"bare": lambda: bare_loop(d.images, kw, a.steps, batch),
               "trainer": lambda: trainer_run(d, kw, a.steps, batch, cadence)}
    runs: dict[str, list[list[float]]] = {"bare": [], "trainer": []}
    same = True
    for rep in range(a.reps):  # ABBA order, so drift of the machine's speed hits both alike
        states = {}
        for which in (("bare", "trainer") if rep % 2 == 0 else ("trainer", "bare")):
            dt, states[which] = runners[which]()
            runs[which].append(dt)
        same &= all(torch.equal(states["bare"][k], v) for k, v in states["trainer"].items())
    bare_runs, trn_runs = runs["bare"], runs["trainer"]
    wall = sorted(sum(b) / sum(t) for b, t in zip(bare_runs, trn_runs))
    bare_wall = a.steps / statistics.median(sum(r) for r in bare_runs)
    trn_wall = a.steps / statistics.median(sum(r) for r in trn_runs)
    trn_minima = step_minima(trn_runs)
    bare_floor, trn_floor = sum(step_minima(bare_runs)), sum(trn_minima)
    periodic, counts = periodic_cost(trn_minima, a.steps, cadence)
    fl = flops_per_step(d.shape, kw, batch)
    peak = matmul_gflops()
    print(f"quick DCGAN, batch {batch}, {a.steps} steps per run, {a.reps} interleaved pairs; trainer cadence {cadence}")
    print(f"same work  {'yes' if same else 'NO'} (bit-identical generator weights after every pair of runs)")
    print(f"trainer    {trn_wall:8.2f} steps/s  ({trn_wall * batch:7.0f} img/s)  wall clock, median run")
    print(f"bare loop  {bare_wall:8.2f} steps/s  ({bare_wall * batch:7.0f} img/s)  wall clock, median run")
    print(f"ratio      {statistics.median(wall):8.3f}   wall clock: median of the pairs "
          f"({', '.join(f'{r:.3f}' for r in wall)}); target >= 0.95")
    print(f"ratio      {bare_floor / trn_floor:8.3f}   noise floor: sums of per-step minima, "
          f"trainer {a.steps / trn_floor:.2f} vs bare {a.steps / bare_floor:.2f} steps/s; target >= 0.95")
    print(f"overhead   {1e3 * (trn_floor - bare_floor):8.1f} ms per run ({100 * (trn_floor / bare_floor - 1):+.1f} %, "
          f"noise floor); its periodic work ({', '.join(f'{n} {k}' for k, n in counts.items())}) "
          f"takes {1e3 * periodic:.1f} ms = {100 * periodic / trn_floor:.1f} % of the run")
    gflops = fl * trn_wall / 1e9
    print(f"training   {gflops:8.2f} GFLOP/s = {100 * gflops / peak:.1f} % of measured matmul {peak:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
