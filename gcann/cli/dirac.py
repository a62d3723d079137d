"""``gcann dirac ...``: spectra, simulations, figures and tables of the Dirac-GAN testbed."""
from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .common import UserError, atomic_write, check_device, check_output, estimate_note, parse_floats, progress_bar

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
        if lr is not None:  # the discrete analysis at --lr, as the text output prints it (null: no Jacobian)
            rec.update(scheme=scheme, lr=lr, lr_ratio=lr_ratio, max_stable_lr=extra.get("max_stable_lr"),
                       spectral_radius=extra.get("spectral_radius"))
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


def _parse_inits(inits: tuple[str, ...], grid: str | None, n_random: int | None, seed: int, dim: int, records: int,
                 copies: int, combos: int):
    import torch

    from dynamics.simulate import check_memory

    rows = []
    for s in inits:
        vals = parse_floats("init", s)
        if len(vals) != 2 * dim:
            raise UserError(f"--init needs {2 * dim} numbers (θ then ψ, each in ℝ^{dim}), got {len(vals)}")
        rows.append(vals)
    if n_random is not None:
        if n_random < 1:
            raise UserError(f"--random must be >= 1, got {n_random}")
        _wrap(check_memory, records, (n_random + len(rows)) * combos, 2 * dim, 8, copies)
        g = torch.Generator().manual_seed(seed)
        rows.extend(((torch.rand(n_random, 2 * dim, generator=g, dtype=torch.float64) * 2 - 1)).tolist())
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


def _estimate_seconds(game, z, hp, scheme: str, steps: int, n_d: int, n_g: int, ode_method: str,
                      gcann: bool) -> float | None:
    """Seconds the run will take: a timed field evaluation on the real batch × evaluations."""
    import time

    if scheme == "ode" and ode_method != "rk4":
        return None
    hpb = game.prepare(hp, z.shape[0], z.dtype, z.device)
    best = math.inf
    for _ in range(3):
        t0 = time.perf_counter()
        game.field(z, hpb)
        best = min(best, time.perf_counter() - t0)
    evals = {"simgd": 1, "altgd": n_d + n_g, "ode": 4 * 10}[scheme]
    per_step = 1.3 * evals * best + (2 * best + 5e-6 * z.shape[0] if gcann else 0.0)
    return steps * per_step


def _setting_rows(combos, per: int, labels, rates, final, ema_labels=None, ema_final=None) -> list[dict]:
    """One record per hyper-parameter setting (grid point): its verdicts, rate and distance."""
    import statistics

    from dynamics.verdict import summarise

    out = []
    for i, p in enumerate(combos):
        sl = slice(i * per, (i + 1) * per)
        lab = labels[sl]
        fin = [r for r in rates[sl] if math.isfinite(r)]
        rec = {"setting": i, "params": dict(p), "batch": per, "verdicts": summarise(lab),
               "median_rate": statistics.median(fin) if fin else None,
               "median_final_distance": float(final[sl].median())}
        if ema_labels is not None:
            rec["ema_verdicts"] = summarise(ema_labels[sl])
            rec["median_final_distance_ema"] = float(ema_final[sl].median())
        out.append(rec)
    return out


def _settings_text(settings: list[dict], ema: bool) -> str:
    """The per-setting table printed to stderr (stdout keeps the JSON)."""
    keys = sorted({k for s in settings for k in s["params"]})
    head = ["setting", *keys, "rows", "verdicts", "median rate", "median ‖z_T‖"] + (["EMA verdicts"] if ema else [])
    lines = ["  ".join(head)]
    for s in settings:
        v = ", ".join(f"{k} {f:.2f}" for k, f in s["verdicts"].items() if f)
        cells = [str(s["setting"]), *(f"{s['params'].get(k, float('nan')):g}" for k in keys), str(s["batch"]), v,
                 "–" if s["median_rate"] is None else f"{s['median_rate']:+.3g}", f"{s['median_final_distance']:.3g}"]
        if ema:
            cells.append(", ".join(f"{k} {f:.2f}" for k, f in s["ema_verdicts"].items() if f))
        lines.append("  ".join(cells))
    return "\n".join(lines)


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
@click.option("--random", "n_random", type=int, default=None, metavar="N",
              help="N random initial points, uniform in [-1, 1]^(2n) (see --seed)")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the --random initial points")
