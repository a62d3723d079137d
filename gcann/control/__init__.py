"""Training controllers as plug-ins: one interface (:mod:`gcann.control.base`), one file per controller.

===================  =====================================================================
name                 law (the module's docstring cites its source)
===================  =====================================================================
``none``             one D and one G update per step at fixed rates
``gcann``            the GCANN controller (``gcann-reactive``, ``-proactive``, ``-skip``,
                     ``-div``: its ablations, one mechanism each)
``ttur``             fixed unequal rates, D's a multiple of G's (Heusel et al. 2017)
``gap``              D's rate scaled by the gap of its smoothed loss to its equilibrium value
                     (Hazimeh & Ponomareva 2023)
``clc``              negative feedback λ E[D(x)²] on D's output (Xu et al. 2020)
``ada``              ADA's integrator on E[sign D(x_real)] driving instance noise or R1's weight
                     (after Karras et al. 2020)
===================  =====================================================================

``gcann controllers`` lists them with their settings. A new controller is one new module with a
:class:`~gcann.control.base.Controller` subclass, and one line in :data:`CONTROLLERS`; the shared
contract tests (``tests/control/test_contract.py``) then run on it.
"""
from __future__ import annotations

from typing import Any, Mapping

from gcann.controller import ControllerError

from .base import KNOBS, STATISTICS, Bounds, Controller, Observation, Plan
from .rows import ControlRows, RowPlans, event_record, update_rounds
from .ada import ADA
from .clc import CLC
from .gap import GapAware
from .gcann import GCANN, GCANN_ABLATIONS
from .none import NoControl
from .ttur import TTUR

__all__ = ["CONTROLLERS", "KNOBS", "STATISTICS", "Bounds", "ControlRows", "Controller", "Observation", "Plan", "RowPlans",
           "event_record", "make_controller", "update_rounds"]

#: Every registered controller by name.
CONTROLLERS: dict[str, type[Controller]] = {
    NoControl.name: NoControl,
    GCANN.name: GCANN,
    **GCANN_ABLATIONS,
    TTUR.name: TTUR,
    GapAware.name: GapAware,
    CLC.name: CLC,
    ADA.name: ADA,
}


def make_controller(name: str, lr_d: float, lr_g: float, settings: Mapping[str, Any] | Any = None,
                    **run: Any) -> Controller:
    """The controller ``name`` for a run at rates ``lr_d``, ``lr_g`` with ``settings`` (its defaults otherwise).

    ``run`` describes the run (``steps_per_epoch``, ``batch_size``, ``loss``, ``loss_hp``); a controller
    fills the settings that depend on it (:meth:`Controller.run_defaults`: GCANN's warm-up in steps,
    ADA's batch, the gap controller's V*) unless ``settings`` gives them. ``settings`` may also be the
    controller's own settings object (a ``GCANNConfig``)."""
    if name not in CONTROLLERS:
        raise ControllerError(f"unknown controller {name!r}; choose from {', '.join(CONTROLLERS)}")
    cls = CONTROLLERS[name]
    if settings is None or isinstance(settings, Mapping):
        settings = {**cls.run_defaults(**run), **(settings or {})}
    return cls(lr_d, lr_g, settings)
