"""The GCANN controller's settings for a Dirac-GAN run: the paper's ``paper-celeba`` preset and the
changes a 2000-step Dirac run needs (:data:`DIRAC_CHANGES`, each with its reason).

See ``docs/gcann_dirac.md``.
"""
from __future__ import annotations

from typing import Any, Mapping

from gcann.controller import MECHANISMS, GCANNConfig
from gcann.presets import preset

__all__ = ["DEFAULT_LR", "DIRAC_CHANGES", "DIRAC_CONFIG", "controller_settings", "dirac_config", "paper_config"]

#: Learning rate of the table runs (both players, SGD).
DEFAULT_LR = 0.1

#: Changes from the ``paper-celeba`` preset for a 2000-step Dirac run, and why.
DIRAC_CHANGES: dict[str, tuple[object, object, str]] = {
    # field: (paper value, Dirac value, reason)
    "gc_lr_window": (100, 20, "the paper has ~158k steps (100 epochs x 1583); a 2000-step Dirac run with 100-step "
                               "windows would see only 20 windows; 20-step windows give 100, and are still longer "
                               "than a quarter of the oscillation period 2*pi/(c*h) ~ 126 steps at c = 0.5, h = 0.1"),
    "cooldown_period": (100, 20, "kept equal to the window, as in the paper (both 100)"),
    "baseline_steps": (1583, 100, "the paper's warm-up is 1 epoch = 1583 steps, i.e. 80% of a 2000-step run; 100 steps "
                                  "(5 windows) is enough for the slope threshold to see a few windows"),
    "max_loss_diff": (3.0, 1.0, "DCGAN losses range ~0.1-5 (gap 3 = a large imbalance); Dirac losses near the "
                                "equilibrium are O(1) (e.g. GAN: L_D = log 4 = 1.39, L_G = -log 2 = -0.69; NSGAN: "
                                "L_G = log 2 = 0.69), so the gap threshold is scaled to 1"),
}

#: Every other field: the paper-celeba preset; lr_d = lr_g = the simulation's lr (the paper's 2e-4 is for Adam on
#: DCGAN and would freeze the Dirac game); on_nonfinite="diverged" so that a blow-up is a verdict, not an exception.
_COMMON = {"on_nonfinite": "diverged"}


def dirac_config(lr: float = DEFAULT_LR, **overrides) -> GCANNConfig:
    """``paper-celeba`` with the :data:`DIRAC_CHANGES` and ``lr_d = lr_g = lr``."""
    kw = {k: v[1] for k, v in DIRAC_CHANGES.items()}
    kw.update(_COMMON)
    kw.update(lr_d=lr, lr_g=lr)
    kw.update(overrides)
    return preset("paper-celeba", **kw)


def paper_config(lr: float = DEFAULT_LR, **overrides) -> GCANNConfig:
    """The unmodified ``paper-celeba`` preset, except ``lr_d = lr_g = lr`` and ``on_nonfinite="diverged"``."""
    return preset("paper-celeba", **{**_COMMON, "lr_d": lr, "lr_g": lr, **overrides})


DIRAC_CONFIG: GCANNConfig = dirac_config()


def controller_settings(name: str, config: GCANNConfig, settings: Mapping[str, Any] | None = None) -> Any:
    """The settings a Dirac run gives controller ``name`` (:func:`gcann.control.make_controller`): for ``gcann``
    the GCANN ``config`` itself (unless ``settings`` are given); for an ablation (``gcann-*``) the config's values
    under the ablation's own switches, ``settings`` on top; for any other controller ``settings`` (None: its
    defaults). Settings that name a ``preset`` start from that preset, not from ``config``."""
    settings = dict(settings or {})
    if not name.startswith("gcann") or "preset" in settings:
        return settings or None
    if name == "gcann" and not settings:
        return config
    base = {k: v for k, v in config.to_dict().items() if k not in ("lr_d", "lr_g", *MECHANISMS)}
    return {**base, **settings}
