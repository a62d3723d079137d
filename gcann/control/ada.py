"""``ada``: ADA's integrator driving a regulariser's strength (an adaptation: ADA itself drives augmentation).

Source: T. Karras, M. Aittala, J. Hellsten, S. Laine, J. Lehtinen & T. Aila, "Training generative
adversarial networks with limited data", NeurIPS 2020; code NVlabs/stylegan2-ada-pytorch
(``training/training_loop.py``, ``training/loss.py``).

Law: the overfitting heuristic r_t = E[sign D(x_real)] is averaged over the steps since the last
adjustment, and every ``interval`` steps (4) the strength p moves by
``sign(r̄ − target)·batch_size·interval/(kimg·1000)`` (target 0.6, kimg 500: p can go from 0 to 1
in 500k real images), clamped below at 0. The source has no upper clamp (a probability above 1
saturates); here p also stays at most ``p_max`` (1), so that the knob stays in a declared box.

p drives ``knob`` (``noise_sigma``, instance noise on D's inputs, or ``r1_gamma``, R1's weight) as
``scale·p``. The plan carries it every step; the engine applies it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from .base import Bounds, Controller, Observation, Plan, setting

__all__ = ["ADA"]


class ADA(Controller):
    name = "ada"
    source = "Karras et al., NeurIPS 2020 (NVlabs/stylegan2-ada-pytorch training_loop.py)"
    law = ("every 4 steps p += sign(mean E[sign D(x_real)] - 0.6) x batch x 4 / 500k, p in [0, 1]; "
           "knob (instance-noise sigma or R1 gamma) = scale x p")
    needs = ("real_sign",)
    knob_names = ("noise_sigma", "r1_gamma")

    @dataclass(frozen=True)
    class Settings:
        knob: str = setting("noise_sigma", "the regulariser p drives", choices=("noise_sigma", "r1_gamma"))
        scale: float = setting(1.0, "the knob's value at p = 1", low=0.0, low_open=True)
        target: float = setting(0.6, "the target of E[sign D(x_real)]", low=-1.0, high=1.0)
        interval: int = setting(4, "steps between adjustments", low=1)
        kimg: float = setting(500.0, "thousands of real images for p to move by 1", low=0.0, low_open=True)
        batch_size: int = setting(64, "real images per step (the engine sets the run's)", low=1)
        p_max: float = setting(1.0, "the largest p", low=0.0, low_open=True)
        p_init: float = setting(0.0, "p at the start", low=0.0)

    @classmethod
    def run_defaults(cls, **run: Any) -> dict[str, Any]:
        """The run's batch size sets p's step."""
        return {} if run.get("batch_size") is None else {"batch_size": int(run["batch_size"])}

    def __init__(self, lr_d: float, lr_g: float, settings: Any = None) -> None:
        super().__init__(lr_d, lr_g, settings)
        s = self.settings
        self.p = min(s.p_init, s.p_max)
        self.sign_sum = 0.0
        self.sign_count = 0

    def _plan(self) -> Plan:
        return Plan(1, 1, self.base_lr_d, self.base_lr_g, knobs={self.settings.knob: self.settings.scale * self.p})

    def _initial(self) -> Plan:
        return self._plan()

    def _decide(self, obs: Observation) -> Plan:
        s = self.settings
        self.sign_sum += obs.real_sign
        self.sign_count += 1
        if (obs.step + 1) % s.interval == 0:
            r = self.sign_sum / self.sign_count
            adjust = math.copysign(1.0, r - s.target) if r != s.target else 0.0
            self.p = min(max(self.p + adjust * s.batch_size * s.interval / (s.kimg * 1000.0), 0.0), s.p_max)
            self.sign_sum, self.sign_count = 0.0, 0
        return self._plan()

    def bounds(self) -> Bounds:
        s = self.settings
        return Bounds((self.base_lr_d, self.base_lr_d), (self.base_lr_g, self.base_lr_g),
                      {s.knob: (0.0, s.scale * s.p_max)})

    def _state(self) -> dict[str, Any]:
        return {"p": self.p, "sign_sum": self.sign_sum, "sign_count": self.sign_count}

    def _load(self, state: Mapping[str, Any]) -> None:
        self.p = float(state["p"])
        self.sign_sum = float(state["sign_sum"])
        self.sign_count = int(state["sign_count"])
