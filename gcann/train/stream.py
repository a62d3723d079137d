"""An endless, resumable stream of training batches.

Each epoch visits the data in a fresh random order (a permutation drawn from
the stream's own generator) in batches of the *global* batch size; the last
incomplete batch is dropped. The stream's state is the epoch, the permutation
and the number of batches consumed in it, so a resumed run reads exactly the
batches the uninterrupted run would have read. Under data parallelism every
process draws the same permutation and takes its own contiguous slice of each
global batch.

In-memory datasets (with a ``.data`` tensor) are gathered by indexing; file-
backed ones go through a ``DataLoader`` whose batch sampler starts at the
saved position (workers decode in parallel; preprocessing is deterministic).
"""
from __future__ import annotations

from typing import Any, Iterator

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

__all__ = ["BatchStream"]


class _Batches(torch.utils.data.Sampler):
    """Index lists of this process's share of the remaining batches of one epoch."""

    def __init__(self, perm: Tensor, start: int, batch: int, rank: int, world: int) -> None:
        self.perm, self.start, self.batch, self.rank, self.world = perm, start, batch, rank, world

    def __len__(self) -> int:
        return len(self.perm) // self.batch - self.start

    def __iter__(self) -> Iterator[list[int]]:
        share = self.batch // self.world
        for b in range(self.start, len(self.perm) // self.batch):
            lo = b * self.batch + self.rank * share
            yield self.perm[lo:lo + share].tolist()


def _ignore_stop_signals(worker_id: int) -> None:
    """Workers leave Ctrl-C and SIGTERM to the training process, which stops after its step and saves; they
    exit with it (a terminal's Ctrl-C reaches the whole process group)."""
    import signal

    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, signal.SIG_IGN)


class BatchStream:
    """``next()`` returns this process's part of the next global batch, on ``device``."""

    def __init__(self, dataset: Dataset, batch_size: int, *, seed: int, device: torch.device,
                 rank: int = 0, world: int = 1, num_workers: int = 0) -> None:
        n = len(dataset)
        if batch_size % world:
            raise ValueError(f"batch_size {batch_size} is not divisible by the {world} processes")
        if n < batch_size:
            raise ValueError(f"the dataset has {n} samples, fewer than one batch of {batch_size}")
        self.dataset, self.batch, self.device = dataset, batch_size, device
        self.rank, self.world, self.num_workers = rank, world, num_workers
        self.steps_per_epoch = n // batch_size
        self.gen = torch.Generator().manual_seed(seed)
        self.data = getattr(dataset, "data", None)
        self.epoch, self.pos = 0, 0
        self.perm = torch.randperm(n, generator=self.gen)
        self._it: Iterator[Any] | None = None

    # ------------------------------------------------------------------ reading
    def next(self) -> Tensor:
        if self.pos == self.steps_per_epoch:
            self.epoch += 1
            self.pos = 0
            self.perm = torch.randperm(len(self.dataset), generator=self.gen)
            self._it = None
        if self.data is not None:
            share = self.batch // self.world
            lo = self.pos * self.batch + self.rank * share
            x = self.data[self.perm[lo:lo + share]]
        else:
            if self._it is None:
                sampler = _Batches(self.perm, self.pos, self.batch, self.rank, self.world)
                loader = DataLoader(self.dataset, batch_sampler=sampler, num_workers=self.num_workers,
                                    pin_memory=self.device.type == "cuda",
                                    persistent_workers=False,
                                    worker_init_fn=_ignore_stop_signals if self.num_workers else None)
                self._it = iter(loader)
            x = next(self._it)
        self.pos += 1
        x = x.to(self.device, non_blocking=True)
        return x if x.is_floating_point() else x.float()  # compact sets (uint8/bool voxels) widen on the device

    def close(self) -> None:
        """Stop the loader's workers now; a later ``next()`` starts new ones where the stream stands. The workers
        ignore SIGTERM (:func:`_ignore_stop_signals`), so one left alive until the interpreter exits would be
        terminated in vain and joined forever: the trainer closes its stream when ``fit`` returns or raises."""
        it, self._it = self._it, None
        shutdown = getattr(it, "_shutdown_workers", None)   # torch's multi-process iterator; __del__ calls it too
        if shutdown is not None:
            shutdown()

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "pos": self.pos, "perm": self.perm.clone(), "gen": self.gen.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if len(state["perm"]) != len(self.dataset):
            raise ValueError(f"the checkpoint's data order covers {len(state['perm'])} samples but the dataset "
                             f"now has {len(self.dataset)}: the data root changed since the run started")
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])
        self.perm = state["perm"].clone()
        self.gen.set_state(state["gen"])
        self._it = None
