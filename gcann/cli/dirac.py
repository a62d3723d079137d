"""``gcann dirac ...``: spectra, simulations, figures and tables of the Dirac-GAN testbed.

Each command reads its options, makes one call into :mod:`gcann.dirac` and prints a human summary, or JSON
with ``--json``.  Mistakes are :class:`gcann.errors.GcannError`\\ s (or click usage errors), reported as one
line by :func:`gcann.cli.main`.
"""
from __future__ import annotations

import json
from pathlib import Path

import click

from .common import (FloatAbove, IntAtLeast, UserError, atomic_write, check_device, check_output, estimate_note,
                     parse_floats, parse_mapping, progress_bar)

# hyper-parameter options shared by the dirac commands: CLI flag -> help (gcann.dirac.simulation.PARAM_NAMES)
PARAM_OPTIONS = {
    "gamma": "regulariser weight γ (R1, R2, Roth, WGAN-GP, DRAGAN) or ConOpt γ",
    "sigma": "instance-noise standard deviation σ",
    "c": "gradient-penalty centre (WGAN-GP, DRAGAN) or LSGAN target c",
    "lam": "GAN-QP λ",
    "alpha_d": "α-loss of the discriminator",
    "alpha_g": "α-loss of the generator",
    "a": "LSGAN fake target a",
    "b": "LSGAN real target b",
    "clip": "WGAN weight-clipping bound",
    "l2": "L2 weight decay on the discriminator (any method)",
}


def param_options(f):
    for name, help_ in reversed(list(PARAM_OPTIONS.items())):
        f = click.option(f"--{name.replace('_', '-')}", name, type=str, default=None, metavar="X[,X...]",
                         help=help_ + " (a comma list makes a grid)")(f)
    return f


def _param_lists(kw: dict) -> dict[str, list[float]]:
    """The parameter options given, each as a list of numbers (a comma list is a grid)."""
    lists = {k: parse_floats(k, kw.get(k)) for k in PARAM_OPTIONS}
    return {k: v for k, v in lists.items() if v is not None}


# --------------------------------------------------------------------------- #
@click.group(context_settings={"show_default": True})
def dirac():
    """The Dirac-GAN testbed: spectra, simulations, figures, tables."""


METHOD_OPT = click.option("--method", "-m", required=True, metavar="NAME",
                          help="gan nsgan wgan wgan_norm wgan_gp dragan r1 r2 roth gan_qp lsgan alpha "
                               "alpha_sat instance_noise conopt")
DIM_OPT = click.option("--dim", type=IntAtLeast(1), default=None,
                       help="dimension n of θ, ψ ∈ ℝⁿ [default: 1; 2 for wgan_norm, gan_qp]")
BASE_OPT = click.option("--base", default=None, metavar="LOSS", help="GAN loss under a regulariser (gan, nsgan, ...)")
JSON_OPT = click.option("--json", "as_json", is_flag=True, help="print JSON instead of the human summary")


@dirac.command()
@METHOD_OPT
@param_options
@DIM_OPT
@BASE_OPT
@click.option("--lr", type=FloatAbove(0), default=None,
              help="also report the discrete spectral radius at this learning rate")
@click.option("--lr-ratio", type=FloatAbove(0), default=1.0, help="lr_d / lr_g for the discrete analysis")
@click.option("--scheme", type=click.Choice(["simgd", "altgd"]), default="simgd")
@JSON_OPT
def spectrum(method, dim, base, lr, lr_ratio, scheme, as_json, **kw):
    """Eigenvalues of the Jacobian at the equilibrium and the local-convergence verdict."""
    from gcann.dirac.spectra import spectrum_records, spectrum_text

    out = spectrum_records(method, _param_lists(kw), dim, base, lr=lr, lr_ratio=lr_ratio, scheme=scheme)
    if as_json:
        click.echo(json.dumps([r for r, _ in out]))
    else:
        click.echo(spectrum_text(out, lr=lr, lr_ratio=lr_ratio, scheme=scheme))


