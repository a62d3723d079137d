"""Per-row sample buffers: the memory of past batches that closed-loop control (``clc``) penalises.

Xu et al.'s code (taufikxu/GAN_PID, ``random_queue.py``) keeps one buffer of past real samples and
one of past fakes. Every D step pushes its whole batch first: the buffer appends until it holds its
capacity, then each new sample overwrites a slot drawn uniformly at random; a batch is then drawn
from the buffer without replacement. :class:`SampleBuffers` keeps such a pair for each of several
rows (seeds), each row with its own capacity and its own random generator, so that a row's draws do
not depend on the other rows. A capacity of 0 means "the current batch only" (no memory).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from gcann.controller import ControllerError

__all__ = ["SampleBuffers"]


class SampleBuffers:
    """Two buffers (reals, fakes) per row; samples of shape ``sample_shape``, batches of ``batch``."""

    def __init__(self, capacities: Sequence[int], batch: int, sample_shape: tuple[int, ...],
                 generators: Sequence[torch.Generator], device: torch.device | str = "cpu") -> None:
        if len(capacities) != len(generators):
            raise ControllerError("SampleBuffers needs one generator per row")
        for c in capacities:
            if c and c < batch:
                raise ControllerError(f"a sample buffer of {c} samples cannot give batches of {batch}; "
                                      f"make it 0 (the current batch) or at least one batch")
        self.capacities, self.batch, self.gens = list(capacities), batch, list(generators)
        self.store = [[torch.zeros((c, *sample_shape), device=device) for _ in range(2)] for c in self.capacities]
        self.fill = [0] * len(self.capacities)

    def push_and_draw(self, k: int, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
        """Row ``k``'s buffers take ``real`` and ``fake`` (``(m, *sample_shape)`` each, detached), then give
        a batch of each, drawn without replacement (the pushed batch itself when the capacity is 0)."""
        cap = self.capacities[k]
        if cap == 0:
            return real, fake
        g, m = self.gens[k], real.shape[0]
        room = min(cap - self.fill[k], m)
        slots = torch.arange(self.fill[k], self.fill[k] + room)
        if m > room:
            slots = torch.cat([slots, torch.randint(cap, (m - room,), generator=g)])
        slots = slots.to(real.device)
        for buf, x in zip(self.store[k], (real, fake)):
            buf.index_copy_(0, slots, x.to(buf.dtype)) if m == len(set(slots.tolist())) else _sequential(buf, slots, x)
        self.fill[k] += room
        pick = torch.randperm(self.fill[k], generator=g)[:self.batch].to(real.device)
        return self.store[k][0].index_select(0, pick), self.store[k][1].index_select(0, pick)

    def state_dict(self) -> dict:
        return {"store": [[b.detach().cpu().clone() for b in pair] for pair in self.store], "fill": list(self.fill),
                "gens": [g.get_state() for g in self.gens]}

    def load_state_dict(self, state: dict) -> None:
        for pair, saved in zip(self.store, state["store"]):
            for b, s in zip(pair, saved):
                b.copy_(s)
        self.fill = list(state["fill"])
        for g, st in zip(self.gens, state["gens"]):
            g.set_state(st)


def _sequential(buf: Tensor, slots: Tensor, x: Tensor) -> None:
    """Write ``x`` into ``buf`` at ``slots`` in order, so that a slot drawn twice keeps the later sample."""
    for i, j in enumerate(slots.tolist()):
        buf[j] = x[i]
