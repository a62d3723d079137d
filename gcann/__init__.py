"""gcann: the GCANN training controller, its torch adapter and the command line.

The controller (:mod:`gcann.controller`) is plain Python; importing this package
does not import torch.
"""
from .controller import Decision, Event, GCANNConfig, GCANNController, NonFiniteLossError
from .presets import PRESETS, preset

__all__ = ["Decision", "Event", "GCANNConfig", "GCANNController", "NonFiniteLossError", "PRESETS", "preset"]
__version__ = "0.1.0"
