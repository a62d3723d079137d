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
See ``docs/gcann_dirac.md``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import torch

from dynamics.dirac import DiracGAN
from dynamics.optim import ema_step
from dynamics.simulate import OptimiserSpec, SimulationError, Trajectory, check_initial, gd_round
from gcann.control import Controller, ControlRows, event_record, make_controller, update_rounds
from gcann.controller import Event, GCANNConfig

Tensor = torch.Tensor

__all__ = ["DEFAULT_LOG_EVENTS", "EVENT_KINDS", "GCANNLogs", "effective_distance", "simulate_controlled",
           "simulate_gcann"]

#: Every kind of controller event (:class:`gcann.controller.Event`).
EVENT_KINDS = ("reactive", "proactive", "pause_d", "pause_g", "skip_d", "skip_g", "tie_break", "slope_threshold",
               "slope_thresh_scale", "diverged")
#: The kinds ``gcann dirac simulate --events`` logs by default: the decisions, not the per-step skips and tie
#: breaks (64 runs x 2000 steps of WGAN log ~120,000 tie breaks; counts of every kind are always reported).
DEFAULT_LOG_EVENTS = ("reactive", "proactive", "pause_d", "pause_g", "slope_threshold", "slope_thresh_scale",
                      "diverged")



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


def simulate_gcann(game: DiracGAN, z0, *, config: GCANNConfig, **kw) -> tuple[Trajectory, GCANNLogs]:
    """Simulate ``game`` from ``z0`` (B, 2n) with one GCANN controller of ``config`` per row
    (:func:`simulate_controlled` with ``gcann`` controllers; the same keywords)."""
    B = check_initial(z0, game).shape[0]
    ctrls = [make_controller("gcann", config.lr_d, config.lr_g, config) for _ in range(B)]
    traj, logs = simulate_controlled(game, z0, controllers=ctrls, **kw)
    logs.config = config.to_dict()
    return traj, logs


