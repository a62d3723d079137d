"""``gap``: gap-aware learning-rate scheduling of the discriminator.

Source: H. Hazimeh & N. Ponomareva, "Gap-aware learning rate scheduling for adversarial nets",
AISTATS 2023; code google-research ``adversarial_nets_lr_scheduler`` (``demo.ipynb``).

Law, per step: D's loss is smoothed, ``s ← d·s + (1 − d)·L_D`` (d = 0.95, ``s`` starts at V*),
and with ``x = s − V*``, D's rate is the base rate times

* ``clip(f_max ** (x / x_max), 1, f_max)`` when ``x > 0`` (D is losing: speed it up),
* ``clip(h_min ** (−x / x_min), h_min, 1)`` otherwise (D is winning: slow it down);

the base rate is rescaled every step (it does not compound); G keeps its rate. V* is D's loss at the
game's equilibrium (the generator's distribution equals the data's, D at its best): the minimum
over one output t, given to reals and fakes alike, of D's loss, computed from the objective's own
definition in :mod:`dynamics.objectives` (log 4 for the standard GAN, (b − a)²/4 for LSGAN, 2 for
the hinge loss, 2·A(1 − 2^(−1/A)), A = α/(α − 1), for the α-losses). Where V* is 0 (WGAN: D's loss
does not measure a gap) the law is undefined, and the controller refuses. Defaults from the source:
h_min 0.1, f_max 2, x_min = x_max = 0.1·V*.

One difference: the source computes the new rate from the current batch's loss and uses it for the
same step; here, as for every controller, a step's observation decides a later step (the engine's lag).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Mapping

from gcann.controller import ControllerError

from .base import Bounds, Controller, Observation, Plan, setting

__all__ = ["GapAware", "ideal_d_loss", "multiplier"]

LOG4 = math.log(4.0)


def ideal_d_loss(loss: str, hp: Mapping[str, float] | None = None) -> float:
    """V*: D's loss at the equilibrium, ``min_t loss_d(t, t)``, from the objective's definition.

    Refuses (:class:`ControllerError`) an objective whose D loss is constant there (WGAN) or that
    needs a penalty to be defined (GAN-QP). Computed once per objective and hyper-parameters (a search
    of about 30 ms; an engine builds one controller per row)."""
    return _ideal_d_loss(loss, tuple(sorted(dict(hp or {}).items())))


@functools.lru_cache(maxsize=256)
def _ideal_d_loss(loss: str, hp_items: tuple) -> float:
    hp = dict(hp_items)
    import torch
    from scipy.optimize import minimize_scalar

    from dynamics.objectives import GAN_LOSSES, METHODS, Context, ObjectiveError

    if loss not in GAN_LOSSES:
        raise ControllerError(f"gap controller: unknown loss {loss!r}; choose from {', '.join(GAN_LOSSES)}")
    gl = GAN_LOSSES[loss]
    if not getattr(gl, "separable", True):
        raise ControllerError(f"gap controller: the {loss} loss couples reals and fakes; D's loss at the "
                              f"equilibrium is not defined for it")
    defaults = METHODS[loss]().defaults if loss in METHODS else {}
    values = {**defaults, **dict(hp or {})}
    missing = [p for p in getattr(gl, "params", ()) if p not in values]
    if missing:
        raise ControllerError(f"gap controller: the {loss} loss needs {', '.join(missing)} to give D's loss at the "
                              f"equilibrium")

    def at(t: float) -> float:
        x = torch.tensor([t], dtype=torch.float64)
        try:
            return float(gl.d(x, x, Context(x, x, values)).sum())
        except ObjectiveError as e:
            raise ControllerError(f"gap controller: {e}") from None

    grid = [k / 4 for k in range(-80, 81)]
    t0 = min(grid, key=at)
    best = minimize_scalar(at, bounds=(t0 - 0.25, t0 + 0.25), method="bounded", options={"xatol": 1e-10})
    v = min(at(t0), float(best.fun))
    if not math.isfinite(v) or abs(v) < 1e-12:
        raise ControllerError(f"gap controller: D's {loss} loss does not measure a gap at the equilibrium "
                              f"(V* = {v:g}); the law is undefined for it")
    return v


def multiplier(x: float, x_min: float, x_max: float, h_min: float, f_max: float) -> float:
    """The source's scheduler: the factor on D's base rate for a gap ``x`` of the smoothed loss above V*."""
    # the exponent is capped at 1, where the clip binds anyway (f_max >= 1 >= h_min): no overflow
    if x > 0:
        return min(max(f_max ** min(x / x_max, 1.0), 1.0), f_max)
    return min(max(h_min ** min(-x / x_min, 1.0), h_min), 1.0)


class GapAware(Controller):
    name = "gap"
    source = "Hazimeh & Ponomareva, AISTATS 2023 (google-research adversarial_nets_lr_scheduler)"
    law = ("lr_D = base x f(s - V*), s an EMA (0.95) of D's loss, V* its equilibrium value, f clipped to "
           "[h_min, f_max] = [0.1, 2]; G's rate fixed")

    @dataclass(frozen=True)
    class Settings:
        loss: str = setting("gan", "the objective whose V* is used, at its default hyper-parameters "
                                   "(dynamics.objectives' name); the engine sets it")
        ideal_loss: float = setting(0.0, "V* given directly, e.g. ideal_d_loss(loss, hp) for other "
                                         "hyper-parameters (0: computed from loss)", low=0.0)
        decay: float = setting(0.95, "EMA decay of D's loss", low=0.0, high=1.0, high_open=True)
        h_min: float = setting(0.1, "the smallest factor on D's rate", low=0.0, high=1.0, low_open=True)
        f_max: float = setting(2.0, "the largest factor on D's rate", low=1.0)
        x_min: float = setting(0.0, "gap below V* at which the factor reaches h_min (0: 0.1 V*)", low=0.0)
        x_max: float = setting(0.0, "gap above V* at which the factor reaches f_max (0: 0.1 V*)", low=0.0)

    @classmethod
    def run_defaults(cls, **run: Any) -> dict[str, Any]:
        """The run's objective and its hyper-parameters give V*."""
        if run.get("loss") is None:
            return {}
        return {"loss": run["loss"], "ideal_loss": ideal_d_loss(run["loss"], run.get("loss_hp"))}

    def __init__(self, lr_d: float, lr_g: float, settings: Any = None) -> None:
        super().__init__(lr_d, lr_g, settings)
        s = self.settings
        self.ideal = s.ideal_loss if s.ideal_loss > 0 else ideal_d_loss(s.loss)
        self.x_min = s.x_min if s.x_min > 0 else 0.1 * self.ideal
        self.x_max = s.x_max if s.x_max > 0 else 0.1 * self.ideal
        self.smoothed = self.ideal

    def _decide(self, obs: Observation) -> Plan:
        s = self.settings
        self.smoothed = s.decay * self.smoothed + (1.0 - s.decay) * obs.loss_d
        m = multiplier(self.smoothed - self.ideal, self.x_min, self.x_max, s.h_min, s.f_max)
        return Plan(1, 1, self.base_lr_d * m, self.base_lr_g)

    def bounds(self) -> Bounds:
        s = self.settings
        return Bounds((self.base_lr_d * s.h_min, self.base_lr_d * s.f_max), (self.base_lr_g, self.base_lr_g))

    def _state(self) -> dict[str, Any]:
        return {"smoothed": self.smoothed, "ideal": self.ideal}

    def _load(self, state: Mapping[str, Any]) -> None:
        if float(state["ideal"]) != self.ideal:
            raise ControllerError(f"the saved gap controller state has V* = {state['ideal']}, this run {self.ideal}")
        self.smoothed = float(state["smoothed"])
