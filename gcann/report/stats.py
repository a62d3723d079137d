"""Intervals over seeds and paired comparisons by seed, all from :mod:`scipy.stats`.

* :func:`summary`: the mean, the standard deviation (``ddof=1``) and a 95 % interval of
  the mean over seeds, a Student t interval (``scipy.stats.t.interval`` at ``n − 1``
  degrees of freedom around the mean with the standard error ``std / √n``) or, from
  :data:`BOOTSTRAP_MIN` seeds on (or when asked), a BCa bootstrap interval
  (``scipy.stats.bootstrap``, :data:`N_RESAMPLES` resamples, a fixed seed so that a
  report is reproducible);
* :func:`paired`: the differences ``group − baseline`` on the same seed, their mean,
  its interval (as :func:`summary`), the Wilcoxon signed-rank test
  (``scipy.stats.wilcoxon``, two-sided, exact for small samples) and the verdict.

The verdict is ``better`` or ``worse`` when the test rejects "no difference" at 5 %
*and* the interval of the mean difference excludes 0, with the metric's direction
deciding which; otherwise ``inconclusive``. Below :data:`MIN_PAIRS` pairs a two-sided
Wilcoxon test cannot reach p < 0.05 (its smallest p-value at 5 pairs is 2/32 = 0.0625),
so no p-value is given and the verdict is ``inconclusive``, with a note saying so.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = ["ALPHA", "BOOTSTRAP_MIN", "MIN_PAIRS", "N_RESAMPLES", "paired", "summary", "verdict"]

ALPHA = 0.05          # two-sided level of the tests; the intervals are 1 − ALPHA = 95 %
BOOTSTRAP_MIN = 20    # from this many seeds on, interval="auto" uses the bootstrap
N_RESAMPLES = 9999    # bootstrap resamples
BOOTSTRAP_SEED = 0    # the bootstrap's random state (a report is reproducible)
MIN_PAIRS = 6         # fewest pairs at which a two-sided Wilcoxon signed-rank test can give p < 0.05
INTERVALS = ("auto", "t", "bootstrap")


def _finite(values: Sequence[float | None]) -> np.ndarray:
    x = np.array([v for v in values if v is not None], dtype=np.float64)
    return x[np.isfinite(x)]


def _kind(n: int, interval: str) -> str:
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {', '.join(INTERVALS)}, got {interval!r}")
    if interval == "auto":
        return "bootstrap" if n >= BOOTSTRAP_MIN else "t"
    return interval


def _ci95(x: np.ndarray, kind: str) -> list[float] | None:
    """The 95 % interval of the mean of ``x``; ``None`` below 2 values; ``[m, m]`` when every value is equal."""
    from scipy import stats

    n = len(x)
    if n < 2:
        return None
    m = float(x.mean())
    if np.all(x == x[0]):   # no spread: both intervals degenerate (scipy would give NaN)
        return [m, m]
    if kind == "t":
        lo, hi = stats.t.interval(1 - ALPHA, n - 1, loc=m, scale=stats.sem(x))
    else:
        res = stats.bootstrap((x,), np.mean, confidence_level=1 - ALPHA, n_resamples=N_RESAMPLES,
                              method="BCa", rng=np.random.default_rng(BOOTSTRAP_SEED))
        lo, hi = res.confidence_interval
        if not (math.isfinite(lo) and math.isfinite(hi)):   # BCa undefined (e.g. two distinct values): percentile
            res = stats.bootstrap((x,), np.mean, confidence_level=1 - ALPHA, n_resamples=N_RESAMPLES,
                                  method="percentile", rng=np.random.default_rng(BOOTSTRAP_SEED))
            lo, hi = res.confidence_interval
    return [float(lo), float(hi)]


def summary(values: Sequence[float | None], interval: str = "auto") -> dict:
    """``{"n", "mean", "std", "ci95", "interval"}`` over the finite values (``None`` and NaN are not values).

    ``std`` is the sample standard deviation (``ddof=1``; ``None`` below 2 values), ``ci95`` the 95 %
    interval of the mean named by ``interval`` (``"t"`` or ``"bootstrap"``; ``None`` below 2 values)."""
    x = _finite(values)
    n = len(x)
    kind = _kind(n, interval)
    return {"n": n, "mean": float(x.mean()) if n else None, "std": float(x.std(ddof=1)) if n >= 2 else None,
            "ci95": _ci95(x, kind), "interval": kind}


def verdict(diff_mean: float | None, ci95: list[float] | None, p_value: float | None, direction: str | None) -> str:
    """``better`` / ``worse`` / ``inconclusive``: significant at 5 % with the interval clear of 0, by direction."""
    if diff_mean is None or ci95 is None or p_value is None or direction not in ("lower", "higher"):
        return "inconclusive"
    if p_value >= ALPHA or ci95[0] <= 0.0 <= ci95[1]:
        return "inconclusive"
    up = diff_mean > 0
    return "better" if up == (direction == "higher") else "worse"


def paired(group: dict, baseline: dict, direction: str | None, interval: str = "auto") -> dict:
    """Compare ``{seed: value}`` maps on the seeds both have a value for (``None``/NaN: no value).

    Returns ``{"n_pairs", "seeds", "diff_mean", "diff_std", "ci95", "interval", "p_value", "test", "verdict",
    "note"}``; ``diff_mean`` is the mean over those seeds of ``group[seed] − baseline[seed]``."""
    from scipy import stats

    def ok(v):
        return v is not None and math.isfinite(float(v))

    seeds = sorted(s for s in group if s in baseline and ok(group[s]) and ok(baseline[s]))
    d = np.array([float(group[s]) - float(baseline[s]) for s in seeds], dtype=np.float64)
    s = summary(d, interval)
    out = {"n_pairs": len(seeds), "seeds": seeds, "diff_mean": s["mean"], "diff_std": s["std"], "ci95": s["ci95"],
           "interval": s["interval"], "p_value": None, "test": "wilcoxon signed-rank (two-sided, scipy.stats.wilcoxon)",
           "verdict": "inconclusive", "note": None}
    dropped = sorted(set(group) | set(baseline), key=str)
    unpaired = [k for k in dropped if k not in seeds]
    notes = []
    if unpaired:
        notes.append(f"seeds without a value on both sides (not paired): {', '.join(map(str, unpaired))}")
    if len(seeds) < MIN_PAIRS:
        notes.append(f"{len(seeds)} pair(s): a two-sided Wilcoxon test cannot reach p < {ALPHA} below {MIN_PAIRS} "
                     f"pairs, so no p-value is given")
    elif np.all(d == 0):
        out["p_value"] = 1.0
        notes.append("every paired difference is 0")
    else:
        out["p_value"] = float(stats.wilcoxon(d, alternative="two-sided").pvalue)
    if direction not in ("lower", "higher"):
        notes.append("the metric has no stated direction: no verdict")
    out["verdict"] = verdict(out["diff_mean"], out["ci95"], out["p_value"], direction)
    out["note"] = "; ".join(notes) or None
    return out
