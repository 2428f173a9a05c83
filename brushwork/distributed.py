"""Several processes: `torchrun --nproc-per-node N -m brushwork train|stylize ...` (docs/distributed.md).

torchrun starts N copies of the command and tells each its rank in the environment (RANK, WORLD_SIZE,
LOCAL_RANK, the rendezvous address). Each joins one process group (NCCL on CUDA, gloo on the CPU) and trains
on its share of every batch (`--batch-size` stays the global batch: rank r of N takes the r-th of N equal
slices of the positions the one-process run would take). The trained networks are wrapped in
`DistributedDataParallel` (`data_parallel`), which averages the gradients over the ranks while the backward
pass runs, so that every rank takes the same step as one process at the same global batch. What a loss
needs of the whole batch (a normalizing statistic, another photo) comes from `mean_over_ranks_tensor` and
`gather_from_ranks`. Rank 0 alone writes the log, previews, checkpoints and the model.
`brushwork stylize` needs no process group: each process paints every Nth image of the folder.
"""

from __future__ import annotations

import inspect
import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

_DDP_PARAMETERS = frozenset(inspect.signature(DistributedDataParallel.__init__).parameters)


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


def finish() -> bool:
    """Leave the process group, at the end of a command run by torchrun; True when there was one. A process
    that exits with the group still open can abort ("terminate called without an active exception", SIGABRT)
    as the group's communication threads are torn down with the interpreter."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
        return True
    return False


def rank_and_size() -> tuple[int, int]:
    """(this process's rank, number of processes); (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def data_parallel(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """`module` wrapped in DistributedDataParallel: its gradients are averaged over the ranks during the
    backward pass (bucket by bucket, as they are ready), and its parameters are rank 0's from the start.

    Every parameter that wants a gradient must get one in every step (no search for unused ones: that is
    a pass over the graph per step). Buffers are not broadcast before each forward pass: instance norms
    keep no running statistics, and the buffers brushwork's networks hold are set once, alike on every rank.
    """
    on_gpu = device.type == "cuda"
    # Newer torch names the switch forward_sync_buffers (and warns about the old name); it also copies rank 0's
    # buffers at the start, which is harmless here. Older torch (>= 2.4 is supported) knows only the old name.
    no_buffer_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in _DDP_PARAMETERS
                      else {"broadcast_buffers": False})
    return DistributedDataParallel(module, device_ids=[device.index] if on_gpu else None,
                                   output_device=device.index if on_gpu else None, **no_buffer_sync)


def mean_over_ranks_tensor(t: torch.Tensor) -> torch.Tensor:
    """The mean of a tensor over the ranks (no gradient), in its own dtype and on its own device; the
    tensor itself on one process. A statistic of each rank's equal share of the batch becomes the whole
    batch's: what a loss normalized by the batch must use to equal the one-process loss."""
    _, size = rank_and_size()
    if size == 1:
        return t
    total = t.detach().float().clone()  # gloo reduces no bf16
    dist.all_reduce(total)
    return total.div_(size).to(t.dtype)


def gather_from_ranks(t: torch.Tensor) -> torch.Tensor:
    """Every rank's tensor (each of the same shape) concatenated along the first dimension in rank order:
    the whole batch from each rank's share. The tensor itself on one process; no gradient."""
    _, size = rank_and_size()
    if size == 1:
        return t
    local = t.detach().contiguous()
    parts = [torch.empty_like(local) for _ in range(size)]
    dist.all_gather(parts, local)
    return torch.cat(parts)


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
