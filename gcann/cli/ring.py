"""``gcann ring ...``: the 2-D ring study of Welfert, Otstot, Kurri & Sankar (2023), *(α_D, α_G)-GANs*, every seed of
every setting in one batched model."""
from __future__ import annotations

from pathlib import Path

import click

from .common import IntAtLeast, UserError, check_device, check_output


@click.group(context_settings={"show_default": True},
             short_help="The (α_D, α_G)-GAN paper's ring of 8 Gaussians and 5×5 grid, seeds batched.")
def ring():
    """The (α_D, α_G)-GAN paper's (Welfert et al. 2023) ring of 8 Gaussians (or the 5×5 grid): (α_D, α_G)-GANs,
    LSGAN, ±GCANN, ±R1, ±EMA."""


@ring.command()
@click.option("--seeds", type=IntAtLeast(1), default=None, metavar="N",
              help="seeds per setting [default: 2 (CPU size); the source: 200]")
@click.option("--epochs", type=IntAtLeast(1), default=None, metavar="N",
              help="epochs of 50,000 points (391 steps of 128 in the source form, 390 in the exact form) "
                   "[default: 2 (CPU size); the source: 400]")
@click.option("--full", is_flag=True, help="the source's size: 200 seeds x 400 epochs (a GPU job)")
@click.option("--settings", default=None, metavar="NAMES",
              help="settings separated by spaces or ';', e.g. 'sat(0.3,1) ns(0.5,1.2)+gcann lsgan+r1 ns(1,1)+gap' "
                   "(+NAME: any controller of `gcann controllers`) "
                   "[default: sat(1,1) sat(0.3,1) ns(1,1) ns(0.5,1.2) lsgan, each plain, +gcann, +r1, +ema]")
@click.option("--form", type=click.Choice(["source", "exact"]), default="source",
              help="source: the authors' code (shared data and codes pool drawn with seed 1, 391 steps per epoch "
                   "with the short last batch, σ clamped in the α-losses); exact: a data set and fresh codes per "
                   "seed, 390 full batches, exact α-losses (a NaN/Inf row is stopped, counted a failure)")
@click.option("--alpha-sweep", is_flag=True,
              help="Figure 1 of the (α_D, α_G)-GAN paper: settings sat(A,1) for A in --alpha-d; writes "
                   "DIR/alpha_sweep.json (rates with Wilson intervals, beside the published ones) and DIR/figure1.png")
@click.option("--alpha-d", "alpha_d", default="0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1",
              metavar="A[,A...]", help="the α_D values of --alpha-sweep")
@click.option("--dataset", type=click.Choice(["ring", "grid"]), default="ring")
@click.option("--out", "out", default="runs/ring-study", metavar="DIR")
@click.option("--eval-samples", type=IntAtLeast(1), default=25_000, help="final samples per seed")
@click.option("--curve-every", type=IntAtLeast(0), default=1, help="coverage curve every N epochs (0: off)")
@click.option("--curve-samples", type=IntAtLeast(1), default=2_500, help="samples per seed per curve point")
@click.option("--n-train", type=IntAtLeast(128), default=50_000, help="training points per seed")
@click.option("--first-seed", type=IntAtLeast(0), default=0)
@click.option("--no-figures", is_flag=True, help="write results only")
@click.option("--device", default="auto",
              help="where the networks train: cpu, cuda, cuda:N, or auto (CUDA when present)")
@click.option("--tf32", is_flag=True,
              help="CUDA: TF32 tensor cores for the matmuls (faster; products with a 10-bit mantissa)")
@click.option("--fused-adam", is_flag=True,
              help="CUDA, no controller in any setting: the replayed step's Adam as one fused kernel over every seed "
                   "(one pass over each tensor instead of nine; not yet measured on a GPU)")
@click.option("--checkpoint-every", type=IntAtLeast(0), default=0, metavar="E",
              help="save the whole run to DIR/state.pt every E epochs and at the end (0: never)")
@click.option("--resume", is_flag=True,
              help="go on from DIR/state.pt (written by --checkpoint-every) with the same arguments; --epochs "
                   "may grow")
def study(seeds, epochs, full, settings, form, alpha_sweep, alpha_d, dataset, out, eval_samples, curve_every, curve_samples, n_train, first_seed,
          no_figures, device, tf32, fused_adam, checkpoint_every, resume):
    """Train, evaluate and write DIR/results.json, DIR/results.md, DIR/run.json and figures."""
    from gcann.ring.study import (CPU_DEFAULT, FULL_SIZE, alpha_sweep_settings, default_settings, parse_settings,
                                  run_study)
    from gcann.ring.train import StateError

    size = FULL_SIZE if full else CPU_DEFAULT
    seeds = size["seeds"] if seeds is None else seeds
    epochs = size["epochs"] if epochs is None else epochs
    if device.strip() == "auto":
        import torch
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = check_device(device)
    check_output(Path(out), "--out", folder=True)
    if resume and not (Path(out) / "state.pt").is_file():
        raise UserError(f"--resume: {str(Path(out) / 'state.pt')!r} does not exist; a study saves it with "
                        f"--checkpoint-every E")
    if tf32 and not device.startswith("cuda"):
        raise UserError("--tf32 applies to CUDA matmuls; this study runs on the CPU (use --device cuda)")
    if form == "source" and curve_every and curve_samples > eval_samples:
        raise UserError(f"--curve-samples ({curve_samples}) must not exceed --eval-samples ({eval_samples}) in the "
                        f"source form: the curve takes the first of the evaluation codes")
    try:
        if alpha_sweep:
            if settings is not None:
                raise ValueError("--alpha-sweep chooses the settings (sat(A,1) for A in --alpha-d); drop --settings")
            values = [float(v) for v in alpha_d.replace(" ", "").split(",") if v]
            if len(set(values)) != len(values):
                raise ValueError(f"--alpha-d repeats a value: {alpha_d}")
            parsed = alpha_sweep_settings(values)
        else:
            parsed = parse_settings(settings if settings is not None else default_settings())
    except ValueError as e:
        raise UserError(str(e).replace("could not convert string to float", "--alpha-d: not a number")) from None
    if fused_adam and any(s.controller != "none" for s in parsed):
        raise UserError("--fused-adam needs every seed at one rate and count (the replayed step); settings with a "
                        "controller (+gcann, +gap, ...) train eagerly with per-seed rates: drop them or the flag")
    if fused_adam and not device.startswith("cuda"):
        raise UserError("--fused-adam applies to the CUDA graph's Adam; this study runs on the CPU, where Adam is "
                        "already torch's fused kernel on each seed's views (use --device cuda)")
    try:
        run_study(parsed, seeds, epochs, out, dataset=dataset, n_train=n_train, eval_samples=eval_samples,
                  curve_every=curve_every, curve_samples=curve_samples, first_seed=first_seed,
                  figures=not no_figures, device=device, tf32=tf32, fused_adam=fused_adam,
                  checkpoint_every=checkpoint_every, resume=resume, form=form, alpha_sweep=alpha_sweep,
                  log=lambda m: click.echo(m, err=True))
    except StateError as e:
        raise UserError(str(e)) from None


@ring.command("toy")
@click.option("--out", "out", default="figures/ring_toy_objectives.png", metavar="FILE")
def toy(out):
    """The 1-D toy of the (α_D, α_G)-GAN paper (Welfert, Otstot, Kurri & Sankar 2023): G's objectives under the
    optimal D for (α_D, α_G) = (1,1), (0.2,1), (0.2,2)."""
    from gcann.ring.plots import toy_objectives_figure

    click.echo(str(toy_objectives_figure(out)))