@click.option("--ema-beta", type=float, default=None, help="also record the EMA of the iterates with this β")
@click.option("--record-every", type=int, default=1, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="write the trajectory and the per-row and per-setting results: .json or .npz")
@click.option("--gcann", "gcann_cfg", type=click.Choice(["dirac", "paper"]), default=None,
              help="drive the run with one GCANN controller per trajectory: DIRAC_CONFIG or the unmodified "
                   "paper-celeba preset (simgd/altgd; docs/gcann_dirac.md)")
@click.option("--events", type=click.Path(path_type=Path), default=None,
              help="with --gcann: write the controller events as JSON lines (with their row)")
@click.option("--event-kinds", default=None, metavar="KIND[,KIND...]|all",
              help="with --events: the kinds to log [default: reactive, proactive, pause_d, pause_g, slope_threshold, "
                   "slope_thresh_scale, diverged; 'all' adds the per-step skip_d, skip_g, tie_break]")
@click.option("--quiet", "-q", is_flag=True, help="no progress bar and no time estimate")
def simulate(method, dim, base, scheme, lr, lr_d, lr_g, optimizer, momentum, n_d, n_g, steps, t1, ode_method,
             inits, grid, n_random, seed, ema_beta, record_every, device, out, gcann_cfg, events, event_kinds, quiet,
             **kw):
    """Simulate a batch of Dirac-GAN trajectories and classify them, per hyper-parameter setting."""
    import torch

    from dynamics.simulate import OptimiserSpec, simulate as sim_fn
    from dynamics.verdict import MIN_RECORDS, Tolerances, classify_with_rates, summarise

    _check_dim(dim)
    if out is not None and out.suffix not in (".json", ".npz"):
        raise UserError(f"--out must end in .json or .npz, got {out.name!r}")
    device = check_device(device)
    if events is not None and gcann_cfg is None:
        raise UserError("--events needs --gcann")
    if event_kinds is not None and events is None:
        raise UserError("--event-kinds needs --events")
    kinds = _parse_event_kinds(event_kinds)
    if gcann_cfg is not None and (scheme == "ode" or n_d != 1 or n_g != 1):
        raise UserError("--gcann drives discrete schemes (simgd, altgd) with --n-d 1 --n-g 1")
    if out is not None:
        check_output(out, "--out")
    if events is not None:
        check_output(events, "--events")
        if out is not None and events.resolve() == out.resolve():
            raise UserError("--events and --out name the same file")
    games = _grid(method, kw, dim, base)
    combos = [p for p, _ in games]
    # one game carries the objective; the grid's values travel per row as hyper-parameters
    game = games[0][1]
    if record_every < 1 or steps < 1:
        raise UserError("--steps and --record-every must be >= 1")
    z0 = _parse_inits(inits, grid, n_random, seed, game.dim, steps // record_every + 1,
                      2 if ema_beta is not None else 1, len(combos))
    # batch = initial points × hyper-parameter grid
    resolved = [g.objective.resolve() for _, g in games]
    hp = {k: torch.tensor([h[k] for h in resolved for _ in range(len(z0))], dtype=torch.float64) for k in resolved[0]}
    z = z0.repeat(len(combos), 1).to(device)
    hp = {k: v.to(device) for k, v in hp.items()}
    spec = _wrap(OptimiserSpec, optimizer, momentum=momentum)
    if not quiet:
        est = _wrap(_estimate_seconds, game, z, hp, scheme, steps, n_d, n_g, ode_method, gcann_cfg is not None)
        if est is not None:
            estimate_note(est, f"{steps:,} {'output intervals' if scheme == 'ode' else 'steps'} × "
                               f"{z.shape[0]:,} trajectories")
    logs = None
    with progress_bar(steps, f"simulate {method}", quiet, "step") as update:
        if gcann_cfg is None:
            tr = _wrap(sim_fn, game, z, scheme=scheme, steps=steps, lr=lr, lr_d=lr_d, lr_g=lr_g, hp=hp,
                       optimizer=spec, n_d=n_d, n_g=n_g, t1=t1, ode_method=ode_method, ema_beta=ema_beta,
                       record_every=record_every, progress=update)
            dist = tr.distance
        else:
            from gcann.dirac import dirac_config, effective_distance, paper_config, simulate_gcann

            for name, val in (("--lr", lr), ("--lr-d", lr_d), ("--lr-g", lr_g)):
                if val is not None and not val > 0:
                    raise UserError(f"{name} must be > 0, got {val}")
            make_cfg = dirac_config if gcann_cfg == "dirac" else paper_config
            try:
                cfg = make_cfg(lr, lr_d=lr if lr_d is None else lr_d, lr_g=lr if lr_g is None else lr_g)
            except ValueError as e:
                raise UserError(str(e)) from None
            tr, logs = _wrap(simulate_gcann, game, z, config=cfg, steps=steps, scheme=scheme, optimizer=spec, hp=hp,
                             ema_beta=ema_beta, record_every=record_every, log_events=kinds, progress=update)
            dist = lambda ema=False: effective_distance(tr, ema)  # noqa: E731  (diverged rows count as diverging)
    tol = Tolerances()
    judged = tr.z.shape[0] >= MIN_RECORDS
    B = z.shape[0]
    if judged:
        labels, rates = classify_with_rates(dist().cpu(), tol, z=tr.z.cpu(), t=tr.t.cpu())
    else:
        labels, rates = ["n/a"] * B, [math.nan] * B
    ema_labels = ema_rates = None
    if ema_beta is not None:
        if judged:
            ema_labels, ema_rates = classify_with_rates(dist(ema=True).cpu(), tol, z=tr.z_ema.cpu(), t=tr.t.cpu())
        else:
            ema_labels, ema_rates = ["n/a"] * B, [math.nan] * B
    final = dist()[-1].cpu()
    ema_final = dist(ema=True)[-1].cpu() if ema_beta is not None else None
    settings = _setting_rows(combos, len(z0), labels, rates, final, ema_labels, ema_final)
    summary = {"method": method, "scheme": scheme, "batch": int(B), "verdicts": summarise(labels),
               "tolerances": tol.as_dict(), "median_final_distance": float(final.median())}
    if not judged:
        summary["note"] = (f"n/a: {tr.z.shape[0]} recorded states, a verdict needs at least {MIN_RECORDS}; "
                           "raise --steps or lower --record-every")
    if ema_labels is not None:
        summary["ema_verdicts"] = summarise(ema_labels)
        summary["median_final_distance_ema"] = float(ema_final.median())
    summary["settings"] = settings
    if logs is not None:
        summary["gcann"] = {"config": gcann_cfg, "events": logs.event_counts(),
                            "diverged_rows": int(logs.diverged.sum())}
        if events is not None:
            lines = [json.dumps({"row": b, **ev}) for b, row in enumerate(logs.events) for ev in row]
            atomic_write(events, lambda p: Path(p).write_text("\n".join(lines) + ("\n" if lines else "")))
            summary["events_file"] = str(events)
            summary["events_logged"] = list(kinds)
    if out is not None:
        _write_simulation(out, tr, game, combos, len(z0), labels, rates, ema_labels, ema_rates, settings, summary)
        summary["out"] = str(out)
    if len(settings) > 1 and not quiet:
        click.echo(_settings_text(settings, ema_labels is not None), err=True)
    click.echo(json.dumps(summary, indent=2))


