"""Named GCANN configurations carrying the paper's hyper-parameters.

Each :class:`Preset` holds the values the paper states for one experiment and
records which of them the paper fixes (``paper_values``); every other field of
:class:`~gcann.controller.GCANNConfig` keeps its documented default. The warm-up
is given in epochs, as in the paper, and converted to steps with
``steps_per_epoch`` (dataset size / batch size, rounded up).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Mapping

from gcann.controller import ControllerError, GCANNConfig

__all__ = ["PRESETS", "Preset", "preset"]

_CONFIG_FIELDS = frozenset(f.name for f in fields(GCANNConfig))


@dataclass(frozen=True)
class Preset:
    """One experiment of the paper as a controller configuration."""

    name: str                      # key in PRESETS
    description: str               # what the experiment is
    values: Mapping[str, Any]      # GCANNConfig keyword arguments set by this preset
    paper_values: frozenset[str]   # names (config fields and the training settings below) the paper fixes
    baseline_epochs: int           # warm-up in epochs (paper baseline_epochs)
    steps_per_epoch: int           # ceil(dataset size / batch_size), used to turn epochs into steps
    epochs: int = 100              # training length in the paper (both experiments)
    batch_size: int = 128          # batch size in the paper (both experiments)
    notes: tuple[str, ...] = field(default=())  # where non-paper values come from

    def config(self, *, steps_per_epoch: int | None = None, **overrides: Any) -> GCANNConfig:
        """The :class:`GCANNConfig` of this preset, with optional overrides."""
        unknown = sorted(set(overrides) - _CONFIG_FIELDS)
        if unknown:
            raise ControllerError(f"unknown GCANNConfig field(s) for preset {self.name!r}: {', '.join(unknown)}")
        spe = self.steps_per_epoch if steps_per_epoch is None else steps_per_epoch
        kwargs = {**self.values, **overrides}
        if "baseline_steps" in overrides:
            return GCANNConfig(**kwargs)
        return GCANNConfig.from_epochs(self.baseline_epochs, spe, **kwargs)


_CELEBA = Preset(
    name="paper-celeba",
    description="DCG-GCANN on CelebA 64x64 images",
    values=MappingProxyType({
        "max_loss_diff": 3.0,
        "target_slope_range": (-0.1, 0.1),
        "gc_lr_window": 100,
        "discriminator_pause_threshold": 0.025,
        "generator_pause_threshold": 0.01,
        "discriminator_skip_threshold": 0.05,
        "generator_skip_threshold": 0.05,
        "max_skip_iterations": 25,
        "cooldown_period": 100,
        "diversity_weight": 1.0,
        "diversity_check_interval": 5,
        "topend_diversity_loss": 3.0,
        "bottomend_diversity_loss": 0.001,
    }),
    paper_values=frozenset({
        "max_loss_diff", "target_slope_range", "gc_lr_window", "discriminator_pause_threshold",
        "generator_pause_threshold", "discriminator_skip_threshold", "generator_skip_threshold",
        "max_skip_iterations", "cooldown_period", "baseline_epochs", "diversity_weight",
        "diversity_check_interval", "topend_diversity_loss", "bottomend_diversity_loss",
        "epochs", "batch_size",
    }),
    baseline_epochs=1,
    steps_per_epoch=1583,
    notes=(
        "steps_per_epoch=1583 = ceil(202599 CelebA images / 128)",
        "lr_d, lr_g not given: DCGAN defaults 2e-4",
        "alpha, beta not given: the paper's 3DBiCar values 0.8, 0.6",
        "slope_thresh_scale is 'dynamically tuned' with no rule given: our feedback rule (docs/gcann.md item 17)",
    ),
)

_BICAR3D = Preset(
    name="paper-bicar3d",
    description="3D DCG-GCANN on 3DBiCar voxelised biped cartoon characters",
    values=MappingProxyType({
        "lr_d": 1e-4,
        "lr_g": 1e-4,
        "alpha": 0.8,
        "beta": 0.6,
        "max_loss_diff": 3.0,
        "diversity_weight": 1.0,
        "diversity_check_interval": 10,
        "topend_diversity_loss": 5.0,
        "bottomend_diversity_loss": 0.01,
        "cooldown_period": 150,
        "target_slope_range": (0.001, 0.2),
        "max_skip_iterations": 30,
    }),
    paper_values=frozenset({
        "lr_d", "lr_g", "alpha", "beta", "max_loss_diff", "diversity_weight", "diversity_check_interval",
        "topend_diversity_loss", "bottomend_diversity_loss", "cooldown_period", "target_slope_range",
        "max_skip_iterations", "epochs", "batch_size",
    }),
    baseline_epochs=1,
    steps_per_epoch=12,
    notes=(
        "steps_per_epoch=12 = ceil(1500 3DBiCar models / 128)",
        "baseline_epochs, gc_lr_window, pause and skip thresholds not given: CelebA values",
        "slope_thresh_scale is 'dynamically tuned' with no rule given: our feedback rule (docs/gcann.md item 17)",
    ),
)

#: Named configurations, looked up by :func:`preset`.
PRESETS: Mapping[str, Preset] = MappingProxyType({p.name: p for p in (_CELEBA, _BICAR3D)})


def preset(name: str, *, steps_per_epoch: int | None = None, **overrides: Any) -> GCANNConfig:
    """The :class:`GCANNConfig` of preset ``name`` with ``overrides`` applied.

    ``steps_per_epoch`` replaces the preset's (dataset-derived) value when the
    warm-up ``baseline_epochs`` is converted to ``baseline_steps``; passing
    ``baseline_steps`` directly overrides the conversion.
    """
    try:
        p = PRESETS[name]
    except KeyError:
        raise ControllerError(f"unknown GCANN preset {name!r}; known presets: {', '.join(sorted(PRESETS))}") from None
    return p.config(steps_per_epoch=steps_per_epoch, **overrides)
