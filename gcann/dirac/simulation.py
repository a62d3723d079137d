"""A batch of Dirac-GAN trajectories from one :class:`SimulationSpec`: the library behind ``gcann dirac simulate``.

A spec names a method, lists of hyper-parameter values (their product is the grid of *settings*), the
initial points (explicit, random or a grid in (θ₁, ψ₁)), the update scheme and optimiser and, optionally,
a GCANN controller per trajectory.  :func:`plan_simulation` checks it and builds the batch (initial points ×
settings, one row per pair) without running anything; :meth:`SimulationPlan.run` simulates and classifies
each row (:func:`dynamics.verdict.classify_with_rates`) and summarises per setting::

    from gcann.dirac.simulation import SimulationSpec, run_simulation

    res = run_simulation(SimulationSpec("r1", {"gamma": [0.1, 1.0]}, grid=((-2, 2, 21), (-2, 2, 21)), steps=2000))
    res.summary["settings"][1]["verdicts"]      # {'converging': 1.0, ...}
    res.write("r1.npz")                         # trajectory, per-row and per-setting columns

Mistakes in a spec raise :class:`dynamics.simulate.SimulationError` or the objective's
:class:`dynamics.objectives.ObjectiveError` (both :class:`gcann.errors.GcannError`); their messages name the
``gcann dirac simulate`` option that carries the value.
"""
from __future__ import annotations

import importlib
import itertools
import json
import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import torch

from dynamics.dirac import DiracGAN
from dynamics.simulate import OptimiserSpec, SimulationError, Trajectory, check_memory
from dynamics.study import make_game
from dynamics.verdict import LABELS, MIN_RECORDS, Tolerances, classify_with_rates, summarise
from gcann.fileio import atomic_write

from .controlled_simulator import DEFAULT_LOG_EVENTS, EVENT_KINDS, GCANNLogs

__all__ = ["PARAM_NAMES", "SimulationPlan", "SimulationResult", "SimulationSpec", "estimate_seconds",
           "initial_points", "param_grid", "plan_simulation", "run_simulation", "settings_text"]

#: the hyper-parameters a spec may list (CLI names: ``gamma`` is ConOpt's γ for ``conopt``), in grid order
PARAM_NAMES = ("gamma", "sigma", "c", "lam", "alpha_d", "alpha_g", "a", "b", "clip", "l2")

Axis = tuple[float, float, int]


@dataclass(frozen=True)
class SimulationSpec:
    """What to simulate.  ``params``: hyper-parameter name (:data:`PARAM_NAMES`) → values; the product of the
    lists is the grid of settings, each run from every initial point.  Initial points: ``inits`` (each θ then ψ,
    ``2·dim`` numbers), ``n_random`` points uniform in [−1, 1]^(2n) seeded by ``seed``, and ``grid`` =
    ((θmin, θmax, n), (ψmin, ψmax, n)) in the first coordinates of θ and ψ (others 0); none given: (1, …, 1).
    ``gcann``: ``"dirac"`` (:data:`gcann.dirac.DIRAC_CONFIG`) or ``"paper"`` (the unmodified paper-celeba preset)
    drives each trajectory with its own controller (simgd/altgd, ``n_d = n_g = 1``), logging ``log_events``
    (``None``: every kind).  ``controller``: any registered controller (``gcann controllers``) per trajectory,
    with ``controller_set`` its settings; the GCANN ones start from the ``gcann`` configuration (``"dirac"``
    unless given)."""

    method: str
    params: Mapping[str, Sequence[float]] = field(default_factory=dict)
    dim: int | None = None
    base: str | None = None
    scheme: str = "simgd"
    lr: float = 0.1
    lr_d: float | None = None
    lr_g: float | None = None
    optimizer: str = "sgd"
    momentum: float = 0.0
    n_d: int = 1
    n_g: int = 1
    steps: int = 1000
    t1: float = 50.0
    ode_method: str = "rk4"
    inits: Sequence[Sequence[float]] = ()
    grid: tuple[Axis, Axis] | None = None
    n_random: int | None = None
    seed: int = 0
    ema_beta: float | None = None
    record_every: int = 1
    device: str = "cpu"
    gcann: str | None = None
    log_events: Sequence[str] | None = DEFAULT_LOG_EVENTS
    controller: str | None = None
    controller_set: Mapping[str, object] = field(default_factory=dict)


