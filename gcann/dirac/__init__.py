"""The GCANN controller on the Dirac-GAN testbed: simulators, tables, spectra (``testbed``) and figures (``plots``)."""
from .testbed import (
    COLUMN_TITLES, COLUMNS, CONFIG_TITLES, DEFAULT_LR, DIRAC_CHANGES, DIRAC_CONFIG, EXTRA_METHODS, TABLE_METHODS,
    GCANNLogs, default_configs, dirac_config, effective_distance, gcann_table, lr_scaling_markdown,
    lr_scaling_spectra, map_spectral_radii, paper_config, simulate_gcann,
)

__all__ = [
    "COLUMN_TITLES", "COLUMNS", "CONFIG_TITLES", "DEFAULT_LR", "DIRAC_CHANGES", "DIRAC_CONFIG", "EXTRA_METHODS",
    "TABLE_METHODS", "GCANNLogs", "default_configs", "dirac_config", "effective_distance", "gcann_table",
    "lr_scaling_markdown", "lr_scaling_spectra", "map_spectral_radii", "paper_config", "simulate_gcann",
]
