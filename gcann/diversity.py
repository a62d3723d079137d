"""Diversity loss: a bounded penalty on generated batches whose samples are alike.

The paper adds ``L_div`` (a *diversity score*, higher when samples differ) to
the generator loss that is minimised, which as written rewards collapse. Both
scalings here therefore read a quantity that *decreases* with diversity, the
sameness of the batch::

    u = 1 - tanh(d / scale)        in (0, 1]: 1 for identical samples, -> 0 as they spread

where ``d`` is the mean pairwise distance in the batch. ``GCANNConfig.diversity_scaling``
picks how ``u`` becomes the penalty added to the generator loss on steps where
the controller's decision has ``use_diversity`` set:

* ``"tanh"`` (default, :func:`diversity_loss`)::

      L_div_scaled = bottomend + (topend - bottomend) * u        in [bottomend, topend]

  and the generator objective is ``L_G + diversity_weight * L_div_scaled``
  (the weight multiplies the bounded penalty from outside);

* ``"paper"`` (:func:`paper_diversity_loss`), the paper's own formula applied to ``u``::

      L_div_scaled = clamp(bottomend + (u * diversity_weight) / (1 - exp(-topend)), bottomend, topend)

  and the generator objective is ``L_G + L_div_scaled`` (the weight is inside
  the formula, as in the paper, and is not applied a second time).

Cost: the batch is flattened to ``(B, d)`` and a ``(B, B)`` distance matrix is
built from one Gram matrix, so memory is O(B²) beyond the input (plus the
centred/normalised ``(B, d)`` copy) and compute is O(B²·d). For B = 128
64×64×3 images that is a 128×128 matrix and about 2·10⁸ multiply-adds, small
next to a DCGAN step.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from gcann.controller import ControllerError, GCANNConfig

__all__ = [
    "Metric",
    "diversity_loss",
    "diversity_term",
    "mean_pairwise_distance",
    "pairwise_distances",
    "paper_diversity_loss",
    "sameness",
]

Metric = Literal["l2", "cosine"]


def pairwise_distances(x: Tensor, metric: Metric = "l2", eps: float = 1e-12) -> Tensor:
    """``(B, B)`` matrix of distances between the samples of ``x`` (shape ``(B, ...)``).

    ``"l2"``: root-mean-square difference ``||x_i - x_j|| / sqrt(d)`` (pixel
    space; independent of the number of elements ``d``, in [0, 2] for images
    in [-1, 1]). ``"cosine"``: ``1 - cos(x_i, x_j)`` in [0, 2] (use it on
    feature vectors). ``eps`` keeps the square root differentiable at 0.
    """
    if x.dim() < 2 or x.shape[0] < 2:
        raise ControllerError(f"need a batch of at least 2 samples, got shape {tuple(x.shape)}")
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
    raise ControllerError(f"unknown diversity metric {metric!r}; use 'l2' or 'cosine'")


def mean_pairwise_distance(x: Tensor, metric: Metric = "l2") -> Tensor:
    """Mean distance over the ``B·(B-1)`` ordered pairs ``i != j`` (a diversity score)."""
    dist = pairwise_distances(x, metric)
    b = dist.shape[0]
    return (dist.sum() - dist.diagonal().sum()) / (b * (b - 1))


def sameness(x: Tensor, *, metric: Metric = "l2", scale: float = 1.0) -> Tensor:
    """``u = 1 - tanh(d / scale)`` in ``(0, 1]`` for the mean pairwise distance ``d``: 1 for identical samples.

    ``scale`` is the mean distance at which ``u`` has fallen to ``1 - tanh(1)`` ≈ 0.24.
    """
    if not scale > 0:
        raise ControllerError(f"scale must be > 0, got {scale}")
    return 1 - torch.tanh(mean_pairwise_distance(x, metric) / scale)


def diversity_loss(
    x: Tensor,
    *,
    metric: Metric = "l2",
    bottomend: float = 0.001,
    topend: float = 3.0,
    scale: float = 1.0,
) -> Tensor:
    """Bounded penalty ``bottomend + (topend - bottomend)·u`` in ``[bottomend, topend]`` (``u``: :func:`sameness`).

    High for alike samples, low for spread ones; ``scale`` is the mean distance
    at which the penalty has fallen by ``tanh(1)`` ≈ 76 % of the way from
    ``topend`` to ``bottomend``. The clamp removes the rounding of the sum,
    which can exceed ``topend`` by one unit in the last place.
    """
    if not bottomend < topend:
        raise ControllerError(f"need bottomend < topend, got {bottomend} and {topend}")
    loss = bottomend + (topend - bottomend) * sameness(x, metric=metric, scale=scale)
    return loss.clamp(bottomend, topend)


def paper_diversity_loss(
    x: Tensor,
    *,
    metric: Metric = "l2",
    bottomend: float = 0.001,
    topend: float = 3.0,
    weight: float = 1.0,
    scale: float = 1.0,
) -> Tensor:
    """The paper's ``bottomend + (L_div·weight) / (1 - exp(-topend))`` with ``L_div = u`` (:func:`sameness`), clamped.

    Unclamped the formula is unbounded above in ``weight`` (and, applied to a
    diversity score, in the score); the clamp into ``[bottomend, topend]`` is
    the "bounded between the bottom and top end" of the paper's text. Where the
    clamp is active (``weight / (1 - exp(-topend)) > topend - bottomend`` and a
    batch alike enough) the penalty is flat at ``topend`` and has no gradient;
    with the paper's values (weight 1, topend 3 or 5) it never is.
    """
    if not bottomend < topend:
        raise ControllerError(f"need bottomend < topend, got {bottomend} and {topend}")
    if not topend > 0:
        raise ControllerError(f"need topend > 0 (the formula divides by 1 - exp(-topend)), got {topend}")
    if not (math.isfinite(weight) and weight >= 0):
        raise ControllerError(f"weight must be a finite number >= 0, got {weight}")
    loss = bottomend + sameness(x, metric=metric, scale=scale) * weight / (1 - math.exp(-topend))
    return loss.clamp(bottomend, topend)


def diversity_term(x: Tensor, config: GCANNConfig, *, metric: Metric = "l2", scale: float = 1.0) -> Tensor:
    """The term to add to G's loss under ``config.diversity_scaling``.

    ``"tanh"``: ``diversity_weight * diversity_loss(x)``; ``"paper"``:
    ``paper_diversity_loss(x, weight=diversity_weight)`` (the weight inside the
    paper's formula only). Bounds are the config's bottom and top ends.
    """
    bounds = {"bottomend": config.bottomend_diversity_loss, "topend": config.topend_diversity_loss}
    if config.diversity_scaling == "paper":
        return paper_diversity_loss(x, metric=metric, weight=config.diversity_weight, scale=scale, **bounds)
    return config.diversity_weight * diversity_loss(x, metric=metric, scale=scale, **bounds)
