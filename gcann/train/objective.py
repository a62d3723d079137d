"""The GAN objective of a training run: :class:`dynamics.minibatch.MinibatchObjective` for one row.

The losses (``GAN_LOSSES``) and gradient penalties (``PENALTIES``, ``∇ₓD`` by
autograd) are the very functions the Dirac-GAN testbed differentiates; they are
composed for minibatches by :class:`dynamics.minibatch.MinibatchObjective` (the
ring study's too), here with the plain batch mean as the reduction. This module
adds what is the trainer's own: the noise schedule and the run's random draws,
the float32 penalties under autocast, and the networks (compiled or not). The
terms:

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

from dynamics.minibatch import MinibatchObjective
from gcann.control.base import logit_statistics

from .config import TrainConfig

__all__ = ["GANObjective"]

RandFn = Callable[..., Tensor]
Knobs = Mapping[str, float] | None


def _mean(v: Tensor, rows: slice) -> Tensor:
    """The trainer's reduction: one row, the plain batch mean."""
    return v.mean()


class GANObjective:
    """Minibatch losses of one configuration; ``rand``/``randn`` draw the run's noise.

    ``rand(shape)`` and ``randn(shape)`` must return this process's share of a
    draw over the global batch (the trainer slices it under data parallelism),
    so that a run's numbers do not depend on the number of processes.
    """

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.loss_hp = {"alpha_d": cfg.alpha_d, "alpha_g": cfg.alpha_g, "clamp": cfg.alpha_clamp,
                        "a": cfg.lsgan_a, "b": cfg.lsgan_b, "c": cfg.lsgan_c}
        self.objective = MinibatchObjective(
            cfg.loss, self.loss_hp, cfg.penalties, {"gamma": cfg.gamma, "c": 0.0 if "gp0" in cfg.reg else cfg.gp_center},
            reg_every=cfg.reg_every, l2=cfg.l2 if "l2" in cfg.reg else 0.0)
        self.lazy = self.objective.lazy

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

    def _noise(self, step: int, randn: RandFn, knobs: Knobs) -> Callable[[Tensor], Tensor] | None:
        sigma = self.sigma(step, knobs)
        return None if sigma == 0 else (lambda x: x + sigma * randn(x.shape))

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

        def penalty_fn(name, rows, xr, xf, xi, hp):
            with torch.autocast(xr.device.type, enabled=False):  # penalties in float32
                return self.objective.penalty(name, D_grad, xr.float(), xf.float(), None if xi is None else xi.float(), hp)

        def clc_fn(xr, xf):
            if buffers is None:
                raise ValueError("the clc_weight knob needs the caller's sample buffers")
            br, bf = buffers.push_and_draw(0, xr.detach(), xf.detach())
            return self.objective.clc(D(br).float(), D(bf).float(), _mean), None

        out = self.objective.d_loss(D, real, fake, _mean, d_step=d_step, knobs=knobs, noise=self._noise(step, randn, knobs),
                                    penalty_fn=penalty_fn, rand=rand, clc_fn=clc_fn, params=D_grad.parameters())
        if stats is not None:
            with torch.no_grad():
                stats.update(logit_statistics(out.out_real.float(), out.out_fake.float()))
        return out.total, out.plain

    def d_gan_loss(self, D: nn.Module, real: Tensor, fake: Tensor, step: int, randn: RandFn, knobs: Knobs = None,
                   stats: dict | None = None) -> Tensor:
        """D's plain GAN loss (no regularisers): what the controller reads when D does not train."""
        out = self.objective.d_plain(D, real, fake, _mean, self._noise(step, randn, knobs))
        if stats is not None:
            stats.update(logit_statistics(out.out_real.float(), out.out_fake.float()))
        return out.plain

    def g_loss(self, D: nn.Module, fake: Tensor, step: int, randn: RandFn, knobs: Knobs = None) -> Tensor:
        """G's GAN loss on ``fake`` (with its graph to G)."""
        return self.objective.g_loss(D, fake, _mean, self._noise(step, randn, knobs))