def param_grid(method: str, params: Mapping[str, Sequence[float]] | None = None, dim: int | None = None,
               base: str | None = None) -> list[tuple[dict, DiracGAN]]:
    """The product grid of the given parameter lists: (params, game) pairs.  Building the games validates the
    method and parameters with the objective's own errors."""
    params = dict(params or {})
    unknown = sorted(set(params) - set(PARAM_NAMES))
    if unknown:
        raise SimulationError(f"unknown hyper-parameter(s) {unknown}; choose from {', '.join(PARAM_NAMES)}")
    lists = {k: [float(v) for v in params[k]] for k in PARAM_NAMES if params.get(k) is not None}
    keys = list(lists)
    combos = [dict(zip(keys, vals)) for vals in itertools.product(*(lists[k] for k in keys))] or [{}]
    return [(p, make_game(method, p, dim, base)) for p in combos]


def initial_points(dim: int, inits: Sequence[Sequence[float]] = (), grid: tuple[Axis, Axis] | None = None,
                   n_random: int | None = None, seed: int = 0, *, records: int = 1, copies: int = 1,
                   combos: int = 1) -> torch.Tensor:
    """The initial points (float64, (B, 2·dim)): ``inits``, then ``n_random`` seeded uniform ones, then the
    ``grid``; none: one point (1, …, 1).  ``records``, ``copies`` and ``combos`` size the run for the memory
    check, made before anything is allocated (:func:`dynamics.simulate.check_memory`)."""
    rows = []
    for vals in inits:
        vals = [float(v) for v in vals]
        if len(vals) != 2 * dim:
            raise SimulationError(f"--init needs {2 * dim} numbers (θ then ψ, each in ℝ^{dim}), got {len(vals)}")
        if not all(math.isfinite(v) for v in vals):
            raise SimulationError(f"--init must be finite, got {vals}")
        rows.append(vals)
    if n_random is not None:
        if n_random < 1:
            raise SimulationError(f"--random must be >= 1, got {n_random}")
        check_memory(records, (n_random + len(rows)) * combos, 2 * dim, 8, copies)
        g = torch.Generator().manual_seed(seed)
        rows.extend(((torch.rand(n_random, 2 * dim, generator=g, dtype=torch.float64) * 2 - 1)).tolist())
    if grid:
        if len(grid) != 2:
            raise SimulationError("--grid must be 'θmin:θmax:n,ψmin:ψmax:n'")
        axes = []
        for lo, hi, n in grid:
            if int(n) != n or n < 1 or not (math.isfinite(lo) and math.isfinite(hi)):
                raise SimulationError(f"--grid axis {lo:g}:{hi:g}:{n}: n must be >= 1 and bounds finite")
            axes.append(torch.linspace(float(lo), float(hi), int(n), dtype=torch.float64))
        n_grid = len(axes[0]) * len(axes[1])
        # refuse before allocating anything: initial grid plus recorded trajectory
        check_memory(records, (n_grid + len(rows)) * combos, 2 * dim, 8, copies)
        th, ps = torch.meshgrid(*axes, indexing="ij")
        # a 1-D grid in each of θ's and ψ's first coordinate; other coordinates 0
        g = torch.zeros(th.numel(), 2 * dim, dtype=torch.float64)
        g[:, 0], g[:, dim] = th.reshape(-1), ps.reshape(-1)
        rows.extend(g.tolist())
    if not rows:
        rows = [[1.0] * (2 * dim)]
    return torch.tensor(rows, dtype=torch.float64)


def estimate_seconds(game, z, hp, scheme: str, steps: int, n_d: int, n_g: int, ode_method: str,
                     gcann: bool) -> float | None:
    """Seconds the run will take: a timed field evaluation on the real batch × evaluations (None for dopri5)."""
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


