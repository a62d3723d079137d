"""Metrics that judge runs, looked up by name.

A metric is a function ``fn(ctx: EvalContext) -> dict[str, float]`` registered
under a name with :func:`register_metric`; :func:`compute_metrics` runs a list of
them. The trainer's periodic evaluation hook and ``gcann eval`` both call
:func:`compute_metrics`, so a metric is written once.

Registered metrics (docs/metrics.md defines each):

* images: ``fid``, ``kid``, ``is`` (TF-Inception, offline), ``pairwise`` (pixel
  space), ``pairwise_inception`` (feature space); ``fd_domain``, ``kid_domain``
  (the Fréchet distance and KID's MMD² on the features of a small classifier
  trained on the labelled data itself, :mod:`.domain`; not FID or KID);
* voxels: ``chamfer``, ``cov``, ``mmd``, ``1nna`` (surface point clouds),
  ``pairwise`` (voxel space), ``pairwise_iou``, ``pairwise_chamfer``;
* 2-D toys: ``modes`` (the mode coverage of Welfert, Otstot, Kurri & Sankar
  (2023), (α_D, α_G)-GANs; :func:`toy_mode_metrics` is the
  batched function behind it).

A metric that cannot be computed on its input raises :class:`MetricError` with
one line saying why; one that cannot be computed here (a missing weights file)
raises :class:`MetricUnavailable`, which :func:`compute_metrics` reports as
``None`` with the reason; never a made-up number.
"""
from __future__ import annotations

from .registry import (
    METRICS,
    EvalContext,
    MetricError,
    MetricUnavailable,
    check_metric_names,
    check_metrics,
    compute_metrics,
    register_metric,
)
from . import diversity as _diversity  # noqa: F401  (registers pairwise)
from . import domain as _domain  # noqa: F401  (registers fd_domain, kid_domain)
from .fid import fid_from_features, fid_statistics, frechet_distance, inception_score, kid_from_features
from .inception import default_fid_weights, load_inception, to_uint8
from .shapes3d import chamfer_distance, chamfer_matrices, coverage_mmd, one_nn_accuracy, pairwise_chamfer, \
    surface_points
from .toy import TOY_EVAL_SAMPLES, ToyModes, evaluate_toy, grid_modes, ring_modes, toy_mode_metrics

__all__ = ["EvalContext", "METRICS", "MetricError", "MetricUnavailable", "TOY_EVAL_SAMPLES", "ToyModes",
           "chamfer_distance", "chamfer_matrices", "check_metric_names", "check_metrics", "compute_metrics", "coverage_mmd",
           "default_fid_weights", "evaluate_toy", "fid_from_features", "fid_statistics", "frechet_distance",
           "grid_modes", "inception_score", "kid_from_features", "load_inception", "one_nn_accuracy",
           "pairwise_chamfer", "register_metric", "ring_modes", "surface_points", "to_uint8", "toy_mode_metrics"]
