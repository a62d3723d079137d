"""Dirac-GAN dynamics: objectives, vector fields, batched simulators, spectra, verdicts."""
from .objectives import (
    GAN_LOSSES,
    METHODS,
    PENALTIES,
    Objective,
    ObjectiveError,
    custom_objective,
    logit_losses,
    get_objective,
)
from .dirac import DiracGAN
from .simulate import OptimiserSpec, SimulationError, Trajectory, ema, simulate

__all__ = [
    "GAN_LOSSES", "METHODS", "PENALTIES", "Objective", "ObjectiveError", "custom_objective", "get_objective", "logit_losses",
    "DiracGAN", "OptimiserSpec", "SimulationError", "Trajectory", "ema", "simulate",
]
from .spectrum import Spectrum, differentiable_at_equilibrium, equilibrium_jacobian, jacobian, max_stable_lr, spectral_radius, spectrum
from .verdict import Tolerances, circle_points, classify, steps_to_reach, summarise

__all__ += [
    "Spectrum", "differentiable_at_equilibrium", "equilibrium_jacobian", "jacobian", "max_stable_lr", "spectral_radius", "spectrum",
    "Tolerances", "circle_points", "classify", "steps_to_reach", "summarise",
]
