"""``python -m gcann`` exits with the command line's status (as the ``gcann`` script does)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "gcann", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_python_m_gcann_exits_with_the_error_status(tmp_path):
    ok = _run("controllers", "--json")
    assert ok.returncode == 0
    bad = _run("report", "--evaluate", "--eval-metrics", "bogus", str(tmp_path), "--out", str(tmp_path / "r"))
    assert bad.returncode == 2 and "unknown metric(s) bogus" in bad.stderr
    assert not (tmp_path / "r").exists()                  # refused before anything is read or written
