"""The ring study's networks, one per seed, stacked: batched MLPs.

Every weight carries a leading seed axis ``S``: a layer is ``W (S, in, out)`` and
``b (S, 1, out)``, and a batch of inputs ``x (S, B, in)`` goes through one
``torch.baddbmm`` per layer, so all seeds of a study train as one model. Welfert et al.'s
networks:

* generator ``2 → 400 → 400 → 400 → 400 → 2``, ReLU;
* discriminator ``2 → 200 → 200 → 200 → 200 → 1`` (a logit), LeakyReLU(0.2).

Initialisation is ``nn.Linear``'s (weights and biases ~ U(±1/√fan_in)), drawn for
each seed from that seed's own generator, so a seed's weights do not depend on
the others in the batch.

They train with :class:`dynamics.optim.RowOptimiser` (Adam with a learning rate, a
step count and a mask per seed), the Dirac testbed's optimiser too.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["G_HIDDEN", "D_HIDDEN", "MLPSpec", "GENERATOR", "DISCRIMINATOR", "init_mlp", "mlp_forward",
           "select"]

G_HIDDEN = (400, 400, 400, 400)   # Welfert et al.'s generator: 4 hidden layers of 400, ReLU
D_HIDDEN = (200, 200, 200, 200)   # Welfert et al.'s discriminator: 4 hidden layers of 200, LeakyReLU(0.2)

Params = list[Tensor]  # [W1, b1, W2, b2, ...], each with a leading seed axis


@dataclass(frozen=True)
class MLPSpec:
    """Layer widths and the hidden activation of an MLP."""

    sizes: tuple[int, ...]   # (input, hidden..., output)
    act: str                 # "relu" or "leaky_relu" (slope 0.2)

    @property
    def n_params(self) -> int:
        return sum(i * o + o for i, o in zip(self.sizes[:-1], self.sizes[1:]))


GENERATOR = MLPSpec((2, *G_HIDDEN, 2), "relu")
DISCRIMINATOR = MLPSpec((2, *D_HIDDEN, 1), "leaky_relu")


def init_mlp(spec: MLPSpec, generators: Sequence[torch.Generator], dtype=torch.float32) -> Params:
    """Stacked ``nn.Linear``-style initial weights, seed ``k`` drawn from ``generators[k]`` only."""
    per_seed = []
    for gen in generators:
        layers = []
        for fan_in, fan_out in zip(spec.sizes[:-1], spec.sizes[1:]):
            bound = 1.0 / math.sqrt(fan_in)
            w = (torch.rand(fan_out, fan_in, generator=gen, dtype=dtype) * 2 - 1) * bound  # nn.Linear's (out, in)
            b = (torch.rand(fan_out, generator=gen, dtype=dtype) * 2 - 1) * bound
            layers += [w.T.contiguous(), b[None, :]]
        per_seed.append(layers)
    return [torch.stack([seed[i] for seed in per_seed]).contiguous() for i in range(len(per_seed[0]))]


def mlp_forward(spec: MLPSpec, params: Params, x: Tensor) -> Tensor:
    """``x (S, B, in) -> (S, B, out)``: one batched matmul per layer."""
    n = len(params) // 2
    for i in range(n):
        w, b = params[2 * i], params[2 * i + 1]
        if w.shape[-1] == 1:
            # a single output (D's logit): a product and a sum over the last axis, which give each seed the
            # same bits at any S (a batched matrix-vector product takes a different kernel at S = 1)
            x = (x * w.transpose(1, 2)).sum(-1, keepdim=True) + b
        else:
            x = torch.baddbmm(b, x, w)
        if i < n - 1:
            x = F.relu(x) if spec.act == "relu" else F.leaky_relu(x, 0.2)
    return x


def select(params: Params, start: int, stop: int) -> Params:
    """The seeds ``start:stop`` of stacked parameters (views; differentiable)."""
    return [p[start:stop] for p in params]
