"""The trainer's common step as a CUDA graph, captured once and replayed (``cuda_graph``).

A DCGAN step on a GPU is a few hundred small kernels; launched one by one from
Python, the host's launches take longer than the GPU's arithmetic (the H100
figures in ``docs/training.md``). A CUDA graph records the kernels of a step
once and replays them with one launch.

What is captured. A step whose plan is one D and one G update (every step of
an uncontrolled run, most steps of a GCANN run) is the same sequence of kernels
every time, given its inputs: the real batch and the latent codes, copied into
fixed buffers before each replay. The sequence depends on two things only, the
*key* of the step: whether G's loss carries the diversity term, and (lazy R1/R2)
whether this D update adds the penalty. One graph is captured per key the run
meets. Everything else runs as it would without graphs: steps with other plans
(pauses, skips, catch-up bursts), the generator EMA (its decay depends on the
step), the controller, logs and checkpoints. The captured Adam updates read
their learning rates and step counts from device tensors, filled before each
replay (:meth:`gcann.train.optimiser.NetworkAdam.step_on_device`), so a
controller's new rate reaches the next replay without a new capture.

Numbers. The latent codes are drawn outside the graph from the run's noise
generator, so a run draws the same codes with or without graphs. Configurations
that draw random numbers *inside* the step (instance noise, WGAN-GP's
interpolation points) are refused, as are compiled networks and data parallelism.
``cuda_graph="eager"`` runs the same static-buffer step without capturing it,
on any device; on the CPU it equals the run without graphs bit for bit (tested),
which checks everything but the capture itself.

Warm-up, as PyTorch asks for: the first two steps of each key run eagerly on a
side stream, the third is captured and every later one replayed.
"""
from __future__ import annotations

from typing import Callable, Hashable

import torch
from torch import Tensor

__all__ = ["StepGraphs"]


class StepGraphs:
    """Static input buffers and one captured graph per step key."""

    WARMUP = 2   # eager steps of a key before it is captured

    def __init__(self, capture: bool, device: torch.device, real_shape: tuple[int, ...],
                 memory_format: torch.memory_format, z_shape: tuple[int, ...]) -> None:
        if capture and device.type != "cuda":
            raise ValueError("CUDA graphs need a CUDA device")
        self.capture, self.device = capture, device
        self.real = torch.zeros(real_shape, device=device).contiguous(memory_format=memory_format)
        self.z = torch.zeros(z_shape, device=device)
        self.graphs: dict[Hashable, tuple[torch.cuda.CUDAGraph, Tensor]] = {}
        self.calls: dict[Hashable, int] = {}
        self.replays = 0          # steps that ran as a replay
        self.eager = 0            # steps that ran the static step eagerly (warm-up, capture, or no capture)

    def load(self, real: Tensor, z: Tensor) -> None:
        """Copy this step's batch and latent codes into the buffers (device-side copies, no host sync)."""
        self.real.copy_(real, non_blocking=True)
        self.z.copy_(z, non_blocking=True)

    def run(self, key: Hashable, body: Callable[[], Tensor]) -> Tensor:
        """The step of ``key``: ``body()`` reads :attr:`real` and :attr:`z` and returns the step's loss values.

        After a replay the returned tensor is the graph's output buffer: the next replay overwrites it, so
        the caller copies it out (a non-blocking copy on the same stream is ordered before that replay)."""
        if not self.capture:
            self.eager += 1
            return body()
        if key in self.graphs:
            graph, out = self.graphs[key]
            graph.replay()
            self.replays += 1
            return out
        n = self.calls.get(key, 0)
        self.calls[key] = n + 1
        self.eager += 1
        main = torch.cuda.current_stream(self.device)
        if n < self.WARMUP:
            side = torch.cuda.Stream(self.device)
            side.wait_stream(main)
            with torch.cuda.stream(side):
                out = body()
            main.wait_stream(side)
            out.record_stream(main)   # read on the main stream (the copy to the host) after the side stream's step
            return out
        graph = torch.cuda.CUDAGraph()
        # thread_local: a DataLoader's pinning thread may allocate host memory while the step is captured
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            out = body()
        graph.replay()    # capturing records the step; replaying runs it
        self.graphs[key] = (graph, out)
        return out