def _parse_grid(text: str | None):
    """``θmin:θmax:n,ψmin:ψmax:n`` as two (min, max, n) axes."""
    if not text:
        return None
    parts = text.split(",")
    if len(parts) != 2:
        raise UserError("--grid must be 'θmin:θmax:n,ψmin:ψmax:n'")
    axes = []
    for part in parts:
        try:
            lo, hi, n = part.split(":")
            lo, hi, n = float(lo), float(hi), int(n)
        except ValueError:
            raise UserError(f"--grid axis must be 'min:max:n', got {part!r}")
        if n < 1 or not (abs(lo) < float("inf") and abs(hi) < float("inf")):
            raise UserError(f"--grid axis {part!r}: n must be >= 1 and bounds finite")
        axes.append((lo, hi, n))
    return tuple(axes)


def _parse_event_kinds(text: str | None):
    from gcann.dirac import DEFAULT_LOG_EVENTS, EVENT_KINDS

    if text is None:
        return DEFAULT_LOG_EVENTS
    if text.strip() == "all":
        return EVENT_KINDS
    kinds = [k.strip() for k in text.split(",")]
    bad = [k for k in kinds if k not in EVENT_KINDS]
    if bad or not kinds:
        raise UserError(f"--event-kinds: unknown kind(s) {bad}; choose from all, {', '.join(EVENT_KINDS)}")
    return tuple(kinds)


@dirac.command()
@METHOD_OPT
@param_options
@DIM_OPT
@BASE_OPT
@click.option("--scheme", type=click.Choice(["ode", "simgd", "altgd"]), default="simgd")
@click.option("--lr", type=float, default=0.1, help="learning rate of both players")
@click.option("--lr-d", type=float, default=None, help="discriminator learning rate [default: --lr]")
@click.option("--lr-g", type=float, default=None, help="generator learning rate [default: --lr]")
@click.option("--optimizer", type=click.Choice(["sgd", "adam", "rmsprop"]), default="sgd")
@click.option("--momentum", type=float, default=0.0, help="SGD momentum")
@click.option("--n-d", type=int, default=1, help="altgd: discriminator steps per round")
@click.option("--n-g", type=int, default=1, help="altgd: generator steps per round")
@click.option("--steps", type=IntAtLeast(1), default=1000, help="updates (ode: output intervals)")
@click.option("--t1", type=float, default=50.0, help="ode: final time")
@click.option("--ode-method", type=click.Choice(["rk4", "dopri5"]), default="rk4")
@click.option("--init", "inits", multiple=True, metavar="θ,ψ", help="an initial point (repeatable)")
@click.option("--grid", default=None, metavar="a:b:n,c:d:n", help="a grid of initial points in (θ₁, ψ₁)")
@click.option("--random", "n_random", type=IntAtLeast(1), default=None, metavar="N",
              help="N random initial points, uniform in [-1, 1]^(2n) (see --seed)")
@click.option("--seed", type=int, default=0, help="seed of the --random initial points")
@click.option("--ema-beta", type=float, default=None, help="also record the EMA of the iterates with this β")
@click.option("--record-every", type=IntAtLeast(1), default=1)
@click.option("--device", default="cpu", help="cpu, cuda or cuda:N")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="write the trajectory and the per-row and per-setting results: .json or .npz")
@click.option("--gcann", "gcann_cfg", type=click.Choice(["dirac", "paper"]), default=None,
              help="drive the run with one GCANN controller per trajectory: DIRAC_CONFIG or the unmodified "
                   "paper-celeba preset (simgd/altgd; docs/gcann_dirac.md)")
@click.option("--controller", default=None, metavar="NAME",
              help="drive the run with one controller per trajectory: any of `gcann controllers` that reads only "
                   "the losses (none, gcann and its ablations, ttur, gap, clc: CLC's damping -λψ); --gcann is "
                   "--controller gcann")
