"""``gcann sweep``: many runs of one preset (seeds × a grid of values) through submitit."""
from __future__ import annotations

import json
import re
from pathlib import Path

import click

from gcann.errors import one_line

from .common import UserError, check_writable, parse_set


def _grid(items: tuple[str, ...]) -> dict[str, list]:
    grid: dict[str, list] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key or not values:
            raise UserError(f"--grid takes KEY=V1,V2,..., got {item!r}")
        vals = []
        for v in values.split(";" if key in ("reg", "metrics") else ","):
            if v == "":
                raise UserError(f"--grid {key} has an empty value in {values!r}")
            try:
                vals.append(json.loads(v))
            except json.JSONDecodeError:
                vals.append(v)
        grid[key.replace("-", "_")] = vals
    return grid


@click.command(context_settings={"show_default": True})
@click.option("--preset", required=True, metavar="NAME", help="the preset every run starts from")
@click.option("--seeds", default="0", metavar="N[,N...]", help="seeds (each grid point runs once per seed)")
@click.option("--grid", "grids", multiple=True, metavar="KEY=V1,V2",
              help="a config key and its values (repeatable: the product is swept; reg/metrics lists split on ';')")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="a value shared by every run")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/sweep"), help="sweep folder")
@click.option("--executor", type=click.Choice(["slurm", "local", "debug"]), default="local",
              help="submitit executor: a Slurm array, local processes, or in-process")
@click.option("--slurm-partition", default=None, help="Slurm partition")
@click.option("--timeout-min", type=click.IntRange(1), default=24 * 60, help="per-job time limit (minutes)")
@click.option("--gpus-per-node", type=click.IntRange(0), default=0, help="GPUs per Slurm job")
@click.option("--cpus-per-task", type=click.IntRange(1), default=None, help="CPUs per Slurm job")
@click.option("--wait", is_flag=True, help="wait for the jobs and write summary.json")
def sweep(preset, seeds, grids, sets, out, executor, slurm_partition, timeout_min, gpus_per_node, cpus_per_task,
          wait):
    """Submit one training run per seed × grid point; runs land in OUT/<name>/."""
    from gcann.train.sweep import collect, expand, submit

    try:
        seed_list = [int(s) for s in seeds.split(",")]
    except ValueError:
        raise UserError(f"--seeds must be a comma-separated list of integers, got {seeds!r}") from None
    if len(set(seed_list)) != len(seed_list):
        raise UserError(f"--seeds lists a seed twice: {seeds!r}")
    runs = expand(preset, seed_list, _grid(grids), parse_set(sets))
    busy = [name for name, _ in runs if (out / name).is_dir() and any((out / name).iterdir())]
    if busy:
        raise UserError(f"{out} already holds run folder(s) {', '.join(busy[:3])}{' ...' if len(busy) > 3 else ''}: "
                        "choose another --out")
    check_writable(out)
    jobs = submit(runs, out, executor=executor, timeout_min=timeout_min, slurm_partition=slurm_partition,
                  gpus_per_node=gpus_per_node, cpus_per_task=cpus_per_task)
    click.echo(f"submitted {len(jobs)} run(s) to {executor}: {out}/sweep.json", err=True)
    if wait:
        failed = []
        for name, j in zip((name for name, _ in runs), jobs):
            try:
                j.result()
            except Exception as e:   # noqa: BLE001 - a job's own error: say it, collect the others, then fail
                failed.append(name)
                click.echo(f"{name}: failed: {_job_error(e)}", err=True)
        for row in collect(out):
            click.echo(f"{row['name']:40s} {str(row['state']):9s} step {row['step']}  "
                       f"loss_d {row['loss_d']:.4g}  loss_g {row['loss_g']:.4g}"
                       if row["loss_d"] is not None else f"{row['name']:40s} {row['state']}")
        if failed:
            raise UserError(f"{len(failed)} of {len(jobs)} run(s) failed ({', '.join(failed[:3])}"
                            f"{' ...' if len(failed) > 3 else ''}); {out}/summary.json lists every run")


def _job_error(e: BaseException) -> str:
    """The error line of a job's failure (submitit wraps the job's traceback in its own message)."""
    lines = [x.strip() for x in str(e).splitlines()]
    errors = [x for x in lines if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupted|Diverged)(: |$)", x)]
    return errors[-1] if errors else one_line(e)
