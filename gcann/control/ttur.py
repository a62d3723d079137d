"""``ttur``: the two time-scale update rule, open loop.

Source: M. Heusel, H. Ramsauer, T. Unterthiner, B. Nessler & S. Hochreiter, "GANs trained by a two
time-scale update rule converge to a local Nash equilibrium", NeurIPS 2017; code bioinf-jku/TTUR.

Law: fixed, unequal rates; D's rate is ``ratio`` times G's (the run's ``lr_g``; the run's ``lr_d``
is not used), one update of each per step. The default ratio 3 is the paper's code's
(``gan_64x64_FID.py`` and ``gan_language_JSD.py``: D 3e-4, G 1e-4 with ``TTUR = True``). The
widely quoted 4:1 (4e-4 / 1e-4) comes from later work (SAGAN), not from this source; the source's
DCGAN figures use other pairs (CelebA 5e-4 / 1e-5). Set ``ratio`` for those.
"""
from __future__ import annotations

from dataclasses import dataclass

from .base import Bounds, Controller, Observation, Plan, setting

__all__ = ["TTUR"]


class TTUR(Controller):
    name = "ttur"
    source = "Heusel et al., NeurIPS 2017 (bioinf-jku/TTUR)"
    law = "open loop: lr_D = ratio x lr_G (3 by default, the source code's 3e-4/1e-4), one update each"

    static = True
    @dataclass(frozen=True)
    class Settings:
        ratio: float = setting(3.0, "D's rate over G's", low=0.0, low_open=True)

    def _rates(self) -> tuple[float, float]:
        return self.settings.ratio * self.base_lr_g, self.base_lr_g

    def _initial(self) -> Plan:
        return Plan(1, 1, *self._rates())

    def _decide(self, obs: Observation) -> Plan:
        return Plan(1, 1, *self._rates())

    def bounds(self) -> Bounds:
        lr_d, lr_g = self._rates()
        return Bounds((lr_d, lr_d), (lr_g, lr_g))