@click.option("--controller-set", "controller_set", multiple=True, metavar="KEY=VALUE|JSON",
              help='the controller\'s settings, e.g. weight=2 or \'{"weight": 2}\' for clc (repeatable)')
@click.option("--events", type=click.Path(path_type=Path), default=None,
              help="with a controller: write its events as JSON lines (with their row)")
@click.option("--event-kinds", default=None, metavar="KIND[,KIND...]|all",
              help="with --events: the kinds to log [default: reactive, proactive, pause_d, pause_g, slope_threshold, "
                   "slope_thresh_scale, diverged; 'all' adds the per-step skip_d, skip_g, tie_break]")
@JSON_OPT
@click.option("--quiet", "-q", is_flag=True, help="no progress bar and no time estimate")
def simulate(method, dim, base, scheme, lr, lr_d, lr_g, optimizer, momentum, n_d, n_g, steps, t1, ode_method,
             inits, grid, n_random, seed, ema_beta, record_every, device, out, gcann_cfg, controller, controller_set,
             events, event_kinds, as_json, quiet, **kw):
    """Simulate a batch of Dirac-GAN trajectories and classify them, per hyper-parameter setting."""
    from gcann.dirac.simulation import SimulationSpec, plan_simulation

    if out is not None and out.suffix not in (".json", ".npz"):
        raise UserError(f"--out must end in .json or .npz, got {out.name!r}")
    device = check_device(device)
    if events is not None and gcann_cfg is None and controller is None:
        raise UserError("--events needs a controller (--controller NAME or --gcann)")
    if controller_set and controller is None:
        raise UserError("--controller-set needs --controller")
    settings = parse_mapping("--controller-set", controller_set)
    if event_kinds is not None and events is None:
        raise UserError("--event-kinds needs --events")
    spec = SimulationSpec(method, _param_lists(kw), dim=dim, base=base, scheme=scheme, lr=lr, lr_d=lr_d, lr_g=lr_g,
                          optimizer=optimizer, momentum=momentum, n_d=n_d, n_g=n_g, steps=steps, t1=t1,
                          ode_method=ode_method, inits=[parse_floats("init", s) for s in inits], grid=_parse_grid(grid),
                          n_random=n_random, seed=seed, ema_beta=ema_beta, record_every=record_every, device=device,
                          gcann=gcann_cfg, log_events=_parse_event_kinds(event_kinds), controller=controller,
                          controller_set=settings)
    if out is not None:
        check_output(out, "--out")
    if events is not None:
        check_output(events, "--events")
        if out is not None and events.resolve() == out.resolve():
            raise UserError("--events and --out name the same file")
    plan = plan_simulation(spec)
    if not quiet:
        est = plan.estimate_seconds()
        if est is not None:
            estimate_note(est, f"{steps:,} {'output intervals' if scheme == 'ode' else 'steps'} × "
                               f"{plan.z.shape[0]:,} trajectories")
    with progress_bar(steps, f"simulate {method}", quiet, "step") as update:
        result = plan.run(progress=update)
    if events is not None:
        result.write_events(events)
    if out is not None:
        result.write(out)
    if not as_json:
        click.echo(result.text())
        return
    if len(result.settings) > 1 and not quiet:
        click.echo(result.settings_text(), err=True)
    click.echo(json.dumps(result.summary, indent=2))


FORMAT_OPT = click.option("--format", "fmt", type=click.Choice(["png", "pdf", "svg"]), default=None,
                          help="figure format [default: the --out suffix, else png]")
DPI_OPT = click.option("--dpi", type=IntAtLeast(1), default=110, help="resolution of raster output")
QUIET_OPT = click.option("--quiet", "-q", is_flag=True, help="no progress bar and no time estimate")

#: measured on a 2-core CPU (torch 2.15): the full figure set and the tables with the GCANN columns
FIGURES_SECONDS, TABLES_SECONDS = 45.0, 200.0


