"""The 2-D ring study of Welfert et al. 2023 ((α_D, α_G)-GANs), every seed of a setting trained in one batched model.

* :mod:`gcann.ring.data`: the 8-Gaussian ring and the 5×5 grid, one stream of random
  numbers per seed;
* :mod:`gcann.ring.models`: stacked MLPs (batched matmuls) and a per-seed masked Adam;
* :mod:`gcann.ring.train`: :func:`train_ring` (settings and seeds along the batch,
  one GCANN controller per +gcann row) and :func:`evaluate_run`;
* :mod:`gcann.ring.study`: the study behind ``gcann ring study``;
* :mod:`gcann.ring.plots`: its figures and Welfert et al.'s 1-D toy.

See ``docs/ring.md``.
"""
from .data import RingError
from .train import EMA_BETA, LR, R1_GAMMA, RingRun, RingSetting, StateError, evaluate_run, ring_gcann_config, train_ring

__all__ = ["EMA_BETA", "LR", "R1_GAMMA", "RingError", "RingRun", "RingSetting", "StateError", "evaluate_run",
           "ring_gcann_config", "train_ring"]
