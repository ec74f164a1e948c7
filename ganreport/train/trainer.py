"""The training loop shared by every architecture.

One ``Trainer`` trains any registered model (``ganreport.models.MODELS``) on an :class:`ImageData`:
Adam for G and D, ``n_critic`` D steps per G step, an optional EMA of G, a fixed noise batch
for progress grids, checkpoints (safetensors + JSON, atomic) every ``ckpt_every`` steps, resume
from the last good checkpoint, a NaN/inf guard, a JSON-lines training log and callbacks every N
steps (metric-vs-step curves). Every random draw comes from one seeded ``torch.Generator`` whose
state is checkpointed, so an interrupted and resumed run equals an uninterrupted one bit for bit
on the CPU. Architectures that modify real images instead of mapping noise (``ModelSpec.task``:
ModNet) supply the generator inputs of each batch and extra generator loss terms through hooks.

Under ``torchrun --nproc_per_node N`` (a process group of N > 1 ranks, see
:mod:`ganreport.distributed`) the same ``Trainer`` trains data-parallel: G and D are wrapped in
``DistributedDataParallel``; every rank draws the **global** batch indices, latents and
gradient-penalty ε from the shared seeded generator (so its state, and the checkpoint, do not
depend on N) and keeps its contiguous ``batch_size / N`` slice; DDP averages the gradients of the
mean-reduced losses, which equals the single-process gradient of the global batch (within float
tolerance). Only rank 0 writes checkpoints, logs and grids; checkpoints hold the unwrapped state
dicts, so a run can resume with any number of processes. The penalties' double backward goes
through the DDP-wrapped critic: ``autograd.grad`` is taken with respect to the input images only,
so DDP's hooks fire once per parameter, in the final ``backward``, with the summed gradient of all
terms (default DDP settings; checked against one process in ``tests/test_distributed.py``).
BatchNorm becomes SyncBatchNorm under DDP on CUDA; on the CPU it keeps per-rank statistics.
Options for GPUs: mixed precision (``amp="bf16"|"fp16"``, the latter with ``GradScaler``; the
penalties stay in float32), ``torch.compile`` (not for a critic with a penalty: no double backward)
and channels-last.

Checkpoint files and sampling are in :mod:`.checkpoints`; :func:`~.run.train_model` trains one
model of a profile.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from .. import distributed, io, losses
from ..data import ImageData, data_hash
from ..errors import CheckpointError, ConfigError, TrainingDiverged
from ..models import MODELS, Generator, build
from .checkpoints import CKPT_GLOB, _strip, latest_checkpoint
from .tasks import TASKS


AMP_DTYPES: dict[str | None, torch.dtype | None] = {None: None, "bf16": torch.bfloat16, "fp16": torch.float16}


Callback = Callable[["Trainer", int], "dict[str, Any] | None"]


@dataclass
class TrainConfig:
    """Loop settings (the architecture's own settings live in the model registry's defaults)."""

    steps: int = 1000
    batch_size: int = 64
    ckpt_every: int = 250
    log_every: int = 25
    grid_every: int = 250
    keep_last: int = 3
    n_grid: int = 64
    seed: int = 0
    device: str = "auto"
    amp: str | None = None  # mixed precision: None, "bf16" or "fp16" (fp16 adds a GradScaler)
    compile: bool = False  # torch.compile G (and D when no double-backward penalty is used)
    channels_last: bool = False  # channels-last memory format for models and images
    sync_bn: bool = True  # under DDP on CUDA: BatchNorm -> SyncBatchNorm (global-batch statistics)

    def __post_init__(self) -> None:
        for k in ("steps", "batch_size", "ckpt_every", "log_every", "grid_every", "keep_last", "n_grid"):
            v = getattr(self, k)
            if not isinstance(v, int) or v < 1:
                raise ConfigError(f"train setting {k} must be a positive integer, got {v!r}")
        if self.amp not in AMP_DTYPES:
            raise ConfigError(f"train setting amp must be one of {list(AMP_DTYPES)}, got {self.amp!r}")


@dataclass
class TrainResult:
    model: str
    out_dir: Path
    steps: int
    resumed_from: int
    seconds: float
    checkpoint: Path | None
    log: list[dict] = field(default_factory=list)

    @property
    def steps_per_s(self) -> float:
        done = self.steps - self.resumed_from
        return done / self.seconds if self.seconds > 0 else float("nan")


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class Trainer:
    """Train architecture ``model`` on ``data``, writing into ``out_dir``.

    Parameters
    ----------
    model : registry name (``dcgan``, ``stylegan``, ``wgan_gp``...).
    data : training images in [-1, 1].
    out_dir : folder for ``checkpoints/``, ``samples/``, ``train_log.jsonl``.
    cfg : loop settings.
    resume : continue from the last good checkpoint in ``out_dir`` when there is one.
    **model_kw : overrides of the registry defaults (``g_width``, ``lr_d``, ``n_critic``...).
    """

    def __init__(self, model: str, data: ImageData, out_dir: str | Path, cfg: TrainConfig | None = None,
                 resume: bool = True, **model_kw: Any) -> None:
        self.cfg = cfg or TrainConfig()
        self.model_name = model
        self.spec = MODELS.get(model)
        self.data = data
        self.out_dir = Path(out_dir)
        self.world, self.rank = distributed.world_size(), distributed.rank()
        self.device = pick_device(self.cfg.device)
        if self.world > 1:
            self._check_distributed()
        self.images = data.images.to(self.device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.cfg.seed)  # weight initialisation is seeded too
            self.G, self.D, self.params = build(model, data.shape, **model_kw)
        self.G.to(self.device)
        self.D.to(self.device)
        p = self.params
        betas = tuple(p.get("betas", (0.5, 0.999)))
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=p.get("lr_g", 2e-4), betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=p.get("lr_d", 2e-4), betas=betas)
        self.ema_beta = float(p.get("ema") or 0.0)
        self.G_ema: Generator | None = copy.deepcopy(self.G).eval().requires_grad_(False) if self.ema_beta > 0 else None
        self.rng = torch.Generator().manual_seed(self.cfg.seed)
        # models that modify real images (ModelSpec.task, e.g. modnet): inputs and extra G loss terms
        self.task = TASKS.get(self.spec.task)(self) if self.spec.task is not None else None
        self._g_stats: dict[str, float] = {}
        self.fixed_z = self._latents(self.cfg.n_grid, torch.Generator().manual_seed(self.cfg.seed + 10_007))
        self.step = 0
        self.callbacks: list[tuple[int, Callback]] = []
        self.data_hash = data_hash(data)
        self.resumed_from = 0
        if resume:
            self._resume()
        self._setup_runtime()

    # ------------------------------------------------------------------ public API
    def add_callback(self, fn: Callback, every: int) -> None:
        """Call ``fn(trainer, step)`` every ``every`` steps; a returned dict goes to ``callbacks.jsonl``."""
        if every < 1:
            raise ConfigError(f"callback interval must be >= 1, got {every}")
        self.callbacks.append((every, fn))

    @property
    def generator(self) -> Generator:
        """The generator to sample from: the EMA copy when enabled."""
        return self.G_ema if self.G_ema is not None else self.G

    def fit(self, steps: int | None = None, progress: bool = True) -> TrainResult:
        """Train until ``steps`` (default ``cfg.steps``) total steps; returns timing and the log."""
        total = steps or self.cfg.steps
        start_step, t0 = self.step, time.perf_counter()
        log_rows: list[dict] = []
        n_critic = int(self.params.get("n_critic", 1))
        bar = tqdm(total=total, initial=self.step, desc=f"train {self.model_name}", disable=not (progress and self.is_main),
                   mininterval=2.0, dynamic_ncols=False, ncols=100)
        last_ckpt = self.latest_checkpoint()
        try:
            while self.step < total:
                d_stats = {}
                for _ in range(n_critic):
                    d_stats = self._d_step()
                g_loss = self._g_step()
                d_stats = {**d_stats, **self._g_stats}
                self.step += 1
                bar.update(1)
                if self.world > 1:  # log and NaN-check the global-batch means, identical on every rank
                    d_stats = distributed.mean_floats({**d_stats, "g_loss": g_loss})
                    g_loss = d_stats.pop("g_loss")
                d_loss = d_stats["d_loss"]
                if not (math.isfinite(d_loss) and math.isfinite(g_loss)):
                    where = f"{last_ckpt} (step {self._ckpt_step(last_ckpt)})" if last_ckpt else "none (no checkpoint yet)"
                    raise TrainingDiverged(
                        f"{self.model_name}: loss became non-finite at step {self.step} "
                        f"(d_loss={d_loss}, g_loss={g_loss}); last good checkpoint: {where}. "
                        "Lower the learning rates or change the seed, then train again to resume from it."
                    )
                if self.step % self.cfg.log_every == 0 or self.step == total:
                    row = {"step": self.step, "g_loss": g_loss, **d_stats,
                           "time_s": round(time.perf_counter() - t0, 4)}
                    log_rows.append(row)
                    if self.is_main:
                        io.append_jsonl(self.out_dir / "train_log.jsonl", [row])
                    bar.set_postfix(d=f"{d_loss:.3f}", g=f"{g_loss:.3f}", refresh=False)
                if (self.step % self.cfg.grid_every == 0 or self.step == total) and self.is_main:
                    self.save_grid()
                for every, fn in self.callbacks:  # on every rank (a callback may use collectives)
                    if self.step % every == 0:
                        out = fn(self, self.step)
                        if out and self.is_main:
                            io.append_jsonl(self.out_dir / "callbacks.jsonl", [{"step": self.step, **out}])
                if self.step % self.cfg.ckpt_every == 0 or self.step == total:
                    last_ckpt = self.save_checkpoint()
        finally:
            bar.close()
        return TrainResult(self.model_name, self.out_dir, self.step, start_step,
                           time.perf_counter() - t0, last_ckpt, log_rows)

    # ------------------------------------------------------------------ steps
    def _batch(self) -> torch.Tensor:
        idx = torch.randint(len(self.images), (self.cfg.batch_size,), generator=self.rng)
        return self.images[self._part(idx).to(self.images.device)]

    def _latents(self, n: int, rng: torch.Generator) -> torch.Tensor:
        """``n`` generator inputs: latents ``G.sample_z``, or the task's packed inputs (modnet)."""
        if self.task is not None:
            return self.task.latents(n, rng, self.device)
        return self.G.sample_z(n, rng, self.device)

    def _z(self) -> torch.Tensor:
        return self._part(self._latents(self.cfg.batch_size, self.rng))

    def _d_step(self) -> dict[str, float]:
        real = self._batch()
        with torch.no_grad(), self._autocast():
            fake = self._gen(self._z())
        with self._autocast():
            d_real, d_fake = self._d_run(real).float(), self._d_run(fake).float()
        extra: dict[str, torch.Tensor] = {}  # penalties, read with the losses in one host sync below
        if self.spec.loss == "wgan_gp":
            loss = losses.wgan_d_loss(d_real, d_fake)
            eps = None
            if self.world > 1:  # the global batch's ε, drawn as the single process draws it; keep this slice
                eps = self._part(torch.rand(self.cfg.batch_size, 1, 1, 1, generator=self.rng))
            with self._no_autocast():  # the penalty's double backward in float32
                gp = losses.gradient_penalty(self._d_pen, real, fake, self.rng, eps=eps)
            extra["gp"] = gp.detach()
            loss = loss + float(self.params.get("gp_lambda", 10.0)) * gp
        else:
            loss = losses.ns_d_loss(d_real, d_fake)
        gamma = float(self.params.get("r1_gamma") or 0.0)
        if gamma > 0 and self.step % 4 == 0:  # lazy R1 (StyleGAN2): every 4 steps, scaled by 4
            with self._no_autocast():
                r1 = losses.r1_penalty(self._d_pen, real)
            extra["r1"] = r1.detach()
            loss = loss + gamma / 2 * r1 * 4
        names = [*extra, "d_loss", "d_real", "d_fake"]
        values = torch.stack([*extra.values(), loss.detach(), d_real.detach().mean(), d_fake.detach().mean()])
        stats = dict(zip(names, values.tolist()))  # one device->host sync per step, not one per number
        if not math.isfinite(stats.get("gp", 0.0)):  # before the update: the weights stay as they were
            raise TrainingDiverged(
                f"{self.model_name}: gradient penalty became {stats['gp']} at step {self.step + 1}; "
                f"last good checkpoint: {self.latest_checkpoint()}. Lower lr_d or gp_lambda and resume."
            )
        self._update(loss, self.opt_d, self._scaler_d)
        return stats

    def _g_step(self) -> float:
        with self._d_no_sync():  # D's gradients of the G loss are discarded: do not all-reduce them
            z = self._z()
            with self._autocast():
                fake = self._gen(z)
                d_fake = self._d_run(fake).float()
            loss = losses.wgan_g_loss(d_fake) if self.spec.loss == "wgan_gp" else losses.ns_g_loss(d_fake)
            if self.task is not None:  # e.g. modnet: frozen-classifier label loss + λ·L1
                extra, g_stats = self.task.g_loss(z, fake)
                loss = loss + extra
            self._update(loss, self.opt_g, self._scaler_g)
        if self.G_ema is not None:
            with torch.no_grad():
                for pe, p in zip(self.G_ema.parameters(), self.G.parameters()):
                    pe.lerp_(p, 1.0 - self.ema_beta)
                for be, b in zip(self.G_ema.buffers(), self.G.buffers()):
                    be.copy_(b)
        if self.task is None:
            return loss.item()
        values = torch.stack([loss.detach(), *g_stats.values()]).tolist()  # one device->host sync
        self._g_stats = dict(zip(g_stats, values[1:]))
        return values[0]

    # ------------------------------------------------------------------ runtime (DDP, AMP, compile)
    @property
    def is_main(self) -> bool:
        """True on the rank that writes files (rank 0; always in a single process)."""
        return self.rank == 0

    def _check_distributed(self) -> None:
        if self.cfg.batch_size % self.world:
            raise ConfigError(f"batch_size {self.cfg.batch_size} is not divisible by the {self.world} processes; "
                              f"use a multiple of {self.world} (it is the global batch, split over the ranks)")
        if self.device.type == "cuda" and self.device.index is None:
            self.device = distributed.rank_device("cuda")
        backend = torch.distributed.get_backend()
        if backend == "nccl" and self.device.type != "cuda":
            raise ConfigError(f"the NCCL process group needs CUDA but the device is {self.device}; "
                              "use device 'auto'/'cuda', or the gloo backend for CPU training")

    def _setup_runtime(self) -> None:
        """Wrap G and D for DDP / torch.compile / channels-last / AMP as ``cfg`` asks (all off: no wrappers)."""
        from torch.nn.parallel import DistributedDataParallel as DDP

        cfg, ddp = self.cfg, self.world > 1
        self._amp_dtype = AMP_DTYPES[cfg.amp]
        fp16 = cfg.amp == "fp16"
        self._scaler_g = torch.amp.GradScaler(self.device.type) if fp16 else None
        self._scaler_d = torch.amp.GradScaler(self.device.type) if fp16 else None
        self._load_scalers()
        if cfg.channels_last:
            self.G.to(memory_format=torch.channels_last)
            self.D.to(memory_format=torch.channels_last)
            self.images = self.images.contiguous(memory_format=torch.channels_last)
        if ddp:
            if not distributed.all_equal(self.step):
                raise CheckpointError(
                    f"the ranks resumed from different checkpoints in {self.out_dir / 'checkpoints'}; "
                    "the output folder must be on a file system shared by all nodes")
            if cfg.sync_bn and self.device.type == "cuda":
                self.G = nn.SyncBatchNorm.convert_sync_batchnorm(self.G)
                self.D = nn.SyncBatchNorm.convert_sync_batchnorm(self.D)
        ids = [self.device.index] if self.device.type == "cuda" else None
        g_mod: nn.Module | None = _TrainForward(self.G) if (ddp or cfg.compile) else None
        if ddp:
            g_mod = DDP(g_mod, device_ids=ids)
            self._D_ddp: nn.Module | None = DDP(self.D, device_ids=ids)
        else:
            self._D_ddp = None
        d_mod = self._D_ddp if ddp else self.D
        self._d_pen = d_mod  # the penalties (double backward) always use the eager module
        uses_penalty = self.spec.loss == "wgan_gp" or float(self.params.get("r1_gamma") or 0.0) > 0
        if cfg.compile:
            g_mod = torch.compile(g_mod)
            if uses_penalty:
                warnings.warn(f"{self.model_name}: D is not compiled (torch.compile does not support the double "
                              "backward of the gradient penalty); G is", stacklevel=3)
            else:
                d_mod = torch.compile(d_mod)
        self._g_mod = g_mod
        self._d_run = d_mod
        self._sub_step, self._sub = -1, 0

    def _part(self, t: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous slice of a global-batch tensor (the tensor itself in one process)."""
        if self.world == 1:
            return t
        b = t.shape[0] // self.world
        return t[self.rank * b:(self.rank + 1) * b]

    def _gen(self, z: torch.Tensor) -> torch.Tensor:
        """``G.train_forward`` on this rank's latents, through DDP / the compiled module when enabled."""
        if self._g_mod is None:
            fake = self.G.train_forward(z, self.rng)
        else:
            fake = self._g_mod(z, self._model_rng())
        if self._amp_dtype is not None:
            fake = fake.float()
        if self.cfg.channels_last:
            fake = fake.contiguous(memory_format=torch.channels_last)
        return fake

    def _model_rng(self) -> torch.Generator:
        """Generator for draws inside G (StyleGAN noise / mixing): the shared one in one process; under
        DDP a per-rank stream seeded by (seed, step, call, rank), so the shared stream stays world-size free."""
        if self.world == 1:
            return self.rng
        if self._sub_step != self.step:
            self._sub_step, self._sub = self.step, 0
        self._sub += 1
        key = (self.cfg.seed * 1_000_003 + self.step) * 1_000_003 + self._sub
        return torch.Generator().manual_seed((key * 65_537 + self.rank) % (2 ** 63 - 1))

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self._amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self._amp_dtype)

    def _no_autocast(self) -> contextlib.AbstractContextManager:
        if self._amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, enabled=False)

    def _d_no_sync(self) -> contextlib.AbstractContextManager:
        return self._D_ddp.no_sync() if self._D_ddp is not None else contextlib.nullcontext()

    @staticmethod
    def _update(loss: torch.Tensor, opt: torch.optim.Optimizer, scaler: "torch.amp.GradScaler | None") -> None:
        opt.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()

    # ------------------------------------------------------------------ grids
    @torch.no_grad()
    def save_grid(self) -> Path:
        from ..viz import save_grid

        g = self.generator
        was_training = g.training
        g.eval()
        imgs = g(self.fixed_z).cpu()
        g.train(was_training)
        path = self.out_dir / "samples" / f"step_{self.step:06d}.png"
        save_grid(imgs, path)
        return path

    # ------------------------------------------------------------------ checkpoints
    def _meta(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.params.items()},
            "img_shape": list(self.data.shape),
            "dataset": self.data.name,
            "data_hash": self.data_hash,
            "seed": self.cfg.seed,
            "step": self.step,
            "train_config": {k: v for k, v in asdict(self.cfg).items() if k not in ("steps", "device")},
            "ema": self.G_ema is not None,
            "torch": torch.__version__,
            **(self.task.meta() if self.task is not None else {}),
        }

    def save_checkpoint(self) -> Path:
        t: dict[str, torch.Tensor] = {}
        for prefix, mod in (("G", self.G), ("D", self.D), ("G_ema", self.G_ema)):
            if mod is not None:
                t.update({f"{prefix}.{k}": v for k, v in mod.state_dict().items()})
        meta = self._meta()
        for prefix, opt in (("opt_g", self.opt_g), ("opt_d", self.opt_d)):
            tens, groups = _flatten_optimizer(opt, prefix)
            t.update(tens)
            meta[prefix] = groups
        t["rng_state"] = self.rng.get_state()
        for prefix, scaler in (("scaler_g", self._scaler_g), ("scaler_d", self._scaler_d)):
            if scaler is not None:
                meta[prefix] = scaler.state_dict()
        path = self.out_dir / "checkpoints" / f"step_{self.step:06d}.safetensors"
        if self.is_main:
            io.save_checkpoint(path, t, meta)
            self._prune()
        distributed.barrier()  # every rank returns once the checkpoint is on disk
        return path

    def _prune(self) -> None:
        ckpts = sorted((self.out_dir / "checkpoints").glob(CKPT_GLOB))
        for old in ckpts[: -self.cfg.keep_last]:
            io.meta_path(old).unlink(missing_ok=True)
            old.unlink(missing_ok=True)

    def latest_checkpoint(self) -> Path | None:
        return latest_checkpoint(self.out_dir)

    @staticmethod
    def _ckpt_step(path: Path | None) -> int:
        return int(path.stem.split("_")[1]) if path else 0

    def _resume(self) -> None:
        ckpts = sorted((self.out_dir / "checkpoints").glob(CKPT_GLOB), reverse=True)
        for path in ckpts:
            try:
                tensors, meta = io.load_checkpoint(path)
            except CheckpointError as e:
                warnings.warn(f"skipping bad checkpoint: {e}", stacklevel=2)
                continue
            self._check_compatible(meta, path)
            self.load_state(tensors, meta)
            self.resumed_from = self.step
            if self.is_main:
                _truncate_log(self.out_dir / "train_log.jsonl", self.step)
                _truncate_log(self.out_dir / "callbacks.jsonl", self.step)
            return
        if ckpts:
            warnings.warn(f"no readable checkpoint in {self.out_dir / 'checkpoints'}; starting from step 0", stacklevel=2)
        if self.is_main:
            _truncate_log(self.out_dir / "train_log.jsonl", 0)
            _truncate_log(self.out_dir / "callbacks.jsonl", 0)

    def _check_compatible(self, meta: dict, path: Path) -> None:
        mine = self._meta()
        for key in ("model", "params", "img_shape", "data_hash", "seed"):
            if json.dumps(meta.get(key), sort_keys=True) != json.dumps(mine[key], sort_keys=True):
                raise CheckpointError(
                    f"checkpoint {path} was trained with a different {key} "
                    f"({meta.get(key)!r} vs now {mine[key]!r}); use another output folder or delete it"
                )

    def load_state(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        for prefix, mod in (("G", self.G), ("D", self.D), ("G_ema", self.G_ema)):
            if mod is not None:
                mod.load_state_dict(_strip(tensors, prefix))
        _load_optimizer(self.opt_g, tensors, meta["opt_g"], "opt_g")
        _load_optimizer(self.opt_d, tensors, meta["opt_d"], "opt_d")
        self.rng.set_state(tensors["rng_state"])
        self.step = int(meta["step"])
        self._scaler_states = {k: meta[k] for k in ("scaler_g", "scaler_d") if k in meta}
        self._load_scalers()

    def _load_scalers(self) -> None:
        for k in ("scaler_g", "scaler_d"):
            scaler = getattr(self, "_" + k, None)
            if scaler is not None and k in getattr(self, "_scaler_states", {}):
                scaler.load_state_dict(self._scaler_states[k])


class _TrainForward(nn.Module):
    """``forward(z, rng) = G.train_forward(z, rng)``: lets DDP and torch.compile see the training pass."""

    def __init__(self, G: Generator) -> None:
        super().__init__()
        self.G = G

    def forward(self, z: torch.Tensor, rng: torch.Generator | None = None) -> torch.Tensor:
        return self.G.train_forward(z, rng)


def _flatten_optimizer(opt: torch.optim.Optimizer, prefix: str) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tens, scalars = {}, {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tens[f"{prefix}.{idx}.{k}"] = v
            else:
                scalars[f"{idx}.{k}"] = v
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
    return tens, {"param_groups": groups, "scalars": scalars}


def _load_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], info: dict, prefix: str) -> None:
    state: dict[int, dict[str, Any]] = {}
    p = prefix + "."
    for k, v in tensors.items():
        if k.startswith(p):
            idx, name = k[len(p):].split(".", 1)
            state.setdefault(int(idx), {})[name] = v
    for k, v in info.get("scalars", {}).items():
        idx, name = k.split(".", 1)
        state.setdefault(int(idx), {})[name] = v
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in info["param_groups"]]
    opt.load_state_dict({"state": state, "param_groups": groups})


def _truncate_log(path: Path, step: int) -> None:
    if not path.is_file():
        return
    rows = [r for r in io.read_jsonl(path) if r.get("step", 0) <= step]
    io.write_text(path, "".join(json.dumps(r) + "\n" for r in rows))