def _write_simulation(out: Path, tr, game, combos, per: int, labels, rates, ema_labels, ema_rates, settings,
                      summary) -> None:
    """The trajectory with per-row columns (setting, each hyper-parameter, verdict, rate) and per-setting
    columns (``setting_<param>``, ``setting_<fraction>``, medians)."""
    from dynamics.verdict import LABELS

    keys = sorted({k for p in combos for k in p})
    row_setting = [i for i in range(len(combos)) for _ in range(per)]
    if out.suffix == ".npz":
        import numpy as np

        cols = {"t": tr.t.cpu().numpy(), "z": tr.z.cpu().numpy(), "setting": np.array(row_setting),
                "labels": np.array(labels), "rate": np.array(rates, dtype=np.float64)}
        if tr.z_ema is not None:
            cols["z_ema"] = tr.z_ema.cpu().numpy()
            cols["ema_labels"] = np.array(ema_labels)
            cols["ema_rate"] = np.array(ema_rates, dtype=np.float64)
        for k in keys:
            cols[f"param_{k}"] = np.array([combos[i].get(k, np.nan) for i in row_setting], dtype=np.float64)
            cols[f"setting_{k}"] = np.array([p.get(k, np.nan) for p in combos], dtype=np.float64)
        for lab in (*LABELS, "n/a"):
            cols[f"setting_{lab.replace(' ', '_').replace('/', '')}"] = np.array(
                [s["verdicts"].get(lab, 0.0) for s in settings])
        cols["setting_median_rate"] = np.array([np.nan if s["median_rate"] is None else s["median_rate"]
                                                for s in settings])
        cols["setting_median_final_distance"] = np.array([s["median_final_distance"] for s in settings])
        # the temporary file keeps the .npz suffix, so numpy writes exactly there
        atomic_write(out, lambda p: np.savez_compressed(p, **cols, summary=json.dumps(summary)))
        return
    doc = {**summary, "dim": game.dim, "params": [dict(combos[i]) for i in row_setting], "setting": row_setting,
           "t": tr.t.cpu().tolist(), "z": tr.z.cpu().tolist(), "labels": labels,
           "rate": [r if math.isfinite(r) else None for r in rates]}
    if tr.z_ema is not None:
        doc["z_ema"] = tr.z_ema.cpu().tolist()
        doc["ema_labels"] = ema_labels
    atomic_write(out, lambda p: Path(p).write_text(json.dumps(doc)))


