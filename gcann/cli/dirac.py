"""``gcann dirac ...``: spectra, simulations, figures and tables of the Dirac-GAN testbed."""
from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .common import UserError, atomic_write, parse_floats

if TYPE_CHECKING:
    from dynamics.dirac import DiracGAN

# hyper-parameter options shared by the dirac commands: CLI flag -> parameter name
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


def _grid(method: str, kw: dict, dim: int | None, base: str | None) -> list[tuple[dict, "DiracGAN"]]:
    """The product grid of the given parameter lists: (CLI-named params, game) pairs.
    Building the games validates method and parameters with the objective's own errors."""
    from dynamics.study import make_game

    lists = {k: parse_floats(k, kw.get(k)) for k in PARAM_OPTIONS}
    lists = {k: v for k, v in lists.items() if v is not None}
    keys = list(lists)
    combos = [dict(zip(keys, vals)) for vals in itertools.product(*(lists[k] for k in keys))] or [{}]
    return [(p, _wrap(make_game, method, p, dim, base)) for p in combos]


def _wrap(fn, *a, **k):
    from dynamics.objectives import ObjectiveError
    from dynamics.simulate import SimulationError

    try:
        return fn(*a, **k)
    except (ObjectiveError, SimulationError) as e:
        raise UserError(str(e)) from None


def _check_dim(dim):
    if dim is not None and dim < 1:
        raise UserError(f"--dim must be >= 1, got {dim}")


# --------------------------------------------------------------------------- #
@click.group()
def dirac():
    """The Dirac-GAN testbed: spectra, simulations, figures, tables."""


METHOD_OPT = click.option("--method", "-m", required=True, metavar="NAME",
                          help="gan nsgan wgan wgan_norm wgan_gp dragan r1 r2 roth gan_qp lsgan alpha "
                               "alpha_sat instance_noise conopt")
DIM_OPT = click.option("--dim", type=int, default=None, help="dimension n of θ, ψ ∈ ℝⁿ [default: 1; 2 for wgan_norm, gan_qp]")
BASE_OPT = click.option("--base", default=None, metavar="LOSS", help="GAN loss under a regulariser (gan, nsgan, ...)")


