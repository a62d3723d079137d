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

A second backward for the CPU, off by default: with :data:`CPU_SEEDWISE_BACKWARD` set, a
layer (:func:`linear`) is :class:`SeedwiseLinear`, whose backward takes each seed's weight
gradient ``x_kᵀ·δ_k`` with its own ``torch.mm`` instead of one batched ``bmm``. It was built
on a profile that put the batched weight gradient of G's 400-wide layers at 16.7 ms against
10.5 ms seed by seed (64 seeds); but under ``torch.profiler`` that one product runs slow.
Timed by the clock inside a running step (2-core Intel Xeon, MKL, 64 seeds), the batched
product takes 9.4 ms and the 64 ``mm`` calls 10.3 ms, and the whole step is about 8 % slower
with the switch on (``benchmarks/bench_ring.py --compare-backward``: 245 against 225 ms and
254 against 233 ms in two runs; about 8 ms of that is the Python cost of a custom autograd
Function), so it stays off. The switch keeps it selectable, to be measured again on another
CPU. Either way a seed's bits do not depend on S; on that CPU both backwards give the same
bits (the same products and sums).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["G_HIDDEN", "D_HIDDEN", "MLPSpec", "GENERATOR", "DISCRIMINATOR", "init_mlp", "mlp_forward",
           "linear", "SeedwiseLinear", "CPU_SEEDWISE_BACKWARD", "select"]

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


#: True: on the CPU a layer's backward takes its weight gradients seed by seed (:class:`SeedwiseLinear`);
#: False (the default, the faster on the CPU measured): autograd's own backward of ``torch.baddbmm``.
#: The forward is :func:`_affine` either way; on CUDA the switch does nothing.
CPU_SEEDWISE_BACKWARD = False


def _affine(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """The layer's forward, ``b + x·W`` per seed: one batched matmul (the only definition of it)."""
    return torch.baddbmm(b, x, w)


def _will_run(ctx, i: int) -> bool:
    """Whether the gradient of input ``i`` of a custom Function's node is wanted by the running backward:
    ``needs_input_grad`` only says the input requires grad; ``torch.autograd.grad(loss, G)`` through D must
    not compute D's weight gradients (autograd's own nodes skip them; so does this). The engine answers for
    a node that is not a leaf's (it refuses those under ``autograd.grad``), hence :func:`_edge`."""
    if not ctx.needs_input_grad[i]:
        return False
    node = ctx.next_functions[i][0]
    will_run = getattr(torch._C, "_will_engine_execute_node", None)   # torch's own test, private (torch ≥ 2.1)
    return node is None or will_run is None or bool(will_run(node))


def _edge(t: Tensor) -> Tensor:
    """``t``, or for a leaf that requires grad a view of it (a node the engine can say it will run)."""
    return t.view_as(t) if t.requires_grad and t.grad_fn is None else t


class SeedwiseLinear(torch.autograd.Function):
    """``b + x·W`` for stacked seeds (``x (S, B, in)``, ``W (S, in, out)``, ``b (S, 1, out)``), forward as
    :func:`_affine`, whose first-order backward computes each seed's weight gradient ``x_kᵀ·δ_k`` with its own
    ``torch.mm`` into one preallocated ``(S, in, out)`` tensor, for CPUs where MKL's batched product of that
    shape (K = the batch of 128) is slower than the seed-by-seed products (not the 2-core Intel Xeon: see the
    module's docstring). A seed's products are the same call on the same shapes and strides at any S, so a
    seed's bits do not depend on the others. The input gradient ``δ·Wᵀ`` stays one ``torch.bmm`` and the bias
    gradient a sum over the batch, as autograd's own backward of ``baddbmm`` computes them.

    Under ``create_graph=True`` (R1 differentiates D's input gradient again) the backward is autograd's own
    formulas in differentiable ops (``bmm`` and ``sum``), so double backward works; that path is chosen by
    ``create_graph`` alone, never by S. Gradients the running backward does not want (D's weights while G
    is differentiated) are not computed."""

    @staticmethod
    def forward(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
        return _affine(x, w, b)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        x, w, b = inputs
        ctx.save_for_backward(x, w)
        ctx.bias_shape = b.shape

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, w = ctx.saved_tensors
        want_x, want_w, want_b = (_will_run(ctx, i) for i in range(3))
        gx = torch.bmm(grad, w.transpose(1, 2)) if want_x else None
        gb = grad.sum_to_size(ctx.bias_shape) if want_b else None
        if not want_w:
            gw = None
        elif torch.is_grad_enabled():          # create_graph: differentiable, autograd's formula
            gw = torch.bmm(x.transpose(1, 2), grad)
        else:
            gw = torch.empty(w.shape, dtype=grad.dtype, device=grad.device)
            for k in range(w.shape[0]):
                torch.mm(x[k].transpose(0, 1), grad[k], out=gw[k])
        return gx, gw, gb


def linear(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """One stacked linear layer, ``b + x·W``: :class:`SeedwiseLinear` on the CPU while anything needs a
    gradient (and :data:`CPU_SEEDWISE_BACKWARD` is set), otherwise :func:`_affine` under autograd."""
    if (CPU_SEEDWISE_BACKWARD and x.device.type == "cpu" and torch.is_grad_enabled()
            and (x.requires_grad or w.requires_grad or b.requires_grad)):
        return SeedwiseLinear.apply(_edge(x), _edge(w), _edge(b))
    return _affine(x, w, b)


def mlp_forward(spec: MLPSpec, params: Params, x: Tensor) -> Tensor:
    """``x (S, B, in) -> (S, B, out)``: one batched matmul per layer (:func:`linear`)."""
    n = len(params) // 2
    for i in range(n):
        w, b = params[2 * i], params[2 * i + 1]
        if w.shape[-1] == 1:
            # a single output (D's logit): a product and a sum over the last axis, which give each seed the
            # same bits at any S (a batched matrix-vector product takes a different kernel at S = 1)
            x = (x * w.transpose(1, 2)).sum(-1, keepdim=True) + b
        else:
            x = linear(x, w, b)
        if i < n - 1:
            x = F.relu(x) if spec.act == "relu" else F.leaky_relu(x, 0.2)
    return x


def select(params: Params, start: int, stop: int) -> Params:
    """The seeds ``start:stop`` of stacked parameters (views; differentiable)."""
    return [p[start:stop] for p in params]
