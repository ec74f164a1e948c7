"""Benchmark the metrics against references measured in the same run.

1. FID and KID on N x N features of dimension 2048 (default N = 10,000) against torchmetrics
   (identity feature module, float64): time ratio torchmetrics / ours (target >= 1.0) and the
   relative difference of the values.
2. DDM (eq. 3.4) and Gaussian MMD² on 60,000 x 10,000 samples: wall time, time per million
   pairs, and the peak resident memory of the process (target < 2 GiB), against a naive
   unchunked implementation on a subset that fits in memory (ratio of time per pair).

Every measurement runs in its own subprocess so that its peak RSS is its own.

    python benchmarks/bench_metrics.py            # full sizes (minutes on 2 CPU cores)
    python benchmarks/bench_metrics.py --small    # sizes / 10, a quick check
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time

import torch

FID_DIM = 2048
DDM_DIM = 10     # classifier logits (what DDM uses in the ModNet thesis)
MMD_DIM = 128    # classifier pre-logits


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def features(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    """Correlated Gaussian features (float32), generated in blocks."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.eye(d) + torch.randn(d, d, generator=torch.Generator().manual_seed(99)) / (2 * math.sqrt(d))
    return torch.cat([torch.randn(min(4096, n - i), d, generator=g) @ mix for i in range(0, n, 4096)]) + shift


