"""Worker of tests/test_distributed.py, launched by ``torchrun --nproc_per_node 2`` (gloo, CPU).

``python -m torch.distributed.run ... tests/_dist_worker.py MODE OUT_DIR``:

- ``train``: trains each of ``CASES`` for 3 steps with DDP (every rank saves its weights to
  ``OUT/<case>/rank<r>.safetensors``), resumes the 1-process checkpoint in ``OUT/resume_1to2`` to
  step 6, tries an odd batch size, trains StyleGAN 2 steps, runs the sharded evaluation
  (``OUT/eval_rank<r>.safetensors`` and ``OUT/eval.json``) and the CLI (``OUT/cli``).
- ``fail``: trains 6 steps with a checkpoint every 3 and makes rank 1 raise at step 5.

The test file imports the helpers below to build the single-process references.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from ganreport import distributed, train
from ganreport.data import ImageData
from ganreport.errors import ConfigError
from ganreport.metrics import sharded
from ganreport.metrics.features import Extractor

# BN-free variants: on the CPU, DDP cannot use SyncBatchNorm, and per-rank batch statistics differ
# from the global batch's (see the README); GroupNorm ("layer") in the WGAN-GP critic is per sample.
CASES = {
    "wgan_gp": dict(g_width=4, d_width=4, z_dim=8, batchnorm=False, n_critic=2),  # gradient penalty
    "dcgan": dict(g_width=4, d_width=4, z_dim=8, batchnorm=False, ema=0.9),
}
STYLEGAN = dict(g_width=4, d_width=4, z_dim=8, w_dim=8, r1_gamma=1.0)  # runs under DDP (R1 at step 0)
N_FAKE, N_REAL, EVAL_SEED = 37, 30, 5  # odd sizes: uneven shards


def tiny_data(n: int = 64, seed: int = 0) -> ImageData:
    g = torch.Generator().manual_seed(seed)
    return ImageData("toy", "train", torch.rand(n, 1, 28, 28, generator=g) * 2 - 1, torch.zeros(n, dtype=torch.long))


def cfg(steps: int = 3) -> train.TrainConfig:
    return train.TrainConfig(steps=steps, batch_size=8, ckpt_every=3, log_every=1, grid_every=3, n_grid=4, seed=0,
                             device="cpu")


def weights(t: train.Trainer) -> dict[str, torch.Tensor]:
    return ({f"G.{k}": v.detach().clone().contiguous() for k, v in t.G.state_dict().items()}
            | {f"D.{k}": v.detach().clone().contiguous() for k, v in t.D.state_dict().items()})


class ConvFeatures(Extractor):
    """A small random (seeded) conv net as a feature extractor: 16-d features and 4 'logits'."""

    name = "conv"
    outputs = ("feat", "logits")
    main = "feat"
    logits = "logits"
    key = "test-conv"

    def __init__(self) -> None:
        self.net = nn.Sequential(nn.Conv2d(1, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU(),
                                 nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(16, 4)
        g = torch.Generator().manual_seed(123)
        with torch.no_grad():
            for p in list(self.net.parameters()) + list(self.head.parameters()):
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.net(images)
        return {"feat": f, "logits": self.head(f)}


def eval_generator() -> nn.Module:
    from ganreport import models

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        G, _, _ = models.build("dcgan", (1, 28, 28), g_width=4, d_width=4, z_dim=8)
    return G.eval()


def metric_values(real: torch.Tensor, fake: torch.Tensor) -> dict[str, float]:
    from ganreport.metrics import compute

    return {"fid": compute("fid", real, fake, n_boot=3).value,
            "kid": compute("kid", real, fake, num_subsets=10, subset_size=20).value}


def run_train(out: Path) -> None:
    r = distributed.rank()
    d = tiny_data()
    for name, kw in CASES.items():
        t = train.Trainer(name, d, out / name, cfg(3), **kw)
        t.fit(progress=False)
        save_file(weights(t), str(out / name / f"rank{r}.safetensors"))
    # resume with another world size: OUT/resume_1to2 holds a 1-process checkpoint at step 3
    t = train.Trainer("wgan_gp", d, out / "resume_1to2", cfg(6), **CASES["wgan_gp"])
    assert t.resumed_from == 3, t.resumed_from
    t.fit(progress=False)
    save_file(weights(t), str(out / "resume_1to2" / f"rank{r}.safetensors"))
    try:  # the global batch must split evenly over the ranks
        train.Trainer("dcgan", d, out / "odd", train.TrainConfig(steps=1, batch_size=7, device="cpu"), **CASES["dcgan"])
        odd = "no error"
    except ConfigError as e:
        odd = str(e)
    if distributed.is_main():
        (out / "odd_batch.txt").write_text(odd)
    t = train.Trainer("stylegan", d, out / "stylegan", cfg(2), **STYLEGAN)
    t.fit(progress=False)
    save_file(weights(t), str(out / "stylegan" / f"rank{r}.safetensors"))
    # sharded evaluation, gathered in rank order on every rank
    ext, G = ConvFeatures(), eval_generator()
    fake = sharded.sample_features(G, ext, N_FAKE, seed=EVAL_SEED, batch_size=8, return_images=True)
    real = sharded.extract(ext, tiny_data(N_REAL, seed=1).images, batch_size=8)
    save_file({"fake_" + k: v.contiguous() for k, v in fake.items()} | {"real_" + k: v for k, v in real.items()},
              str(out / f"eval_rank{r}.safetensors"))
    values = metric_values(real["feat"], fake["feat"])
    if distributed.is_main():
        (out / "eval.json").write_text(json.dumps(values))
    # the CLI under torchrun (the profile's dataset, two steps)
    from ganreport.__main__ import main

    rc = main(["train", "--model", "dcgan", "--dataset", "digits", "--profile", "smoke", "--dry-run", "--out", str(out / "cli"),
               "--set", "g_width=4", "--set", "d_width=4"])
    if rc != 0:
        raise SystemExit(rc)


def run_fail(out: Path) -> None:
    def fail_on_rank1(trainer: train.Trainer, step: int) -> None:
        if step == 5 and distributed.rank() == 1:
            raise RuntimeError("injected failure on rank 1 at step 5")

    t = train.Trainer("dcgan", tiny_data(), out, cfg(6), **CASES["dcgan"])
    t.add_callback(fail_on_rank1, every=1)
    t.fit(progress=False)


def main() -> None:
    from torch.distributed.elastic.multiprocessing.errors import record

    torch.set_num_threads(1)
    mode, out = sys.argv[1], Path(sys.argv[2])

    @record
    def run() -> None:
        with distributed.process_group() as created:
            assert created and distributed.world_size() == 2, "launch with torchrun --nproc_per_node 2"
            (run_train if mode == "train" else run_fail)(out)

    run()


if __name__ == "__main__":
    main()
