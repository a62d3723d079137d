"""The control interface every training controller implements.

A controller watches training one step at a time and says what later steps do. The engines that
run GANs (the Dirac testbed, the ring study, the image and voxel trainer) build an
:class:`Observation` from each step and apply the :class:`Plan` a controller returns; a controller
never touches a network, an optimiser or a tensor, so it is written once, in plain Python, and
tested on scripted observations.

* :class:`Observation`: D's and G's losses of one step, and the statistics some laws need (the mean
  D logit on reals and on fakes, E[sign D(x_real)]), each finite; a statistic a controller does not
  declare in :attr:`Controller.needs` may be left ``None``.
* :class:`Plan`: D and G update counts (0 = paused or skipped, > 1 = catch-up), learning rates, the
  diversity flag, knob values that scale parts of the objective (:data:`KNOBS`), and the events that
  led to it (one schema, :class:`gcann.controller.Event`; the caller logs them).
* :class:`Controller`: ``initial_plan()`` before any observation, ``observe(obs) -> Plan`` after
  each step, ``state_dict()`` / ``load_state_dict()`` (plain JSON), ``bounds()`` (the box every rate
  and knob stays in). Settings are a frozen dataclass per controller (:attr:`Controller.Settings`),
  built from a mapping by :meth:`Controller.settings_from` with unknown keys and bad values refused.

Errors are :class:`gcann.controller.ControllerError` (a :class:`gcann.errors.GcannError`); a NaN or
infinite observation is :class:`gcann.controller.NonFiniteLossError`.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Mapping

from gcann.controller import ControllerError, Event, NonFiniteLossError

__all__ = ["KNOBS", "STATISTICS", "Bounds", "Controller", "Observation", "Plan", "logit_statistics", "setting"]

#: The statistics beyond the two losses that an observation may carry.
STATISTICS = ("d_real", "d_fake", "real_sign")


def logit_statistics(out_real, out_fake, mean=lambda v: v.mean()) -> dict:
    """:data:`STATISTICS` of one batch of D's logits, as every engine computes them: the mean logit on reals
    and on fakes, and E[sign D(x_real)] (ADA's r_t). ``mean`` reduces over the batch (a plain mean for the
    trainer; the ring's per-row mean over each row's valid points)."""
    import torch

    return {"d_real": mean(out_real), "d_fake": mean(out_fake), "real_sign": mean(torch.sign(out_real))}

#: The knobs a plan may set, and what each scales in the objective the engine assembles.
KNOBS = MappingProxyType({
    "r1_gamma": "the weight γ of the R1 penalty (γ/2 E‖∇D(x_real)‖²)",
    "noise_sigma": "the standard deviation of instance noise added to D's inputs",
    "clc_weight": "the weight λ of the closed-loop-control term λ E[D(x)²] in D's loss",
})


@dataclass(frozen=True)
class Observation:
    """What one training step measured, for one row (a seed, a trajectory, a grid point or a run)."""

    step: int                       # the step these values come from (0-based)
    loss_d: float                   # D's loss (minimised)
    loss_g: float                   # G's loss (minimised)
    epoch: int = 0
    d_real: float | None = None     # mean D logit on the real batch
    d_fake: float | None = None     # mean D logit on the fake batch
    real_sign: float | None = None  # E[sign D(x_real)] in [-1, 1] (ADA's r_t)

    def check(self, needs: frozenset[str] | tuple[str, ...] = ()) -> None:
        """Refuse a NaN or infinite value (:class:`NonFiniteLossError`) and a needed statistic left out."""
        bad = [f"{n}={getattr(self, n)!r}" for n in ("loss_d", "loss_g", *STATISTICS)
               if getattr(self, n) is not None and not _finite(getattr(self, n))]
        if bad:
            raise NonFiniteLossError(f"non-finite observation at step {self.step}: {', '.join(bad)}")
        missing = [n for n in needs if getattr(self, n) is None]
        if missing:
            raise ControllerError(f"this controller needs {', '.join(missing)} in each observation; the engine gave none")
        if self.real_sign is not None and not -1.0 <= self.real_sign <= 1.0:
            raise ControllerError(f"real_sign is E[sign D(x_real)] and lies in [-1, 1], got {self.real_sign!r}")


@dataclass(frozen=True)
class Plan:
    """What one step does, for one row."""

    d_steps: int                    # D updates (0: paused or skipping; > 1: catch-up)
    g_steps: int                    # G updates
    lr_d: float                     # D's learning rate for them
    lr_g: float                     # G's learning rate for them
    use_diversity: bool = False     # G's loss carries the diversity term
    knobs: Mapping[str, float] = field(default_factory=dict)   # knob name -> value (KNOBS)
    events: tuple[Event, ...] = ()  # what the controller did on the way to this plan

    def __post_init__(self) -> None:
        object.__setattr__(self, "knobs", MappingProxyType(dict(self.knobs)))

    def knob(self, name: str, default: float) -> float:
        """The plan's value of knob ``name``, or ``default`` when the controller does not set it."""
        return float(self.knobs.get(name, default))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (events as dicts)."""
        return {"d_steps": self.d_steps, "g_steps": self.g_steps, "lr_d": self.lr_d, "lr_g": self.lr_g,
                "use_diversity": self.use_diversity, "knobs": dict(self.knobs),
                "events": [e.to_dict() for e in self.events]}

    def same_as(self, other: Plan) -> bool:
        """Equal in every field (events compared as dicts)."""
        return self.to_dict() == other.to_dict()


@dataclass(frozen=True)
class Bounds:
    """The box a controller's rates and knobs stay in, whatever it observes."""

    lr_d: tuple[float, float]
    lr_g: tuple[float, float]
    knobs: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    max_steps: int = 1              # the largest update count of one network in one plan
    max_idle: int = 0               # the longest run of plans with both counts 0 (0: never both idle)

    def contains(self, plan: Plan) -> list[str]:
        """What in ``plan`` lies outside these bounds (empty: nothing)."""
        out = []
        for name, value, (lo, hi) in (("lr_d", plan.lr_d, self.lr_d), ("lr_g", plan.lr_g, self.lr_g)):
            if not (_finite(value) and lo <= value <= hi):
                out.append(f"{name}={value!r} outside [{lo}, {hi}]")
        for name, value in plan.knobs.items():
            if name not in self.knobs:
                out.append(f"knob {name!r} is not declared")
            elif not (_finite(value) and self.knobs[name][0] <= value <= self.knobs[name][1]):
                out.append(f"knob {name}={value!r} outside {list(self.knobs[name])}")
        for name, n in (("d_steps", plan.d_steps), ("g_steps", plan.g_steps)):
            if not (isinstance(n, int) and 0 <= n <= self.max_steps):
                out.append(f"{name}={n!r} outside [0, {self.max_steps}]")
        return out


