"""The diversity measure of Estal's *Guided Convergence Adversarial Neural Networks*, "the average pairwise
distance within batches", in pixel, feature and voxel space (higher: more diverse samples).

All distances come from the diversity loss's vectorised code
(:func:`gcann.diversity.pairwise_distances`), so the metric and the loss
measure the same thing: the RMS difference ``||x_i - x_j|| / sqrt(d)`` for
pixels, voxels and Inception features. For voxel shapes the IoU distance
``1 - |A∩B| / |A∪B|`` of the occupancy grids is derived from the same matrix:
for 0/1 vectors ``|A△B| = d · rms²`` and ``|A∪B| = (|A| + |B| + |A△B|) / 2``.
"""
from __future__ import annotations

import torch
from torch import Tensor

from gcann.diversity import mean_pairwise_distance, pairwise_distances

from .registry import EvalContext, MetricError, register_metric

__all__ = ["BATCH", "batch_slices", "iou_distances", "mean_pairwise_in_batches"]

BATCH = 64  # samples per batch, as the paper's batches of 64 generated samples


def batch_slices(n: int, batch: int) -> list[slice]:
    """Consecutive full batches of ``batch`` among ``n`` samples (all ``n`` when fewer)."""
    if n < 2:
        raise MetricError(f"pairwise diversity needs at least 2 samples, got {n}")
    if n < batch:
        return [slice(0, n)]
    return [slice(i, i + batch) for i in range(0, n - batch + 1, batch)]


def mean_pairwise_in_batches(x: Tensor, *, batch: int = BATCH, metric: str = "l2") -> float:
    """Mean over consecutive full batches of the mean pairwise distance (``i != j``) within each batch."""
    vals = [float(mean_pairwise_distance(x[s].double(), metric)) for s in batch_slices(len(x), batch)]
    return sum(vals) / len(vals)


def iou_distances(occupied: Tensor) -> Tensor:
    """``(B, B)`` matrix of ``1 - IoU`` between boolean grids ``(B, ...)`` (two empty grids: distance 0)."""
    occ = occupied.reshape(len(occupied), -1).to(torch.float64)
    d = occ.shape[1]
    rms = pairwise_distances(occ, "l2", eps=0.0)
    sym = (rms.square() * d).round()                     # |A △ B|, integers
    size = occ.sum(dim=1)
    union = (size[:, None] + size[None, :] + sym) / 2    # |A ∪ B|
    return torch.where(union > 0, sym / union.clamp_min(1), torch.zeros_like(sym))


def _count(ctx: EvalContext, default: int) -> int:
    return int(ctx.num_samples or default)


@register_metric("pairwise")
def _pairwise(ctx: EvalContext) -> dict[str, float]:
    """Pixel/voxel-space diversity: the mean over generated batches of 64 of the mean pairwise RMS distance
    ``‖x_i − x_j‖ / √d`` between the samples of a batch (``d`` pixels or voxels; higher is more diverse, 0 is one
    sample repeated; 512 samples unless ``num_samples`` is set)."""
    x = ctx.generated(_count(ctx, 512))
    return {"pairwise": mean_pairwise_in_batches(x)}
