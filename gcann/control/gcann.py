"""``gcann`` and its ablations: the GCANN controller (:mod:`gcann.controller`) behind the control interface.

Source: E. Estal, "Guided Convergence Adversarial Neural Networks" (the GCANN paper); the
controller's rules, the paper's ambiguities and the choices made here are in ``docs/gcann.md``.

Settings are :class:`gcann.controller.GCANNConfig`'s fields (``preset`` picks a named set of them
first, ``paper-celeba`` by default); the rates come from the run (``lr_d``, ``lr_g``), and the rate
bounds left unset resolve to 1e-2 and 1e2 times them. The ablations switch GCANN's mechanisms off:

* ``gcann-reactive``: the reactive rule only (rate changes and catch-ups when the gap exceeds
  ``max_loss_diff``);
* ``gcann-proactive``: the proactive window rule only;
* ``gcann-skip``: the pause and skip thresholds only (rates stay fixed);
* ``gcann-div``: the diversity term only.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Mapping

from gcann.controller import MECHANISMS, ControllerError, GCANNConfig, GCANNController
from gcann.presets import PRESETS, preset

from .base import Bounds, Controller, Observation, Plan

__all__ = ["ABLATIONS", "GCANN"]

#: The ablations: controller name -> the one mechanism left on.
ABLATIONS = {
    "gcann-reactive": "reactive_rule",
    "gcann-proactive": "proactive_rule",
    "gcann-skip": "pause_and_skip",
    "gcann-div": "diversity_loss",
}


class GCANN(Controller):
    name = "gcann"
    source = "Estal, Guided Convergence Adversarial Neural Networks (the GCANN paper); docs/gcann.md"
    law = ("loss-gap and gap-slope rules scale lr_D and lr_G (with catch-up bursts), pause and skip thresholds "
           "idle the stronger network, a bounded diversity term joins G's loss every few steps")
    Settings = GCANNConfig
    mechanisms: ClassVar[Mapping[str, bool]] = {}   # switches an ablation fixes

    def __init__(self, lr_d: float, lr_g: float, settings: Any = None) -> None:
        if isinstance(settings, GCANNConfig):
            if (settings.lr_d, settings.lr_g) != (lr_d, lr_g):
                raise ControllerError(f"{self.name} controller: the config's rates {settings.lr_d}/{settings.lr_g} "
                                      f"are not the run's {lr_d}/{lr_g}")
            wrong = sorted(m for m, v in self.mechanisms.items() if getattr(settings, m) != v)
            if wrong:
                raise ControllerError(f"{self.name} controller: the config sets {', '.join(wrong)}, which this "
                                      f"ablation fixes")
            super().__init__(lr_d, lr_g, settings)
        else:
            super().__init__(lr_d, lr_g, {})
            self.settings = self._config(dict(settings or {}))
        self.core = GCANNController(self.settings, keep_events=False)

    @classmethod
    def run_defaults(cls, **run: Any) -> dict[str, Any]:
        """The run's steps per epoch convert the preset's warm-up (``baseline_epochs``) to steps."""
        return {} if run.get("steps_per_epoch") is None else {"steps_per_epoch": int(run["steps_per_epoch"])}

    def _config(self, values: dict[str, Any]) -> GCANNConfig:
        name = values.pop("preset", "paper-celeba")
        steps_per_epoch = values.pop("steps_per_epoch", None)
        if name not in PRESETS:
            raise ControllerError(f"{self.name} controller: unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}")
        fixed = sorted(set(values) & set(self.mechanisms))
        if fixed:
            raise ControllerError(f"{self.name} controller: {', '.join(fixed)} is fixed by this ablation; "
                                  f"use the gcann controller to set it")
        for rate in ("lr_d", "lr_g"):
            if rate in values:
                raise ControllerError(f"{self.name} controller: {rate} is the run's rate (give it to the run), "
                                      f"not a controller setting")
        known = {f.name for f in dataclasses.fields(GCANNConfig)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ControllerError(f"{self.name} controller: unknown setting(s) {', '.join(unknown)}")
        return preset(name, steps_per_epoch=steps_per_epoch, lr_d=self.base_lr_d, lr_g=self.base_lr_g,
                      **{**values, **self.mechanisms})

    @classmethod
    def settings_from(cls, values: Mapping[str, Any]) -> GCANNConfig:
        return GCANNConfig(**{**dict(values), **cls.mechanisms})

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        d = preset("paper-celeba").to_dict()
        for k in ("lr_d", "lr_g", "lr_d_min", "lr_d_max", "lr_g_min", "lr_g_max"):
            d.pop(k)
        return {"preset": "paper-celeba", **d, **cls.mechanisms}

    @classmethod
    def describe(cls) -> dict[str, Any]:
        settings = {k: {"default": v, "help": "GCANNConfig." + k, "low": None, "high": None, "choices": None}
                    for k, v in cls.defaults().items()}
        settings["preset"]["help"] = f"a named GCANN configuration first ({', '.join(sorted(PRESETS))})"
        return {"name": cls.name, "source": cls.source, "law": cls.law, "settings": settings,
                "needs": [], "knobs": []}

    def _initial(self) -> Plan:
        return Plan(1, 1, self.settings.lr_d, self.settings.lr_g)

    def _decide(self, obs: Observation) -> Plan:
        dec = self.core.observe(obs.loss_d, obs.loss_g)
        return Plan((1 + dec.extra_d_steps) if dec.train_d else 0, (1 + dec.extra_g_steps) if dec.train_g else 0,
                    dec.lr_d, dec.lr_g, dec.use_diversity, {}, dec.events)

    def bounds(self) -> Bounds:
        c = self.settings
        return Bounds((c.lr_d_min, c.lr_d_max), (c.lr_g_min, c.lr_g_max), {}, max_steps=1 + c.max_skip_iterations)

    def state_dict(self) -> dict[str, Any]:
        out = super().state_dict()
        out["settings"] = self.settings.to_dict()
        return out

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if isinstance(state, Mapping) and state.get("controller") == self.name:
            # the settings are checked by the core, field by field, with a message naming each difference
            state = {**state, "settings": self.settings.to_dict()}
        super().load_state_dict(state)

    def _state(self) -> dict[str, Any]:
        return self.core.state_dict()

    def _load(self, state: Mapping[str, Any]) -> None:
        self.core.load_state_dict(dict(state))


def _ablation(name: str, on: str) -> type[GCANN]:
    switches = {m: m == on for m in MECHANISMS}
    doc = f"GCANN with only {on.replace('_', ' ')} on (an ablation)."
    return type(f"GCANN_{on}", (GCANN,), {"name": name, "mechanisms": switches, "__doc__": doc,
                                          "law": f"GCANN with {on.replace('_', ' ')} only; the other mechanisms off"})


GCANN_ABLATIONS = {name: _ablation(name, on) for name, on in ABLATIONS.items()}