def setting(default: Any, help: str, low: float | None = None, high: float | None = None,
            low_open: bool = False, high_open: bool = False, choices: tuple[Any, ...] | None = None) -> Any:
    """A controller setting: its default, one line of help and its admissible range (checked on build)."""
    meta = {"help": help, "low": low, "high": high, "low_open": low_open, "high_open": high_open, "choices": choices}
    return field(default=default, metadata=meta)


class Controller:
    """Base class of every controller; a subclass sets the class attributes and the three hooks below.

    Subclasses implement ``_initial()`` (the plan before any observation), ``_decide(obs)`` (the plan
    after ``obs``; ``obs`` is already checked), and ``_state()`` / ``_load(state)`` for what they keep
    beyond their settings. :meth:`observe`, :meth:`state_dict` and :meth:`load_state_dict` are shared.
    """

    name: ClassVar[str]
    source: ClassVar[str]           # the publication and the code it was read from
    law: ClassVar[str]              # the law in one line
    Settings: ClassVar[type]        # a frozen dataclass whose fields are made with setting()
    needs: ClassVar[tuple[str, ...]] = ()   # statistics each observation must carry
    knob_names: ClassVar[tuple[str, ...]] = ()
    static: ClassVar[bool] = False  # True: the same plan whatever is observed (engines may skip observe)

    @classmethod
    def run_defaults(cls, **run: Any) -> dict[str, Any]:
        """Settings an engine fills from what it knows of its run (a subclass's hook; the user's settings
        override them). ``run`` may hold ``steps_per_epoch``, ``batch_size``, ``loss`` (a
        ``dynamics.objectives`` name) and ``loss_hp`` (its hyper-parameters); absent keys are unknown."""
        return {}

    def __init__(self, lr_d: float, lr_g: float, settings: Any = None) -> None:
        for n, v in (("lr_d", lr_d), ("lr_g", lr_g)):
            if not (_finite(v) and v > 0):
                raise ControllerError(f"{self.name} controller: {n} must be a finite number > 0, got {v!r}")
        self.base_lr_d = float(lr_d)
        self.base_lr_g = float(lr_g)
        self.settings = settings if isinstance(settings, self.Settings) else self.settings_from(settings or {})
        self.steps_seen = 0

    # ---------------------------------------------------------------- settings
    @classmethod
    def settings_from(cls, values: Mapping[str, Any]) -> Any:
        """Build :attr:`Settings` from a mapping: unknown keys, wrong types and values out of range refused."""
        known = {f.name: f for f in dataclasses.fields(cls.Settings)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ControllerError(f"{cls.name} controller: unknown setting(s) {', '.join(unknown)}; "
                                  f"it has {', '.join(known) or 'none'}")
        out = {}
        for name, value in values.items():
            out[name] = _check_setting(cls.name, known[name], value)
        return cls.Settings(**out)

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Every setting's default."""
        return {f.name: f.default for f in dataclasses.fields(cls.Settings)}

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """Name, source, law, settings (default, range, help), needed statistics and knobs: for listings."""
        settings = {}
        for f in dataclasses.fields(cls.Settings):
            m = f.metadata
            settings[f.name] = {"default": f.default, "help": m.get("help", ""), "low": m.get("low"),
                                "high": m.get("high"), "choices": list(m["choices"]) if m.get("choices") else None}
        return {"name": cls.name, "source": cls.source, "law": cls.law, "settings": settings,
                "needs": list(cls.needs), "knobs": list(cls.knob_names)}

    # ---------------------------------------------------------------- the loop
    def initial_plan(self) -> Plan:
        """The plan of the steps before the first decision."""
        return self._initial()

    def observe(self, obs: Observation) -> Plan:
        """Take one step's observation (checked first) and return the plan it leads to."""
        obs.check(self.needs)
        plan = self._decide(obs)
        self.steps_seen += 1
        return plan

    def bounds(self) -> Bounds:
        """The box every plan of this controller stays in."""
        raise NotImplementedError

    # ---------------------------------------------------------------- saving
    def state_dict(self) -> dict[str, Any]:
        """Plain JSON: the controller's name, its settings, the base rates and what it keeps."""
        return {"controller": self.name, "settings": _jsonable(dataclasses.asdict(self.settings)),
                "lr_d": self.base_lr_d, "lr_g": self.base_lr_g, "steps_seen": self.steps_seen,
                "state": self._state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` output; a state of another controller, settings or rates is refused."""
        if not isinstance(state, Mapping) or state.get("controller") != self.name:
            got = state.get("controller") if isinstance(state, Mapping) else type(state).__name__
            raise ControllerError(f"a saved state of controller {got!r} cannot restore a {self.name!r} controller")
        mine = _jsonable(dataclasses.asdict(self.settings))
        if state.get("settings") != mine or (state.get("lr_d"), state.get("lr_g")) != (self.base_lr_d, self.base_lr_g):
            raise ControllerError(f"the saved {self.name} controller state was made with other settings or rates "
                                  f"(saved {state.get('settings')}, lr {state.get('lr_d')}/{state.get('lr_g')}; "
                                  f"here {mine}, lr {self.base_lr_d}/{self.base_lr_g})")
        self.steps_seen = int(state["steps_seen"])
        self._load(state["state"])

    # ---------------------------------------------------------------- hooks
    def _initial(self) -> Plan:
        return Plan(1, 1, self.base_lr_d, self.base_lr_g)

    def _decide(self, obs: Observation) -> Plan:
        raise NotImplementedError

    def _state(self) -> dict[str, Any]:
        return {}

    def _load(self, state: Mapping[str, Any]) -> None:
        pass


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def _check_setting(controller: str, f: dataclasses.Field, value: Any) -> Any:
    m, where = f.metadata, f"{controller} controller: setting {f.name}"
    if m.get("choices") is not None:
        if value not in m["choices"]:
            raise ControllerError(f"{where} must be one of {', '.join(map(str, m['choices']))}, got {value!r}")
        return value
    default = f.default
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ControllerError(f"{where} must be true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if not (isinstance(value, int) and not isinstance(value, bool)):
            raise ControllerError(f"{where} must be an integer, got {value!r}")
    elif isinstance(default, float):
        if not _finite(value):
            raise ControllerError(f"{where} must be a finite number, got {value!r}")
        value = float(value)
    lo, hi = m.get("low"), m.get("high")
    if lo is not None and (value < lo or (m.get("low_open") and value == lo)):
        raise ControllerError(f"{where} must be {'>' if m.get('low_open') else '>='} {lo}, got {value!r}")
    if hi is not None and (value > hi or (m.get("high_open") and value == hi)):
        raise ControllerError(f"{where} must be {'<' if m.get('high_open') else '<='} {hi}, got {value!r}")
    return value