def plan_simulation(spec: SimulationSpec) -> "SimulationPlan":
    """Check ``spec`` and build the batch (initial points × settings) without simulating."""
    controller = spec.controller if spec.controller is not None else ("gcann" if spec.gcann is not None else None)
    if controller is not None:
        from gcann.control import CONTROLLERS

        if controller not in CONTROLLERS:
            raise SimulationError(f"unknown controller {controller!r}; choose from {', '.join(CONTROLLERS)}")
        if spec.gcann is not None and spec.gcann not in ("dirac", "paper"):
            raise SimulationError(f"gcann must be 'dirac' or 'paper', got {spec.gcann!r}")
        if spec.gcann is not None and not controller.startswith("gcann"):
            raise SimulationError(f"--gcann {spec.gcann} configures the GCANN controllers, not {controller!r}")
        if spec.scheme == "ode" or spec.n_d != 1 or spec.n_g != 1:
            raise SimulationError("a controller drives discrete schemes (simgd, altgd) with --n-d 1 --n-g 1")
    if spec.dim is not None and spec.dim < 1:
        raise SimulationError(f"--dim must be >= 1, got {spec.dim}")
    games = param_grid(spec.method, spec.params, spec.dim, spec.base)
    combos = [p for p, _ in games]
    # one game carries the objective; the grid's values travel per row as hyper-parameters
    game = games[0][1]
    if spec.record_every < 1 or spec.steps < 1:
        raise SimulationError("--steps and --record-every must be >= 1")
    z0 = initial_points(game.dim, spec.inits, spec.grid, spec.n_random, spec.seed,
                        records=spec.steps // spec.record_every + 1, copies=2 if spec.ema_beta is not None else 1,
                        combos=len(combos))
    # batch = initial points × hyper-parameter grid
    resolved = [g.objective.resolve() for _, g in games]
    hp = {k: torch.tensor([h[k] for h in resolved for _ in range(len(z0))], dtype=torch.float64) for k in resolved[0]}
    z = z0.repeat(len(combos), 1).to(spec.device)
    hp = {k: v.to(spec.device) for k, v in hp.items()}
    optimiser = OptimiserSpec(spec.optimizer, momentum=spec.momentum)
    config = settings = None
    if controller is not None:
        from .configs import controller_settings, dirac_config, paper_config

        for name, val in (("--lr", spec.lr), ("--lr-d", spec.lr_d), ("--lr-g", spec.lr_g)):
            if val is not None and not val > 0:
                raise SimulationError(f"{name} must be > 0, got {val}")
        make_cfg = paper_config if spec.gcann == "paper" else dirac_config
        lr = spec.lr
        if controller.startswith("gcann"):
            try:
                config = make_cfg(lr, lr_d=lr if spec.lr_d is None else spec.lr_d,
                                  lr_g=lr if spec.lr_g is None else spec.lr_g)
            except ValueError as e:
                raise SimulationError(str(e)) from None
        settings = controller_settings(controller, config, spec.controller_set)
        plan = SimulationPlan(spec, combos, game, z0, z, hp, optimiser, config, controller, settings)
        plan.controllers(1)               # build one now: bad settings are refused before anything runs
        return plan
    return SimulationPlan(spec, combos, game, z0, z, hp, optimiser, config)


def run_simulation(spec: SimulationSpec, progress=None) -> "SimulationResult":
    """:func:`plan_simulation` then :meth:`SimulationPlan.run`."""
    return plan_simulation(spec).run(progress)


