"""``gcann train``, ``gcann sample`` and ``gcann sweep``: the training stack from the command line.

Every field of :class:`~gcann.train.config.TrainConfig` is an option
(``--batch-size 64``, ``--lr-d 1e-4``, ``--reg r1,noise``); a preset supplies
the rest. ``--set KEY=VALUE`` reaches the same fields (and the controller's
``--set gcann='{"p": 3}'``).
"""
from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path
from typing import Any

import click

from .common import UserError, check_device, check_output, check_writable, parse_mapping, parse_set

# ---------------------------------------------------------------------------- #
# options generated from TrainConfig
# ---------------------------------------------------------------------------- #
_NAMED = {  # fields whose options take a particular metavar or type (their help is the field's own, as for all)
    "data_root": dict(metavar="DIR"),
    "controller": dict(metavar="NAME"),
    "loss": dict(metavar="NAME"),
    "reg": dict(metavar="R[,R...]"),
    "seed": dict(metavar="N", type=int),
    "epochs": dict(metavar="N", type=int),
    "max_steps": dict(metavar="N", type=int),
    "log_every": dict(metavar="N", type=int),
    "on_nonsense": dict(metavar="flag|stop"),
}


def _field_type(f: dataclasses.Field) -> str:
    return str(f.type).replace(" ", "")


def _field_help() -> dict[str, str]:
    """Each TrainConfig field's help, from the field's own ``metadata["help"]``."""
    from gcann.train.config import TrainConfig

    return {f.name: f.metadata["help"] for f in dataclasses.fields(TrainConfig) if "help" in f.metadata}


def _config_options(fn):
    from gcann.train.config import TrainConfig

    helps = _field_help()
    for f in reversed(dataclasses.fields(TrainConfig)):
        if f.name in ("preset",):
            continue
        flag = "--" + f.name.replace("_", "-")
        if f.name == "ema":
            fn = click.option(flag, "ema", type=float, default=None, is_flag=False, flag_value=0.999,
                              metavar="[BETA]", help=helps["ema"] + "; --ema alone: β = 0.999")(fn)
            continue
        if f.name in _NAMED:
            kw = dict(_NAMED[f.name])
            kw.setdefault("type", str)
            fn = click.option(flag, f.name, default=None, help=helps[f.name], **kw)(fn)
            continue
        t = _field_type(f)
        if t == "bool":
            fn = click.option(f"{flag}/--no-{f.name.replace('_', '-')}", f.name, default=None,
                              help=helps.get(f.name, f.name))(fn)
        elif t in ("int", "int|None"):
            fn = click.option(flag, f.name, type=int, default=None, metavar="N", help=helps.get(f.name, f.name))(fn)
        elif t == "float":
            fn = click.option(flag, f.name, type=float, default=None, metavar="X", help=helps.get(f.name, f.name))(fn)
        elif t == "dict":
            fn = click.option(flag, f.name, multiple=True, metavar="KEY=VALUE|JSON",
                              help=helps.get(f.name, f.name) + " (KEY=VALUE or a JSON object; repeatable)")(fn)
        else:
            fn = click.option(flag, f.name, type=str, default=None, metavar="TEXT", help=helps.get(f.name, f.name))(fn)
    return fn


def _overrides(kw: dict[str, Any], sets: tuple[str, ...]) -> dict[str, Any]:
    over = {k: v for k, v in kw.items() if v is not None and v != ()}
    for name in ("gcann", "controller_set"):
        if name in over:
            over[name] = parse_mapping("--" + name.replace("_", "-"), over[name])
    over.update(parse_set(sets))
    return over


def _build_config(preset: str, over: dict[str, Any]):
    from gcann.train.presets import train_preset

    return train_preset(preset, **over)


def _default_out(cfg) -> Path:
    base = Path("runs") / f"{cfg.preset or 'run'}-{cfg.controller}-seed{cfg.seed}"
    out, k = base, 1
    while out.exists() and any(out.iterdir()):
        k += 1
        out = base.with_name(f"{base.name}-{k}")
    return out


def _run(make_trainer) -> None:
    """Build and train; a user-facing error (any GcannError: config, data, checkpoint, a diverged or interrupted
    run) goes up to :func:`gcann.cli.main`, which prints it as one line with its exit status."""
    trainer = make_trainer()
    click.echo(f"run folder {trainer.run_dir}: {trainer.total_steps} steps "
               f"({trainer.steps_per_epoch} per epoch), step {trainer.step} now, device {trainer.device}, "
               f"controller {trainer.cfg.controller}, {trainer.workers_note}", err=True)
    result = trainer.fit()
    flagged = f"; flagged: {'; '.join(f['message'] for f in result.flags)}" if result.flags else ""
    click.echo(f"finished: {result.step} steps; last checkpoint {result.checkpoint}{flagged}", err=True)


