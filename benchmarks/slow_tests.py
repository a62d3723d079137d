"""Run the tests marked ``slow`` (excluded from the default suite) and record the outcome.

Usage: python benchmarks/slow_tests.py  ->  benchmarks/results/slow_tests.txt
"""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import time


def main() -> int:
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "pytest", "-m", "slow", "-q", "-p", "no:cacheprovider",
                        "--hypothesis-show-statistics"], capture_output=True, text=True)
    dt = time.perf_counter() - t
    tail = "\n".join(r.stdout.strip().splitlines()[-25:])
    text = (f"# slow tests: python -m pytest -m slow ({platform.machine()}, {os.cpu_count()} CPUs, "
            f"python {platform.python_version()})\n# exit status {r.returncode}, {dt:.0f} s\n{tail}\n")
    os.makedirs("benchmarks/results", exist_ok=True)
    with open("benchmarks/results/slow_tests.txt", "w") as fh:
        fh.write(text)
    print(text)
    return r.returncode


if __name__ == "__main__":
    sys.exit(main())
