"""Distributed training and evaluation on the CPU: torchrun, 2 processes, gloo, 127.0.0.1 only.

Two launches of ``tests/_dist_worker.py`` (one succeeding, one with a failing rank); the
single-process references are computed here.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from safetensors.torch import load_file

import _dist_worker as w
from ganreport import distributed, io, train
from ganreport.errors import ConfigError
from ganreport.metrics.features import extract

pytestmark = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                                reason="torch.distributed with gloo is not available")
WORKER = Path(__file__).with_name("_dist_worker.py")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: one thread is fastest, and avoids oversubscribing the cores the workers also use."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(mode: str, out: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
           "--master-addr", "127.0.0.1", "--master-port", str(free_port()), str(WORKER), mode, str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if "GLOO_SOCKET_IFNAME" not in env and Path("/sys/class/net/lo").exists():
        env["GLOO_SOCKET_IFNAME"] = "lo"  # keep gloo on the loopback interface
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=WORKER.parent.parent)


def single(name: str, steps: int, out: Path) -> train.Trainer:
    t = train.Trainer(name, w.tiny_data(), out, w.cfg(steps), **w.CASES[name])
    t.fit(progress=False)
    return t


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    single("wgan_gp", 3, out / "resume_1to2")  # a 1-process checkpoint the 2 processes resume
    proc = torchrun("train", out)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def params_only(state: dict, t: train.Trainer) -> dict:
    names = {f"G.{k}" for k, _ in t.G.named_parameters()} | {f"D.{k}" for k, _ in t.D.named_parameters()}
    return {k: v for k, v in state.items() if k in names}


@pytest.mark.parametrize("name", list(w.CASES))
def test_ddp_two_processes_equal_one_process(ddp_run, tmp_path, name):
    """2 ranks x 4 images == 1 process x 8 images (same global batch), 3 steps (WGAN-GP: with the penalty)."""
    ref_t = single(name, 3, tmp_path / "one")
    ref = w.weights(ref_t)
    init = w.weights(train.Trainer(name, w.tiny_data(), tmp_path / "init", w.cfg(3), **w.CASES[name]))
    r0 = load_file(str(ddp_run / name / "rank0.safetensors"))
    r1 = load_file(str(ddp_run / name / "rank1.safetensors"))
    assert r0.keys() == ref.keys()
    for k in params_only(ref, ref_t):
        assert torch.equal(r0[k], r1[k]), f"replicas diverged at {k}"
    moved = max(float((ref[k] - init[k]).abs().max()) for k in ref)
    assert moved > 1e-4  # training changed the weights, so agreement below is not trivial
    for k in ref:
        torch.testing.assert_close(r0[k], ref[k], rtol=1e-5, atol=1e-6, msg=lambda m: f"{name} {k}: {m}")
    # only rank 0 wrote: one log row per step, one checkpoint
    assert [r["step"] for r in train.read_log(ddp_run / name)] == [1, 2, 3]
    ck = train.latest_checkpoint(ddp_run / name)
    assert ck.name == "step_000003.safetensors"
    tensors, meta = io.load_checkpoint(ck)
    torch.testing.assert_close(tensors["rng_state"], ref_t.rng.get_state(), rtol=0, atol=0)


def test_resume_with_another_world_size(ddp_run, tmp_path):
    ref = w.weights(single("wgan_gp", 6, tmp_path / "one"))
    # 1 process -> 2 processes (done by the worker)
    got = load_file(str(ddp_run / "resume_1to2" / "rank0.safetensors"))
    for k in ref:
        torch.testing.assert_close(got[k], ref[k], rtol=1e-5, atol=1e-6)
    # 2 processes -> 1 process
    shutil.copytree(ddp_run / "wgan_gp", tmp_path / "two")
    t = train.Trainer("wgan_gp", w.tiny_data(), tmp_path / "two", w.cfg(6), **w.CASES["wgan_gp"])
    assert t.resumed_from == 3
    t.fit(progress=False)
    for k, v in w.weights(t).items():
        torch.testing.assert_close(v, ref[k], rtol=1e-5, atol=1e-6)


def test_stylegan_and_cli_under_torchrun(ddp_run):
    s0 = load_file(str(ddp_run / "stylegan" / "rank0.safetensors"))
    s1 = load_file(str(ddp_run / "stylegan" / "rank1.safetensors"))
    diff = [k for k in s0 if not torch.equal(s0[k], s1[k])]
    assert diff == ["G.w_avg"]  # parameters in sync; buffers are rank 0's (DDP broadcasts them each forward)
    assert all(torch.isfinite(v).all() for v in s0.values())
    summary = json.loads((ddp_run / "cli" / "train_summary.json").read_text())
    assert summary["processes"] == 2 and summary["steps"] == 2
    assert [r["step"] for r in train.read_log(ddp_run / "cli")] == [2]  # smoke logs every 5 steps and the last
    assert "not divisible by the 2 processes" in (ddp_run / "odd_batch.txt").read_text()


def test_distributed_fid_kid_equal_single_process(ddp_run):
    g0 = load_file(str(ddp_run / "eval_rank0.safetensors"))
    g1 = load_file(str(ddp_run / "eval_rank1.safetensors"))
    assert all(torch.equal(g0[k], g1[k]) for k in g0)  # every rank holds the gathered result
    ext, G = w.ConvFeatures(), w.eval_generator()
    imgs = train.sample(G, w.N_FAKE, seed=w.EVAL_SEED, batch_size=8)
    fake, real = extract(ext, imgs, 8), extract(ext, w.tiny_data(w.N_REAL, seed=1).images, 8)
    torch.testing.assert_close(g0["fake_images"], imgs, rtol=0, atol=1e-6)
    for k in ext.outputs:
        assert g0[f"fake_{k}"].shape == fake[k].shape and g0[f"real_{k}"].shape == real[k].shape
        torch.testing.assert_close(g0[f"fake_{k}"], fake[k], rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(g0[f"real_{k}"], real[k], rtol=1e-6, atol=1e-6)
    got = json.loads((ddp_run / "eval.json").read_text())
    want = w.metric_values(real["feat"], fake["feat"])
    assert want["fid"] > 0.05 and want["kid"] != 0
    for k in ("fid", "kid"):
        assert got[k] == pytest.approx(want[k], rel=1e-6, abs=1e-9), k


def test_failing_rank_stops_launcher_and_keeps_checkpoint(tmp_path):
    proc = torchrun("fail", tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "injected failure on rank 1 at step 5" in out
    ck = train.latest_checkpoint(tmp_path)
    assert ck is not None and ck.name == "step_000003.safetensors"
    _, meta = io.load_checkpoint(ck)  # verifies the SHA-256
    assert meta["step"] == 3
    assert not list((tmp_path / "checkpoints").glob(".*.tmp"))
    assert not (tmp_path / "checkpoints" / "step_000006.safetensors").exists()


# --------------------------------------------------------------------------- single process (no launcher)
def test_shard_blocks_cover_range_in_rank_order():
    for n in (0, 1, 5, 37, 64):
        for world in (1, 2, 3, 8):
            blocks = [list(range(n))[distributed.shard(n, r, world)] for r in range(world)]
            assert sum(blocks, []) == list(range(n))
            assert max(map(len, blocks)) - min(map(len, blocks)) <= 1
    assert distributed.shard(37, 1, 2) == slice(19, 37)
    with pytest.raises(ConfigError):
        distributed.shard(5, 2, 2)


def test_single_process_fallbacks():
    assert distributed.world_size() == 1 and distributed.rank() == 0 and distributed.is_main()
    x = torch.arange(6.0).reshape(3, 2)
    assert distributed.gather_cat(x) is x
    assert distributed.mean_floats({"a": 1.5}) == {"a": 1.5}
    assert distributed.init_from_env() is False  # no torchrun variables: nothing to initialise


def test_amp_and_channels_last_options(tmp_path):
    with pytest.raises(ConfigError, match="amp must be one of"):
        train.TrainConfig(amp="fp8")
    base = w.weights(single("dcgan", 2, tmp_path / "base"))
    cfg = w.cfg(2)
    cfg.channels_last = True
    cl = train.Trainer("dcgan", w.tiny_data(), tmp_path / "cl", cfg, **w.CASES["dcgan"])
    cl.fit(progress=False)
    assert cl.G.net.fc[0].weight.is_contiguous(memory_format=torch.channels_last)
    for k, v in w.weights(cl).items():  # channels-last changes the memory layout, not the result
        torch.testing.assert_close(v, base[k], rtol=1e-4, atol=1e-5)
    for amp in ("bf16", "fp16"):
        cfg = w.cfg(3)
        cfg.amp = amp
        t = train.Trainer("wgan_gp", w.tiny_data(), tmp_path / amp, cfg, **w.CASES["wgan_gp"])
        res = t.fit(progress=False)
        assert all(torch.isfinite(torch.tensor([r["d_loss"], r["g_loss"], r["gp"]])).all() for r in res.log)
        _, meta = io.load_checkpoint(res.checkpoint)
        assert meta["train_config"]["amp"] == amp
        assert ("scaler_d" in meta) == (amp == "fp16")
        if amp == "fp16":  # the GradScaler state is checkpointed and restored
            r = train.Trainer("wgan_gp", w.tiny_data(), tmp_path / amp, cfg, **w.CASES["wgan_gp"])
            assert r._scaler_d.get_scale() == meta["scaler_d"]["scale"]


def test_stylegan_trains_under_amp(tmp_path):
    cfg = w.cfg(1)
    cfg.amp = "bf16"
    res = train.Trainer("stylegan", w.tiny_data(), tmp_path, cfg, **w.STYLEGAN).fit(progress=False)
    assert torch.isfinite(torch.tensor(res.log[-1]["d_loss"]))
