"""Data parallelism under ``torchrun``: one process per device, gradients averaged.

``torchrun --nproc_per_node N -m gcann.cli train ...`` starts N processes; each
reads ``RANK``/``WORLD_SIZE`` from the environment, joins the process group
(NCCL on CUDA, gloo on CPU), takes its slice of every global batch, and after
each backward pass the gradients are averaged over processes (one coalesced
all-reduce per optimiser step). Batch normalisation is synchronised (CUDA:
``nn.SyncBatchNorm``; CPU: :class:`DistBatchNorm`, written with the
differentiable all-reduce of ``torch.distributed.nn``), so N processes compute
what one process computes on the whole global batch. Only rank 0 writes files.

Why not the ``DistributedDataParallel`` wrapper: a GAN step calls D several
times before one backward (reals, fakes, penalty points) and differentiates
∇ₓD again for R1/R2/WGAN-GP; DDP's reducer supports neither without
``static_graph`` contortions, while an explicit all-reduce of the gradients
after ``backward`` is exact for all of them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn

__all__ = ["DistBatchNorm", "Dist", "all_mean", "average_gradients", "gather_batch", "init_distributed",
           "sync_batchnorm"]


@dataclass(frozen=True)
class Dist:
    """This process's place in the run: ``rank`` of ``world`` processes."""

    rank: int = 0
    world: int = 1

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_type: str) -> Dist:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE > 1``); else a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size())


def average_gradients(params: list[nn.Parameter], world: int) -> None:
    """Average ``.grad`` over the processes (one flattened all-reduce)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads or world == 1:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset:offset + n].view_as(g))
        offset += n


def all_mean(x: Tensor, world: int) -> Tensor:
    """The mean of ``x`` over processes (a new tensor; ``x`` when alone)."""
    if world == 1:
        return x
    y = x.detach().clone()
    dist.all_reduce(y)
    return y / world


def _dist_nn():
    import warnings

    with warnings.catch_warnings():  # the functional collectives are public API that warns about a private successor
        warnings.simplefilter("ignore", FutureWarning)
        import torch.distributed.nn.functional as fn
    return fn


def differentiable_all_reduce(x: Tensor) -> Tensor:
    """Sum of ``x`` over processes, with the gradient of that sum."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return _dist_nn().all_reduce(x)


def gather_batch(x: Tensor, world: int) -> Tensor:
    """The global batch: every process's ``x`` concatenated in rank order, differentiable.

    Each process's gradient for its own rows is the sum over processes of the
    gradient that arrives at them, ``world`` times the single-process one
    when every process computes the same function of the global batch; the
    averaging of gradients (:func:`average_gradients`) divides it back.
    """
    if world == 1:
        return x
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.cat(_dist_nn().all_gather(x))


class DistBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch normalisation over the global batch of all processes, on any device.

    Training mode: the per-channel sum and sum of squares are all-reduced with
    the differentiable ``torch.distributed.nn.functional.all_reduce``, so both
    the statistics and their gradients are those of the whole batch. Running
    statistics are updated with the unbiased global variance, as BatchNorm does.
    Evaluation mode is plain batch norm with the running statistics.
    """

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-D input (N, C, ...), got {x.dim()}-D")

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or not dist.is_initialized():
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        count = torch.tensor([x.numel() / x.shape[1]], device=x.device, dtype=x.dtype)
        stats = torch.cat([x.sum(dims), x.pow(2).sum(dims), count])
        stats = differentiable_all_reduce(stats)
        c = x.shape[1]
        n = stats[-1]
        mean = stats[:c] / n
        var = stats[c:2 * c] / n - mean.pow(2)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                self.running_var.mul_(1 - m).add_(m * var.detach() * n / (n - 1))
        shape = (1, c) + (1,) * (x.dim() - 2)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def sync_batchnorm(model: nn.Module, device_type: str) -> nn.Module:
    """Replace every BatchNorm of ``model`` by its synchronised form for this device type."""
    if device_type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for name, child in model.named_children():
        if isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
            new = DistBatchNorm(child.num_features, child.eps, child.momentum, child.affine,
                                child.track_running_stats)
            new.load_state_dict(child.state_dict())
            setattr(model, name, new)
        else:
            sync_batchnorm(child, device_type)
    return model
