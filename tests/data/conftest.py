"""Fixtures shared by the dataset tests."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_home_cache(tmp_path, monkeypatch):
    """The default cache folder (``GCANN_CACHE``) is the test's own, never the user's."""
    monkeypatch.setenv("GCANN_CACHE", str(tmp_path / "default-cache"))
