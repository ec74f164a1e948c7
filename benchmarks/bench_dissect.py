"""Benchmark: GAN Dissection of every layer of the quick-size DCGAN (g_width 32) trained on `shapes`.

Prints time and peak memory (RSS) of full dissection on 2,000 samples (target <= 2 min and
< 1 GiB on the 2-core CPU), the peak memory at 1,000 and at 10,000 samples (it should stay about
constant: the quantile sketch and the IoU accumulators have a fixed size), and the cheaper route
(last hidden layer only + gradient x activation attribution) against full dissection.

Every measurement runs in a fresh child process, so its peak RSS is its own; the reference is
the RSS of a child that only imported the package and loaded the models ("baseline"), and the
time reference is generating + segmenting the same samples without any dissection ("floor").

    python benchmarks/bench_dissect.py            # uses/trains the generator, ~5 min on 2 cores
    python benchmarks/bench_dissect.py --no-10k   # skip the 10,000-sample run
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

GIB = 2**30


def rss_bytes(field: str = "VmHWM") -> int:
    """Peak (``VmHWM``) or current (``VmRSS``) resident memory of this process. ``ru_maxrss`` is not
    used: Linux keeps it across ``execve``, so a child would report its parent's peak."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # macOS: bytes; a fallback


def generator_dir() -> Path:
    """The quick-profile DCGAN on shapes from notebook 01 if there is one, else a benchmark copy."""
    from ganreport import config, train

    nb = config.RUNS_DIR / "quick" / "shapes" / "dcgan"
    if train.latest_checkpoint(nb) is not None:
        return nb
    return config.CACHE_DIR / "dissect" / "dcgan_shapes_quick"


def child(mode: str, n: int, gdir: str) -> None:
    import torch

    from ganreport import train
    from ganreport.interpret import dissect as D
    from ganreport.models.segmenter import load_segmenter

    seg = load_segmenter(train_if_missing=False)
    G, _ = train.load_generator(gdir)
    base = rss_bytes("VmRSS")
    t0 = time.perf_counter()
    out: dict = {}
    if mode == "full":
        d = D.dissect(G, seg, None, n, progress=False)
        out["state_bytes"] = sum(x.state_bytes for x in d.values())
        out["interpretable"] = {k: int(v.interpretable().sum()) for k, v in d.items()}
        out["units"] = {k: v.n_units for k, v in d.items()}
    elif mode == "floor":
        with torch.no_grad():
            for i in range(0, n, 100):
                seg(G(D.latents(G, 0, i, min(i + 100, n)))).argmax(1)
    elif mode == "cheap":
        cr = D.cheap_route(G, seg, n, targets=("share",), n_attr=200)["share"]
        out["state_bytes"] = cr.state_bytes
        out["last_layer"], out["attributed"] = cr.last.layer, list(cr.attribution)
    out.update(seconds=time.perf_counter() - t0, peak_rss=rss_bytes("VmHWM"), baseline_rss=base,
               threads=torch.get_num_threads())
    print("RESULT " + json.dumps(out))


def run_child(mode: str, n: int, gdir: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, str(n), str(gdir)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"child {mode} n={n} failed:\n{res.stderr[-3000:]}")
    line = [x for x in res.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", nargs=3, metavar=("MODE", "N", "GDIR"), help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=2000, help="samples of the main measurement (default 2000)")
    ap.add_argument("--train-steps", type=int, default=1000, help="steps if a generator has to be trained")
    ap.add_argument("--no-10k", action="store_true", help="skip the 10,000-sample memory run")
    args = ap.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.child[2])
        return

    from ganreport import config, train
    from ganreport.models.segmenter import load_segmenter

    import os

    gdir = generator_dir()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (other processes slow every timing below)")
    if train.latest_checkpoint(gdir) is None:
        print(f"training a quick-size DCGAN on shapes into {gdir} ({args.train_steps} steps) ...", flush=True)
        train.train_model("dcgan", "shapes", config.resolve("quick"), steps=args.train_steps, out_dir=gdir, progress=False,
                          g_width=32)
    seg = load_segmenter(progress=False)
    print(f"generator   {gdir}")
    print(f"segmenter   pixel accuracy {seg.meta['pixel_accuracy']:.4f}, mean IoU {seg.meta['mean_iou']:.4f} "
          f"(held-out shapes), trained in {seg.meta['train_seconds']:.0f} s")

    floor = run_child("floor", args.n, gdir)
    full = run_child("full", args.n, gdir)
    m1k = run_child("full", 1000, gdir)
    m10k = None if args.no_10k else run_child("full", 10_000, gdir)
    cheap = run_child("cheap", args.n, gdir)

    def mb(x: float) -> str:
        return f"{x / 2**20:7.1f} MiB"

    print()
    print(f"layers: {full['units']}  interpretable (IoU > 0.05): {full['interpretable']}")
    print(f"full dissection, {args.n} samples   {full['seconds']:7.1f} s   peak RSS {mb(full['peak_rss'])}")
    print(f"  floor: generate + segment only     {floor['seconds']:7.1f} s   (ratio {full['seconds'] / floor['seconds']:.2f}x)")
    print(f"  baseline RSS (imports + models)   {mb(full['baseline_rss'])}   increase {mb(full['peak_rss'] - full['baseline_rss'])}"
          f"   ({full['threads']} torch threads)")
    print(f"  streaming state (sketch + accumulators) {mb(full['state_bytes'])}")
    ok_t, ok_m = full["seconds"] <= 120, full["peak_rss"] < GIB
    print(f"  target <= 120 s: {'met' if ok_t else 'MISSED'};  target < 1 GiB: {'met' if ok_m else 'MISSED'}")
    print(f"memory vs samples:  1,000 -> peak {mb(m1k['peak_rss'])} ({m1k['seconds']:.1f} s)", end="")
    if m10k:
        print(f";  10,000 -> peak {mb(m10k['peak_rss'])} ({m10k['seconds']:.1f} s);  "
              f"ratio {m10k['peak_rss'] / m1k['peak_rss']:.3f}  (state {mb(m1k['state_bytes'])} vs {mb(m10k['state_bytes'])})")
    else:
        print()
    print(f"cheaper route ({args.n} samples last layer + 200 attribution)  {cheap['seconds']:7.1f} s   "
          f"peak RSS {mb(cheap['peak_rss'])}")
    print(f"  time ratio cheap/full {cheap['seconds'] / full['seconds']:.2f};  state ratio "
          f"{cheap['state_bytes'] / full['state_bytes']:.3f};  peak-RSS increase ratio "
          f"{(cheap['peak_rss'] - cheap['baseline_rss']) / max(1, full['peak_rss'] - full['baseline_rss']):.2f}")


if __name__ == "__main__":
    main()