@click.command(context_settings={"show_default": True})
@click.option("--preset", default=None, metavar="NAME", help="named configuration (gcann train --list)")
@click.option("--resume", type=click.Path(file_okay=False, path_type=Path), default=None, metavar="DIR",
              help="continue the run in DIR from its latest checkpoint")
@click.option("--out", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="run folder [default: runs/<preset>-<controller>-seed<N>]")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="any config value (JSON or text)")
@click.option("--list", "list_", is_flag=True, help="list the presets and exit")
@click.option("--quiet", is_flag=True, help="no progress bar (on a terminal) or progress lines (without one)")
@_config_options
def train(preset, resume, out, sets, list_, quiet, **kw):
    """Train a GAN (a preset, any value overridable), or continue a run with --resume."""
    from gcann.train.presets import TRAIN_PRESETS

    if list_:
        for name, (desc, _) in TRAIN_PRESETS.items():
            click.echo(f"{name:22s} {desc}")
        return
    over = _overrides(kw, sets)
    if resume is not None:
        extra = sorted(set(over) - {"max_steps"}) + (["--preset"] if preset else []) + (["--out"] if out else [])
        if extra:
            raise UserError(f"--resume continues a run with its own config; only --max-steps may be given "
                            f"(got {', '.join(extra)})")
        if not resume.is_dir():
            raise UserError(f"--resume {resume}: no such run folder")
        check_writable(resume, "--resume")
        from gcann.train import Trainer
        from gcann.train.checkpoint import find_checkpoints, latest_checkpoint

        if not find_checkpoints(resume):
            if not (resume / "config.json").is_file():
                latest_checkpoint(resume)   # the one-line error: not a run folder
            click.echo(f"gcann: {resume} holds no checkpoint yet (stopped before the first one): training its run "
                       "again from step 0 with its config.json", err=True)

        _run(lambda: Trainer.resume(resume, max_steps=over.get("max_steps"), quiet=quiet))
        return
    if preset is None:
        raise UserError("give --preset NAME (gcann train --list shows them) or --resume DIR")
    cfg = _build_config(preset, over)
    out = out if out is not None else _default_out(cfg)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()):
        if (out / "config.json").is_file():
            raise UserError(f"run folder {out} exists and is not empty: continue it with "
                            f"`gcann train --resume {shlex.quote(str(out))}` or choose another --out")
        raise UserError(f"run folder {out} exists and is not empty (and is not a gcann run folder): "
                        "choose another --out")
    check_writable(out)   # creates nothing: the run makes its folder when it starts
    from gcann.train import Trainer

    _run(lambda: Trainer(cfg, out, quiet=quiet))


@click.command(context_settings={"show_default": True})
@click.argument("ckpt", type=click.Path(path_type=Path))
@click.option("--n", "n", type=click.IntRange(1, 100_000), default=64, help="number of samples")
@click.option("--seed", type=int, default=0, help="seed of the latent codes")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="a .png (grid or voxel renders) or .npz (the samples) [default: <run>/samples/sample-<step>-seed<N>.png]")
@click.option("--no-ema", is_flag=True, help="use the raw generator even if the run kept an EMA")
@click.option("--device", default="cpu", help="cpu or cuda")
def sample(ckpt, n, seed, out, no_ema, device):
    """Draw samples from a checkpoint (or a run folder's latest one)."""
    import numpy as np
    import torch

    from gcann.train.checkpoint import load_generator
    from gcann.train.loop import recompute_bn_stats, resolve_device

    if out is not None and out.suffix not in (".png", ".npz"):
        raise UserError(f"--out must end in .png or .npz, got {out}")
    dev = resolve_device(check_device(device))
    if out is not None:
        check_output(out, "--out")
    G, info = load_generator(ckpt, ema=not no_ema, device=dev)
    if out is None:
        run_dir = Path(info["path"]).parent.parent
        out = run_dir / "samples" / f"sample-{info['step']:07d}-seed{seed}.png"
        check_output(out, "the default --out")
    cfg = info["config"]
    if info["ema"] and cfg.get("ema_bn") == "recompute":
        recompute_bn_stats(G, info["nz"], min(n, cfg["batch_size"]), dev, seed=cfg["seed"] + 4)
    with torch.no_grad():
        z = torch.randn(n, info["nz"], generator=torch.Generator().manual_seed(seed)).to(dev)
        x = torch.cat([G(zb) for zb in z.split(256)]).float().cpu()
    from gcann.fileio import atomic_write
    from gcann.train.plots import save_image_grid, save_voxel_renders

    if out.suffix == ".npz":
        if info["kind"] == "image":
            arr = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        else:
            arr = x[:, 0].numpy()
        atomic_write(out, lambda p: np.savez_compressed(p, samples=arr))
    elif info["kind"] == "image":
        save_image_grid(x, out)
    else:
        save_voxel_renders(x, out, max_items=n)
    click.echo(str(out))


def register(group: click.Group) -> None:
    group.add_command(train)
    group.add_command(sample)
    from .sweep import sweep

    group.add_command(sweep)

