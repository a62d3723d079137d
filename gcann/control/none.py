"""``none``: no controller. One D and one G update per step at the fixed rates the run was given."""
from __future__ import annotations

from dataclasses import dataclass

from .base import Bounds, Controller, Observation, Plan

__all__ = ["NoControl"]


class NoControl(Controller):
    name = "none"
    source = "(the baseline: plain alternating updates)"
    law = "one D and one G update per step at the fixed rates lr_d and lr_g"

    static = True
    @dataclass(frozen=True)
    class Settings:
        pass

    def _decide(self, obs: Observation) -> Plan:
        return Plan(1, 1, self.base_lr_d, self.base_lr_g)

    def bounds(self) -> Bounds:
        return Bounds((self.base_lr_d, self.base_lr_d), (self.base_lr_g, self.base_lr_g))
