"""``clc``: closed-loop control of the discriminator's output.

Source: K. Xu, C. Li, J. Zhu & B. Zhang, "Understanding and stabilizing GANs' training dynamics using
control theory", ICML 2020; code taufikxu/GAN_PID (``gan_training/train_pid.py``,
``random_queue.py``, ``simulate_delta_gan.py``).

Law: negative feedback on D's output. D's loss gains ``λ·(E[D(x)²] over a buffer of past reals +
E[D(x)²] over a buffer of past fakes)`` (their ``pid_type: square``, no ½), λ = 10 as in their
image configurations (their 2-D toy uses 0.01). Each buffer holds ``buffer_batches`` batches
(their 100); every D step pushes its whole batch first, appending until full and then overwriting
random slots, and a batch is drawn from it without replacement. The plan carries λ as the knob
``clc_weight`` every step (the feedback acts through the objective, not through the rates); the
buffers are the engine's.

On the Dirac-GAN (D(x) = ψx, data at 0) the term vanishes with the data, so the source's own Dirac
script damps D's parameter directly, ``ψ̇ = (c − θ)·… − λψ``: the engine applies ``clc_weight`` there
as that damping (an L2 term λ/2·ψ² in D's loss). At the equilibrium the Jacobian of the standard GAN
becomes [[0, −f'(0)], [f'(0), −λ]], eigenvalues (−λ ± √(λ² − 4f'(0)²))/2: locally convergent for
every λ > 0, where the unregularised GAN (λ = 0) only circles.
"""
from __future__ import annotations

from dataclasses import dataclass

from .base import Bounds, Controller, Observation, Plan, setting

__all__ = ["CLC"]


class CLC(Controller):
    name = "clc"
    source = "Xu, Li, Zhu & Zhang, ICML 2020 (taufikxu/GAN_PID)"
    law = ("negative feedback: D's loss + lambda (E[D(x)^2] on a buffer of past reals + on past fakes), "
           "lambda = 10; on the Dirac-GAN, damping -lambda psi")
    static = True
    knob_names = ("clc_weight",)

    @dataclass(frozen=True)
    class Settings:
        weight: float = setting(10.0, "λ, the weight of the feedback term", low=0.0)
        buffer_batches: int = setting(100, "batches each sample buffer holds (0: the current batch only)", low=0)

    def _plan(self) -> Plan:
        return Plan(1, 1, self.base_lr_d, self.base_lr_g, knobs={"clc_weight": self.settings.weight})

    def _initial(self) -> Plan:
        return self._plan()

    def _decide(self, obs: Observation) -> Plan:
        return self._plan()

    def bounds(self) -> Bounds:
        w = self.settings.weight
        return Bounds((self.base_lr_d, self.base_lr_d), (self.base_lr_g, self.base_lr_g), {"clc_weight": (w, w)})
