"""The GCANN controller on the Dirac-GAN testbed.

* :mod:`.configs`               the controller's settings for a Dirac run (``DIRAC_CONFIG``, ``paper_config``)
* :mod:`.controlled_simulator`  the batched simulator with one controller per trajectory (``simulate_gcann``)
* :mod:`.simulation`            a simulation from a :class:`SimulationSpec`: grid, batch, verdicts, summary, files
                                (the library behind ``gcann dirac simulate``)
* :mod:`.table`                 the GCANN table and every table ``gcann dirac table`` prints
* :mod:`.spectra`               update-map spectral radii and what scaling the learning rates does to them
* :mod:`.figures`               every figure of the testbed and of the controller on it (matplotlib, imported
                                on first use)
"""
from .configs import DEFAULT_LR, DIRAC_CHANGES, DIRAC_CONFIG, dirac_config, paper_config
from .controlled_simulator import DEFAULT_LOG_EVENTS, EVENT_KINDS, GCANNLogs, effective_distance, simulate_gcann
from .spectra import lr_scaling_markdown, lr_scaling_spectra, map_spectral_radii
from .table import (
    COLUMN_TITLES, COLUMNS, CONFIG_TITLES, EXTRA_METHODS, TABLE_METHODS, default_configs, gcann_table, study_tables,
)

__all__ = [
    "COLUMN_TITLES", "COLUMNS", "CONFIG_TITLES", "DEFAULT_LR", "DIRAC_CHANGES", "DIRAC_CONFIG", "EXTRA_METHODS",
    "TABLE_METHODS", "GCANNLogs", "default_configs", "dirac_config", "effective_distance", "gcann_table",
    "lr_scaling_markdown", "lr_scaling_spectra", "map_spectral_radii", "paper_config", "simulate_gcann",
    "DEFAULT_LOG_EVENTS", "EVENT_KINDS", "study_tables",
]