def _write_all_figures(out: Path, gif: bool, dpi: int, fmt: str, quiet: bool) -> list[Path]:
    from gcann.dirac.figures import GCANN_PLOTS, GIF_METHODS, PLOTS, make_all, make_gcann_figures

    n = len(PLOTS) + len(GCANN_PLOTS) + (len(GIF_METHODS) if gif else 0)
    with progress_bar(n, "figures", quiet, "fig") as update:
        return [*make_all(out, gif=gif, dpi=dpi, fmt=fmt, progress=lambda name: update(label=name)),
                *make_gcann_figures(out, dpi=dpi, fmt=fmt, progress=lambda name: update(label=name))]


@dirac.command()
@click.option("--all", "all_", is_flag=True, help="all README figures")
@click.option("--kind", default=None,
              help="one figure: vector_field, theta_plane, ema, r1_locus, all_methods, gcann_trajectories, "
                   "gcann_loss_events")
@click.option("--out", type=click.Path(path_type=Path), default=Path("figures"),
              help="folder (--all, or --kind without a file name) or file (.png, .pdf, .svg)")
@FORMAT_OPT
@DPI_OPT
@click.option("--gif", is_flag=True, help="also write GIF animations (--all)")
@click.option("--method", "-m", default=None, metavar="NAME",
              help="for --kind vector_field / ema: the method to draw [default: the README's]")
@click.option("--lr", type=FloatAbove(0), default=None, help="for --kind vector_field / ema / gcann_*: learning rate")
@JSON_OPT
@QUIET_OPT
def plot(all_, kind, out, fmt, dpi, gif, method, lr, as_json, quiet):
    """Draw figures (vector fields, trajectories, EMA, R1 eigenvalue locus, the GCANN controller's)."""
    from gcann.dirac.figures import FIGURES

    suffix = out.suffix.lower().lstrip(".")
    if all_:
        if kind is not None:
            raise UserError("give --all or --kind NAME, not both")
        if suffix in ("png", "pdf", "svg"):
            raise UserError(f"--all writes several files: --out must be a folder, got {str(out)!r}")
        check_output(out, "--out", folder=True)
        from gcann.dirac.figures import GCANN_PLOTS, GIF_METHODS, PLOTS

        n = len(PLOTS) + len(GCANN_PLOTS) + (len(GIF_METHODS) if gif else 0)
        estimate_note(FIGURES_SECONDS * (2 if gif else 1), f"{n} figures", quiet)
        _echo_paths(_write_all_figures(out, gif, dpi, fmt or "png", quiet), as_json)
        return
    if kind is None:
        raise UserError("give --all or --kind NAME")
    if kind not in FIGURES:
        raise UserError(f"unknown --kind {kind!r}; choose from {', '.join(FIGURES)}")
    if gif:
        raise UserError("--gif goes with --all")
    if suffix in ("png", "pdf", "svg"):
        if fmt is not None and fmt != suffix:
            raise UserError(f"--format {fmt} does not match --out {out.name!r}")
        fmt = suffix
    elif out.suffix and not out.is_dir():
        raise UserError(f"--out must end in .png, .pdf or .svg, or be a folder; got {out.name!r}")
    else:
        fmt = fmt or "png"
        out = out / f"{kind}.{fmt}"
    check_output(out, "--out")
    from gcann.dirac.figures import draw, save

    _echo_paths([save(draw(kind, method, lr), out, dpi, fmt)], as_json)


def _echo_paths(paths: list[Path], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps([str(p) for p in paths]))
    else:
        for p in paths:
            click.echo(str(p))


@dirac.command()
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of markdown")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="also write table.md and table.json into this folder")
@click.option("--gcann/--no-gcann", "with_gcann", default=True,
              help="add the plain / +GCANN / +EMA / +GCANN+EMA columns")
@click.option("--n-init", type=IntAtLeast(1), default=None,
              help="initial conditions per method for the GCANN columns [default: 64]")