def simulate_controlled(
    game: DiracGAN,
    z0,
    *,
    controllers: Sequence[Controller],
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
    """Simulate ``game`` from ``z0`` (B, 2n) with ``controllers[b]`` driving row b (any of
    :data:`gcann.control.CONTROLLERS` that reads only the losses), through :class:`gcann.control.ControlRows`.

    Each step k: per-row ``(loss_d, loss_g) = game.losses(z)`` (float64) → the controllers observe them and
    their plans govern this very step (lag 0: the Dirac losses are those of the current state) → the main
    update of ``scheme`` with the plans' per-row learning rates, the players masked where a count is 0 → up
    to ``max(d_steps) − 1`` masked extra D updates, then the same for G (field recomputed each time) → WGAN
    projection after every update.  ``altgd`` is one D update then one G update per step.  The knob
    ``clc_weight`` (CLC) is λ of the damping −λψ: an L2 term λ/2·‖ψ‖² added to D's loss (added to the
    objective's own ``l2``); a controller that needs statistics of D on a batch (ADA) is refused: the
    Dirac-GAN's data sit at 0, where D(x) = ψ·x is 0.

    Non-finite losses or states: the row is marked diverged (a ``diverged`` event, as the GCANN controller's),
    frozen at its last finite state, and its controller no longer observes; use :func:`effective_distance`
    (inf after divergence) for verdicts.

    Ablations: ``apply_lr=False`` keeps each controller's initial rates, ``apply_pause=False`` trains both
    players every step, ``apply_extra=False`` drops the catch-up bursts.  The logs always hold the plans.
    ``log_events``: the event kinds kept in ``logs.events`` (default: all); ``logs.event_counts()`` counts
    every kind.  ``progress(k)``: called with the number of steps done after each step.
    """
    if scheme not in ("simgd", "altgd"):
        raise SimulationError(f"a controlled simulation supports schemes simgd and altgd, got {scheme!r}")
    for name, val in (("steps", steps), ("record_every", record_every)):
        if int(val) != val or val < 1:
            raise SimulationError(f"{name} must be a positive integer, got {val!r}")
    z0 = check_initial(z0, game).to(torch.float64)
    B, n = z0.shape[0], game.dim
    if len(controllers) != B:
        raise SimulationError(f"{len(controllers)} controllers for {B} rows")
    needy = sorted({c.name for c in controllers if c.needs})
    if needy:
        raise SimulationError(f"controller(s) {', '.join(needy)} read D's outputs on real data, which the Dirac-GAN "
                              f"has at 0 (D(0) = 0 for every ψ): not simulated here")
    unknown = sorted({k for c in controllers for k in c.knob_names} - {"clc_weight"})
    if unknown:
        raise SimulationError(f"the Dirac-GAN testbed has no counterpart of the knob(s) {', '.join(unknown)}")
    damped = any("clc_weight" in c.knob_names for c in controllers)
    if damped and not game.objective.l2:
        game = DiracGAN(game.objective.with_(l2=True, defaults={"l2": 0.0}), game.dim, game.quadrature_nodes,
                        game.product_nodes)
    hp = game.prepare(hp, B, z0.dtype, z0.device)
    l2_own = hp["l2"].clone() if damped else None
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
    rows = ControlRows(list(controllers), lag=0, knob_defaults={"clc_weight": 0.0} if damped else None)
    first = rows.plans()
    base_lr_d, base_lr_g = first.lr_d.clone(), first.lr_g.clone()

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
    stopped = torch.zeros(B, dtype=torch.bool)      # rows whose controller has stopped (a non-finite loss or state)

    def guard(z_new: Tensor, z_old: Tensor, k: int) -> Tensor:
        bad = ~torch.isfinite(z_new).all(1)
        if bool(bad.any()):
            newly = bad & ~dead
            dead_step[newly] = k
            dead.logical_or_(bad)
            z_new = torch.where(bad[:, None], z_old, z_new)
        return z_new

    def log(b: int, record: dict) -> None:
        totals[record["event"]] = totals.get(record["event"], 0) + 1
        if keep is None or record["event"] in keep:
            events[b].append(record)

    for k in range(steps):
        ld, lg = game.losses(z, hp)  # penalties need autograd (∇ₓD): no torch.no_grad here
        ld = ld.detach().to(torch.float64)
        lg = lg.detach().to(torch.float64)
        L_d[k], L_g[k] = ld, lg
        seen_d = torch.where(dead, torch.full_like(ld, math.nan), ld)
        seen_g = torch.where(dead, torch.full_like(lg, math.nan), lg)
        bad = ~(torch.isfinite(seen_d) & torch.isfinite(seen_g)) & ~stopped
        for b in bad.nonzero().flatten().tolist():        # a row stops: its last rates, a diverged event
            p = rows.plan_of(b)
            what = ", ".join(f"{name}={v!r}" for name, v in (("loss_d", float(seen_d[b])), ("loss_g", float(seen_g[b])))
                             if not math.isfinite(v))
            log(b, event_record(Event(k, "diverged", "nonfinite_loss", p.lr_d, p.lr_d, p.lr_g, p.lr_g,
                                      {"losses": what}), b, controllers[b].name))
            stopped[b] = True
            if not bool(dead[b]):
                dead[b] = True
                dead_step[b] = k
        for record in rows.observe(k, torch.nan_to_num(seen_d).tolist(), torch.nan_to_num(seen_g).tolist(),
                                   live=~stopped):
            log(record["row"], record)
        plans = rows.plans()
        trd, trg = plans.d_steps > 0, plans.g_steps > 0
        exd = (plans.d_steps - 1).clamp(min=0).to(torch.int32)
        exg = (plans.g_steps - 1).clamp(min=0).to(torch.int32)
        lrd, lrg = plans.lr_d, plans.lr_g
        LR_d[k], LR_g[k], TR_d[k], TR_g[k], EX_d[k], EX_g[k] = lrd, lrg, trd, trg, exd, exg
        if damped:
            hp["l2"] = l2_own + plans.knobs["clc_weight"].to(l2_own)
        if not apply_lr:
            lrd, lrg = base_lr_d, base_lr_g
        if not apply_pause:
            trd, trg = torch.ones_like(trd), torch.ones_like(trg)
        if not apply_extra:
            exd, exg = torch.zeros_like(exd), torch.zeros_like(exg)
        lrd_c, lrg_c = lrd[:, None], lrg[:, None]

        z = guard(gd_round(game, z, hp, scheme, opt_g, opt_d, lrd_c, lrg_c, 1, 1, trd, trg), z, k)
        for _, m in update_rounds(exd):  # catch-up: extra D updates, then extra G updates
            m = m & ~dead
            if not bool(m.any()):
                break
            z = guard(gd_round(game, z, hp, "altgd", opt_g, opt_d, lrd_c, lrg_c, 1, 0, train_d=m), z, k)
        for _, m in update_rounds(exg):
            m = m & ~dead
            if not bool(m.any()):
                break
            z = guard(gd_round(game, z, hp, "altgd", opt_g, opt_d, lrd_c, lrg_c, 0, 1, train_g=m), z, k)
        if beta is not None:
            e = ema_step(e, z, beta)
        if (k + 1) % record_every == 0:
            recs.append(z)
            ts.append(k + 1)
            ema_recs.append(e)
        if progress is not None:
            progress(k + 1)
    t = torch.tensor(ts, **f64)
    names = sorted({c.name for c in controllers})
    info = {"gcann": names == ["gcann"], "controllers": names, "diverged": dead.clone(),
            "diverged_step": dead_step.clone()}
    traj = Trajectory(t, torch.stack(recs), n, scheme, torch.stack(ema_recs) if beta is not None else None, info)
    logs = GCANNLogs(L_d, L_g, LR_d, LR_g, TR_d, TR_g, EX_d, EX_g, events, dead, dead_step,
                     {"controllers": [c.state_dict()["settings"] for c in controllers[:1]]}, totals)
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