@dataclass
class SimulationPlan:
    """A checked spec with its batch: ``z`` = ``z0`` repeated once per setting (``combos``), ``hp`` the
    per-row hyper-parameters, ``config`` the GCANN controller's (None without one)."""

    spec: SimulationSpec
    combos: list[dict]
    game: DiracGAN
    z0: torch.Tensor
    z: torch.Tensor
    hp: dict
    optimiser: OptimiserSpec
    config: object | None = None
    controller: str | None = None
    settings: object = None

    def controllers(self, rows: int | None = None) -> list:
        """One controller per row (``rows`` of them when given; empty without a controller)."""
        from gcann.control import make_controller

        if self.controller is None:
            return []
        s = self.spec
        lr_d, lr_g = (s.lr if s.lr_d is None else s.lr_d), (s.lr if s.lr_g is None else s.lr_g)
        return [make_controller(self.controller, lr_d, lr_g, self.settings, loss=self.game.objective.loss)
                for _ in range(self.z.shape[0] if rows is None else rows)]

    def estimate_seconds(self) -> float | None:
        """How long :meth:`run` will take (see :func:`estimate_seconds`)."""
        s = self.spec
        return estimate_seconds(self.game, self.z, self.hp, s.scheme, s.steps, s.n_d, s.n_g, s.ode_method,
                                self.controller is not None)

    def run(self, progress=None) -> "SimulationResult":
        """Simulate every row, classify it and summarise per setting; ``progress(k)`` after each step."""
        # the module, looked up per call (the package's attribute `simulate` is the function)
        sim_mod = importlib.import_module("dynamics.simulate")
        s, game, z, hp = self.spec, self.game, self.z, self.hp
        logs = None
        if self.controller is None:
            tr = sim_mod.simulate(game, z, scheme=s.scheme, steps=s.steps, lr=s.lr, lr_d=s.lr_d, lr_g=s.lr_g, hp=hp,
                                  optimizer=self.optimiser, n_d=s.n_d, n_g=s.n_g, t1=s.t1, ode_method=s.ode_method,
                                  ema_beta=s.ema_beta, record_every=s.record_every, progress=progress)
            dist = tr.distance
        else:
            from .controlled_simulator import effective_distance, simulate_controlled

            tr, logs = simulate_controlled(game, z, controllers=self.controllers(), steps=s.steps, scheme=s.scheme,
                                           optimizer=self.optimiser, hp=hp, ema_beta=s.ema_beta,
                                           record_every=s.record_every, log_events=s.log_events, progress=progress)
            dist = lambda ema=False: effective_distance(tr, ema)  # noqa: E731  (diverged rows count as diverging)
        tol = Tolerances()
        judged = tr.z.shape[0] >= MIN_RECORDS
        B = z.shape[0]
        if judged:
            labels, rates = classify_with_rates(dist().cpu(), tol, z=tr.z.cpu(), t=tr.t.cpu())
        else:
            labels, rates = ["n/a"] * B, [math.nan] * B
        ema_labels = ema_rates = None
        if s.ema_beta is not None:
            if judged:
                ema_labels, ema_rates = classify_with_rates(dist(ema=True).cpu(), tol, z=tr.z_ema.cpu(), t=tr.t.cpu())
            else:
                ema_labels, ema_rates = ["n/a"] * B, [math.nan] * B
        final = dist()[-1].cpu()
        ema_final = dist(ema=True)[-1].cpu() if s.ema_beta is not None else None
        settings = _setting_rows(self.combos, len(self.z0), labels, rates, final, ema_labels, ema_final)
        summary = {"method": s.method, "scheme": s.scheme, "batch": int(B), "verdicts": summarise(labels),
                   "tolerances": tol.as_dict(), "median_final_distance": float(final.median())}
        if not judged:
            summary["note"] = (f"n/a: {tr.z.shape[0]} recorded states, a verdict needs at least {MIN_RECORDS}; "
                               "raise --steps or lower --record-every")
        if ema_labels is not None:
            summary["ema_verdicts"] = summarise(ema_labels)
            summary["median_final_distance_ema"] = float(ema_final.median())
        summary["settings"] = settings
        if logs is not None:
            gcann_cfg = s.gcann or ("dirac" if self.controller.startswith("gcann") else None)
            record = {"config": gcann_cfg, "events": logs.event_counts(), "diverged_rows": int(logs.diverged.sum())}
            if self.controller == "gcann" and not s.controller_set:
                summary["gcann"] = record          # the key the --gcann runs have always had
            else:
                summary["controller"] = {"name": self.controller, "settings": dict(s.controller_set), **record}
        return SimulationResult(tr, game, self.combos, len(self.z0), labels, rates, ema_labels, ema_rates, settings,
                                summary, logs, list(EVENT_KINDS if s.log_events is None else s.log_events))


