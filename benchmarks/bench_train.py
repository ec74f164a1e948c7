"""Trainer overhead: steps/s of the Trainer vs a bare hand-written loop on the same DCGAN and batch.

Prints both rates, their ratio (target >= 0.95), images/s, and the share of this machine's
matmul GFLOP/s that training reaches (FLOPs per step counted with torch's FlopCounterMode).
Run: .venv/bin/python benchmarks/bench_train.py [--steps 300]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from ganreport import config, data, losses, models, train


def bare_loop(imgs: torch.Tensor, kw: dict, steps: int, batch: int, seed: int = 0) -> float:
    torch.manual_seed(seed)
    G, D, p = models.build("dcgan", tuple(imgs.shape[1:]), **kw)
    og = torch.optim.Adam(G.parameters(), lr=p["lr_g"], betas=p["betas"])
    od = torch.optim.Adam(D.parameters(), lr=p["lr_d"], betas=p["betas"])
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
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
    return steps / (time.perf_counter() - t0)


def trainer_rate(d: data.ImageData, kw: dict, steps: int, batch: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = train.TrainConfig(steps=steps, batch_size=batch, ckpt_every=steps, log_every=25, grid_every=steps,
                                seed=0, device="cpu")
        t = train.Trainer("dcgan", d, tmp, cfg, **kw)
        res = t.fit(progress=False)
    return res.steps_per_s


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
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--reps", type=int, default=4, help="interleaved (bare, trainer) pairs; the median ratio is printed")
    a = ap.parse_args()
    prof = config.load_profile("quick")
    kw = prof["model_kwargs"]["dcgan"]
    batch = prof["batch_size"]
    d = data.load("mnist", "train")
    bare_loop(d.images, kw, 20, batch)  # warm-up of both (the trainer's first grid imports matplotlib)
    trainer_rate(d, kw, 20, batch)
    bare, trn = [], []
    for rep in range(a.reps):  # interleaved in ABBA order, so drift of the machine's speed hits both alike
        if rep % 2 == 0:
            bare.append(bare_loop(d.images, kw, a.steps, batch))
            trn.append(trainer_rate(d, kw, a.steps, batch))
        else:
            trn.append(trainer_rate(d, kw, a.steps, batch))
            bare.append(bare_loop(d.images, kw, a.steps, batch))
    ratios = sorted(t / b for t, b in zip(trn, bare))
    b, t = statistics.median(bare), statistics.median(trn)
    fl = flops_per_step(d.shape, kw, batch)
    peak = matmul_gflops()
    print(f"trainer    {t:8.2f} steps/s  ({t * batch:7.0f} img/s)")
    print(f"bare loop  {b:8.2f} steps/s  ({b * batch:7.0f} img/s)")
    print(f"ratio      {statistics.median(ratios):8.3f}   (median of {len(ratios)} interleaved pairs: "
          f"{', '.join(f'{r:.3f}' for r in ratios)}; target >= 0.95)")
    print(f"training   {fl * t / 1e9:8.2f} GFLOP/s = {100 * fl * t / 1e9 / peak:.1f} % of measured matmul {peak:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
