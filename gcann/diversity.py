"""Diversity loss: a bounded penalty on generated batches whose samples are alike.

The paper adds ``L_div`` (a *diversity score*, higher when samples differ) to
the generator loss that is minimised, which as written rewards collapse. Here
the penalty is a decreasing function of the mean pairwise distance ``d`` in the
batch, bounded between the paper's bottom and top ends by a sigmoid-like map::

    L_div_scaled = bottomend + (topend - bottomend) * (1 - tanh(d / scale))

It equals ``topend_diversity_loss`` for identical samples and tends to
``bottomend_diversity_loss`` as samples spread; the generator objective is
``L_G + diversity_weight * L_div_scaled`` on steps where the controller's
decision has ``use_diversity`` set.

Cost: the batch is flattened to ``(B, d)`` and a ``(B, B)`` distance matrix is
built from one Gram matrix, so memory is O(B²) beyond the input (plus the
centred/normalised ``(B, d)`` copy) and compute is O(B²·d). For B = 128
64×64×3 images that is a 128×128 matrix and about 2·10⁸ multiply-adds, small
next to a DCGAN step.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from gcann.controller import GCANNConfig

__all__ = ["Metric", "diversity_loss", "diversity_term", "mean_pairwise_distance", "pairwise_distances"]

Metric = Literal["l2", "cosine"]


def pairwise_distances(x: Tensor, metric: Metric = "l2", eps: float = 1e-12) -> Tensor:
    """``(B, B)`` matrix of distances between the samples of ``x`` (shape ``(B, ...)``).

    ``"l2"``: root-mean-square difference ``||x_i - x_j|| / sqrt(d)`` (pixel
    space; independent of the number of elements ``d``, in [0, 2] for images
    in [-1, 1]). ``"cosine"``: ``1 - cos(x_i, x_j)`` in [0, 2] (use it on
    feature vectors). ``eps`` keeps the square root differentiable at 0.
    """
    if x.dim() < 2 or x.shape[0] < 2:
        raise ValueError(f"need a batch of at least 2 samples, got shape {tuple(x.shape)}")
    flat = x.reshape(x.shape[0], -1)
    if metric == "l2":
        centred = flat - flat.mean(dim=0, keepdim=True)  # translation-invariant; reduces cancellation
        sq = centred.pow(2).sum(dim=1)
        gram = centred @ centred.T
        d2 = (sq[:, None] + sq[None, :] - 2 * gram).clamp_min(0) / flat.shape[1]
        return (d2 + eps).sqrt()
    if metric == "cosine":
        unit = torch.nn.functional.normalize(flat, dim=1, eps=1e-8)
        return (1 - unit @ unit.T).clamp(0, 2)
    raise ValueError(f"unknown diversity metric {metric!r}; use 'l2' or 'cosine'")


def mean_pairwise_distance(x: Tensor, metric: Metric = "l2") -> Tensor:
    """Mean distance over the ``B·(B-1)`` ordered pairs ``i != j`` (a diversity score)."""
    dist = pairwise_distances(x, metric)
    b = dist.shape[0]
    return (dist.sum() - dist.diagonal().sum()) / (b * (b - 1))


def diversity_loss(
    x: Tensor,
    *,
    metric: Metric = "l2",
    bottomend: float = 0.001,
    topend: float = 3.0,
    scale: float = 1.0,
) -> Tensor:
    """Bounded penalty in ``[bottomend, topend]``: high for alike samples, low for spread ones.

    ``scale`` is the mean distance at which the penalty has fallen by
    ``tanh(1)`` ≈ 76 % of the way from ``topend`` to ``bottomend``.
    """
    if not bottomend < topend:
        raise ValueError(f"need bottomend < topend, got {bottomend} and {topend}")
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    d = mean_pairwise_distance(x, metric)
    loss = bottomend + (topend - bottomend) * (1 - torch.tanh(d / scale))
    return loss.clamp(bottomend, topend)


def diversity_term(x: Tensor, config: GCANNConfig, *, metric: Metric = "l2", scale: float = 1.0) -> Tensor:
    """``diversity_weight * L_div_scaled`` with the bounds of ``config``; add it to G's loss."""
    return config.diversity_weight * diversity_loss(
        x,
        metric=metric,
        bottomend=config.bottomend_diversity_loss,
        topend=config.topend_diversity_loss,
        scale=scale,
    )