@click.option("--seed", type=int, default=0, help="seed of the random initial points (GCANN columns, 2-D rings)")
@click.option("--controllers", default=None, metavar="NAME[,NAME...]|all",
              help="add a table with a column per controller (which methods converge under each); all: none, gcann, "
                   "gcann-reactive, gcann-proactive, gcann-skip, ttur, gap, clc")
@QUIET_OPT
def table(as_json, out, with_gcann, n_init, seed, controllers, quiet):
    """The local-convergence tables of the sources, computed."""
    if out is not None:
        check_output(out, "--out", folder=True)
        for name in ("table.md", "table.json"):
            check_output(out / name, "--out")
    names = None
    if controllers is not None:
        from gcann.control import CONTROLLERS
        from gcann.dirac.table import dirac_controllers

        names = dirac_controllers() if controllers.strip() == "all" else \
            tuple(c.strip() for c in controllers.split(",") if c.strip())
        unknown = [c for c in names if c not in CONTROLLERS]
        if not names or unknown:
            raise UserError(f"--controllers: unknown controller(s) {', '.join(unknown) or '(none given)'}; choose "
                            f"from {', '.join(CONTROLLERS)} or all")
    md, doc = _tables(with_gcann, n_init, seed, quiet)
    if names is not None:
        from gcann.dirac.table import TABLE_METHODS, controller_table

        kw = {} if n_init is None else {"n_init": n_init}
        with progress_bar(len(TABLE_METHODS), "controllers", quiet, "method") as update:
            c_md, c_doc = controller_table(names, seed=seed, progress=lambda label: update(label=label), **kw)
        md += "\n" + c_md
        doc["controllers"] = c_doc
    if out is not None:
        _write_tables(out, md, doc)
    click.echo(json.dumps(doc, indent=2) if as_json else md)


def _tables(with_gcann: bool, n_init: int | None, seed: int = 0, quiet: bool = False, note: bool = True):
    from gcann.dirac.table import study_table_rows, study_tables

    scale = 1.0 if n_init is None else n_init / 64
    seconds = 25.0 + (TABLES_SECONDS - 25.0) * scale * with_gcann
    estimate_note(seconds, "the tables" + (" with the GCANN columns" if with_gcann else ""), quiet or not note)
    with progress_bar(study_table_rows(with_gcann), "tables", quiet, "row") as update:
        return study_tables(with_gcann, n_init, seed, progress=lambda label: update(label=label))


def _write_tables(out: Path, md: str, doc: dict) -> None:
    atomic_write(out / "table.md", lambda p: Path(p).write_text(md))
    atomic_write(out / "table.json", lambda p: Path(p).write_text(json.dumps(doc, indent=2)))


@dirac.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/dirac-study"), help="output folder")
@click.option("--gif/--no-gif", default=False)
@FORMAT_OPT
@DPI_OPT
@click.option("--seed", type=int, default=0, help="seed of the random initial points (GCANN columns, 2-D rings)")
@JSON_OPT
@QUIET_OPT
def study(out, gif, fmt, dpi, seed, as_json, quiet):
    """The main job: compute the tables and draw the figures into one folder."""
    check_output(out, "--out", folder=True)
    for name in ("table.md", "table.json"):
        check_output(out / name, "--out")
    check_output(out / "figures", "--out", folder=True)
    estimate_note(TABLES_SECONDS + FIGURES_SECONDS, "the study (tables, then figures)", quiet)
    md, doc = _tables(True, None, seed, quiet, note=False)
    _write_tables(out, md, doc)
    if not as_json:
        click.echo(md)
    paths = _write_all_figures(out / "figures", gif, dpi, fmt or "png", quiet)
    if as_json:
        click.echo(json.dumps({"table_md": str(out / "table.md"), "table_json": str(out / "table.json"),
                               "figures": [str(p) for p in paths]}))
        return
    if not quiet:
        for p in paths:
            click.echo(str(p), err=True)
    click.echo(f"wrote {out}/table.md, {out}/table.json and {out}/figures/", err=True)


