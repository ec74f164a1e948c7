"""Several processes, one result: ``torch.distributed`` helpers for training and evaluation.

Launch any entry point of the package with PyTorch's own launcher, e.g.::

    torchrun --nproc_per_node 4 -m ganreport train --model dcgan --profile full

``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
:func:`init_from_env` reads them and creates the default process group (NCCL on CUDA, gloo on
the CPU). Without those variables (a plain ``python`` call) every helper here falls back to a
single process: ``rank() == 0``, ``world_size() == 1``, ``gather_cat(x) is x``.

Training (``ganreport.train.Trainer``) wraps G and D in ``DistributedDataParallel`` when a
group with more than one process exists; see its docstring for how each rank takes its part of
the global batch. That index scheme stands in for ``torch.utils.data.DistributedSampler``: the
Trainer samples each batch with replacement from the seeded generator (no epochs), every rank
draws the same global indices and keeps a contiguous slice, so the batches — and the checkpointed
generator state — do not depend on the number of processes (a ``DistributedSampler`` shards an
epoch's permutation by stride, which changes with the world size and could not reproduce the
single-process run or resume it with another process count). Evaluation is sharded with these
helpers (:mod:`ganreport.metrics.sharded`): :func:`shard` gives each rank a contiguous block
of the samples, the rank generates / extracts features of its block only, and
:func:`gather_cat` concatenates the blocks of all ranks **in rank order** with
``all_gather``, so every rank ends with exactly the tensor a single process would have computed
(up to floating-point summation order inside a batch), and any metric computed on it equals the
single-process value on the same samples.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
import torch.distributed as dist

from .errors import ConfigError

ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


# --------------------------------------------------------------------------- process group
def env_world_size() -> int:
    """``WORLD_SIZE`` set by ``torchrun`` (1 when launched with plain ``python``)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def env_rank() -> int:
    """``RANK`` set by ``torchrun`` (0 when launched with plain ``python``)."""
    return int(os.environ.get("RANK", "0"))


def default_backend() -> str:
    """``"nccl"`` when CUDA and NCCL are available, else ``"gloo"`` (CPU)."""
    if torch.cuda.is_available() and dist.is_available() and dist.is_nccl_available():
        return "nccl"
    return "gloo"


def init_from_env(backend: str | None = None, timeout_s: float = 1800.0) -> bool:
    """Create the default process group from ``torchrun``'s environment variables.

    Parameters
    ----------
    backend : ``"nccl"`` or ``"gloo"``; default :func:`default_backend`.
    timeout_s : how long a collective may wait for the other ranks before failing.

    Returns
    -------
    True when this call created the group (the caller should :func:`cleanup` it), False when a
    group already existed or the process was not launched by ``torchrun`` with ``WORLD_SIZE > 1``.
    """
    if not dist.is_available() or dist.is_initialized() or env_world_size() <= 1:
        return False
    missing = [v for v in ENV_VARS if v not in os.environ]
    if missing:
        raise ConfigError(f"WORLD_SIZE is {env_world_size()} but {', '.join(missing)} are not set; "
                          "launch with `torchrun --nproc_per_node N -m ganreport ...`")
    backend = backend or default_backend()
    if backend == "nccl":
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    return True