@dirac.command()
@METHOD_OPT
@param_options
@DIM_OPT
@BASE_OPT
@click.option("--lr", type=float, default=None, help="also report the discrete spectral radius at this learning rate")
@click.option("--lr-ratio", type=float, default=1.0, show_default=True, help="lr_d / lr_g for the discrete analysis")
@click.option("--scheme", type=click.Choice(["simgd", "altgd"]), default="simgd", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def spectrum(method, dim, base, lr, lr_ratio, scheme, as_json, **kw):
    """Eigenvalues of the Jacobian at the equilibrium and the local-convergence verdict."""
    from dynamics.spectrum import max_stable_lr, spectral_radius, spectrum as spec_fn
    from dynamics.study import from_objective_params

    _check_dim(dim)
    if lr is not None and not lr > 0:
        raise UserError(f"--lr must be > 0, got {lr}")
    if not lr_ratio > 0:
        raise UserError(f"--lr-ratio must be > 0, got {lr_ratio}")
    out = []
    for _, game in _grid(method, kw, dim, base):
        s = spec_fn(game)
        hp = from_objective_params(method, game.objective.resolve())
        rec = {
            "method": method,
            "params": {**hp, "dim": game.dim},
            "eigenvalues": [[e.real, e.imag] for e in s.eigenvalues[0].tolist()] if bool(s.differentiable[0]) else [],
            "locally_convergent": s.locally_convergent[0],
        }
        extra = {}
        if bool(s.differentiable[0]):
            extra["max_stable_lr"] = float(_wrap(max_stable_lr, game, scheme=scheme, ratio=lr_ratio)[0])
            if lr is not None:
                extra["spectral_radius"] = float(_wrap(spectral_radius, game, lr_ratio * lr, lr, scheme=scheme)[0])
        out.append((rec, extra))
    if as_json:
        click.echo(json.dumps([r for r, _ in out]))
        return
    for rec, extra in out:
        verdict = {True: "locally convergent", False: "not locally convergent",
                   None: "not differentiable at the equilibrium: use `gcann dirac simulate` for a verdict"}
        params = ", ".join(f"{k}={v:g}" for k, v in rec["params"].items())
        click.echo(f"{method} ({params})")
        if rec["eigenvalues"]:
            click.echo("  eigenvalues: " + ", ".join(f"{a:+.6g}{b:+.6g}i" for a, b in rec["eigenvalues"]))
        click.echo(f"  continuous time: {verdict[rec['locally_convergent']]}")
        if "max_stable_lr" in extra:
            click.echo(f"  {scheme}, lr_d = {lr_ratio:g}·lr_g: largest stable lr_g = {extra['max_stable_lr']:.6g}"
                       + (" (none: ρ ≥ 1 for all lr)" if extra["max_stable_lr"] == 0 else ""))
        if "spectral_radius" in extra:
            rho = extra["spectral_radius"]
            what = ("= 1: marginal, neither converges nor diverges" if abs(rho - 1) < 1e-9
                    else "< 1: converges locally" if rho < 1 else "> 1: diverges locally")
            click.echo(f"  {scheme} at lr_g = {lr:g}: spectral radius {rho:.6g} ({what})")


def _parse_inits(inits: tuple[str, ...], grid: str | None, dim: int, records: int, copies: int, combos: int):
    import torch

    from dynamics.simulate import check_memory

    rows = []
    for s in inits:
        vals = parse_floats("init", s)
        if len(vals) != 2 * dim:
            raise UserError(f"--init needs {2 * dim} numbers (θ then ψ, each in ℝ^{dim}), got {len(vals)}")
        rows.append(vals)
    if grid:
        parts = grid.split(",")
        if len(parts) != 2:
            raise UserError("--grid must be 'θmin:θmax:n,ψmin:ψmax:n'")
        axes = []
        for part in parts:
            try:
                lo, hi, n = part.split(":")
                lo, hi, n = float(lo), float(hi), int(n)
            except ValueError:
                raise UserError(f"--grid axis must be 'min:max:n', got {part!r}")
            if n < 1 or not (math.isfinite(lo) and math.isfinite(hi)):
                raise UserError(f"--grid axis {part!r}: n must be >= 1 and bounds finite")
            axes.append(torch.linspace(lo, hi, n, dtype=torch.float64))
        n_grid = len(axes[0]) * len(axes[1])
        # refuse before allocating anything: initial grid plus recorded trajectory
        _wrap(check_memory, records, (n_grid + len(rows)) * combos, 2 * dim, 8, copies)
        th, ps = torch.meshgrid(*axes, indexing="ij")
        # a 1-D grid in each of θ's and ψ's first coordinate; other coordinates 0
        g = torch.zeros(th.numel(), 2 * dim, dtype=torch.float64)
        g[:, 0], g[:, dim] = th.reshape(-1), ps.reshape(-1)
        rows.extend(g.tolist())
    if not rows:
        rows = [[1.0] * (2 * dim)]
    return torch.tensor(rows, dtype=torch.float64)


@dirac.command()
@METHOD_OPT
@param_options
@DIM_OPT
@BASE_OPT
@click.option("--scheme", type=click.Choice(["ode", "simgd", "altgd"]), default="simgd", show_default=True)
@click.option("--lr", type=float, default=0.1, show_default=True, help="learning rate of both players")
@click.option("--lr-d", type=float, default=None, help="discriminator learning rate [default: --lr]")
@click.option("--lr-g", type=float, default=None, help="generator learning rate [default: --lr]")
@click.option("--optimizer", type=click.Choice(["sgd", "adam", "rmsprop"]), default="sgd", show_default=True)
@click.option("--momentum", type=float, default=0.0, show_default=True, help="SGD momentum")
@click.option("--n-d", type=int, default=1, show_default=True, help="altgd: discriminator steps per round")
@click.option("--n-g", type=int, default=1, show_default=True, help="altgd: generator steps per round")
@click.option("--steps", type=int, default=1000, show_default=True, help="updates (ode: output intervals)")
@click.option("--t1", type=float, default=50.0, show_default=True, help="ode: final time")
@click.option("--ode-method", type=click.Choice(["rk4", "dopri5"]), default="rk4", show_default=True)
@click.option("--init", "inits", multiple=True, metavar="θ,ψ", help="an initial point (repeatable)")
@click.option("--grid", default=None, metavar="a:b:n,c:d:n", help="a grid of initial points in (θ₁, ψ₁)")
@click.option("--ema-beta", type=float, default=None, help="also record the EMA of the iterates with this β")
@click.option("--record-every", type=int, default=1, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write the trajectory: .json or .npz")
@click.option("--gcann", "gcann_cfg", type=click.Choice(["dirac", "paper"]), default=None,
              help="drive the run with one GCANN controller per trajectory: DIRAC_CONFIG or the unmodified "
                   "paper-celeba preset (simgd/altgd; docs/gcann_dirac.md)")
@click.option("--events", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="with --gcann: write every controller event as JSON lines (with its row)")
def simulate(method, dim, base, scheme, lr, lr_d, lr_g, optimizer, momentum, n_d, n_g, steps, t1, ode_method,
             inits, grid, ema_beta, record_every, device, out, gcann_cfg, events, **kw):
    """Simulate a batch of Dirac-GAN trajectories and classify them."""
    import torch

    from dynamics.simulate import OptimiserSpec, simulate as sim_fn
    from dynamics.verdict import Tolerances, classify, summarise

    _check_dim(dim)
    if out is not None and out.suffix not in (".json", ".npz"):
        raise UserError(f"--out must end in .json or .npz, got {out.name!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda requested but CUDA is not available")
    if events is not None and gcann_cfg is None:
        raise UserError("--events needs --gcann")
    if gcann_cfg is not None and (scheme == "ode" or n_d != 1 or n_g != 1):
        raise UserError("--gcann drives discrete schemes (simgd, altgd) with --n-d 1 --n-g 1")
    games = _grid(method, kw, dim, base)
    combos = [p for p, _ in games]
    # one game carries the objective; the grid's values travel per row as hyper-parameters
    game = games[0][1]
    if record_every < 1 or steps < 1:
        raise UserError("--steps and --record-every must be >= 1")
    z0 = _parse_inits(inits, grid, game.dim, steps // record_every + 1, 2 if ema_beta is not None else 1,
                      len(combos))
    # batch = initial points × hyper-parameter grid
    resolved = [g.objective.resolve() for _, g in games]
    hp = {k: torch.tensor([h[k] for h in resolved for _ in range(len(z0))], dtype=torch.float64) for k in resolved[0]}
    z = z0.repeat(len(combos), 1).to(device)
    hp = {k: v.to(device) for k, v in hp.items()}
    spec = _wrap(OptimiserSpec, optimizer, momentum=momentum)
    logs = None
    if gcann_cfg is None:
        tr = _wrap(sim_fn, game, z, scheme=scheme, steps=steps, lr=lr, lr_d=lr_d, lr_g=lr_g, hp=hp, optimizer=spec,
                   n_d=n_d, n_g=n_g, t1=t1, ode_method=ode_method, ema_beta=ema_beta, record_every=record_every)
        dist = tr.distance
    else:
        from gcann.dirac.testbed import dirac_config, effective_distance, paper_config, simulate_gcann

        for name, val in (("--lr", lr), ("--lr-d", lr_d), ("--lr-g", lr_g)):
            if val is not None and not val > 0:
                raise UserError(f"{name} must be > 0, got {val}")
        make_cfg = dirac_config if gcann_cfg == "dirac" else paper_config
        try:
            cfg = make_cfg(lr, lr_d=lr if lr_d is None else lr_d, lr_g=lr if lr_g is None else lr_g)
        except ValueError as e:
            raise UserError(str(e)) from None
        tr, logs = _wrap(simulate_gcann, game, z, config=cfg, steps=steps, scheme=scheme, optimizer=spec, hp=hp,
                         ema_beta=ema_beta, record_every=record_every)
        dist = lambda ema=False: effective_distance(tr, ema)  # noqa: E731  (diverged rows count as diverging)
    tol = Tolerances()
    labels = classify(dist().cpu(), tol) if tr.z.shape[0] >= 8 else ["n/a"] * z.shape[0]
    ema_labels = classify(dist(ema=True).cpu(), tol) if ema_beta is not None and tr.z.shape[0] >= 8 else None
    summary = {"method": method, "scheme": scheme, "batch": int(z.shape[0]), "verdicts": summarise(labels),
               "tolerances": tol.as_dict(), "median_final_distance": float(dist()[-1].median())}
    if ema_labels is not None:
        summary["ema_verdicts"] = summarise(ema_labels)
        summary["median_final_distance_ema"] = float(dist(ema=True)[-1].median())
    if logs is not None:
        summary["gcann"] = {"config": gcann_cfg, "events": logs.event_counts(),
                            "diverged_rows": int(logs.diverged.sum())}
        if events is not None:
            lines = [json.dumps({"row": b, **ev}) for b, row in enumerate(logs.events) for ev in row]
            atomic_write(events, lambda p: Path(p).write_text("\n".join(lines) + ("\n" if lines else "")))
            summary["events_file"] = str(events)
    if out is not None:
        params = [{**p} for p in combos for _ in range(len(z0))]
        payload = {"t": tr.t.cpu().numpy(), "z": tr.z.cpu().numpy()}
        if tr.z_ema is not None:
            payload["z_ema"] = tr.z_ema.cpu().numpy()
        if out.suffix == ".npz":
            import numpy as np

            # the temporary file keeps the .npz suffix, so numpy writes exactly there
            atomic_write(out, lambda p: np.savez_compressed(
                p, **payload, labels=np.array(labels), params=json.dumps(params), summary=json.dumps(summary)))
        else:
            doc = {**summary, "dim": game.dim, "params": params, "t": payload["t"].tolist(),
                   "z": payload["z"].tolist(), "labels": labels}
            if "z_ema" in payload:
                doc["z_ema"] = payload["z_ema"].tolist()
            atomic_write(out, lambda p: Path(p).write_text(json.dumps(doc)))
        summary["out"] = str(out)
    click.echo(json.dumps(summary, indent=2))


@dirac.command()
@click.option("--all", "all_", is_flag=True, help="all README figures")
@click.option("--kind", default=None, help="one figure: vector_field, theta_plane, ema, r1_locus, all_methods")
@click.option("--out", type=click.Path(path_type=Path), default=Path("figures"), show_default=True,
              help="folder (--all) or file (.png)")
@click.option("--gif", is_flag=True, help="also write GIF animations (--all)")
@click.option("--method", "-m", default=None, metavar="NAME",
              help="for --kind vector_field / ema: the method to draw [default: the README's]")
@click.option("--lr", type=float, default=None, help="for --kind vector_field: learning rate of simGD/altGD")
def plot(all_, kind, out, gif, method, lr):
    """Draw figures (vector fields, trajectories, EMA, R1 eigenvalue locus)."""
    from dynamics import plots

    if all_:
        from gcann.dirac.plots import make_gcann_figures

        for p in [*plots.make_all(out, gif=gif), *make_gcann_figures(out)]:
            click.echo(str(p))
        return
    if kind is None:
        raise UserError("give --all or --kind NAME")
    if kind not in plots.PLOTS:
        raise UserError(f"unknown --kind {kind!r}; choose from {', '.join(plots.PLOTS)}")
    if out.suffix != ".png":
        out = out / f"{kind}.png"
    if lr is not None and not lr > 0:
        raise UserError(f"--lr must be > 0, got {lr}")
    kw = {}
    if method is not None or lr is not None:
        if kind not in ("vector_field", "ema"):
            raise UserError(f"--method/--lr apply to --kind vector_field or ema, not {kind!r}")
        if kind == "vector_field":
            kw = {"methods": (method or "gan",), **({"lr": lr} if lr is not None else {})}
        else:
            kw = {"method": method, **({"lr": lr} if lr is not None else {})}
    try:
        fig = plots.PLOTS[kind](**kw)
    except ValueError as e:
        raise UserError(str(e).splitlines()[0]) from None
    atomic_write(out, lambda p: fig.savefig(p, dpi=110, format="png"))
    click.echo(str(out))


@dirac.command()
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of markdown")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="also write table.md and table.json into this folder")
@click.option("--gcann/--no-gcann", "with_gcann", default=True, show_default=True,
              help="add the plain / +GCANN / +EMA / +GCANN+EMA columns")
@click.option("--n-init", type=int, default=None, help="initial conditions per method for the GCANN columns")
def table(as_json, out, with_gcann, n_init):
    """The local-convergence tables of the sources, computed."""
    if n_init is not None and n_init < 1:
        raise UserError(f"--n-init must be >= 1, got {n_init}")
    md, doc = _tables(with_gcann, n_init)
    if out is not None:
        atomic_write(out / "table.md", lambda p: Path(p).write_text(md))
        atomic_write(out / "table.json", lambda p: Path(p).write_text(json.dumps(doc, indent=2)))
    click.echo(json.dumps(doc, indent=2) if as_json else md)


def _tables(with_gcann: bool, n_init: int | None):
    from dynamics.study import ema_summary, run_tables

    log = lambda m: click.echo(m, err=True)  # noqa: E731
    tabs = run_tables(progress=log)
    doc = {k: {"title": v["title"], "rows": v["rows"]} for k, v in tabs.items()}
    md = "\n".join(v["markdown"] for v in tabs.values())
    ema = ema_summary()
    doc["ema"] = ema
    md += (f"\nEMA (Su): {ema['method']} in ℝ^{ema['dim']}, β = {ema['ema_beta']}: median final distance "
           f"{ema['median_final_distance_raw']:.3g} (raw) vs {ema['median_final_distance_ema']:.3g} (EMA).\n")
    if with_gcann:
        from gcann.dirac.testbed import gcann_table

        log("computing plain / +GCANN / +EMA / +GCANN+EMA columns ...")
        g_md, g_doc = gcann_table(**({} if n_init is None else {"n_init": n_init}))
        md += "\n" + g_md
        doc["gcann"] = g_doc
    return md, doc


@dirac.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/dirac-study"),
              show_default=True, help="output folder")
@click.option("--gif/--no-gif", default=False, show_default=True)
def study(out, gif):
    """The main job: compute the tables and draw the figures into one folder."""
    md, doc = _tables(True, None)
    atomic_write(out / "table.md", lambda p: Path(p).write_text(md))
    atomic_write(out / "table.json", lambda p: Path(p).write_text(json.dumps(doc, indent=2)))
    click.echo(md)
    from dynamics import plots
    from gcann.dirac.plots import make_gcann_figures

    for p in [*plots.make_all(out / "figures", gif=gif), *make_gcann_figures(out / "figures")]:
        click.echo(str(p), err=True)
    click.echo(f"wrote {out}/table.md, {out}/table.json and {out}/figures/", err=True)
