"""Several processes: `torchrun --nproc-per-node N -m brushwork train|stylize ...` (docs/distributed.md).

torchrun starts N copies of the command and tells each its rank in the environment (RANK, WORLD_SIZE,
LOCAL_RANK, the rendezvous address). Each joins one process group (NCCL on CUDA, gloo on the CPU), trains
on its share of every batch (`--batch-size` stays the global batch: rank r of N takes the r-th of N equal
slices of the positions the one-process run would take) and after each backward pass the gradients are
averaged over the ranks, as DistributedDataParallel does, so that every rank takes the same step as one
process at the same global batch. Rank 0 alone writes the log, previews, checkpoints and the model.
`brushwork stylize` needs no process group: each process paints every Nth image of the folder.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def launched_distributed() -> bool:
    """Whether this process is one of several that torchrun started."""
    return launched_rank()[1] > 1


def launched_rank() -> tuple[int, int, int]:
    """(rank, number of processes, local rank) as torchrun's environment gives them, without joining a
    process group (painting a folder needs none); (0, 1, 0) for a process started otherwise."""
    env = os.environ
    return int(env.get("RANK", "0")), int(env.get("WORLD_SIZE", "1")), int(env.get("LOCAL_RANK", "0"))


def start(device: str) -> str:
    """Join torchrun's process group (once) and return the device this rank trains on: with CUDA,
    `cuda:LOCAL_RANK`, one GPU per process; else `device` as given. A single process: nothing to do."""
    if not launched_distributed() or dist.is_initialized():
        return device
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if cuda:
        local_rank = launched_rank()[2]
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    dist.init_process_group("nccl" if cuda else "gloo")
    return device


def rank_and_size() -> tuple[int, int]:
    """(this process's rank, number of processes); (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def average_gradients(params: list[torch.nn.Parameter]) -> None:
    """Replace each gradient by its mean over the ranks (each rank's loss is the mean over its slice of the
    batch, so this is the gradient of the mean over the whole batch)."""
    _, size = rank_and_size()
    for p in params:
        if p.grad is None:  # every rank must reduce the same tensors, in the same order
            p.grad = torch.zeros_like(p)
    # One all-reduce per dtype over the gradients flattened together, not one per parameter: each call
    # costs a round trip between the processes, and a network has dozens of parameters.
    by_dtype: dict[torch.dtype, list[torch.nn.Parameter]] = {}
    for p in params:
        by_dtype.setdefault(p.grad.dtype, []).append(p)
    for group in by_dtype.values():
        flat = torch.cat([p.grad.reshape(-1) for p in group])
        dist.all_reduce(flat)
        flat.div_(size)
        offset = 0
        for p in group:
            n = p.grad.numel()
            p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
            offset += n


def mean_over_ranks(values: dict[str, float]) -> dict[str, float]:
    """The mean of each logged loss over the ranks: each rank's is over its slice of the batch, the log's is
    over the whole batch, as one process would log it."""
    _, size = rank_and_size()
    if size == 1 or not values:
        return values
    t = torch.tensor([float(v) for v in values.values()], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return {k: float(v) / size for k, v in zip(values, t.tolist())}


def any_rank(*flags: bool) -> list[bool]:
    """Each flag, true when it is true on any rank: the ranks stop (a signal, a time limit) at the same step,
    else the ones still training would wait for the others forever."""
    _, size = rank_and_size()
    if size == 1:
        return list(flags)
    t = torch.tensor([int(f) for f in flags], dtype=torch.int64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v) for v in t.tolist()]
