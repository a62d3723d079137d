"""The GAN objective of a training run, built from ``dynamics.objectives``.

The losses (``GAN_LOSSES``) and gradient penalties (``PENALTIES``, ``∇ₓD`` by
autograd) are the very functions the Dirac-GAN testbed differentiates; this
module only composes them for minibatches: per-sample values reduced by the
mean, penalties on their own schedule (lazy R1/R2), and the modifiers that act
on inputs or weights:

* instance noise: ``x ← x + σ_t·ε`` on every input of D (reals and fakes, in
  both players' losses), ``σ_t = σ₀·max(0, 1 − t/T)`` when annealed over ``T``
  steps; the Dirac testbed takes the exact expectation over ε instead;
* L2 on D: ``l2/2·‖ψ‖²`` added to D's loss, as in the testbed;
* WGAN-GP's points: ``x̂ = ε·x_real + (1 − ε)·x_fake``, ``ε ~ U(0, 1)`` per sample.

Lazy regularisation (Karras et al., 2020): with ``reg_every = k`` the R1/R2
penalty is added on every k-th D step only, with weight ``k·γ``, so its
expected contribution per step is unchanged.

A controller's knobs (``gcann.control.KNOBS``), when its plan sets them, replace
the configuration's values for that step: ``noise_sigma`` is the instance-noise
σ (noise on even without the ``noise`` regulariser), ``r1_gamma`` the R1 weight γ
(R1 added even without ``r1`` in ``reg``), and ``clc_weight`` adds closed-loop
control's λ·(E[D(x)²] over a buffer of past reals + over past fakes) to D's loss,
the buffers being the caller's :class:`gcann.control.buffers.SampleBuffers`.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import torch
from torch import Tensor, nn

from dynamics.objectives import GAN_LOSSES, PENALTIES, Context
from gcann.control.base import logit_statistics

from .config import TrainConfig

__all__ = ["GANObjective"]

RandFn = Callable[..., Tensor]
Knobs = Mapping[str, float] | None


class GANObjective:
    """Minibatch losses of one configuration; ``rand``/``randn`` draw the run's noise.

    ``rand(shape)`` and ``randn(shape)`` must return this process's share of a
    draw over the global batch (the trainer slices it under data parallelism),
    so that a run's numbers do not depend on the number of processes.
    """

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.spec = GAN_LOSSES[cfg.loss]
        self.loss_hp = {"alpha_d": cfg.alpha_d, "alpha_g": cfg.alpha_g, "clamp": cfg.alpha_clamp,
                        "a": cfg.lsgan_a, "b": cfg.lsgan_b, "c": cfg.lsgan_c}
        self.penalties = cfg.penalties
        self.pen_hp = {"gamma": cfg.gamma, "c": 0.0 if "gp0" in cfg.reg else cfg.gp_center}
        self.lazy = tuple(p for p in self.penalties if p in ("r1", "r2"))

    # ------------------------------------------------------------------ pieces
    def sigma(self, step: int, knobs: Knobs = None) -> float:
        """Instance-noise σ at ``step`` (0 without the ``noise`` regulariser); a plan's ``noise_sigma`` knob wins."""
        c = self.cfg
        if knobs and "noise_sigma" in knobs:
            return float(knobs["noise_sigma"])
        if "noise" not in c.reg:
            return 0.0
        if c.noise_anneal_steps == 0:
            return c.noise_sigma
        return c.noise_sigma * max(0.0, 1.0 - step / c.noise_anneal_steps)

    def _noisy(self, x: Tensor, sigma: float, randn: RandFn) -> Tensor:
        return x if sigma == 0 else x + sigma * randn(x.shape)

    def _ctx(self, real: Tensor | None, fake: Tensor) -> Context:
        return Context(real if real is not None else fake, fake, self.loss_hp)

    # ------------------------------------------------------------------ losses
    def d_loss(self, D: nn.Module, real: Tensor, fake: Tensor, step: int, d_step: int,
               rand: RandFn, randn: RandFn, D_grad: nn.Module | None = None, knobs: Knobs = None,
               buffers: Any = None, stats: dict | None = None) -> tuple[Tensor, Tensor]:
        """``(total, gan)``: D's loss with its regularisers, and the plain GAN loss (what the controller reads).

        ``step`` is the training step (noise schedule), ``d_step`` counts D's
        updates (lazy penalty schedule); ``fake`` must be detached. ``D_grad``
        is the network the gradient penalties differentiate twice (default
        ``D``; the trainer passes the uncompiled module, as torch.compile
        does not support double backward). ``knobs``: the plan's knob values
        (see the module docstring); ``buffers``: the CLC buffers (needed with
        ``clc_weight``); ``stats``: filled with the mean D logit on reals and on
        fakes and E[sign D(x_real)] (device scalars) when given.
        """
        D_grad = D if D_grad is None else D_grad
        xr, xf = self._inputs(real, fake, step, randn, knobs)
        out_r, out_f = D(xr), D(xf)
        gan = self.spec.d(out_r, out_f, self._ctx(xr, xf)).mean()
        if stats is not None:
            with torch.no_grad():
                stats.update(logit_statistics(out_r.float(), out_f.float()))
        total = gan
        penalties, pen_hp = self.penalties, self.pen_hp
        if knobs and "r1_gamma" in knobs:
            penalties = penalties if "r1" in penalties else penalties + ("r1",)
            pen_hp = {**pen_hp, "gamma": float(knobs["r1_gamma"])}
        for p in penalties:
            weight = 1.0
            if p in self.lazy and self.cfg.reg_every > 1:
                if d_step % self.cfg.reg_every != 0:
                    continue
                weight = float(self.cfg.reg_every)
            xi = None
            if p == "gp":
                eps = rand((xr.shape[0],) + (1,) * (xr.dim() - 1))
                xi = eps * xr.detach() + (1 - eps) * xf.detach()
            with torch.autocast(xr.device.type, enabled=False):  # penalties in float32
                pen = PENALTIES[p].fn(D_grad, xr.float(), xf.float(), None if xi is None else xi.float(), pen_hp)
            total = total + weight * pen.mean()
        if knobs and "clc_weight" in knobs:
            if buffers is None:
                raise ValueError("the clc_weight knob needs the caller's sample buffers")
            br, bf = buffers.push_and_draw(0, xr.detach(), xf.detach())
            total = total + float(knobs["clc_weight"]) * (D(br).float().pow(2).mean() + D(bf).float().pow(2).mean())
        if "l2" in self.cfg.reg:
            total = total + 0.5 * self.cfg.l2 * sum(q.pow(2).sum() for q in D_grad.parameters())
        return total, gan

    def d_gan_loss(self, D: nn.Module, real: Tensor, fake: Tensor, step: int, randn: RandFn, knobs: Knobs = None,
                   stats: dict | None = None) -> Tensor:
        """D's plain GAN loss (no regularisers): what the controller reads when D does not train."""
        xr, xf = self._inputs(real, fake, step, randn, knobs)
        out_r, out_f = D(xr), D(xf)
        if stats is not None:
            stats.update(logit_statistics(out_r.float(), out_f.float()))
        return self.spec.d(out_r, out_f, self._ctx(xr, xf)).mean()

    def _inputs(self, real: Tensor, fake: Tensor, step: int, randn: RandFn, knobs: Knobs = None) -> tuple[Tensor, Tensor]:
        sigma = self.sigma(step, knobs)
        return self._noisy(real, sigma, randn), self._noisy(fake, sigma, randn)

    def g_loss(self, D: nn.Module, fake: Tensor, step: int, randn: RandFn, knobs: Knobs = None) -> Tensor:
        """G's GAN loss on ``fake`` (with its graph to G)."""
        xf = self._noisy(fake, self.sigma(step, knobs), randn)
        return self.spec.g(D(xf), self._ctx(None, xf)).mean()
