"""What the trainer does at each step: a plan from the controller (or none).

The GCANN controller (:mod:`gcann.controller`, torch-free) observes one pair of
losses and returns a :class:`~gcann.controller.Decision`; here that decision
becomes a :class:`Plan`: how many D and G updates this step takes, at which
learning rates, and whether G's loss carries the diversity term.

Timing (the lag). The losses of step ``t`` are measured while step ``t``
updates the networks, so they can only decide a later step: the decision
computed from step ``t``'s losses governs step ``t + lag``. ``lag = 1`` is the
tightest loop (the default on CPU). On CUDA the losses are copied to the host
without blocking and read one step later (``lag = 2``), so that the controller
never forces a host-device synchronisation in the middle of a step
(``controller_lag`` in the config; ``docs/training.md`` has the measurement).
Steps before the first decision train both networks once at the initial
learning rates, without the diversity term.

Any object with ``observe(loss_d, loss_g) -> tuple[events]``, ``plan() -> Plan``,
``state_dict()`` and ``load_state_dict()`` can drive the trainer (tests inject a
scripted one).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from gcann.adapter import plan as decision_plan
from gcann.controller import Event, GCANNController

__all__ = ["ConstantControl", "Control", "GCANNControl", "Plan"]


@dataclass(frozen=True)
class Plan:
    """One step of training."""

    d_steps: int          # D updates this step (0: D paused or skipping)
    g_steps: int          # G updates this step (0: G paused or skipping)
    lr_d: float           # D's learning rate for these updates
    lr_g: float           # G's learning rate for these updates
    use_diversity: bool   # G's loss carries the diversity term


class Control(Protocol):
    def observe(self, loss_d: float, loss_g: float) -> tuple[Event, ...]: ...
    def plan(self) -> Plan: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class ConstantControl:
    """No controller: one D and one G update per step at fixed learning rates."""

    def __init__(self, lr_d: float, lr_g: float) -> None:
        self._plan = Plan(1, 1, lr_d, lr_g, False)

    def observe(self, loss_d: float, loss_g: float) -> tuple[Event, ...]:
        return ()

    def plan(self) -> Plan:
        return self._plan

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class GCANNControl:
    """The GCANN controller's decisions as plans; before its first decision, a plain step."""

    def __init__(self, controller: GCANNController) -> None:
        self.controller = controller
        c = controller.config
        self._next: Plan | None = None
        self._default = Plan(1, 1, c.lr_d, c.lr_g, False)

    def observe(self, loss_d: float, loss_g: float) -> tuple[Event, ...]:
        decision = self.controller.observe(loss_d, loss_g)
        steps = decision_plan(decision)
        self._next = Plan(steps.d_steps, steps.g_steps, decision.lr_d, decision.lr_g, steps.use_diversity)
        return decision.events

    def plan(self) -> Plan:
        return self._next if self._next is not None else self._default

    def state_dict(self) -> dict[str, Any]:
        nxt = None if self._next is None else vars(self._next).copy()
        return {"controller": self.controller.state_dict(), "next": nxt}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.controller.load_state_dict(state["controller"])
        self._next = None if state["next"] is None else Plan(**state["next"])