def _figure_kinds() -> dict:
    """Every figure ``plot --kind`` draws: the testbed's and the GCANN controller's."""
    from dynamics import plots
    from gcann.dirac.plots import GCANN_PLOTS

    return {**plots.PLOTS, **GCANN_PLOTS}


FORMAT_OPT = click.option("--format", "fmt", type=click.Choice(["png", "pdf", "svg"]), default=None,
                          help="figure format [default: the --out suffix, else png]")
DPI_OPT = click.option("--dpi", type=int, default=110, show_default=True, help="resolution of raster output")
QUIET_OPT = click.option("--quiet", "-q", is_flag=True, help="no progress bar and no time estimate")

#: measured on a 2-core CPU (torch 2.15): the full figure set and the tables with the GCANN columns
FIGURES_SECONDS, TABLES_SECONDS = 45.0, 200.0


def _check_dpi(dpi: int) -> None:
    if dpi < 1:
        raise UserError(f"--dpi must be >= 1, got {dpi}")


@dirac.command()
@click.option("--all", "all_", is_flag=True, help="all README figures")
@click.option("--kind", default=None,
              help="one figure: vector_field, theta_plane, ema, r1_locus, all_methods, gcann_trajectories, "
                   "gcann_loss_events")
@click.option("--out", type=click.Path(path_type=Path), default=Path("figures"), show_default=True,
              help="folder (--all, or --kind without a file name) or file (.png, .pdf, .svg)")
