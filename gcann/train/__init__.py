"""The training stack the controllers (:mod:`gcann.control`) drive.

* :mod:`.config`     ``TrainConfig``: every value of a run, validated
* :mod:`.presets`    named configurations (``celeba-dcgan``, ``celeba-dcg-gcann``, ...)
* :mod:`.objective`  minibatch losses and regularisers from ``dynamics.objectives``
* :mod:`.stream`     the resumable batch stream
* :mod:`.loop`       ``Trainer``: the one training loop (the controller's plans, the lag)
* :mod:`.optimiser`  ``NetworkAdam``: the project's one Adam (``dynamics.optim.RowOptimiser``), a network as one row
* :mod:`.checkpoint` atomic checkpoints, ``load_generator``
* :mod:`.distributed` data parallelism under ``torchrun``
* :mod:`.plots`      sample grids, voxel renders, loss curves
* :mod:`.sweep`      multi-seed / multi-config sweeps through submitit
"""
from .config import ConfigError, TrainConfig
from .loop import RunError, RunResult, Trainer, TrainingDiverged, TrainingInterrupted
from .presets import TRAIN_PRESETS, train_preset

__all__ = ["ConfigError", "RunError", "RunResult", "TRAIN_PRESETS", "Trainer", "TrainConfig", "TrainingDiverged",
           "TrainingInterrupted",
           "train_preset"]
