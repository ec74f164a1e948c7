""":func:`train_model`: one registered model on one dataset with a profile's settings (steps, batch
size, model keyword arguments, GPU options), resuming from the model folder's last good checkpoint.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import distributed, io
from ..errors import ConfigError
from ..models import MODELS
from ..settings import Profile
from .trainer import Callback, TrainConfig, Trainer, TrainResult, pick_device


def train_model(model: str, dataset: str, prof: Profile, out_dir: str | Path | None = None,
                seed: int = 0, steps: int | None = None, batch_size: int | None = None,
                ckpt_every: int | None = None, log_every: int | None = None, grid_every: int | None = None,
                data_seed: int | None = None, progress: bool = True, data_kw: dict | None = None,
                amp: str | None = None, compile: bool | None = None, channels_last: bool | None = None,
                callbacks: Sequence[tuple[Callback, int]] = (), **model_kw: Any) -> TrainResult:
    """Train ``model`` on ``dataset``; settings left as None come from the resolved profile ``prof``
    (:func:`ganreport.config.resolve`, called where the notebook or the CLI starts).

    The CLI and notebook 01 both call this. The output folder defaults to
    ``runs/<prof.profile>/<dataset>/<model>/``; an existing checkpoint there is resumed.
    ``amp``/``compile``/``channels_last`` left as None come from the profile's ``gpu`` block,
    which applies only when training runs on CUDA. Launched by ``torchrun`` with several
    processes, this creates the process group (NCCL on CUDA, gloo on CPU) and trains with DDP;
    only rank 0 writes files. ``callbacks`` are ``(fn, every)`` pairs for :meth:`Trainer.add_callback`
    (their outputs go to ``callbacks.jsonl`` in the model folder).
    """
    with distributed.process_group():
        return _train_model(model, dataset, prof, out_dir, seed, steps, batch_size, ckpt_every, log_every,
                            grid_every, data_seed, progress, data_kw, amp, compile, channels_last, model_kw,
                            callbacks)


def _train_model(model: str, dataset: str, prof: Profile, out_dir: str | Path | None, seed: int, steps: int | None,
                 batch_size: int | None, ckpt_every: int | None, log_every: int | None, grid_every: int | None,
                 data_seed: int | None, progress: bool, data_kw: dict | None, amp: str | None,
                 compile: bool | None, channels_last: bool | None, model_kw: dict[str, Any],
                 callbacks: Sequence[tuple[Callback, int]] = ()) -> TrainResult:
    from .. import config, data as data_mod

    on_gpu = pick_device(prof.device).type == "cuda"
    gpu = dataclasses.asdict(prof.gpu) if on_gpu else {}
    from ..models import profile_kwargs, resolve_kwargs

    kw = profile_kwargs(model, prof.model_kwargs)  # a variant (dcgan_weak) inherits its base's entry
    base = MODELS.get(model).base
    prof_steps = prof.steps
    kw.update({k: v for k, v in model_kw.items() if v is not None})
    resolve_kwargs(model, **kw)  # every model parameter checked before anything is loaded or built
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed = {seed!r}: must be an integer >= 0")

    def pick(value, key, default):
        return value if value is not None else getattr(prof, key)

    cfg = TrainConfig(
        steps=int(steps if steps is not None else prof_steps.get(model, prof_steps.get(base, 100))),
        batch_size=int(pick(batch_size, "batch_size", 64)),
        ckpt_every=int(pick(ckpt_every, "ckpt_every", 250)),
        log_every=int(pick(log_every, "log_every", 25)),
        grid_every=int(pick(grid_every, "grid_every", 250)),
        seed=int(seed),
        device=prof.device,
        amp=amp if amp is not None else gpu.get("amp"),
        compile=bool(compile if compile is not None else gpu.get("compile", False)),
        channels_last=bool(channels_last if channels_last is not None else gpu.get("channels_last", False)),
    )
    train_data = data_mod.load(dataset, "train", seed=int(pick(data_seed, "data_seed", 0)), **(data_kw or {}))
    if cfg.batch_size > len(train_data):
        raise ConfigError(f"batch_size {cfg.batch_size} exceeds the {len(train_data)} training images of "
                          f"{dataset!r}: use at most {len(train_data)}")
    out = Path(out_dir) if out_dir else config.model_dir(prof.profile, model, dataset)
    trainer = Trainer(model, train_data, out, cfg, **kw)
    for fn, every in callbacks:
        trainer.add_callback(fn, every)
    result = trainer.fit(progress=progress)
    if trainer.is_main:
        io.write_json(out / "train_summary.json", {
            "model": model, "dataset": dataset, "steps": result.steps, "resumed_from": result.resumed_from,
            "seconds": round(result.seconds, 3), "steps_per_s": round(result.steps_per_s, 3),
            "checkpoint": str(result.checkpoint), "device": str(trainer.device), "processes": trainer.world,
            "amp": cfg.amp, "compile": cfg.compile, "channels_last": cfg.channels_last,
        })
    return result
