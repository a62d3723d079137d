"""What a report measures per run: the loss gap from the run's own log, the evaluation's numbers, their directions.

* :func:`loss_gap` and :func:`loss_gap_var` turn a run's logged losses into one number per seed
  (the definitions are :data:`DEFINITIONS`); no network is evaluated;
* :func:`cached_eval` is the hook for evaluated metrics (FID, KID, IS, Chamfer, ...): the cached
  ``gcann eval`` record in the run folder (:data:`EVAL_CACHE`) when it is present and belongs to
  the run's last step, else the trainer's own last evaluation in ``metrics.jsonl``, else
  ``evaluate(run_dir)`` when one is given (its result is then cached); nothing here runs Inception;
* :data:`DIRECTIONS`: which way is better for each known metric.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

__all__ = ["COLLAPSE_PAIRWISE", "DEFINITIONS", "DIRECTIONS", "EVAL_CACHE", "GAP_WINDOW", "NOT_METRICS", "SE_HOW",
           "cached_eval", "direction", "loss_gap", "loss_gap_var", "sampling_error"]

GAP_WINDOW = 20          # logged points in the rolling window of loss_gap_var
EVAL_CACHE = "eval.json"  # a run folder's cached `gcann eval --out` record
COLLAPSE_PAIRWISE = 0.05  # a train run is collapsed when its evaluated `pairwise` diversity is below this
COLLAPSE_MODES = 1        # a ring run is collapsed when it covers at most this many modes

#: better direction per metric: "lower" or "higher" (a metric not listed has none, and no verdict)
DIRECTIONS = {
    "loss_gap": "lower", "loss_gap_var": "lower",
    "fid": "lower", "kid": "lower", "fd_domain": "lower", "kid_domain": "lower", "chamfer": "lower", "mmd": "lower", "1nna": "lower",
    "kl": "lower", "reverse_kl": "lower", "failure": "lower",
    "is": "higher", "modes_covered": "higher", "hq_ratio": "higher", "success": "higher", "cov": "higher",
    "pairwise": "higher", "pairwise_inception": "higher", "pairwise_iou": "higher", "pairwise_chamfer": "higher",
}

DEFINITIONS = {
    "loss_gap": "median over the last half of training (logged points at or after half the last logged step; "
                "ring: epochs) of |loss_d − loss_g|, per seed",
    "loss_gap_var": f"median over the last half of training of the rolling variance (window of "
                    f"min({GAP_WINDOW}, max(2, n/2)) logged points, ddof = 1) of |loss_d − loss_g|, per seed",
    "fid": "Fréchet Inception distance (TF-Inception pool features) of generated against real images",
    "kid": "kernel Inception distance (mean over subsets; kid_std is its standard error over subsets)",
    "fd_domain": "Fréchet distance of generated against real images on the penultimate features of a small classifier "
                 "trained on the same labelled data (gcann.metrics.domain; not FID: another network, not comparable)",
    "kid_domain": "unbiased MMD² with KID's cubic polynomial kernel on the same domain classifier's features, the "
                  "mean over random subsets (not KID)",
    "is": "Inception score (needs the 1008-class Inception logits)",
    "pairwise": "mean pairwise RMS distance of generated samples within batches of 64 (pixel/voxel space)",
    "pairwise_inception": "mean pairwise RMS distance of generated images' Inception features within batches of 64",
    "chamfer": "Chamfer distance between generated and reference surface point clouds",
    "cov": "coverage: share of reference shapes that are some generated shape's nearest neighbour",
    "mmd": "minimum matching distance (Chamfer) of reference shapes to generated ones",
    "1nna": "1-nearest-neighbour accuracy of generated vs reference shapes (0.5 is ideal)",
    "pairwise_iou": "mean pairwise 1 − IoU of generated occupancy grids",
    "pairwise_chamfer": "mean pairwise Chamfer distance of generated shapes",
    "modes_covered": "modes with at least one high-quality sample (of 8 on the ring, 25 on the grid)",
    "hq_ratio": "share of samples within 3 σ of their nearest mode",
    "kl": "KL(data modes || generated mode histogram), add-one smoothing",
    "reverse_kl": "KL(generated mode histogram || data modes), add-one smoothing",
    "success": "1 when every mode is covered",
    "failure": "1 when no mode is covered",
}


#: keys of an eval record that describe the evaluation, not a metric of the run
NOT_METRICS = {"domain_accuracy"}
#: how a metric's standard error over repeated draws is made (the evaluation's sampling error)
SE_HOW = {
    "kid": "std over KID's random subsets (kid_std; the spread of one subset's estimate)",
    "is": "std over the Inception Score's splits (is_std)",
    "fd_domain": "std over bootstrap redraws (with replacement) of the generated samples' features",
    "kid_domain": "std over the random subsets × √(subset size / generated samples)",
}


def direction(name: str) -> str | None:
    return DIRECTIONS.get(name)


def _last_half(steps: Sequence[float]) -> np.ndarray:
    s = np.asarray(steps, dtype=np.float64)
    return s >= (s.max() / 2 if len(s) else 0.0)


def _gaps(steps, loss_d, loss_g) -> tuple[np.ndarray, np.ndarray]:
    steps = np.asarray(steps, dtype=np.float64)
    gap = np.abs(np.asarray(loss_d, dtype=np.float64) - np.asarray(loss_g, dtype=np.float64))
    order = np.argsort(steps, kind="stable")
    return steps[order], gap[order]


def loss_gap(steps, loss_d, loss_g) -> float | None:
    """Median of ``|loss_d − loss_g|`` over the logged points at or after half the last logged step."""
    steps, gap = _gaps(steps, loss_d, loss_g)
    if len(gap) == 0 or not np.isfinite(gap).all():
        return None
    return float(np.median(gap[_last_half(steps)]))


def loss_gap_var(steps, loss_d, loss_g, window: int = GAP_WINDOW) -> float | None:
    """Median over the last half of the rolling variance of the gap (``None`` with fewer than 2 points).

    The window is ``min(window, max(2, n // 2))`` logged points (a short run still gets one); the variance at a
    point is over the window that ends there (``ddof = 1``); points of the last half whose window is full count."""
    steps, gap = _gaps(steps, loss_d, loss_g)
    n = len(gap)
    if n < 2 or not np.isfinite(gap).all():
        return None
    w = min(window, max(2, n // 2))
    half = _last_half(steps)
    vals = [float(np.var(gap[i - w + 1:i + 1], ddof=1)) for i in range(w - 1, n) if half[i]]
    return float(np.median(vals)) if vals else None


def sampling_error(name: str, record: dict) -> dict:
    """The evaluation's own error of metric ``name`` in an eval result: its sample count and, where the metric
    reports one, its standard error over repeated draws: ``NAME_se`` when the metric gives it (``fd_domain_se``,
    ``kid_domain_se``), else ``NAME_std`` (``kid_std``, ``is_std``); ``se_how`` says how it was drawn."""
    out = {}
    for key in (f"{name}_se", f"{name}_std"):   # a standard error the metric gives, else its std over draws
        se = record.get(key)
        if isinstance(se, (int, float)) and not isinstance(se, bool) and math.isfinite(se):
            out["se"] = float(se)
            if name in SE_HOW:
                out["se_how"] = SE_HOW[name]
            break
    return out


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _last_eval(run_dir: Path) -> dict | None:
    """The trainer's last ``{"step", "eval": {...}}`` row of ``metrics.jsonl``."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return None
    last = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if '"eval"' in line:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row.get("eval"), dict):
                last = row
    return last


@dataclass(frozen=True)
class Evaluator:
    """An evaluation hook that says what it computes, so that a cached record computed otherwise (other
    metrics, another sample count) is not taken for its result: ``fn(run_dir)`` returns the record."""

    fn: Callable[[Path], dict]
    metrics: tuple[str, ...] | None = None    # the metrics it computes (None: not said)
    num_samples: int | None = None            # its generated samples (None: not said)

    def __call__(self, run_dir: Path) -> dict:
        return self.fn(run_dir)

    def accepts(self, metrics: dict, num_samples) -> bool:
        """Whether a record of ``metrics`` on ``num_samples`` samples answers this evaluation."""
        if self.metrics is not None and not all(m in metrics for m in self.metrics):
            return False
        return self.num_samples is None or num_samples == self.num_samples


def cached_eval(run_dir: str | Path, *, final_step: int | None = None, num_samples: int | None = None,
                evaluate: Callable[[Path], dict] | None = None) -> dict | None:
    """A run's evaluated metrics, without evaluating when they are already there.

    Returns ``{"metrics": {name: value}, "step", "num_samples", "source"}`` or ``None``. In order: the
    cache ``run_dir/eval.json`` (the record ``gcann eval --json`` prints: ``{"checkpoint", "step",
    "num_samples", "metrics", ...}``) when its step is the run's ``final_step`` (or no step is known);
    else the trainer's own last evaluation row of ``metrics.jsonl`` (``num_samples``: the config's
    ``eval_samples``); else ``evaluate(run_dir)``, whose record is written to the cache so that the next
    report evaluates nothing. ``evaluate`` is the hook for `gcann eval` on the run's checkpoint."""
    run_dir = Path(run_dir)
    cache = run_dir / EVAL_CACHE
    doc = _read_json(cache) if cache.is_file() else None

    def answers(metrics: dict, n) -> bool:   # an Evaluator refuses records computed otherwise
        return not isinstance(evaluate, Evaluator) or evaluate.accepts(metrics, n)
    if isinstance(doc, dict) and isinstance(doc.get("metrics"), dict) and (
            final_step is None or doc.get("step") in (None, final_step)) and answers(doc["metrics"],
                                                                                    doc.get("num_samples")):
        return {"metrics": doc["metrics"], "step": doc.get("step"), "num_samples": doc.get("num_samples"),
                "source": EVAL_CACHE}
    row = _last_eval(run_dir)
    if row is not None and answers(row["eval"], num_samples):
        return {"metrics": row["eval"], "step": row.get("step"), "num_samples": num_samples,
                "source": "metrics.jsonl (the trainer's evaluation)"}
    if evaluate is not None:
        record = evaluate(run_dir)
        from gcann.metrics.registry import write_cache   # a read-only run folder costs the cache, not the report

        write_cache(cache, lambda tmp: Path(tmp).write_text(json.dumps(record) + "\n", encoding="utf-8"))
        return {"metrics": record["metrics"], "step": record.get("step"), "num_samples": record.get("num_samples"),
                "source": f"{EVAL_CACHE} (evaluated now)"}
    return None