@dataclass
class SimulationResult:
    """A simulated batch: the trajectory, each row's verdict and fitted rate (``labels``, ``rates``; also of the
    EMA), the per-setting records (``settings``), the ``summary`` (what ``gcann dirac simulate --json`` prints)
    and the controller's logs (None without one).  Row ``i`` ran setting ``i // per`` from initial point
    ``i % per``."""

    trajectory: Trajectory
    game: DiracGAN
    combos: list[dict]
    per: int
    labels: list[str]
    rates: list[float]
    ema_labels: list[str] | None
    ema_rates: list[float] | None
    settings: list[dict]
    summary: dict
    logs: GCANNLogs | None = None
    events_logged: list[str] = field(default_factory=list)

    def write_events(self, path: str | Path) -> Path:
        """The controller's logged events as JSON lines (each with its ``row``); adds ``events_file`` and
        ``events_logged`` to the summary."""
        if self.logs is None:
            raise SimulationError("--events needs a controller (--controller NAME or --gcann)")
        path = Path(path)
        lines = [json.dumps({"row": b, **ev}) for b, row in enumerate(self.logs.events) for ev in row]
        atomic_write(path, lambda p: Path(p).write_text("\n".join(lines) + ("\n" if lines else "")))
        self.summary["events_file"] = str(path)
        self.summary["events_logged"] = list(self.events_logged)
        return path

    def write(self, path: str | Path) -> Path:
        """The trajectory with per-row columns (setting, each hyper-parameter, verdict, rate) and per-setting
        columns (``setting_<param>``, ``setting_<fraction>``, medians): ``.json`` or ``.npz`` (with the summary);
        then adds ``out`` to the summary."""
        path = Path(path)
        if path.suffix not in (".json", ".npz"):
            raise SimulationError(f"--out must end in .json or .npz, got {path.name!r}")
        _write_simulation(path, self.trajectory, self.game, self.combos, self.per, self.labels, self.rates,
                          self.ema_labels, self.ema_rates, self.settings, self.summary)
        self.summary["out"] = str(path)
        return path

    def settings_text(self) -> str:
        """The per-setting table (one line per setting)."""
        return settings_text(self.settings, self.ema_labels is not None)

    def text(self) -> str:
        """A human summary: the verdicts over the batch, the EMA's, the controller's events, one line per setting
        when there are several, and the files written."""
        s = self.summary
        frac = lambda v: ", ".join(f"{k} {f:.2f}" for k, f in v.items() if f)  # noqa: E731
        lines = [f"{s['method']}, {s['scheme']}: {s['batch']} trajectories: {frac(s['verdicts'])}; "
                 f"median final ‖z‖ {s['median_final_distance']:.3g}"]
        if "note" in s:
            lines.append(f"  {s['note']}")
        if "ema_verdicts" in s:
            lines.append(f"  EMA of the iterates: {frac(s['ema_verdicts'])}; median final ‖z‖ "
                         f"{s['median_final_distance_ema']:.3g}")
        if "gcann" in s:
            g = s["gcann"]
            ev = ", ".join(f"{k} {n}" for k, n in g["events"].items()) or "none"
            lines.append(f"  GCANN controller ({g['config']}): events {ev}; diverged rows {g['diverged_rows']}")
        if len(self.settings) > 1:
            lines.append(self.settings_text())
        if "events_file" in s:
            lines.append(f"events: {s['events_file']}")
        if "out" in s:
            lines.append(f"wrote {s['out']}")
        return "\n".join(lines)


def _setting_rows(combos, per: int, labels, rates, final, ema_labels=None, ema_final=None) -> list[dict]:
    """One record per hyper-parameter setting (grid point): its verdicts, rate and distance."""
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


def settings_text(settings: list[dict], ema: bool) -> str:
    """The per-setting table: setting, parameters, rows, verdicts, median rate and final distance."""
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


def _write_simulation(out: Path, tr, game, combos, per: int, labels, rates, ema_labels, ema_rates, settings,
                      summary) -> None:
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
