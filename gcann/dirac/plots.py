"""Kept for :mod:`gcann.ring.plots`, which imports ``EVENT_STYLE`` from here: the GCANN controller's figures
live in :mod:`gcann.dirac.figures.controller` (and :mod:`gcann.dirac.figures.registry`); import them from there."""
from gcann.dirac.figures.controller import (  # noqa: F401
    EVENT_STYLE, loss_curves_with_events, loss_events_figure, trajectories_figure, trajectories_with_without,
)
from gcann.dirac.figures.registry import GCANN_PLOTS, make_gcann_figures  # noqa: F401