@FORMAT_OPT
@DPI_OPT
@click.option("--gif", is_flag=True, help="also write GIF animations (--all)")
@click.option("--method", "-m", default=None, metavar="NAME",
              help="for --kind vector_field / ema: the method to draw [default: the README's]")
@click.option("--lr", type=float, default=None, help="for --kind vector_field / ema / gcann_*: learning rate")
@QUIET_OPT
def plot(all_, kind, out, fmt, dpi, gif, method, lr, quiet):
    """Draw figures (vector fields, trajectories, EMA, R1 eigenvalue locus, the GCANN controller's)."""
    _check_dpi(dpi)
    suffix = out.suffix.lower().lstrip(".")
    if all_:
        if kind is not None:
            raise UserError("give --all or --kind NAME, not both")
        if suffix in ("png", "pdf", "svg"):
            raise UserError(f"--all writes several files: --out must be a folder, got {str(out)!r}")
        check_output(out, "--out", folder=True)
        from dynamics import plots
        from gcann.dirac.plots import GCANN_PLOTS, make_gcann_figures

        fmt = fmt or "png"
        n = len(plots.PLOTS) + len(GCANN_PLOTS) + (len(plots.GIF_METHODS) if gif else 0)
        estimate_note(FIGURES_SECONDS * (2 if gif else 1), f"{n} figures", quiet)
        with progress_bar(n, "figures", quiet, "fig") as update:
            paths = [*plots.make_all(out, gif=gif, dpi=dpi, fmt=fmt, progress=lambda name: update(label=name)),
                     *make_gcann_figures(out, dpi=dpi, fmt=fmt, progress=lambda name: update(label=name))]
        for p in paths:
            click.echo(str(p))
        return
    if kind is None:
        raise UserError("give --all or --kind NAME")
    kinds = _figure_kinds()
    if kind not in kinds:
        raise UserError(f"unknown --kind {kind!r}; choose from {', '.join(kinds)}")
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
    if lr is not None and not lr > 0:
        raise UserError(f"--lr must be > 0, got {lr}")
    kw = {}
    if method is not None or lr is not None:
        if kind.startswith("gcann_"):
            if method is not None:
                raise UserError(f"--method does not apply to --kind {kind!r}")
            kw = {"lr": lr}
        elif kind not in ("vector_field", "ema"):
            raise UserError(f"--method/--lr apply to --kind vector_field, ema or gcann_*, not {kind!r}")
        elif kind == "vector_field":
            kw = {"methods": (method or "gan",), **({"lr": lr} if lr is not None else {})}
        else:
            kw = {"method": method, **({"lr": lr} if lr is not None else {})}
    check_output(out, "--out")
    from dynamics.plots import save

    try:
        fig = kinds[kind](**kw)
    except ValueError as e:
        raise UserError(str(e).splitlines()[0]) from None
    save(fig, out, dpi, fmt)
    click.echo(str(out))


@dirac.command()
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of markdown")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="also write table.md and table.json into this folder")
@click.option("--gcann/--no-gcann", "with_gcann", default=True, show_default=True,
              help="add the plain / +GCANN / +EMA / +GCANN+EMA columns")
@click.option("--n-init", type=int, default=None, help="initial conditions per method for the GCANN columns")
@click.option("--seed", type=int, default=0, show_default=True,
              help="seed of the random initial points (GCANN columns, 2-D rings)")
@QUIET_OPT
def table(as_json, out, with_gcann, n_init, seed, quiet):
    """The local-convergence tables of the sources, computed."""
    if n_init is not None and n_init < 1:
        raise UserError(f"--n-init must be >= 1, got {n_init}")
    if out is not None:
        check_output(out, "--out", folder=True)
        for name in ("table.md", "table.json"):
            check_output(out / name, "--out")
    md, doc = _tables(with_gcann, n_init, seed, quiet)
    if out is not None:
        atomic_write(out / "table.md", lambda p: Path(p).write_text(md))
        atomic_write(out / "table.json", lambda p: Path(p).write_text(json.dumps(doc, indent=2)))
    click.echo(json.dumps(doc, indent=2) if as_json else md)


