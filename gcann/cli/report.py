"""``gcann report DIR...``: settings over seeds with 95 % intervals, paired comparisons, failures, the GCANN claims."""
from __future__ import annotations

from pathlib import Path

import click

from .common import check_device, check_output

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
              help="95 % interval over seeds: t, BCa bootstrap, or auto (t below 20 seeds, bootstrap from 20)")
@click.option("--out", "out", default=None, metavar="DIR", help="[default: DIR/report for one DIR]")
@click.option("--no-figures", is_flag=True, help="write report.json and report.md only")
@click.option("--evaluate", is_flag=True,
              help="evaluate each finished run that has no evaluation yet: `gcann eval` on its last checkpoint, "
                   "cached in the run folder (eval.json), so a second report evaluates nothing")
@click.option("--eval-metrics", default=None, metavar="M[,M...]",
              help="with --evaluate: the metrics (default: gcann eval's; e.g. fd_domain,kid_domain,pairwise on a CPU)")
@click.option("--num-samples", type=click.IntRange(2), default=None, metavar="N",
              help="with --evaluate: generated samples per run (default: gcann eval's)")
@click.option("--device", default="cpu", show_default=True, help="with --evaluate: where the generators run")
def report(dirs, baseline, metrics, interval, out, no_figures, evaluate, eval_metrics, num_samples, device):
    """Report a sweep folder, a ring study folder or run folders: report.json, report.md, curves."""
    from gcann.report import ReportError, make_report

    if out is None:
        if len(dirs) != 1:
            raise ReportError("several folders: give --out DIR")
        out = str(Path(dirs[0]) / "report")
    check_output(Path(out), "--out", folder=True)
    if not evaluate and (eval_metrics is not None or num_samples is not None):
        raise ReportError("--eval-metrics and --num-samples apply with --evaluate")
    hook = None
    if evaluate:
        device = check_device(device)
        from gcann.metrics import check_metric_names
        from gcann.metrics.evaluate import evaluate_checkpoint, parse_metric_names
        from gcann.report.measures import Evaluator

        names = None
        if eval_metrics is not None:   # unknown names now, not at the first run that needs evaluating
            names = tuple(parse_metric_names(eval_metrics))
            check_metric_names(names)

        def run_eval(run_dir):
            click.echo(f"gcann report: evaluating {run_dir} (cached in its eval.json)", err=True)
            return evaluate_checkpoint(run_dir, metrics=names, num_samples=num_samples, device=device)
        hook = Evaluator(run_eval, names, num_samples)
    doc, _ = make_report(list(dirs), out, baseline=baseline, metrics=metrics, interval=interval,
                         figures=not no_figures, evaluate=hook)
    verdicts = [c["verdict"] for c in doc["comparisons"]]
    click.echo(f"{len(doc['groups'])} setting(s), {sum(g['n_seeds'] for g in doc['groups'])} run(s), "
               f"{len(doc['comparisons'])} comparison(s) ({verdicts.count('better')} better, "
               f"{verdicts.count('worse')} worse, {verdicts.count('inconclusive')} inconclusive)", err=True)
    click.echo(str(Path(out) / "report.md"))
