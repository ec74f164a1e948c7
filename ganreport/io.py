"""Atomic writes and checkpoints (safetensors weights + JSON metadata; never pickles)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import CheckpointError


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` then rename ``tmp`` onto ``path``: readers see the old or the new file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def settings_key(obj: Any, length: int = 12) -> str:
    """Short SHA-256 of ``obj`` as sorted JSON: names a cached result by the settings that made it."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:length]


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=_json_default)


def read_keyed(path: Path, key: Any, field: str = "key") -> dict[str, Any] | None:
    """The JSON object at ``path`` when its ``field`` equals ``key`` (compared as sorted JSON), else
    None (missing, unreadable, or written for another key). The one check behind every cached result
    of the studies: a key names what produced an entry (settings, data hash, the producing
    checkpoints' SHA-256), so an entry whose producer changed is recomputed, never reused."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        blob = json.loads(path.read_text())
    except (json.JSONDecodeError, OSError):
        return None
    if not isinstance(blob, dict) or _canonical(blob.get(field)) != _canonical(key):
        return None
    return blob


def write_keyed(path: Path, key: Any, payload: Mapping[str, Any], field: str = "key", indent: int = 2,
                sort_keys: bool = True) -> None:
    """Write ``{field: key, **payload}`` as JSON (atomic), for :func:`read_keyed` (``sort_keys=False``
    keeps the column order of row dicts)."""
    text = json.dumps({field: key, **payload}, indent=indent, sort_keys=sort_keys, default=_json_default)
    write_text(path, text + "\n")


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda p: p.write_text(text))


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def append_jsonl(path: Path, rows: list[Mapping[str, Any]]) -> None:
    """Append rows to a JSON-lines file (one ``write`` call per batch of rows)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(dict(r), default=_json_default) + "\n" for r in rows)
    with open(path, "a") as fh:
        fh.write(text)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    with open(path) as fh:
        for line in fh:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    return rows


def _json_default(o: Any) -> Any:
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tensors_sha256(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 of named tensors (names, dtypes, shapes and bytes, in name order): identifies a
    network's weights in cache keys, whatever file they were loaded from."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_checkpoint(path: Path, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> None:
    """Write ``path`` (.safetensors) then ``path.json`` with metadata and the weights' SHA-256.

    The JSON is written last, so a checkpoint without its JSON is incomplete and ignored.
    """
    path = Path(path)
    flat = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_write(path, lambda p: save_file(flat, str(p)))
    meta = dict(meta)
    meta["sha256"] = sha256(path)
    write_json(meta_path(path), meta)


def meta_path(path: Path) -> Path:
    return Path(path).with_suffix(".json")


def load_checkpoint(path: Path, verify: bool = True) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`; raise :class:`CheckpointError` if bad."""
    path = Path(path)
    mpath = meta_path(path)
    if not path.is_file() or not mpath.is_file():
        raise CheckpointError(
            f"checkpoint {path} is missing or incomplete (need both {path.name} and {mpath.name}); "
            "train the model first (notebook 01 or `python -m ganreport train`)"
        )
    try:
        meta = json.loads(mpath.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"checkpoint metadata {mpath} is corrupt ({e}); delete it and retrain") from None
    if verify and meta.get("sha256") and sha256(path) != meta["sha256"]:
        raise CheckpointError(
            f"checkpoint {path} is corrupt (SHA-256 does not match its metadata); "
            "delete it to resume from the previous one"
        )
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} cannot be read ({e}); delete it and retrain") from None
    return tensors, meta