def _tables(with_gcann: bool, n_init: int | None, seed: int = 0, quiet: bool = False, note: bool = True):
    from dynamics.study import SEED001_GENERAL, SEED003, SimSettings, ema_summary, run_tables

    n_gcann = 0
    if with_gcann:
        from gcann.dirac import TABLE_METHODS

        n_gcann = len(TABLE_METHODS)
    scale = 1.0 if n_init is None else n_init / 64
    seconds = 25.0 + (TABLES_SECONDS - 25.0) * scale * (n_gcann > 0)
    estimate_note(seconds, "the tables" + (" with the GCANN columns" if with_gcann else ""), quiet or not note)
    total = len(SEED001_GENERAL) + len(SEED003) + 1 + n_gcann
    sim = SimSettings(seed=seed)
    with progress_bar(total, "tables", quiet, "row") as update:
        tabs = run_tables(sim, progress=lambda label: update(label=label))
        doc = {k: {"title": v["title"], "rows": v["rows"]} for k, v in tabs.items()}
        md = "\n".join(v["markdown"] for v in tabs.values())
        ema = ema_summary(sim=sim)
        update(label="EMA")
        doc["ema"] = ema
        md += (f"\nEMA (Su): {ema['method']} in ℝ^{ema['dim']}, β = {ema['ema_beta']}: median final distance "
               f"{ema['median_final_distance_raw']:.3g} (raw) vs {ema['median_final_distance_ema']:.3g} (EMA).\n")
        if with_gcann:
            from gcann.dirac import gcann_table

            g_md, g_doc = gcann_table(**({} if n_init is None else {"n_init": n_init}), seed=seed,
                                      progress=lambda label: update(label=f"GCANN {label}"))
            md += "\n" + g_md
            doc["gcann"] = g_doc
    return md, doc


@dirac.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/dirac-study"),
              show_default=True, help="output folder")
@click.option("--gif/--no-gif", default=False, show_default=True)
@FORMAT_OPT
@DPI_OPT
@click.option("--seed", type=int, default=0, show_default=True,
              help="seed of the random initial points (GCANN columns, 2-D rings)")
@QUIET_OPT
def study(out, gif, fmt, dpi, seed, quiet):
    """The main job: compute the tables and draw the figures into one folder."""
    _check_dpi(dpi)
    check_output(out, "--out", folder=True)
    for name in ("table.md", "table.json"):
        check_output(out / name, "--out")
    check_output(out / "figures", "--out", folder=True)
    fmt = fmt or "png"
    estimate_note(TABLES_SECONDS + FIGURES_SECONDS, "the study (tables, then figures)", quiet)
    md, doc = _tables(True, None, seed, quiet, note=False)
    atomic_write(out / "table.md", lambda p: Path(p).write_text(md))
    atomic_write(out / "table.json", lambda p: Path(p).write_text(json.dumps(doc, indent=2)))
    click.echo(md)
    from dynamics import plots
    from gcann.dirac.plots import GCANN_PLOTS, make_gcann_figures

    n = len(plots.PLOTS) + len(GCANN_PLOTS) + (len(plots.GIF_METHODS) if gif else 0)
    with progress_bar(n, "figures", quiet, "fig") as update:
        paths = [*plots.make_all(out / "figures", gif=gif, dpi=dpi, fmt=fmt, progress=lambda m: update(label=m)),
                 *make_gcann_figures(out / "figures", dpi=dpi, fmt=fmt, progress=lambda m: update(label=m))]
    if not quiet:
        for p in paths:
            click.echo(str(p), err=True)
    click.echo(f"wrote {out}/table.md, {out}/table.json and {out}/figures/", err=True)