class Identity(torch.nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.num_features = d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def task(name: str, n_real: int, n_fake: int, subsets: int) -> dict:
    from ganreport.metrics import compute

    out: dict = {"task": name}
    if name in ("fid_ours", "fid_tm", "kid_ours", "kid_tm"):
        real, fake = features(n_real, FID_DIM, 0), features(n_fake, FID_DIM, 1, 0.1)
        t0 = time.perf_counter()
        if name == "fid_ours":
            out["value"] = compute("fid", real, fake, n_boot=0).value
        elif name == "kid_ours":
            out["value"] = compute("kid", real, fake, seed=0, num_subsets=subsets, subset_size=1000).value
        else:
            import warnings

            warnings.filterwarnings("ignore")
            if name == "fid_tm":
                from torchmetrics.image.fid import FrechetInceptionDistance as M

                m = M(feature=Identity(FID_DIM))
            else:
                from torchmetrics.image.kid import KernelInceptionDistance as M

                m = M(feature=Identity(FID_DIM), subsets=subsets, subset_size=1000)
            for i in range(0, n_real, 1000):  # as a user would feed batches (float64, like ours)
                m.update(real[i:i + 1000].double(), real=True)
            for i in range(0, n_fake, 1000):
                m.update(fake[i:i + 1000].double(), real=False)
            torch.manual_seed(0)
            v = m.compute()
            out["value"] = float(v[0] if isinstance(v, tuple) else v)
        out["seconds"] = time.perf_counter() - t0
    elif name in ("ddm", "mmd", "ddm_naive", "mmd_naive"):
        d = DDM_DIM if name.startswith("ddm") else MMD_DIM
        real, fake = features(n_real, d, 2), features(n_fake, d, 3, 0.1)
        if name.startswith("ddm"):
            real, fake = real * 3, fake * 3  # logit-like spread
        t0 = time.perf_counter()
        if name == "ddm":
            r = compute("ddm", real, fake, n_boot=0)
            out["value"], pairs = r.value, n_real * n_fake
        elif name == "mmd":
            r = compute("mmd", real, fake, n_blocks=0)
            out["value"], pairs, out["bandwidth"] = r.value, r.extra["pairs"], r.extra["bandwidth"]
        elif name == "ddm_naive":  # the whole |T| x |G| matrix at once
            x, y = real.double(), fake.double()
            dist = torch.cdist(x, y) ** 2 / 2
            out["value"] = float(-(torch.logsumexp(-dist, 1) - math.log(len(y))).mean())
            pairs = n_real * n_fake
        else:  # full kernel matrices, bandwidth from the same median heuristic
            from ganreport.metrics.mmd import median_bandwidth

            x, y = real.double(), fake.double()
            bw = median_bandwidth(x, y, 0)
            k = lambda a, b: torch.exp(-torch.cdist(a, b) ** 2 / (2 * bw * bw))  # noqa: E731
            m, n = len(x), len(y)
            kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
            out["value"] = float((kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
                                 + (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1)) - 2 * kxy.mean())
            pairs = m * m + n * n + m * n
        out["seconds"] = time.perf_counter() - t0
        out["us_per_mpair"] = out["seconds"] / (pairs / 1e6)
        out["pairs"] = pairs
    else:
        raise SystemExit(f"unknown task {name}")
    out["peak_rss_mib"] = peak_rss_mib()
    return out


def run(name: str, n_real: int, n_fake: int, subsets: int) -> dict:
    cmd = [sys.executable, __file__, "--task", name, "--n-real", str(n_real), "--n-fake", str(n_fake),
           "--subsets", str(subsets)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    if res.returncode != 0:
        raise SystemExit(f"benchmark task {name} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true", help="sizes / 10 for a quick run")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--subsets", type=int, default=10, help="KID subsets of 1000 (torchmetrics default: 100)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="FID/KID: run each side N times, alternating, and keep the fastest (steadier on a busy CPU)")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: fid,kid,ddm,mmd")
    ap.add_argument("--task", help=argparse.SUPPRESS)
    ap.add_argument("--n-real", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--n-fake", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.threads:
        os.environ["OMP_NUM_THREADS"] = str(a.threads)
        torch.set_num_threads(a.threads)
    if a.task:
        print(json.dumps(task(a.task, a.n_real, a.n_fake, a.subsets)))
        return
    s = 10 if a.small else 1
    n_fid, n_big, n_small = 10_000 // s, 60_000 // s, 10_000 // s
    print(f"threads: {torch.get_num_threads()}   sizes: FID/KID {n_fid} x {n_fid} x {FID_DIM}-d; "
          f"DDM {n_big} x {n_small} x {DDM_DIM}-d; MMD {n_big} x {n_small} x {MMD_DIM}-d")

    skip = set(filter(None, a.skip.split(",")))
    for metric in ("fid", "kid"):
        if metric in skip:
            continue
        runs = [(run(f"{metric}_ours", n_fid, n_fid, a.subsets), run(f"{metric}_tm", n_fid, n_fid, a.subsets))
                for _ in range(max(1, a.repeat))]
        ours = min((r[0] for r in runs), key=lambda r: r["seconds"])
        ref = min((r[1] for r in runs), key=lambda r: r["seconds"])
        diff = abs(ours["value"] - ref["value"]) / abs(ref["value"])
        print(f"{metric.upper():4s} ours        {ours['seconds']:8.2f} s   value {ours['value']:.6g}   "
              f"peak RSS {ours['peak_rss_mib']:.0f} MiB")
        print(f"{metric.upper():4s} torchmetrics {ref['seconds']:7.2f} s   value {ref['value']:.6g}   "
              f"peak RSS {ref['peak_rss_mib']:.0f} MiB")
        print(f"{metric.upper():4s} ratio       {ref['seconds'] / ours['seconds']:8.2f}x  (target >= 1.0)   "
              f"relative difference {diff:.2e}")

    n_naive = max(2, n_big // 20)  # what the full-matrix reference can hold
    for metric in ("ddm", "mmd"):
        if metric in skip:
            continue
        ours = run(metric, n_big, n_small, a.subsets)
        naive = run(f"{metric}_naive", n_naive, n_small, a.subsets)
        flag = "ok" if ours["peak_rss_mib"] < 2048 else "OVER"
        print(f"{metric.upper():4s} chunked {n_big} x {n_small}: {ours['seconds']:8.2f} s   "
              f"{ours['us_per_mpair'] * 1e3:.2f} ms per million pairs   peak RSS {ours['peak_rss_mib']:.0f} MiB "
              f"(target < 2048: {flag})")
        print(f"{metric.upper():4s} naive   {n_naive} x {n_small}: {naive['seconds']:8.2f} s   "
              f"{naive['us_per_mpair'] * 1e3:.2f} ms per million pairs   peak RSS {naive['peak_rss_mib']:.0f} MiB")
        print(f"{metric.upper():4s} ratio (naive / chunked time per pair) {naive['us_per_mpair'] / ours['us_per_mpair']:.2f}x")


if __name__ == "__main__":
    main()
