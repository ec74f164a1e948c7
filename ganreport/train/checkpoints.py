"""Checkpoints of the trainer: the newest good one in a model folder (:func:`latest_checkpoint`), the
generator and discriminator it holds (:func:`load_generator`, :func:`load_discriminator`; safetensors
weights + JSON metadata, never a pickle), seeded samples of a generator (:func:`sample`) and the
training log (:func:`read_log`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .. import io
from ..errors import CheckpointError
from ..models import MODELS, Discriminator, Generator, build



CKPT_GLOB = "step_*.safetensors"


def _strip(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    p = prefix + "."
    return {k[len(p):]: v for k, v in tensors.items() if k.startswith(p)}


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    """Newest complete checkpoint (weights + JSON) in ``out_dir/checkpoints``, or None."""
    ckpts = sorted((Path(out_dir) / "checkpoints").glob(CKPT_GLOB), reverse=True)
    for c in ckpts:
        if io.meta_path(c).is_file():
            return c
    return None


def checkpoint_sha256(out_dir: str | Path) -> str | None:
    """SHA-256 of the newest complete checkpoint of a model folder (None when it has none): names
    the weights a cached result was computed from."""
    ck = latest_checkpoint(out_dir)
    return None if ck is None else io.sha256(ck)


def _read_model_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Checkpoint file, or the latest one of a model folder; checks the architecture is known."""
    path = Path(path)
    if path.is_dir() or not path.exists():
        ck = latest_checkpoint(path)
        if ck is None:
            raise CheckpointError(f"no checkpoint in {path / 'checkpoints'}; train the model first (notebook 01)")
        path = ck
    tensors, meta = io.load_checkpoint(path)
    if meta.get("model") not in MODELS:
        raise CheckpointError(
            f"checkpoint {path} is of unknown architecture {meta.get('model')!r}; known: {', '.join(MODELS.names())}"
        )
    return tensors, meta


def load_generator(path: str | Path, use_ema: bool = True, device: str = "cpu") -> tuple[Generator, dict]:
    """Generator (eval mode) from a checkpoint file or a model folder (its latest checkpoint)."""
    tensors, meta = _read_model_checkpoint(path)
    G, D, _ = build(meta["model"], tuple(meta["img_shape"]), **meta["params"])
    prefix = "G_ema" if use_ema and meta.get("ema") else "G"
    G.load_state_dict(_strip(tensors, prefix))
    on_load = MODELS.get(meta["model"]).on_load
    if on_load is not None:  # e.g. modnet attaches the real test split as the source of its samples
        G = on_load(G, meta)
    return G.to(device).eval().requires_grad_(False), meta


def load_discriminator(path: str | Path, device: str = "cpu") -> tuple[Discriminator, dict]:
    """Discriminator/critic (eval mode) from a checkpoint file or a model folder."""
    tensors, meta = _read_model_checkpoint(path)
    _, D, _ = build(meta["model"], tuple(meta["img_shape"]), **meta["params"])
    D.load_state_dict(_strip(tensors, "D"))
    return D.to(device).eval().requires_grad_(False), meta


@torch.no_grad()
def sample(G: Generator, n: int, seed: int = 0, batch_size: int = 256, device: str | torch.device = "cpu",
           **kw: Any) -> torch.Tensor:
    """``n`` images from ``G`` with latents from ``torch.Generator().manual_seed(seed)``.

    The latents are drawn all at once, so the result does not depend on ``batch_size``.
    Extra keyword arguments go to ``G`` (e.g. ``truncation`` for StyleGAN).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    z = G.sample_z(n, torch.Generator().manual_seed(seed), "cpu")
    out = [G(z[i:i + batch_size].to(device), **kw).cpu() for i in range(0, n, batch_size)]
    return torch.cat(out)


def read_log(model_dir: str | Path) -> list[dict]:
    """Rows of ``train_log.jsonl`` (step, losses, wall time) of a trained model folder."""
    return io.read_jsonl(Path(model_dir) / "train_log.jsonl")
