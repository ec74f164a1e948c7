"""Scaling of the Trainer over processes (torch.distributed), and GPU throughput with/without AMP.

CPU (always): training steps/s of the same global batch at 1 process and at 2 processes (DDP,
gloo, 1 thread each) — the scaling ratio 2-proc / 1-proc (ideal 2.0) — and, for reference, 1
process using both threads. On CUDA (when present): images/s of each architecture with and
without mixed precision (bf16, fp16), channels-last, and the share of the GPU's peak FLOP/s that
training reaches (FLOPs per step counted with torch's flop formulas; peak measured in this run with
a large matmul of the same dtype); with several GPUs, also steps/s at 1 and N processes (NCCL).

Run: .venv/bin/python benchmarks/bench_scale.py [--model dcgan] [--steps 60] [--profile quick]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from ganreport import config, data, train


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, backend: str, threads: int, job: dict, out: str) -> None:
    torch.set_num_threads(threads)
    if world > 1:
        os.environ.update(LOCAL_RANK=str(rank), RANK=str(rank), WORLD_SIZE=str(world))
        if backend == "nccl":
            torch.cuda.set_device(rank)
        dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        rate = trainer_rate(job, warmup=job["warmup"], steps=job["steps"])
        if rank == 0:
            Path(out).write_text(json.dumps(rate))
    finally:
        if world > 1:
            dist.destroy_process_group()


def trainer_rate(job: dict, warmup: int, steps: int) -> dict:
    """Steps/s of ``Trainer.fit`` between step ``warmup`` and ``warmup + steps`` (timed by a callback)."""
    d = data.load(job["dataset"], "train")
    stamps: dict[int, float] = {}

    def stamp(t: train.Trainer, step: int) -> None:
        if torch.cuda.is_available() and t.device.type == "cuda":
            torch.cuda.synchronize(t.device)
        stamps[step] = time.perf_counter()

    with tempfile.TemporaryDirectory() as tmp:
        big = 10 ** 9
        cfg = train.TrainConfig(steps=warmup + steps, batch_size=job["batch"], ckpt_every=big, log_every=big,
                                grid_every=big, seed=0, device=job.get("device", "auto"), amp=job.get("amp"),
                                channels_last=job.get("channels_last", False), compile=job.get("compile", False))
        t = train.Trainer(job["model"], d, tmp, cfg, **job["kw"])
        t.add_callback(stamp, every=1)
        t.fit(progress=False)
    sec = stamps[warmup + steps] - stamps[warmup]
    return {"steps_per_s": steps / sec, "images_per_s": steps * job["batch"] / sec}


def launch(world: int, job: dict, threads: int = 1, backend: str = "gloo") -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "rate.json")
        mp.spawn(_worker, args=(world, _free_port(), backend, threads, job, out), nprocs=world, join=True)
        return json.loads(Path(out).read_text())


class FlopCount(TorchDispatchMode):
    """Total FLOPs of the aten ops run inside, by ``torch.utils.flop_counter``'s formulas.

    (``FlopCounterMode`` itself also tracks modules, which fails on StyleGAN's forward under
    ``no_grad``; the totals are the same.)
    """

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out


def flops_per_step(job: dict) -> float:
    """FLOPs of one training step (n_critic D steps + 1 G step), counted in eager mode."""
    d = data.load(job["dataset"], "train")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = train.TrainConfig(steps=1, batch_size=job["batch"], seed=0, device=job.get("device", "auto"))
        t = train.Trainer(job["model"], d, tmp, cfg, **job["kw"])
        n_critic = int(t.params.get("n_critic", 1))
        t.step = 1  # skip the lazy R1 step (every 4th), as on 3 of 4 steps
        with FlopCount() as fc:
            for _ in range(n_critic):
                t._d_step()
            t._g_step()
    return float(fc.total)


def _sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def matmul_peak(dtype: torch.dtype, device: str, n: int = 8192, reps: int = 20) -> float:
    """Measured FLOP/s of an ``n x n`` matmul in ``dtype`` (the reference 'peak' of this run)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(device)
    return 2 * n ** 3 * reps / (time.perf_counter() - t0)


