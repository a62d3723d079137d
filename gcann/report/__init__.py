"""Multi-seed reports: settings over seeds with intervals, paired comparisons, failure counts, the GCANN claims.

``gcann report DIR`` (:mod:`gcann.cli.report`) is :func:`make_report`:

* :mod:`.load`     a sweep folder, a ring study folder or run folders -> a :class:`Study` of runs
* :mod:`.measures` per-run metrics: the loss gap from the run's log, the eval cache hook, directions
* :mod:`.stats`    intervals over seeds and the paired test (scipy.stats)
* :mod:`.build`    groups, comparisons, claims -> the ``report.json`` document
* :mod:`.claims`   the GCANN paper's claims and the metrics that stand for them
* :mod:`.markdown` ``report.md``
* :mod:`.figures`  curves over training with bands across seeds (PNG)
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from gcann.fileio import atomic_write_text

from .build import build
from .load import ReportError, Run, Study, load
from .markdown import dumps, to_markdown

__all__ = ["ReportError", "Run", "Study", "build", "load", "make_report"]


def make_report(paths: Sequence[str | Path], out: str | Path, *, baseline: Sequence[str] | None = None,
                metrics: str | Sequence[str] | None = None, interval: str = "auto", figures: bool = True,
                evaluate: Callable[[Path], dict] | None = None) -> tuple[dict, list[Path]]:
    """Read ``paths``, write ``out/report.json``, ``out/report.md`` and ``out/curve_*.png``; returns the report
    and the files written. ``evaluate``: the hook that evaluates a run folder when it has no evaluation
    (:func:`gcann.report.measures.cached_eval`); ``None`` evaluates nothing."""
    study = load(paths, evaluate=evaluate)
    report = build(study, metrics=metrics, baseline=baseline, interval=interval)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pngs = []
    if figures:
        from .figures import draw_curves

        pngs = draw_curves(study, out)
    report["figures"] = [p.name for p in pngs]
    written = [atomic_write_text(out / "report.json", dumps(report)),
               atomic_write_text(out / "report.md", to_markdown(report, report["figures"]))]
    return report, written + pngs
