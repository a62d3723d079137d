"""Controllers over the rows of a batch: their plans as per-row tensors, the lag, and the event log.

Every engine (the ring study's batched seeds, the Dirac testbed's trajectories, the image trainer's
single run) trains ``S`` rows at once; each row has its own controller (any registered one, or
``none``). :class:`ControlRows` is the one place where their plans become what an engine applies:

* :meth:`ControlRows.plans` gives the current step's :class:`RowPlans`: update counts, rates, the
  diversity flag and every knob, one entry per row (rows whose controller does not set a knob get
  the engine's default for it, e.g. a ring setting's own R1 weight);
* :func:`update_rounds` is the order the counts are applied in (catch-up rounds, D's before G's);
* :meth:`ControlRows.observe` hands each live row its observation and queues the plans it leads to;
  it returns the events, one record per event (:func:`event_record`: the controller's
  :class:`~gcann.controller.Event` fields, the row and the controller's name): the caller logs them.

**The lag.** The losses of step ``t`` are measured while step ``t`` updates the networks, so they can
only decide a later step: with ``lag = L ≥ 1`` the plan observed at step ``t`` governs step
``t + L``, and the steps before the first decision follow each controller's ``initial_plan()``. The
caller reads :meth:`plans` before the step and calls :meth:`observe` after it. ``lag = 0`` is for an
engine that measures the losses of the current state before updating it (the Dirac testbed): it
calls :meth:`observe` first and then :meth:`plans`, which returns the plan just decided.

A row that has stopped (diverged) is passed ``live=False``: it is not observed and its counts are 0.
Controllers that declare themselves ``static`` (the same plan whatever they observe: ``none``,
``ttur``, ``clc``) are not called at all after their initial plan, so rows without a feedback law cost
no Python per step.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor

from gcann.controller import ControllerError, Event

from .base import KNOBS, STATISTICS, Controller, Observation, Plan

__all__ = ["ControlRows", "RowPlans", "event_record", "update_rounds"]


def update_rounds(counts: Tensor, start: int = 0):
    """The catch-up order every engine applies a plan's update counts in: round ``r = start, start + 1, ...``
    updates the rows planned more than ``r`` updates (``(r, counts > r)``), until no row is left; an engine runs
    D's rounds before G's. (The Dirac testbed's round 0 is its simultaneous or alternating step; its catch-up
    rounds start at 1.)"""
    for r in range(start, int(counts.max()) if counts.numel() else 0):
        yield r, counts > r


def event_record(event: Event, row: int | None = None, controller: str | None = None, lag: int = 0) -> dict[str, Any]:
    """The one record of a controller's event in every log (trainer, ring, Dirac testbed): ``Event.to_dict()``
    with ``observed_step`` (the step whose losses triggered it) and ``step`` (the step it governs,
    ``observed_step + lag``), plus the row and the controller."""
    out = event.to_dict()
    out["observed_step"] = out["step"]
    out["step"] = out["step"] + lag
    if row is not None:
        out["row"] = row
    if controller is not None:
        out["controller"] = controller
    return out


@dataclass
class RowPlans:
    """One step's plans of every row as CPU tensors of length ``S``."""

    d_steps: Tensor                 # long: D updates (0: paused, skipping or stopped)
    g_steps: Tensor                 # long
    lr_d: Tensor                    # float64
    lr_g: Tensor                    # float64
    use_diversity: Tensor           # bool
    knobs: dict[str, Tensor]        # float64 per knob in use (KNOBS)