def cpu_scaling(a: argparse.Namespace, prof: dict) -> None:
    job = dict(model=a.model, dataset=prof["dataset"], batch=int(prof["batch_size"]), device="cpu",
               kw=prof["model_kwargs"][a.model], warmup=a.warmup, steps=a.steps)
    print(f"== CPU: {a.model} ({a.profile} profile widths), global batch {job['batch']}, {a.steps} timed steps")
    one, two, one2 = [], [], []
    for _ in range(a.repeats):  # interleaved, to share any drift in the machine's speed
        one.append(launch(1, job, threads=1)["steps_per_s"])
        two.append(launch(2, job, threads=1)["steps_per_s"])
        one2.append(launch(1, job, threads=2)["steps_per_s"])
    r1, r2, r12 = max(one), max(two), max(one2)
    print(f"1 process,  1 thread     {r1:8.2f} steps/s  ({r1 * job['batch']:7.0f} img/s)")
    print(f"2 processes, 1 thread ea {r2:8.2f} steps/s  ({r2 * job['batch']:7.0f} img/s)")
    print(f"1 process,  2 threads    {r12:8.2f} steps/s  ({r12 * job['batch']:7.0f} img/s)")
    print(f"scaling ratio 2 proc / 1 proc     {r2 / r1:6.3f}  (ideal 2.0; efficiency {50 * r2 / r1:.0f} %)")
    print(f"2 processes / 1 process 2 threads {r2 / r12:6.3f}  (same 2 cores used either way)")


def gpu_throughput(a: argparse.Namespace, prof: dict, device: str = "cuda", n_peak: int = 8192) -> None:
    name = torch.cuda.get_device_name(0) if device == "cuda" else device
    batch = int(prof["batch_size"])
    peaks = {amp: matmul_peak(dt, device, n_peak) for amp, dt in
             ((None, torch.float32), ("bf16", torch.bfloat16), ("fp16", torch.float16))}
    print(f"\n== {device.upper()}: {name}; measured matmul peak: " +
          ", ".join(f"{k or 'fp32'} {v / 1e12:.1f} TFLOP/s" for k, v in peaks.items()))
    print(f"{'model':10s} {'amp':5s} {'img/s':>10s} {'vs fp32':>8s} {'TFLOP/s':>8s} {'% of peak':>9s}")
    for model in a.gpu_models:
        kw = prof["model_kwargs"][model]
        base = dict(model=model, dataset=prof["dataset"], batch=batch, kw=kw, device=device, channels_last=True)
        fl = flops_per_step(base)
        ref = None
        for amp in (None, "bf16", "fp16"):
            try:
                r = trainer_rate({**base, "amp": amp, "compile": a.compile}, warmup=a.warmup, steps=a.steps)
            except Exception as e:  # one failing configuration must not hide the others
                print(f"{model:10s} {amp or 'fp32':5s} failed: {type(e).__name__}: {str(e).splitlines()[0][:120]}")
                continue
            ref = ref or r["images_per_s"]
            achieved = fl * r["steps_per_s"]
            print(f"{model:10s} {amp or 'fp32':5s} {r['images_per_s']:10.0f} {r['images_per_s'] / ref:8.2f} "
                  f"{achieved / 1e12:8.2f} {100 * achieved / peaks[amp]:8.1f} %")
    n = torch.cuda.device_count() if device == "cuda" else 0
    if n > 1:
        job = dict(model=a.model, dataset=prof["dataset"], batch=batch * n, kw=prof["model_kwargs"][a.model],
                   device="cuda", warmup=a.warmup, steps=a.steps, amp="bf16", channels_last=True)
        r1 = launch(1, job, backend="nccl")["steps_per_s"]
        rn = launch(n, job, backend="nccl")["steps_per_s"]
        print(f"\n{a.model}, global batch {job['batch']}: 1 GPU {r1:.2f} steps/s, {n} GPUs {rn:.2f} steps/s, "
              f"ratio {rn / r1:.2f} (ideal {n})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="dcgan")
    ap.add_argument("--profile", default="quick", help="widths and batch size from this profile")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--gpu-models", nargs="+", default=["dcgan", "stylegan", "wgan_gp"])
    ap.add_argument("--gpu-profile", default="full")
    ap.add_argument("--compile", action="store_true", help="also torch.compile on the GPU")
    a = ap.parse_args()
    cpu_scaling(a, config.profile_params(a.profile))
    if torch.cuda.is_available():
        gpu_throughput(a, config.profile_params(a.gpu_profile))
    else:
        print("\n(no CUDA device: GPU throughput with/without AMP skipped)")


if __name__ == "__main__":
    main()
