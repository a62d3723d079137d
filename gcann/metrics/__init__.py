"""Metrics that judge runs, looked up by name.

A metric is a function ``fn(ctx: EvalContext) -> dict[str, float]`` registered
under a name with :func:`register_metric`; :func:`compute_metrics` runs a list of
them. The trainer's periodic evaluation hook and ``gcann eval`` both call
:func:`compute_metrics`, so a metric is written once.

A metric that cannot be computed (a missing weights file, too few samples)
raises :class:`MetricError` with one line saying why; it never returns a
made-up number.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor

__all__ = ["EvalContext", "METRICS", "MetricError", "compute_metrics", "register_metric"]


class MetricError(ValueError):
    """A metric cannot be computed on this input; the message says why in one line."""


@dataclass
class EvalContext:
    """What a metric may look at.

    ``sample(n)`` draws ``n`` generated samples on ``device``, in the data's own
    range: images ``(n, C, H, W)`` in [-1, 1], voxels ``(n, 1, R, R, R)`` in [0, 1].
    ``reals`` is a tensor of real samples in the same layout and range (or
    ``None`` where a metric needs none); ``dataset_key`` names the real data for
    caches (content-derived, e.g. a hash of the dataset's files and resolution).
    """

    sample: Callable[[int], Tensor]
    kind: str                                   # "image" or "voxel"
    reals: Tensor | None = None
    dataset_key: str | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    num_samples: int | None = None              # how many generated samples a metric draws (None: its default)
    options: dict = field(default_factory=dict)  # per-metric options, e.g. {"fid_weights": path}


MetricFn = Callable[[EvalContext], dict]

#: name -> metric function; filled by :func:`register_metric`.
METRICS: dict[str, MetricFn] = {}


def register_metric(name: str) -> Callable[[MetricFn], MetricFn]:
    """Decorator: make ``fn`` available as metric ``name``."""

    def deco(fn: MetricFn) -> MetricFn:
        if name in METRICS:
            raise ValueError(f"metric {name!r} is registered twice")
        METRICS[name] = fn
        return fn

    return deco


def compute_metrics(names: list[str] | tuple[str, ...], ctx: EvalContext) -> dict[str, float]:
    """Run the named metrics on ``ctx``; their results merged into one flat dict."""
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise MetricError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(sorted(METRICS)) or 'none'}")
    out: dict[str, float] = {}
    for n in names:
        out.update(METRICS[n](ctx))
    return out


@register_metric("pairwise")
def _pairwise(ctx: EvalContext) -> dict[str, float]:
    """Seed 000's diversity: mean pairwise RMS distance within generated batches of 64 (pixel/voxel space)."""
    from gcann.diversity import mean_pairwise_distance

    n = ctx.num_samples or 512
    batch = 64
    vals = []
    with torch.no_grad():
        for _ in range(max(1, n // batch)):
            vals.append(float(mean_pairwise_distance(ctx.sample(batch).float())))
    return {"pairwise": sum(vals) / len(vals)}
