"""``gcann report DIR...``: settings over seeds with 95 % intervals, paired comparisons, failures, the GCANN claims."""
from __future__ import annotations

from pathlib import Path

import click

from .common import check_output

__all__ = ["report"]


@click.command("report")
@click.argument("dirs", nargs=-1, required=True, metavar="DIR...")
@click.option("--baseline", "baseline", multiple=True, metavar="KEY=VALUE",
              help="the baseline setting (repeatable: every KEY=VALUE must match) [default: each setting with a "
                   "controller against the same setting with controller none; the ring's +VARIANT against its plain "
                   "objective]")
@click.option("--metrics", "metrics", default=None, metavar="M[,M...]",
              help="metrics to report (loss_gap is always one) [default: every metric the runs have]")
@click.option("--interval", type=click.Choice(["auto", "t", "bootstrap"]), default="auto", show_default=True,
              help="95 %% interval over seeds: t, BCa bootstrap, or auto (t below 20 seeds, bootstrap from 20)")
@click.option("--out", "out", default=None, metavar="DIR", help="[default: DIR/report for one DIR]")
@click.option("--no-figures", is_flag=True, help="write report.json and report.md only")
def report(dirs, baseline, metrics, interval, out, no_figures):
    """Report a sweep folder, a ring study folder or run folders: report.json, report.md, curves."""
    from gcann.report import ReportError, make_report

    if out is None:
        if len(dirs) != 1:
            raise ReportError("several folders: give --out DIR")
        out = str(Path(dirs[0]) / "report")
    check_output(Path(out), "--out", folder=True)
    doc, _ = make_report(list(dirs), out, baseline=baseline, metrics=metrics, interval=interval,
                               figures=not no_figures)
    verdicts = [c["verdict"] for c in doc["comparisons"]]
    click.echo(f"{len(doc['groups'])} setting(s), {sum(g['n_seeds'] for g in doc['groups'])} run(s), "
               f"{len(doc['comparisons'])} comparison(s) ({verdicts.count('better')} better, "
               f"{verdicts.count('worse')} worse, {verdicts.count('inconclusive')} inconclusive)", err=True)
    click.echo(str(Path(out) / "report.md"))
