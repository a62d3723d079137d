"""The GCANN controller driving the Dirac-GAN simulators of :mod:`dynamics`.

The controller observes the Dirac objectives' own losses (``game.losses``: the
two losses each player minimises) of every row of a batch of games, one
:class:`~gcann.controller.GCANNController` per row, and its decisions are
applied to the batched discrete update (simultaneous or alternating gradient
steps, any optimiser of :class:`dynamics.simulate.OptimiserSpec`):

* per-row learning rates ``Decision.lr_d`` / ``Decision.lr_g``;
* per-row masks: a player that is paused or skipping keeps its parameters
  (and its optimiser state);
* catch-up bursts: after the main update, up to ``max(extra_*_steps)`` further
  masked updates of the lagging player for the rows that were granted them.

``use_diversity`` has no counterpart: a Dirac generator emits a single point.

:func:`gcann_table` compares, per method, plain / +GCANN / +EMA / +GCANN+EMA
from a batch of initial conditions; :func:`lr_scaling_spectra` computes what
scaling the two learning rates does to the eigenvalues (the explanation of the
table). See ``docs/gcann_dirac.md``.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Iterable

import torch

from dynamics.dirac import DiracGAN
from dynamics.simulate import OptimiserSpec, SimulationError, Trajectory, check_initial, gd_round, simulate
from dynamics.spectrum import equilibrium_jacobian, spectral_radius
from dynamics.study import make_game
from dynamics.verdict import LABELS, Tolerances, classify, steps_to_reach
from gcann.controller import GCANNConfig, GCANNController
from gcann.presets import preset

Tensor = torch.Tensor

__all__ = [
    "DIRAC_CONFIG", "DIRAC_CHANGES", "GCANNLogs", "TABLE_METHODS", "dirac_config", "paper_config",
    "simulate_gcann", "gcann_table", "lr_scaling_spectra", "lr_scaling_markdown", "effective_distance",
    "map_spectral_radii", "default_configs", "EXTRA_METHODS", "EVENT_KINDS", "DEFAULT_LOG_EVENTS",
]

#: Every kind of controller event (:class:`gcann.controller.Event`).
EVENT_KINDS = ("reactive", "proactive", "pause_d", "pause_g", "skip_d", "skip_g", "tie_break", "slope_threshold",
               "slope_thresh_scale", "diverged")
#: The kinds ``gcann dirac simulate --events`` logs by default: the decisions, not the per-step skips and tie
#: breaks (64 runs x 2000 steps of WGAN log ~120,000 tie breaks; counts of every kind are always reported).
DEFAULT_LOG_EVENTS = ("reactive", "proactive", "pause_d", "pause_g", "slope_threshold", "slope_thresh_scale",
                      "diverged")

#: Learning rate of the table runs (both players, SGD).
DEFAULT_LR = 0.1

#: Changes from the ``paper-celeba`` preset for a 2000-step Dirac run, and why.
DIRAC_CHANGES: dict[str, tuple[object, object, str]] = {
    # field: (paper value, Dirac value, reason)
    "gc_lr_window": (100, 20, "the paper has ~158k steps (100 epochs x 1583); a 2000-step Dirac run with 100-step "
                               "windows would see only 20 windows; 20-step windows give 100, and are still longer "
                               "than a quarter of the oscillation period 2*pi/(c*h) ~ 126 steps at c = 0.5, h = 0.1"),
    "cooldown_period": (100, 20, "kept equal to the window, as in the paper (both 100)"),
    "baseline_steps": (1583, 100, "the paper's warm-up is 1 epoch = 1583 steps, i.e. 80% of a 2000-step run; 100 steps "
                                  "(5 windows) is enough for the slope threshold to see a few windows"),
    "max_loss_diff": (3.0, 1.0, "DCGAN losses range ~0.1-5 (gap 3 = a large imbalance); Dirac losses near the "
                                "equilibrium are O(1) (e.g. GAN: L_D = log 4 = 1.39, L_G = -log 2 = -0.69; NSGAN: "
                                "L_G = log 2 = 0.69), so the gap threshold is scaled to 1"),
}

#: Every other field: the paper-celeba preset; lr_d = lr_g = the simulation's lr (the paper's 2e-4 is for Adam on
#: DCGAN and would freeze the Dirac game); on_nonfinite="diverged" so that a blow-up is a verdict, not an exception.
_COMMON = {"on_nonfinite": "diverged"}


def dirac_config(lr: float = DEFAULT_LR, **overrides) -> GCANNConfig:
    """``paper-celeba`` with the :data:`DIRAC_CHANGES` and ``lr_d = lr_g = lr``."""
    kw = {k: v[1] for k, v in DIRAC_CHANGES.items()}
    kw.update(_COMMON)
    kw.update(lr_d=lr, lr_g=lr)
    kw.update(overrides)
    return preset("paper-celeba", **kw)


def paper_config(lr: float = DEFAULT_LR, **overrides) -> GCANNConfig:
    """The unmodified ``paper-celeba`` preset, except ``lr_d = lr_g = lr`` and ``on_nonfinite="diverged"``."""
    return preset("paper-celeba", **{**_COMMON, "lr_d": lr, "lr_g": lr, **overrides})


DIRAC_CONFIG: GCANNConfig = dirac_config()


# --------------------------------------------------------------------------- #
# The controlled simulator
# --------------------------------------------------------------------------- #
@dataclass
class GCANNLogs:
    """Per-step, per-row records of a controlled run (steps ``k = 0 … steps-1``).

    ``loss_d``/``loss_g`` are the losses the controller observed at step k (at the
    state before update k+1, i.e. ``traj.z[k]`` when ``record_every == 1``);
    ``lr_d``/``lr_g``, ``train_d``/``train_g``, ``extra_d``/``extra_g`` are the
    decisions applied.  ``events[b]`` lists row b's controller events as dicts.
    ``diverged[b]``: the row produced a non-finite loss or state (it is frozen
    from ``diverged_step[b]`` on, −1 where never).  ``events`` holds the kinds that
    were asked for (``log_events`` of :func:`simulate_gcann`); ``event_totals``
    counts every kind, logged or not.
    """

    loss_d: Tensor
    loss_g: Tensor
    lr_d: Tensor
    lr_g: Tensor
    train_d: Tensor
    train_g: Tensor
    extra_d: Tensor
    extra_g: Tensor
    events: list[list[dict]]
    diverged: Tensor
    diverged_step: Tensor
    config: dict = field(default_factory=dict)
    event_totals: dict[str, int] | None = None

    def event_counts(self) -> dict[str, int]:
        """Events of each kind over all rows (every kind, also those not logged)."""
        if self.event_totals is not None:
            return dict(sorted(self.event_totals.items()))
        out: dict[str, int] = {}
        for row in self.events:
            for e in row:
                out[e["event"]] = out.get(e["event"], 0) + 1
        return out


def simulate_gcann(
    game: DiracGAN,
    z0,
    *,
    config: GCANNConfig,
    steps: int,
    scheme: str = "simgd",
    optimizer: str | OptimiserSpec = "sgd",
    hp=None,
    ema_beta: float | None = None,
    record_every: int = 1,
    apply_lr: bool = True,
    apply_pause: bool = True,
    apply_extra: bool = True,
    log_events: Iterable[str] | None = None,
    progress=None,
) -> tuple[Trajectory, GCANNLogs]:
    """Simulate ``game`` from ``z0`` (B, 2n) with one GCANN controller per row.

    Each step k: per-row ``(loss_d, loss_g) = game.losses(z)`` (float64) →
    ``ctrl.observe`` → the main update of ``scheme`` with the decided per-row
    learning rates, the players masked by ``train_d``/``train_g`` → up to
    ``max(extra_d_steps)`` masked extra D updates, then up to ``max(extra_g_steps)``
    masked extra G updates (field recomputed each time) → WGAN projection after
    every update.  ``altgd`` is one D update then one G update per step.

    Non-finite losses or states: the row is marked diverged (the controller runs
    with ``on_nonfinite="diverged"``; a config with "raise" is switched to it), the
    row is frozen at its last finite state and never propagates NaN; use
    :func:`effective_distance` (inf after divergence) for verdicts.

    Ablations: ``apply_lr=False`` keeps the initial learning rates, ``apply_pause=False``
    trains both players every step (pauses, skips and tie-breaks ignored),
    ``apply_extra=False`` drops the catch-up bursts.  The logs always hold the decisions.

    ``log_events``: the event kinds kept in ``logs.events`` (default: all; the per-step
    kinds ``skip_d``, ``skip_g`` and ``tie_break`` are most of a long log, see
    :data:`DEFAULT_LOG_EVENTS`); ``logs.event_counts()`` counts every kind regardless.
    ``progress(k)``: called with the number of steps done after each step.
    """
    if scheme not in ("simgd", "altgd"):
        raise SimulationError(f"simulate_gcann supports schemes simgd and altgd, got {scheme!r}")
    for name, val in (("steps", steps), ("record_every", record_every)):
        if int(val) != val or val < 1:
            raise SimulationError(f"{name} must be a positive integer, got {val!r}")
    z0 = check_initial(z0, game).to(torch.float64)
    B, n = z0.shape[0], game.dim
    hp = game.prepare(hp, B, z0.dtype, z0.device)
    if config.on_nonfinite != "diverged":
        config = replace(config, on_nonfinite="diverged")
    spec = optimizer if isinstance(optimizer, OptimiserSpec) else OptimiserSpec(optimizer)
    beta = None
    if ema_beta is not None:
        beta = float(ema_beta)
        if not 0 <= beta < 1:
            raise SimulationError("ema_beta must be in [0, 1)")
    keep = None
    if log_events is not None:
        keep = set(log_events)
        unknown = sorted(keep - set(EVENT_KINDS))
        if unknown:
            raise SimulationError(f"unknown event kind(s) {unknown}; choose from {', '.join(EVENT_KINDS)}")
    totals: dict[str, int] = {}
    ctrls = [GCANNController(config) for _ in range(B)]

    z = game.project(z0.clone(), hp)
    opt_g, opt_d = spec.init(z[:, :n]), spec.init(z[:, n:])
    e = z.clone()
    recs, ema_recs, ts = [z.clone()], [z.clone()], [0]
    f64 = dict(dtype=torch.float64)
    L_d = torch.empty(steps, B, **f64)
    L_g = torch.empty(steps, B, **f64)
    LR_d = torch.empty(steps, B, **f64)
    LR_g = torch.empty(steps, B, **f64)
    TR_d = torch.empty(steps, B, dtype=torch.bool)
    TR_g = torch.empty(steps, B, dtype=torch.bool)
    EX_d = torch.zeros(steps, B, dtype=torch.int32)
    EX_g = torch.zeros(steps, B, dtype=torch.int32)
    events: list[list[dict]] = [[] for _ in range(B)]
    dead = torch.zeros(B, dtype=torch.bool)
    dead_step = torch.full((B,), -1, dtype=torch.long)

    def guard(z_new: Tensor, z_old: Tensor, k: int) -> Tensor:
        bad = ~torch.isfinite(z_new).all(1)
        if bool(bad.any()):
            newly = bad & ~dead
            dead_step[newly] = k
            dead.logical_or_(bad)
            z_new = torch.where(bad[:, None], z_old, z_new)
        return z_new

    for k in range(steps):
        ld, lg = game.losses(z, hp)  # penalties need autograd (∇ₓD): no torch.no_grad here
        ld = ld.detach().to(torch.float64)
        lg = lg.detach().to(torch.float64)
        L_d[k], L_g[k] = ld, lg
        ldl = torch.where(dead, torch.full_like(ld, math.nan), ld).tolist()
        lgl = torch.where(dead, torch.full_like(lg, math.nan), lg).tolist()
        lr_d, lr_g, td, tg, xd, xg = [], [], [], [], [], []
        for b, ctrl in enumerate(ctrls):
            dec = ctrl.observe(ldl[b], lgl[b])
            lr_d.append(dec.lr_d)
            lr_g.append(dec.lr_g)
            td.append(dec.train_d)
            tg.append(dec.train_g)
            xd.append(dec.extra_d_steps)
            xg.append(dec.extra_g_steps)
            if dec.events:
                for ev in dec.events:
                    d_ev = ev.to_dict()
                    totals[d_ev["event"]] = totals.get(d_ev["event"], 0) + 1
                    if keep is None or d_ev["event"] in keep:
                        events[b].append(d_ev)
            if dec.diverged and not bool(dead[b]):
                dead[b] = True
                dead_step[b] = k
        lrd = torch.tensor(lr_d, **f64)
        lrg = torch.tensor(lr_g, **f64)
        trd = torch.tensor(td, dtype=torch.bool)
        trg = torch.tensor(tg, dtype=torch.bool)
        exd = torch.tensor(xd, dtype=torch.int32)
        exg = torch.tensor(xg, dtype=torch.int32)
        LR_d[k], LR_g[k], TR_d[k], TR_g[k], EX_d[k], EX_g[k] = lrd, lrg, trd, trg, exd, exg
        if not apply_lr:
            lrd, lrg = torch.full_like(lrd, config.lr_d), torch.full_like(lrg, config.lr_g)
        if not apply_pause:
            trd, trg = torch.ones_like(trd), torch.ones_like(trg)
        if not apply_extra:
            exd, exg = torch.zeros_like(exd), torch.zeros_like(exg)
        lrd_c, lrg_c = lrd[:, None], lrg[:, None]

        z = guard(gd_round(game, z, hp, scheme, spec, opt_g, opt_d, lrd_c, lrg_c, 1, 1, trd, trg), z, k)
        for j in range(int(exd.max())):  # catch-up: extra D updates
            m = (exd > j) & ~dead
            if not bool(m.any()):
                break
            z = guard(gd_round(game, z, hp, "altgd", spec, opt_g, opt_d, lrd_c, lrg_c, 1, 0, train_d=m), z, k)
        for j in range(int(exg.max())):  # catch-up: extra G updates
            m = (exg > j) & ~dead
            if not bool(m.any()):
                break
            z = guard(gd_round(game, z, hp, "altgd", spec, opt_g, opt_d, lrd_c, lrg_c, 0, 1, train_g=m), z, k)
        if beta is not None:
            e = beta * e + (1 - beta) * z
        if (k + 1) % record_every == 0:
            recs.append(z)
            ts.append(k + 1)
            ema_recs.append(e)
        if progress is not None:
            progress(k + 1)
    t = torch.tensor(ts, **f64)
    info = {"gcann": True, "diverged": dead.clone(), "diverged_step": dead_step.clone()}
    traj = Trajectory(t, torch.stack(recs), n, scheme, torch.stack(ema_recs) if beta is not None else None, info)
    logs = GCANNLogs(L_d, L_g, LR_d, LR_g, TR_d, TR_g, EX_d, EX_g, events, dead, dead_step, config.to_dict(), totals)
    return traj, logs


def effective_distance(traj: Trajectory, ema: bool = False) -> Tensor:
    """Distance to the equilibrium (T, B), +inf from the step a row diverged on
    (``simulate_gcann`` freezes such rows; this makes them count as diverging)."""
    d = traj.distance(ema=ema).clone()
    ds = traj.info.get("diverged_step")
    if ds is not None:
        for b in (ds >= 0).nonzero().flatten().tolist():
            d[traj.t >= ds[b], b] = math.inf
    return d


# --------------------------------------------------------------------------- #
# The table
# --------------------------------------------------------------------------- #
#: (label, method, params, dim) of the table rows
TABLE_METHODS: list[tuple[str, str, dict, int]] = [
    ("gan", "gan", {}, 1),
    ("nsgan", "nsgan", {}, 1),
    ("wgan (clip 1)", "wgan", {"clip": 1.0}, 1),
    ("wgan_gp (γ=1, c=1)", "wgan_gp", {"gamma": 1.0, "c": 1.0}, 1),
    ("dragan (γ=1, c=1)", "dragan", {"gamma": 1.0, "c": 1.0}, 1),
    ("r1 (γ=1)", "r1", {"gamma": 1.0}, 1),
    ("r2 (γ=1)", "r2", {"gamma": 1.0}, 1),
    ("roth (γ=1)", "roth", {"gamma": 1.0}, 1),
    ("instance_noise (σ=1)", "instance_noise", {"sigma": 1.0}, 1),
    ("conopt (γ=1)", "conopt", {"gamma": 1.0}, 1),
    ("lsgan", "lsgan", {}, 1),
    ("nsgan 2-D", "nsgan", {}, 2),
    ("gan_qp 2-D (λ=1)", "gan_qp", {"lam": 1.0}, 2),
    ("wgan_norm 2-D", "wgan_norm", {}, 2),
]

#: available but not in the default table: α = 1 is exactly nsgan (same numbers), and the α-loss
#: evaluation is ~100x slower than nsgan's once |ψθ| is large (dynamics.objectives._alpha_loss_real)
EXTRA_METHODS: list[tuple[str, str, dict, int]] = [("alpha (α=1)", "alpha", {}, 1),
                                                   ("alpha (α=2)", "alpha", {"alpha_d": 2.0, "alpha_g": 2.0}, 1)]

COLUMNS = ("plain", "gcann", "ema", "gcann_ema")
COLUMN_TITLES = {"plain": "plain", "gcann": "+GCANN", "ema": "+EMA", "gcann_ema": "+GCANN+EMA"}


def _inits(n_init: int, dim: int, seed: int = 0, box: float = 1.0) -> Tensor:
    """``n_init`` initial points uniform in [−box, box]^{2·dim}, seeded (the same for every column)."""
    g = torch.Generator().manual_seed(seed + 1000 * dim)
    return (torch.rand(n_init, 2 * dim, generator=g, dtype=torch.float64) * 2 - 1) * box


def _stats(d: Tensor, t: Tensor, eps: float, tol: Tolerances, z: Tensor | None = None) -> dict:
    labels = classify(d, tol, z=z, t=t)
    n = len(labels)
    fin = d[-1]
    reach = steps_to_reach(d, t, eps)
    ok = reach[torch.isfinite(reach)]
    return {
        "converged": sum(lab == "converging" for lab in labels) / n,
        **{k.replace(" ", "_"): sum(lab == k for lab in labels) / n for k in LABELS if k != "converging"},
        "median_final_distance": float(fin.median()) if bool(torch.isfinite(fin).any()) else math.inf,
        "reached_eps": ok.numel() / n,
        # median over all rows, "never" counting as +inf: NaN (shown "–") when fewer than half reach ε
        "median_steps_to_eps": float(ok.sort().values[n // 2]) if ok.numel() > n // 2 else math.nan,
    }


def map_spectral_radii(game: DiracGAN, lr_d: float, lr_g: float) -> tuple[float, float]:
    """Spectral radii of the SGD simGD and altGD update maps at the equilibrium
    (:func:`dynamics.spectrum.spectral_radius`; NaN where the field is not differentiable there)."""
    return tuple(float(spectral_radius(game, lr_d, lr_g, scheme=s)[0]) for s in ("simgd", "altgd"))


def _run_method(label, method, params, dim, *, n_init, steps, lr, eps, ema_beta, configs, tol, seed):
    game = make_game(method, params, dim)
    z0 = _inits(n_init, dim, seed)
    t0 = time.perf_counter()
    rho, rho_alt = map_spectral_radii(game, lr, lr)
    plain = simulate(game, z0, scheme="simgd", steps=steps, lr_d=lr, lr_g=lr, ema_beta=ema_beta)
    row = {"label": label, "method": method, "params": {**params, "dim": dim}, "rho_simgd": rho,
           "rho_altgd": rho_alt, "plain": _stats(effective_distance(plain), plain.t, eps, tol, plain.z),
           "ema": _stats(effective_distance(plain, True), plain.t, eps, tol, plain.z_ema)}
    for name, cfg in configs.items():
        cfg, apply = cfg if isinstance(cfg, tuple) else (cfg, {})
        traj, logs = simulate_gcann(game, z0, config=cfg, steps=steps, scheme="simgd", ema_beta=ema_beta, **apply)
        row[name] = {
            "gcann": _stats(effective_distance(traj), traj.t, eps, tol, traj.z),
            "gcann_ema": _stats(effective_distance(traj, True), traj.t, eps, tol, traj.z_ema),
            "events_per_row": {k: v / n_init for k, v in sorted(logs.event_counts().items())},
            "final_lr_d_median": float(logs.lr_d[-1].median()),
            "final_lr_g_median": float(logs.lr_g[-1].median()),
            "final_lr_product_median": float((logs.lr_d[-1] * logs.lr_g[-1] / lr**2).median()),
            "frac_steps_g_idle": float((~logs.train_g).double().mean()),
            "frac_steps_d_idle": float((~logs.train_d).double().mean()),
        }
    row["seconds"] = time.perf_counter() - t0
    return row


def _fmt(x: float, kind: str) -> str:
    if kind == "frac":
        return f"{x:.2f}"
    if kind == "steps":
        return "–" if not math.isfinite(x) else f"{x:.0f}"
    if math.isinf(x):
        return "inf"
    return f"{x:.1e}" if math.isfinite(x) else "–"


def _markdown(doc: dict, config_name: str, title: str) -> str:
    cols = ["plain", "gcann", "ema", "gcann_ema"]
    head = "| method | ρ simGD | " + " | ".join(
        f"{COLUMN_TITLES[c]} conv / med ‖z_T‖ / med steps" for c in cols) + " | events per run (GCANN) |\n"
    head += "|---|---|" + "---|" * len(cols) + "---|\n"
    lines = []
    for r in doc["rows"]:
        g = r[config_name]
        cells = []
        for c in cols:
            s = r[c] if c in ("plain", "ema") else g[c]
            cells.append(f"{_fmt(s['converged'], 'frac')} / {_fmt(s['median_final_distance'], 'dist')} / "
                         f"{_fmt(s['median_steps_to_eps'], 'steps')}")
        ev = ", ".join(f"{k} {v:.1f}" for k, v in g["events_per_row"].items() if k != "slope_threshold") or "none"
        rho = "n/a" if not math.isfinite(r["rho_simgd"]) else f"{r['rho_simgd']:.4f}"
        lines.append(f"| {r['label']} | {rho} | " + " | ".join(cells) + f" | {ev} |")
    s = doc["settings"]
    foot = (f"\nEach cell: fraction converging (dynamics.verdict.classify; EMA columns classify the EMA of the "
            f"iterates, β = {s['ema_beta']}) / median final distance to the equilibrium / median steps to reach "
            f"ε = {s['eps']:g} and stay (– where fewer than half the runs do). {s['n_init']} initial points uniform "
            f"in [−1, 1]^(2n) (seeded, the same for every column), simGD + SGD, lr_d = lr_g = {s['lr']:g}, "
            f"{s['steps']} steps. ρ simGD = spectral radius of the plain update map at the equilibrium (n/a: not "
            f"differentiable there). Controller: {title}.\n")
    return f"#### Dirac-GAN with the GCANN controller — {title}\n\n" + head + "\n".join(lines) + "\n" + foot


CONFIG_TITLES = {
    "dirac": "DIRAC_CONFIG (paper-celeba, shortened windows), all mechanisms",
    "dirac_lr_only": "DIRAC_CONFIG, learning-rate changes only (pauses, skips, catch-up bursts not applied)",
    "paper": "unmodified paper-celeba preset (lr = simulation lr), all mechanisms",
}


def default_configs(lr: float = DEFAULT_LR) -> dict:
    """The table's controllers: DIRAC_CONFIG; the same applying only its learning rates (the
    part the spectral argument is about); the unmodified paper preset."""
    return {"dirac": dirac_config(lr), "dirac_lr_only": (dirac_config(lr), {"apply_pause": False, "apply_extra": False}),
            "paper": paper_config(lr)}


def gcann_table(n_init: int = 64, steps: int = 2000, lr: float = DEFAULT_LR, eps: float = 1e-3,
                methods=None, *, ema_beta: float = 0.99, configs: dict | None = None, seed: int = 0,
                progress=None) -> tuple[str, dict]:
    """plain / +GCANN / +EMA / +GCANN+EMA per method, from ``n_init`` initial conditions.

    ``methods``: None (all of :data:`TABLE_METHODS`), or a list of labels / method names /
    ``(label, method, params, dim)`` tuples.  ``configs``: name -> GCANNConfig or
    (GCANNConfig, simulate_gcann ablation kwargs) (default: :func:`default_configs`); ``progress(label)`` is
    called after each method.  The first config fills the
    ``gcann`` / ``gcann_ema`` columns of ``doc["rows"][i]`` (each config's results are
    also under ``doc["rows"][i][name]``).  Returns ``(markdown, doc)``.
    """
    rows = _select(methods)
    if configs is None:
        configs = default_configs(lr)
    tol = Tolerances()
    t0 = time.perf_counter()
    out_rows = []
    for spec_ in rows:
        r = _run_method(*spec_, n_init=n_init, steps=steps, lr=lr, eps=eps, ema_beta=ema_beta,
                        configs=configs, tol=tol, seed=seed)
        if progress:
            progress(spec_[0])
        first = next(iter(configs))
        r["gcann"], r["gcann_ema"] = r[first]["gcann"], r[first]["gcann_ema"]
        out_rows.append(r)
    doc = {
        "settings": {"n_init": n_init, "steps": steps, "lr": lr, "eps": eps, "ema_beta": ema_beta,
                     "scheme": "simgd", "optimizer": "sgd", "init": "uniform in [-1,1]^(2n)", "seed": seed,
                     "tolerances": tol.as_dict()},
        "columns": list(COLUMNS),
        "configs": {k: {**(v[0] if isinstance(v, tuple) else v).to_dict(),
                        "apply": v[1] if isinstance(v, tuple) else {}} for k, v in configs.items()},
        "dirac_changes": {k: {"paper": v[0], "dirac": v[1], "why": v[2]} for k, v in DIRAC_CHANGES.items()},
        "rows": out_rows,
        "seconds": time.perf_counter() - t0,
    }
    titles = CONFIG_TITLES
    md = "\n".join(_markdown(doc, name, titles.get(name, name)) for name in configs)
    return md, doc


def _select(methods) -> list[tuple[str, str, dict, int]]:
    if methods is None:
        return list(TABLE_METHODS)
    out = []
    for m in methods:
        if isinstance(m, tuple):
            out.append(m)
            continue
        allm = TABLE_METHODS + EXTRA_METHODS
        hit = [r for r in allm if r[0] == m] or [r for r in allm if r[1] == m][:1]
        if not hit:
            raise ValueError(f"unknown table method {m!r}; choose from {[r[0] for r in allm]}")
        out.append(hit[0])
    return out


# --------------------------------------------------------------------------- #
# What scaling the two learning rates does to the spectrum
# --------------------------------------------------------------------------- #
def lr_scaling_spectra(method: str = "gan", scales: Iterable[tuple[float, float]] = ((1, 1), (0.4, 1.8), (1.8, 0.4),
                                                                                         (0.01, 100), (100, 0.01)),
                       *, lr: float = DEFAULT_LR, params: dict | None = None, dim: int | None = None) -> dict:
    """Eigenvalues when lr_d → a·lr_d and lr_g → b·lr_g, for each ``(a, b)`` in ``scales``.

    Continuous time: ż = H·v(z) with H = diag(b·I_n, a·I_n) (θ first); its Jacobian at the
    equilibrium is H·J, J = ∂v/∂z by autograd (:func:`dynamics.spectrum.equilibrium_jacobian`).  For a
    centre J = [[0, c·I], [−c·I, 0]] (unregularised Dirac-GAN) the closed form is ±i·c·√(ab):
    purely imaginary for every a, b > 0.  Discrete time at step lr: the simGD map I + lr·H·J has
    spectral radius √(1 + ab·c²·lr²) > 1 (closed form) — compared with
    :func:`dynamics.spectrum.spectral_radius` at lr_d = a·lr, lr_g = b·lr — and the altGD map has
    |λ| = 1 while ab·c²·lr² < 4.
    """
    game = make_game(method, params or {}, dim)
    n = game.dim
    J0, ok = equilibrium_jacobian(game)
    if not bool(ok[0]):
        raise ValueError(f"{method}: the field is not differentiable at the equilibrium; no spectrum")
    J = J0[0]
    c = float(J[0, n])
    centre = bool(J[:n, :n].abs().max() < 1e-12 and J[n:, n:].abs().max() < 1e-12
                  and torch.allclose(J[:n, n:], c * torch.eye(n, dtype=J.dtype), atol=1e-12)
                  and torch.allclose(J[n:, :n], -c * torch.eye(n, dtype=J.dtype), atol=1e-12))
    rows = []
    for a, b in scales:
        a, b = float(a), float(b)
        H = torch.diag(torch.tensor([b] * n + [a] * n, dtype=J.dtype))
        ev = torch.linalg.eigvals(H @ J)
        ev = ev[torch.argsort(ev.imag)]
        rho_sim, rho_alt = map_spectral_radii(game, a * lr, b * lr)
        r = {"a": a, "b": b, "eigenvalues": [[float(x.real), float(x.imag)] for x in ev],
             "max_real_part": float(ev.real.max()), "rho_simgd": rho_sim, "rho_altgd": rho_alt}
        if centre:
            w = abs(c) * math.sqrt(a * b)
            closed = torch.tensor([complex(0, -w)] * n + [complex(0, w)] * n, dtype=ev.dtype)
            r["closed_form_eigenvalues"] = [[0.0, -w]] * n + [[0.0, w]] * n
            r["eig_error"] = float((ev - closed).abs().max())
            r["closed_form_rho_simgd"] = math.sqrt(1 + a * b * c * c * lr * lr)
            r["rho_simgd_error"] = abs(rho_sim - r["closed_form_rho_simgd"])
            r["closed_form_rho_altgd"] = 1.0 if a * b * c * c * lr * lr < 4 else math.nan
        rows.append(r)
    return {"method": method, "dim": n, "lr": lr, "c": c, "centre": centre,
            "jacobian": J.tolist(), "rows": rows}


def lr_scaling_markdown(res: dict) -> str:
    lines = [f"`{res['method']}` (dim {res['dim']}): J = ∂v/∂z at 0 = {_fmt_mat(res['jacobian'])}, "
             f"c = {res['c']:.6g}, centre: {res['centre']}; lr h = {res['lr']:g}\n",
             "| a (lr_d ×) | b (lr_g ×) | eig(H·J) autograd | closed form ±i·c·√(ab) | max error | "
             "ρ simGD (autograd) | √(1+ab·c²h²) | ρ altGD |",
             "|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        eig = ", ".join(f"{re:+.4g}{im:+.6g}i" for re, im in r["eigenvalues"][:: max(1, res["dim"])])
        cf = ("±" + f"{r['closed_form_eigenvalues'][-1][1]:.6g}i") if "closed_form_eigenvalues" in r else "–"
        err = f"{r['eig_error']:.1e}" if "eig_error" in r else "–"
        rcf = f"{r['closed_form_rho_simgd']:.8f}" if "closed_form_rho_simgd" in r else "–"
        lines.append(f"| {r['a']:g} | {r['b']:g} | {eig} | {cf} | {err} | {r['rho_simgd']:.8f} | {rcf} | "
                     f"{r['rho_altgd']:.8f} |")
    return "\n".join(lines) + "\n"


def _fmt_mat(m) -> str:
    return "[" + "; ".join(" ".join(f"{x:+.3g}" for x in row) for row in m) + "]"
