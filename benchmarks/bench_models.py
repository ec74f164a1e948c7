"""Steps/s of each architecture at the quick profile's sizes, with parameter counts and FLOPs.

Every model trains ``--steps`` generator steps through the same ``Trainer`` on MNIST (the
quick profile's ``model_kwargs`` and batch size); the rounds are interleaved so that drifts of a
shared machine's speed hit every model alike, and the best round is kept. The table gives the
wall-clock rate, the rate per CPU-second of this process (``time.process_time``: on a machine
shared with other jobs it is what the rate would be with the cores to ourselves, for
``--threads 1``), the ratio to DCGAN (the reference, measured in the same run) and the
projected time of the quick profile's step count for each model.
Run: .venv/bin/python benchmarks/bench_models.py [--steps 200] [--rounds 2] [--threads N] [--models ...]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from ganreport import config, data, train
from ganreport.models.flops import cost_table


def rate(name: str, d: data.ImageData, kw: dict, steps: int, batch: int) -> tuple[float, float]:
    """(steps per wall second, steps per CPU second of this process)."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = train.TrainConfig(steps=steps, batch_size=batch, ckpt_every=steps, log_every=25, grid_every=steps,
                                seed=0, device="cpu")
        trainer = train.Trainer(name, d, tmp, cfg, **kw)
        c0 = time.process_time()
        res = trainer.fit(progress=False)
        return res.steps_per_s, steps / (time.process_time() - c0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--models", nargs="+", default=["dcgan", "stylegan", "wgan_gp"])
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    prof = config.profile_params("quick")
    batch, mkw = prof["batch_size"], prof.get("model_kwargs", {})
    d = data.load("mnist", "train")
    names = list(dict.fromkeys(["dcgan", *a.models]))  # dcgan first: the reference
    rate("dcgan", d, mkw.get("dcgan", {}), 10, batch)  # warm-up (imports, allocator)
    wall = {n: 0.0 for n in names}
    cpu = {n: 0.0 for n in names}
    for _ in range(a.rounds):
        for n in names:
            w, c = rate(n, d, mkw.get(n) or {}, a.steps, batch)
            wall[n], cpu[n] = max(wall[n], w), max(cpu[n], c)
    costs = cost_table(names, d.shape, mkw).set_index(["model", "net"])
    qsteps = {n: int((prof.get("steps") or {}).get(n, 0)) for n in names}
    print(f"quick profile, batch {batch}, {a.steps} steps x {a.rounds} rounds (best), MNIST {d.shape}, "
          f"{torch.get_num_threads()} thread(s)")
    print(f"{'model':10s} {'G params':>10s} {'D params':>10s} {'G MFLOP':>8s} {'D MFLOP':>8s} {'n_crit':>6s} "
          f"{'steps/s':>8s} {'steps/cpu-s':>11s} {'vs dcgan':>8s} {'quick steps':>11s} {'min (wall)':>10s} "
          f"{'min (cpu)':>9s}")
    for n in names:
        g, dd = costs.loc[(n, "G")], costs.loc[(n, "D")]
        print(f"{n:10s} {int(g.params):10,d} {int(dd.params):10,d} {g.mflops_per_sample:8.2f} {dd.mflops_per_sample:8.2f} "
              f"{int(g.n_critic):6d} {wall[n]:8.2f} {cpu[n]:11.2f} {wall[n] / wall['dcgan']:8.3f} {qsteps[n]:11d} "
              f"{qsteps[n] / wall[n] / 60:10.2f} {qsteps[n] / cpu[n] / 60:9.2f}")
    tw = sum(qsteps[n] / wall[n] for n in names) / 60
    tc = sum(qsteps[n] / cpu[n] for n in names) / 60
    print(f"projected quick training, all models: {tw:.2f} min wall, {tc:.2f} CPU-min (target <= 10 min)")


if __name__ == "__main__":
    main()