def cleanup() -> None:
    """Destroy the default process group if there is one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process' global rank (0 without a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """Number of processes (1 without a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def local_rank() -> int:
    """Rank on this node (``LOCAL_RANK``; selects the GPU)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """True on the process that writes files (rank 0), and in a single process."""
    return rank() == 0


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if is_distributed():
        dist.barrier()


def rank_device(requested: str | torch.device = "auto") -> torch.device:
    """This rank's device: ``"auto"`` is CUDA when available; an index-less ``cuda`` becomes ``cuda:LOCAL_RANK``."""
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    d = torch.device(requested)
    if d.type == "cuda" and d.index is None and is_distributed():
        d = torch.device("cuda", local_rank())
    return d


def _comm_device() -> torch.device:
    """Where tensors must live for collectives of the current backend (NCCL: this rank's GPU)."""
    if is_distributed() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


# --------------------------------------------------------------------------- sharding and gathering
def shard(n: int, index: int | None = None, count: int | None = None) -> slice:
    """This rank's contiguous block of ``range(n)``: sizes differ by at most one, rank order.

    Rank ``r`` of ``W`` gets ``[r*q + min(r, m), (r+1)*q + min(r+1, m))`` with ``q, m = divmod(n, W)``,
    so concatenating the blocks of ranks ``0..W-1`` gives ``0..n-1`` in order.
    """
    r = rank() if index is None else int(index)
    w = world_size() if count is None else int(count)
    if n < 0 or w < 1 or not 0 <= r < w:
        raise ConfigError(f"cannot shard n={n} over world size {w} at rank {r}")
    q, m = divmod(n, w)
    return slice(r * q + min(r, m), (r + 1) * q + min(r + 1, m))


def gather_cat(t: torch.Tensor) -> torch.Tensor:
    """Concatenate ``t`` of every rank along dim 0, in rank order (``all_gather``); returns on ``t``'s device.

    The blocks may have different lengths (the trailing dimensions must agree): lengths are
    gathered first, each block is padded to the longest, gathered, then trimmed.
    """
    if not is_distributed():
        return t
    cdev = _comm_device()
    w = world_size()
    x = t.detach().to(cdev).contiguous()
    n = torch.tensor([x.shape[0]], dtype=torch.long, device=cdev)
    sizes = [torch.zeros_like(n) for _ in range(w)]
    dist.all_gather(sizes, n)
    lens = [int(s.item()) for s in sizes]
    longest = max(lens)
    if x.shape[0] < longest:
        x = torch.cat([x, x.new_zeros((longest - x.shape[0], *x.shape[1:]))])
    parts = [torch.empty_like(x) for _ in range(w)]
    dist.all_gather(parts, x)
    return torch.cat([p[:k] for p, k in zip(parts, lens)]).to(t.device)


def mean_floats(values: Mapping[str, float]) -> dict[str, float]:
    """Average a dict of Python floats over the ranks (``all_reduce``; identity in one process)."""
    if not is_distributed() or not values:
        return dict(values)
    keys = list(values)
    v = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=_comm_device())
    dist.all_reduce(v)
    v /= world_size()
    return {k: float(x) for k, x in zip(keys, v.tolist())}


def all_equal(value: Any) -> bool:
    """True when every rank passed an equal (picklable) ``value``."""
    if not is_distributed():
        return True
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, value)
    return all(o == out[0] for o in out)


# --------------------------------------------------------------------------- sharded evaluation
@torch.no_grad()
def sample(G: torch.nn.Module, n: int, seed: int = 0, batch_size: int = 256,
           device: str | torch.device = "cpu", **kw: Any) -> torch.Tensor:
    """``n`` images from ``G``, generated sharded over the ranks and gathered on every rank.

    Same latents as :func:`ganreport.train.sample` (all ``n`` drawn from
    ``torch.Generator().manual_seed(seed)`` on every rank; rank ``r`` generates block
    :func:`shard` of them), so the result equals the single-process one.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    z = G.sample_z(n, torch.Generator().manual_seed(seed), "cpu")[shard(n)]
    out = [G(z[i:i + batch_size].to(device), **kw).cpu() for i in range(0, len(z), batch_size)]
    mine = torch.cat(out) if out else torch.empty(0, *G.img_shape)
    return gather_cat(mine)


@contextmanager
def process_group(backend: str | None = None) -> Iterator[bool]:
    """``with process_group() as created:`` — :func:`init_from_env` on entry, :func:`cleanup` on exit
    if this block created the group."""
    created = init_from_env(backend)
    try:
        yield created
    finally:
        if created:
            cleanup()

