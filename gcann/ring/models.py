"""The ring study's networks, one per seed, stacked: batched MLPs and a masked Adam.

Every weight carries a leading seed axis ``S``: a layer is ``W (S, in, out)`` and
``b (S, 1, out)``, and a batch of inputs ``x (S, B, in)`` goes through one
``torch.baddbmm`` per layer, so all seeds of a study train as one model. Welfert et al.'s
networks:

* generator ``2 → 400 → 400 → 400 → 400 → 2``, ReLU;
* discriminator ``2 → 200 → 200 → 200 → 200 → 1`` (a logit), LeakyReLU(0.2).

Initialisation is ``nn.Linear``'s (weights and biases ~ U(±1/√fan_in)), drawn for
each seed from that seed's own generator, so a seed's weights do not depend on
the others in the batch.

:class:`MaskedAdam` is Adam (Kingma & Ba; ``torch.optim.Adam``'s update, without
weight decay) with a learning rate, a step count and a mask per seed: a seed whose
mask is off keeps its parameters *and* its moments and step count unchanged.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["G_HIDDEN", "D_HIDDEN", "MLPSpec", "GENERATOR", "DISCRIMINATOR", "MaskedAdam", "init_mlp", "mlp_forward",
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


class MaskedAdam:
    """Adam over stacked parameters with a per-seed learning rate, step count and mask.

    The update is ``torch.optim.Adam``'s: ``m ← β₁m + (1−β₁)g``, ``v ← β₂v + (1−β₂)g²``,
    ``p ← p − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε)``, with ``t`` the seed's own count of
    updates. Seeds whose mask is False are left exactly as they were.
    """

    def __init__(self, params: Params, betas: tuple[float, float] = (0.9, 0.99), eps: float = 1e-8,
                 uniform_fused: bool = False) -> None:
        self.params = params
        self.beta1, self.beta2 = betas
        self.eps = eps
        n_seeds = params[0].shape[0]
        self.exp_avg = [torch.zeros_like(p) for p in params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in params]
        self.steps = torch.zeros(n_seeds, dtype=torch.long)
        #: one fused kernel per seed (the CPU), or multi-tensor kernels over all seeds at once (a GPU)
        self.per_seed_fused = params[0].device.type == "cpu"
        #: step_all_on_device as one fused kernel over every seed (they share a rate and a count there)
        self.uniform_fused = uniform_fused

    @torch.no_grad()
    def step(self, grads: Sequence[Tensor], lr: Tensor, mask: Tensor) -> None:
        """One update of the seeds in ``mask (S,) bool`` at learning rates ``lr (S,)``."""
        self.steps += mask.long()
        if self.per_seed_fused:
            for k in mask.nonzero().flatten().tolist():
                self._fused(slice(k, k + 1), grads, torch.tensor(float(self.steps[k])), float(lr[k]))
            return
        bias2_sqrt, step_size = self._factors(self.steps.clamp_min(1), lr.to(torch.float64))
        every = bool(mask.all())
        dev = self.params[0].device
        if dev.type == "cuda":  # pinned and non-blocking: no host synchronisation per step
            mask, bias2_sqrt, step_size = (x.pin_memory().to(dev, non_blocking=True)
                                           for x in (mask, bias2_sqrt, step_size))
        shapes = [(-1,) + (1,) * (p.dim() - 1) for p in self.params]
        bias2_v = [bias2_sqrt.view(sh) for sh in shapes]
        step_v = [step_size.view(sh) for sh in shapes]
        if every:
            self._update_all(grads, bias2_v, step_v)
            return
        for p, g, m, v, b2, st, sh in zip(self.params, grads, self.exp_avg, self.exp_avg_sq, bias2_v, step_v, shapes):
            _adam_update(p, g, m, v, b2, st, mask.view(sh), self.beta1, self.beta2, self.eps)

    def _factors(self, t: Tensor, lr: Tensor) -> tuple[Tensor, Tensor]:
        """Adam's ``√(1 − β₂ᵗ)`` and ``lr / (1 − β₁ᵗ)`` per seed, computed in float64, in the parameters' dtype."""
        t = t.to(torch.float64)
        bias1 = 1 - self.beta1 ** t
        bias2_sqrt = (1 - self.beta2 ** t).sqrt()
        dtype = self.params[0].dtype
        return bias2_sqrt.to(dtype), (lr / bias1).to(dtype)

    def _fused(self, sl: slice, grads: Sequence[Tensor], step: Tensor, lr: float | Tensor) -> None:
        """The seeds ``sl``, in place, with ``torch.optim.Adam(fused=True)``'s kernel at one count and rate.

        On the CPU every update goes through here, one seed at a time: one pass over each tensor
        instead of the nine of the multi-tensor form (measured on the 2-core machine: a seed of G in
        0.30 ms instead of 1.29 ms), and each seed's arithmetic is the same whatever the other seeds do
        (a masked-out seed is not touched at all)."""
        torch._fused_adam_([p[sl] for p in self.params], [g[sl] for g in grads], [m[sl] for m in self.exp_avg],
                           [v[sl] for v in self.exp_avg_sq], [], [step] * len(self.params), lr=lr,
                           beta1=self.beta1, beta2=self.beta2, weight_decay=0.0, eps=self.eps, amsgrad=False,
                           maximize=False)

    @torch.no_grad()
    def step_all_on_device(self, grads: Sequence[Tensor], lr: Tensor, steps: Tensor) -> None:
        """One update of every seed with no host work (so a CUDA graph can capture it): ``steps (S,)``
        int64 and ``lr (S,)`` float64 live on the parameters' device; ``steps`` is advanced here, and
        the caller advances ``self.steps`` to match. On the CPU: :meth:`_fused` for every seed; with
        ``uniform_fused``, one fused kernel for all (the rate and count of seed 0 for every seed)."""
        steps += 1
        if self.uniform_fused:
            # every seed at lr[0] and count steps[0], both read on the device (so a CUDA graph can capture it);
            # on the CPU this equals the per-seed fused updates bit for bit (tested). The count goes in as
            # float32 (the kernels read a float step); the rate as float64 on the CPU (read as a double
            # there) and float32 elsewhere: CUDA's fused kernel reads a tensor rate as a float32 pointer
            # and refuses another dtype, as torch.optim.Adam(fused=True) keeps it
            rate = lr[0].to(torch.float64 if lr.device.type == "cpu" else torch.float32)
            self._fused(slice(None), grads, steps[0].to(torch.float32), rate)
            return
        if self.per_seed_fused:
            for k, (rate, count) in enumerate(zip(lr.tolist(), steps.tolist())):
                self._fused(slice(k, k + 1), grads, torch.tensor(float(count)), rate)
            return
        bias2_sqrt, step_size = self._factors(steps, lr)
        shapes = [(-1,) + (1,) * (p.dim() - 1) for p in self.params]
        self._update_all(grads, [bias2_sqrt.view(sh) for sh in shapes], [step_size.view(sh) for sh in shapes])

    def _update_all(self, grads: Sequence[Tensor], bias2_sqrt: list[Tensor], step_size: list[Tensor]) -> None:
        """Adam's arithmetic for every seed, in place, a few multi-tensor kernels for all layers (a GPU;
        the CPU takes :meth:`_fused`)."""
        ps, ms, vs = self.params, self.exp_avg, self.exp_avg_sq
        torch._foreach_lerp_(ms, list(grads), 1 - self.beta1)
        torch._foreach_mul_(vs, self.beta2)
        torch._foreach_addcmul_(vs, list(grads), list(grads), value=1 - self.beta2)
        denom = torch._foreach_sqrt(vs)
        torch._foreach_div_(denom, bias2_sqrt)
        torch._foreach_add_(denom, self.eps)
        upd = torch._foreach_div(ms, denom)
        torch._foreach_mul_(upd, step_size)
        torch._foreach_sub_(ps, upd)

    def state_of(self, k: int) -> dict[str, object]:
        """Seed ``k``'s optimiser state (for tests and checks)."""
        return {"step": int(self.steps[k]), "exp_avg": [m[k].clone() for m in self.exp_avg],
                "exp_avg_sq": [v[k].clone() for v in self.exp_avg_sq]}


def _adam_update(p: Tensor, g: Tensor, m: Tensor, v: Tensor, bias2_sqrt: Tensor, step_size: Tensor,
                 keep: Tensor, beta1: float, beta2: float, eps: float) -> None:
    """Adam's update of one stacked tensor, kept only for the seeds where ``keep`` is True (the others keep
    their parameters and moments exactly)."""
    m_new = torch.lerp(m, g, 1 - beta1)
    v_new = v.mul(beta2).addcmul_(g, g, value=1 - beta2)
    denom = v_new.sqrt().div_(bias2_sqrt).add_(eps)
    p_new = p - (m_new / denom) * step_size
    m.copy_(torch.where(keep, m_new, m))
    v.copy_(torch.where(keep, v_new, v))
    p.copy_(torch.where(keep, p_new, p))
