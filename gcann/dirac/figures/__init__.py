"""Every figure of the Dirac-GAN testbed and of the GCANN controller on it (matplotlib only, no display
needed; each function returns a :class:`matplotlib.figure.Figure` built without ``pyplot``).

* :mod:`.fields`      :func:`vector_field`, :func:`vector_fields` (the (θ, ψ) field with ODE / simGD / altGD
                      trajectories), :func:`theta_plane` (θ ∈ ℝ² in the 2-D forms of Su 2019),
                      :func:`ema_comparison`, :func:`all_methods` (one panel per method, with verdicts),
                      :func:`animate` (a GIF)
* :mod:`.r1_locus`    :func:`r1_locus`: the R1 Jacobian's eigenvalues over γ against the closed form
                      (Mescheder, Geiger & Nowozin 2018)
* :mod:`.controller`  the GCANN controller's figures: :func:`trajectories_with_without`,
                      :func:`loss_curves_with_events`, :func:`trajectories_figure`, :func:`loss_events_figure`
* :mod:`.registry`    every figure by name (:data:`PLOTS`, :data:`GCANN_PLOTS`, :data:`FIGURES`),
                      :func:`draw` (one by name), :func:`make_all` and :func:`make_gcann_figures`
                      (``gcann dirac plot --all``)
* :mod:`.common`      :func:`save` (atomic; png, pdf, svg), :class:`FigureError`, the shared helpers

Bad values raise a one-line :class:`FigureError` (a :class:`gcann.errors.GcannError` and a ``ValueError``);
unknown methods or hyper-parameters the objective's own ``ObjectiveError``.
"""
from .common import FORMATS, METHOD_NAMES, PARAM_SYMBOLS, FigureError, hp_label, make_game, run, save
from .controller import (
    EVENT_STYLE, loss_curves_with_events, loss_events_figure, trajectories_figure, trajectories_with_without,
)
from .fields import SU_CASES, SU_INIT, all_methods, animate, ema_comparison, theta_plane, vector_field, vector_fields
from .r1_locus import r1_closed_form, r1_locus, r1_locus_data
from .registry import FIGURES, GCANN_PLOTS, GIF_METHODS, PLOTS, QUICK, draw, make_all, make_gcann_figures

__all__ = [
    "FORMATS", "METHOD_NAMES", "PARAM_SYMBOLS", "FigureError", "hp_label", "make_game", "run", "save",
    "EVENT_STYLE", "loss_curves_with_events", "loss_events_figure", "trajectories_figure",
    "trajectories_with_without", "SU_CASES", "SU_INIT", "all_methods", "animate", "ema_comparison", "theta_plane",
    "vector_field", "vector_fields", "r1_closed_form", "r1_locus", "r1_locus_data", "FIGURES", "GCANN_PLOTS",
    "GIF_METHODS", "PLOTS", "QUICK", "draw", "make_all", "make_gcann_figures",
]
