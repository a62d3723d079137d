"""``gcann verdict``: the ring, DCGAN on MNIST-5k and Fashion-MNIST, the biped voxels; a report on each; the claims."""
from __future__ import annotations

from pathlib import Path

import click

from .common import check_device, check_output

__all__ = ["verdict"]


@click.command("verdict")
@click.option("--size", type=click.Choice(["cpu", "full", "tiny"]), required=True, metavar="cpu|full",
              help="cpu: about an hour on a 2-core CPU (domain feature metrics, short trainings); full: the "
                   "sources' sizes (200 ring seeds, the presets' epochs, CelebA and 3DBiCar), submitted through "
                   "the sweep executor")
@click.option("--controllers", default=None, metavar="NAMES",
              help="controllers compared with none in every part (comma-separated) [default: none,gcann for the "
                   "images and 3D; none, gcann, ttur, gap, clc and ada on the ring]")
@click.option("--out", "out", default=None, metavar="DIR", help="[default: runs/verdict-SIZE]")
@click.option("--report-only", is_flag=True, help="train and evaluate nothing: report the parts found in DIR")
@click.option("--data-root", default=None, metavar="DIR",
              help="--size full: a folder holding celeba/ and bicar3d/ (the CelebA and 3DBiCar roots)")
@click.option("--executor", type=click.Choice(["slurm", "local"]), default="slurm", show_default=True,
              help="--size full: where the runs go (a Slurm array per part, or local processes)")
@click.option("--slurm-partition", default=None, metavar="NAME", help="--size full: the Slurm partition")
@click.option("--gpus-per-node", type=click.IntRange(0), default=1, show_default=True,
              help="--size full: GPUs per job")
@click.option("--dry-run", is_flag=True, help="list the parts and their runs (sizes, configs) and run nothing")
@click.option("--device", default="cpu", show_default=True, help="where --size cpu trains the ring and evaluates (the image and biped runs train on the CPU)")
def verdict(size, controllers, out, report_only, data_root, executor, slurm_partition, gpus_per_node, dry_run,
            device):
    """Run one suite (or read it with --report-only), report each part, and summarise every claim:
    OUT/verdict.json and OUT/verdict.md."""
    import json

    from gcann.report.verdict import VerdictError, plan, run_verdict, submit_full

    out = Path(out or f"runs/verdict-{size}")
    device = check_device(device)
    if dry_run:
        parts = plan(size, controllers=controllers, data_root=data_root)
        rows = submit_full(parts, out, dry_run=True)
        for p in parts:
            est = p.estimate_s()
            click.echo(f"part {p.name}: {json.dumps(p.sizes())}" + (f"; estimate {est / 60:.1f} min" if est else ""))
        for r in rows:
            click.echo(f"  {r['part']}\t{r['name']}\t{r['run_dir']}")
        click.echo(f"{len(rows)} job(s) in {len(parts)} part(s); nothing run", err=True)
        return
    if report_only and not out.is_dir():
        raise VerdictError(f"--report-only: {out} does not exist")
    check_output(out, "--out", folder=True)
    if size == "full" and not report_only:
        parts = plan(size, controllers=controllers, data_root=data_root)
        rows = submit_full(parts, out, executor=executor, slurm_partition=slurm_partition,
                           gpus_per_node=gpus_per_node, log=lambda m: click.echo(m, err=True))
        click.echo(f"{len(rows)} job(s) submitted; when they are done: gcann verdict --size full --out {out} "
                   f"--report-only", err=True)
        return
    doc = run_verdict(size, out, controllers=controllers, report_only=report_only, data_root=data_root,
                      device=device, log=lambda m: click.echo(m, err=True))
    for c in doc["claims"]:
        k = c["counts"]
        click.echo(f"{c['claim']}: {k['better']} better, {k['worse']} worse, {k['inconclusive']} inconclusive",
                   err=True)
    click.echo(str(out / "verdict.md"))