class ControlRows:
    """One controller per row (see the module docstring)."""

    def __init__(self, controllers: Sequence[Controller], lag: int = 1,
                 knob_defaults: Mapping[str, Tensor | float] | None = None) -> None:
        if not controllers:
            raise ControllerError("ControlRows needs at least one row")
        if not (isinstance(lag, int) and lag >= 0):
            raise ControllerError(f"the controller lag must be an integer >= 0, got {lag!r}")
        self.controllers = list(controllers)
        self.lag = lag
        S = len(self.controllers)
        self.S = S
        used = sorted({n for c in self.controllers for n in c.knob_names} | set(knob_defaults or {}))
        unknown = [n for n in used if n not in KNOBS]
        if unknown:
            raise ControllerError(f"unknown knob(s) {', '.join(unknown)}; the knobs are {', '.join(KNOBS)}")
        self._defaults = {n: _row_tensor((knob_defaults or {}).get(n, 0.0), S, n) for n in used}
        self.dynamic = [k for k, c in enumerate(self.controllers) if not getattr(c, "static", False)]
        self.needs = tuple(s for s in STATISTICS if any(s in self.controllers[k].needs for k in self.dynamic))
        # the queue of plans still to be applied: element 0 governs the current step
        first = [c.initial_plan() for c in self.controllers]
        self._queue: list[list[Plan]] = [list(first) for _ in range(max(lag, 1))]
        self._live = torch.ones(S, dtype=torch.bool)
        self._cache: RowPlans | None = None

    @property
    def knob_names(self) -> tuple[str, ...]:
        """The knobs any row uses or the engine gave a default for."""
        return tuple(self._defaults)

    def plans(self) -> RowPlans:
        """The plans of the current step (rows stopped by ``observe(live=...)`` have counts 0)."""
        if self._cache is None:
            self._cache = self._tensors(self._queue[0])
        return self._cache

    def plan_of(self, k: int) -> Plan:
        """Row ``k``'s current plan as its controller made it (only the knobs it sets; counts 0 once stopped)."""
        p = self._queue[0][k]
        if self._live[k]:
            return p
        return Plan(0, 0, p.lr_d, p.lr_g, False, p.knobs)

    def observe(self, step: int, loss_d: Sequence[float], loss_g: Sequence[float], *,
                live: Sequence[bool] | Tensor | None = None, stats: Mapping[str, Sequence[float]] | None = None,
                epoch: int = 0, lag: int | None = None) -> list[dict[str, Any]]:
        """Observe step ``step`` of every live row; queue the plans it leads to; return the events' records
        (:func:`event_record`, governing step ``step + lag``; ``lag`` defaults to this object's: an engine that
        delays its observations itself, as the trainer, gives its own)."""
        if live is not None:
            self._live = torch.as_tensor(live, dtype=torch.bool).clone()
        missing = [s for s in self.needs if stats is None or s not in stats]
        if missing:
            raise ControllerError(f"a row's controller needs {', '.join(missing)} in each observation; the engine gave none")
        nxt = list(self._queue[-1]) if self.lag >= 1 else list(self._queue[0])
        events: list[dict[str, Any]] = []
        for k in self.dynamic:
            if not self._live[k]:
                continue
            c = self.controllers[k]
            extra = {s: float(stats[s][k]) for s in c.needs} if c.needs else {}
            plan = c.observe(Observation(step, float(loss_d[k]), float(loss_g[k]), epoch, **extra))
            nxt[k] = plan
            events.extend(event_record(e, k, c.name, self.lag if lag is None else lag) for e in plan.events)
        self._queue.append(nxt)
        self._queue.pop(0)
        self._cache = None
        return events

    # ---------------------------------------------------------------- saving
    def state_dict(self) -> dict[str, Any]:
        """Plain JSON: each row's controller state, the queued plans (events left out) and the live mask."""
        return {"lag": self.lag, "controllers": [c.state_dict() for c in self.controllers],
                "queue": [[_plan_dict(p) for p in plans] for plans in self._queue], "live": self._live.tolist()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` output; another number of rows or another lag is refused."""
        if state.get("lag") != self.lag or len(state.get("controllers", ())) != self.S:
            raise ControllerError(f"the saved controls hold {len(state.get('controllers', ()))} rows at lag "
                                  f"{state.get('lag')}; this run has {self.S} at lag {self.lag}")
        for c, st in zip(self.controllers, state["controllers"]):
            c.load_state_dict(st)
        self._queue = [[Plan(**p) for p in plans] for plans in state["queue"]]
        self._live = torch.tensor(state["live"], dtype=torch.bool)
        self._cache = None

    # ---------------------------------------------------------------- internals
    def _tensors(self, plans: list[Plan]) -> RowPlans:
        live = self._live
        knobs = {}
        for n, default in self._defaults.items():
            v = default.clone()
            for k, p in enumerate(plans):
                if n in p.knobs:
                    v[k] = p.knobs[n]
            knobs[n] = v
        return RowPlans(torch.tensor([p.d_steps for p in plans]) * live, torch.tensor([p.g_steps for p in plans]) * live,
                        torch.tensor([p.lr_d for p in plans], dtype=torch.float64),
                        torch.tensor([p.lr_g for p in plans], dtype=torch.float64),
                        torch.tensor([p.use_diversity for p in plans]) & live, knobs)


def _plan_dict(p: Plan) -> dict[str, Any]:
    d = p.to_dict()
    d.pop("events")
    return d


def _row_tensor(value: Tensor | float, S: int, name: str) -> Tensor:
    v = torch.as_tensor(value, dtype=torch.float64).flatten()
    if v.numel() == 1:
        v = v.expand(S)
    if v.numel() != S:
        raise ControllerError(f"the default of knob {name} has {v.numel()} values for {S} rows")
    return v.clone()
