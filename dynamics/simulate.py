"""Batched simulators of Dirac-GAN dynamics.

Every simulator takes a batch of initial states ``z0`` of shape ``(B, 2n)`` and
hyper-parameters that are scalars or ``(B,)`` tensors (a grid), runs on the
device of ``z0``, and gives, row for row, the numbers that running each row
alone gives: rows never interact (the adaptive ODE solver controls the step of
each row separately).

Schemes
-------
``ode``     continuous time, ż = v(z): fixed-step RK4 or adaptive Dormand–Prince 5(4)
``simgd``   simultaneous updates of both players from the same state
``altgd``   alternating: ``n_d`` discriminator updates, then ``n_g`` generator updates

Discrete schemes take an optimiser per player (``sgd`` with momentum, ``adam``,
``rmsprop``, with PyTorch's update rules) and separate learning rates.  An
exponential moving average of the iterates (β) is kept alongside any trajectory.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import torch

from gcann.errors import GcannError

from .dirac import DiracGAN
from .objectives import HP
from .optim import RULES, RowOptimiser, ema_step

Tensor = torch.Tensor

SCHEMES = ("ode", "simgd", "altgd")
OPTIMISERS = RULES  # dynamics.optim's rules
ODE_METHODS = ("rk4", "dopri5")


class SimulationError(GcannError, ValueError):
    """A user mistake in a simulation request (bad learning rate, grid too large, ...); the CLI prints it as one
    line."""


@dataclass
class Trajectory:
    """Recorded states ``z`` of shape ``(T, B, 2n)`` at times ``t`` (``(T,)``).

    For discrete schemes ``t`` counts updates (generator steps for ``altgd``);
    for the ODE it is continuous time.  ``z_ema`` holds the EMA of the iterates
    when one was requested.
    """

    t: Tensor
    z: Tensor
    dim: int
    scheme: str
    z_ema: Tensor | None = None
    info: dict = field(default_factory=dict)

    @property
    def theta(self) -> Tensor:
        return self.z[..., : self.dim]

    @property
    def psi(self) -> Tensor:
        return self.z[..., self.dim :]

    def distance(self, ema: bool = False) -> Tensor:
        """Euclidean distance to the equilibrium (0, 0), shape (T, B)."""
        z = self.z_ema if ema else self.z
        if z is None:
            raise SimulationError("this trajectory has no EMA; simulate with ema_beta=...")
        return z.norm(dim=-1)


# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #
def _per_row(x, B: int, name: str, like: Tensor, positive: bool = True) -> Tensor:
    t = torch.as_tensor(x, dtype=like.dtype, device=like.device)
    if t.ndim == 0:
        t = t.expand(B)
    if t.shape != (B,):
        raise SimulationError(f"{name} has shape {tuple(t.shape)}; expected a scalar or ({B},)")
    if not bool(torch.isfinite(t).all()):
        raise SimulationError(f"{name} must be finite")
    if positive and bool((t <= 0).any()):
        raise SimulationError(f"{name} must be > 0, got {t.min().item():g}")
    return t


def check_initial(z0: Tensor, game: DiracGAN) -> Tensor:
    z0 = torch.as_tensor(z0)
    if not z0.is_floating_point():
        z0 = z0.to(torch.float64)
    if z0.ndim == 1:
        z0 = z0[None]
    if z0.ndim != 2 or z0.shape[1] != 2 * game.dim:
        raise SimulationError(
            f"initial point must have shape (B, {2 * game.dim}) = (θ ∈ ℝ^{game.dim}, ψ ∈ ℝ^{game.dim}), "
            f"got {tuple(z0.shape)}"
        )
    if not bool(torch.isfinite(z0).all()):
        raise SimulationError("initial point must be finite (found NaN or Inf)")
    return z0


def available_memory() -> int:
    """Bytes of physical memory available now (a conservative bound for one process)."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 << 30


def check_memory(n_records: int, B: int, width: int, itemsize: int, copies: int, limit: int | None = None) -> None:
    need = n_records * B * width * itemsize * copies + 16 * B * width * itemsize
    limit = int(0.5 * available_memory()) if limit is None else limit
    if need > limit:
        raise SimulationError(
            f"grid too large for memory: {B} trajectories × {n_records} records need "
            f"{need / 2**30:.2f} GiB > {limit / 2**30:.2f} GiB allowed; reduce the grid or raise record_every"
        )


# --------------------------------------------------------------------------- #
# Optimisers: the rules of dynamics.optim.RowOptimiser (PyTorch's, per-row rates, counts and masks)
# --------------------------------------------------------------------------- #
@dataclass
class OptimiserSpec:
    name: str = "sgd"
    momentum: float = 0.0  # SGD momentum (PyTorch convention: buf ← μ·buf + g)
    betas: tuple[float, float] = (0.9, 0.999)  # Adam
    alpha: float = 0.99  # RMSProp smoothing
    eps: float = 1e-8  # Adam / RMSProp

    def __post_init__(self):
        if self.name not in OPTIMISERS:
            raise SimulationError(f"unknown optimizer {self.name!r}; choose from {', '.join(OPTIMISERS)}")
        if not 0 <= self.momentum < 1:
            raise SimulationError(f"momentum must be in [0, 1), got {self.momentum}")
        if not all(0 <= b < 1 for b in self.betas):
            raise SimulationError(f"betas must be in [0, 1), got {self.betas}")
        if not 0 <= self.alpha < 1:
            raise SimulationError(f"rmsprop alpha must be in [0, 1), got {self.alpha}")
        if not self.eps > 0:
            raise SimulationError(f"eps must be > 0, got {self.eps}")

    def init(self, p: Tensor) -> RowOptimiser:
        """This rule's optimiser of the rows of ``p`` (B, n): the shared :class:`dynamics.optim.RowOptimiser`
        in its multi-tensor form (a row's update does not depend on the other rows)."""
        return RowOptimiser([p], self.name, betas=self.betas, momentum=self.momentum, alpha=self.alpha,
                            eps=self.eps, fused=False)


# --------------------------------------------------------------------------- #
# The simulator
# --------------------------------------------------------------------------- #
def simulate(
    game: DiracGAN,
    z0,
    *,
    scheme: str = "simgd",  # "ode", "simgd" or "altgd"
    steps: int = 1000,  # discrete: number of updates; ode: number of output intervals
    lr: float | Tensor = 0.1,  # learning rate of both players unless lr_d / lr_g are given
    lr_d: float | Tensor | None = None,  # discriminator learning rate (scalar or per row)
    lr_g: float | Tensor | None = None,  # generator learning rate (scalar or per row)
    hp: HP | None = None,  # objective hyper-parameters (scalars or per row)
    optimizer: str | OptimiserSpec = "sgd",  # "sgd" | "adam" | "rmsprop" (both players)
    n_d: int = 1,  # altgd: discriminator updates per round
    n_g: int = 1,  # altgd: generator updates per round
    t1: float = 10.0,  # ode: final time
    ode_method: str = "rk4",  # ode: "rk4" (fixed step) or "dopri5" (adaptive)
    substeps: int = 10,  # ode rk4: steps per output interval
    rtol: float = 1e-7,  # ode dopri5: relative tolerance
    atol: float = 1e-9,  # ode dopri5: absolute tolerance
    ema_beta: float | Tensor | None = None,  # keep an EMA of the iterates with this β
    record_every: int = 1,  # record every k-th state (discrete schemes)
    compile: bool = False,  # discrete plain SGD: run chunks of steps as one compiled graph (see compile_rounds)
    chunk: int = 20,  # compile: rounds per compiled call (rounded up to a multiple of record_every)
    memory_limit: int | None = None,  # bytes allowed for the record (default: half the free memory)
    progress=None,  # progress(k): called with the steps (ode: output intervals) done so far
) -> Trajectory:
    """Simulate the Dirac-GAN ``game`` from ``z0`` (see the module docstring)."""
    if scheme not in SCHEMES:
        raise SimulationError(f"unknown scheme {scheme!r}; choose from {', '.join(SCHEMES)}")
    z0 = check_initial(z0, game)
    B = z0.shape[0]
    for name, val in (("steps", steps), ("n_d", n_d), ("n_g", n_g), ("record_every", record_every), ("substeps", substeps)):
        if int(val) != val or val < 1:
            raise SimulationError(f"{name} must be a positive integer, got {val!r}")
    hp = game.prepare(hp, B, z0.dtype, z0.device)  # validated once, reused every step
    beta = None
    if ema_beta is not None:
        beta = _per_row(ema_beta, B, "ema_beta", z0, positive=False)
        if bool(((beta < 0) | (beta >= 1)).any()):
            raise SimulationError("ema_beta must be in [0, 1)")
    n_rec = steps // record_every + 1
    check_memory(n_rec, B, 2 * game.dim, z0.element_size(), 2 if beta is not None else 1, memory_limit)

    if scheme == "ode":
        if ode_method not in ODE_METHODS:
            raise SimulationError(f"unknown ode method {ode_method!r}; choose from {', '.join(ODE_METHODS)}")
        if not (t1 > 0 and math.isfinite(t1)):
            raise SimulationError(f"t1 must be > 0, got {t1}")
        t = torch.linspace(0.0, t1, steps + 1, dtype=z0.dtype, device=z0.device)
        fn = lambda z: game.projected_field(game.project(z, hp), hp)  # noqa: E731
        if ode_method == "rk4":
            zs = _rk4(fn, z0, t, substeps, progress)
            info = {"ode_method": "rk4", "dt": t1 / (steps * substeps)}
        else:
            zs, nfe = _dopri5(fn, z0, t, rtol, atol)
            if progress is not None:
                progress(steps)
            info = {"ode_method": "dopri5", "rtol": rtol, "atol": atol, "field_evaluations_per_row": nfe}
        # EMA of an ODE trajectory: β applies per output interval of the uniform grid
        z_ema = ema(zs, beta) if beta is not None else None
        return Trajectory(t, zs, game.dim, scheme, z_ema, info)

    lr_d = _per_row(lr if lr_d is None else lr_d, B, "lr_d", z0)
    lr_g = _per_row(lr if lr_g is None else lr_g, B, "lr_g", z0)
    spec = optimizer if isinstance(optimizer, OptimiserSpec) else OptimiserSpec(optimizer)
    compiled = None
    if compile:
        if spec.name != "sgd" or spec.momentum:
            raise SimulationError("compile=True supports plain SGD (no momentum)")
        K = -(-max(chunk, 1) // record_every) * record_every
        compiled = compile_rounds(game, hp, scheme, n_d, n_g, K, record_every, z0)
    return _discrete(game, z0, hp, scheme, steps, lr_d, lr_g, spec, n_d, n_g, beta, record_every, compiled, progress)


def gd_round(game: DiracGAN, z: Tensor, hp, scheme: str, opt_g: RowOptimiser, opt_d: RowOptimiser,
             lr_d: Tensor, lr_g: Tensor, n_d: int = 1, n_g: int = 1,
             train_d: Tensor | None = None, train_g: Tensor | None = None) -> Tensor:
    """One round of discrete training from state ``z``: a simultaneous update, or ``n_d``
    discriminator updates followed by ``n_g`` generator updates (either may be 0).
    ``lr_*`` are (B, 1); rows whose ``train_*`` mask is False keep that player's
    parameters and optimiser state.  The discriminator's constraint is applied after
    each of its updates."""
    n = game.dim
    if scheme == "simgd":
        v = game.field(z, hp)
        theta = opt_g.stepped(z[:, :n], -v[:, :n], lr_g, train_g)
        psi = opt_d.stepped(z[:, n:], -v[:, n:], lr_d, train_d)
        return game.project(torch.cat([theta, psi], dim=1), hp)
    for _ in range(n_d):
        v = game.field(z, hp)
        psi = opt_d.stepped(z[:, n:], -v[:, n:], lr_d, train_d)
        z = game.project(torch.cat([z[:, :n], psi], dim=1), hp)
    for _ in range(n_g):
        v = game.field(z, hp)
        theta = opt_g.stepped(z[:, :n], -v[:, :n], lr_g, train_g)
        z = torch.cat([theta, z[:, n:]], dim=1)
    return z


def _discrete(game, z0, hp, scheme, steps, lr_d, lr_g, spec, n_d, n_g, beta, record_every, compiled, progress=None):
    n = game.dim
    z = game.project(z0.clone(), hp)
    opt_g, opt_d = spec.init(z[:, :n]), spec.init(z[:, n:])
    recs, ema_recs, ts = [z.clone()], [z.clone()], [0]
    e = z.clone()
    lr_d_t, lr_g_t = lr_d[:, None], lr_g[:, None]
    bcol = beta[:, None] if beta is not None else None
    k = 0
    if compiled is not None:  # whole chunks of K rounds in one compiled graph
        fn, K = compiled
        vals = [hp[name].contiguous() for name in sorted(hp)]  # the layout the graph was traced with
        b = beta if beta is not None else torch.zeros_like(lr_d)
        while k + K <= steps:
            z, e, zr, er = fn(z, e, lr_d_t, lr_g_t, b, *vals)
            recs.extend(zr.unbind(0))
            ema_recs.extend(er.unbind(0))
            ts.extend(range(k + record_every, k + K + 1, record_every))
            k += K
            if progress is not None:
                progress(k)
    for k in range(k + 1, steps + 1):
        z = gd_round(game, z, hp, scheme, opt_g, opt_d, lr_d_t, lr_g_t, n_d, n_g)
        if bcol is not None:
            e = ema_step(e, z, bcol)
        if k % record_every == 0:
            recs.append(z)
            ts.append(k)
            ema_recs.append(e)
        if progress is not None:
            progress(k)
    t = torch.tensor(ts, dtype=z0.dtype, device=z0.device)
    return Trajectory(t, torch.stack(recs), n, scheme, torch.stack(ema_recs) if beta is not None else None,
                      {"compiled": compiled is not None})


# compiled chunks, keyed by everything that shapes the traced graph
_COMPILED: dict[tuple, tuple] = {}


def compile_rounds(game: DiracGAN, hp, scheme: str, n_d: int, n_g: int, K: int, record_every: int, like: Tensor):
    """Trace K rounds of plain gradient descent (field by autograd included) into one
    graph of tensor operations with ``make_fx`` and compile it with ``torch.compile``.

    Autograd's bookkeeping and Python's per-operation overhead are paid once at trace
    time; the result runs K steps per call.  Returns ``(fn, K)``."""
    from torch.fx.experimental.proxy_tensor import make_fx

    from .dirac import BatchHP

    names = sorted(hp)
    B, m = like.shape
    key = (id(game), scheme, n_d, n_g, K, record_every, B, m, like.dtype, str(like.device), tuple(names))
    hit = _COMPILED.get(key)
    if hit is not None and hit[0] is game:
        return hit[1]
    spec = OptimiserSpec("sgd")

    def chunk(z, e, lr_d, lr_g, beta, *vals):
        hpb = BatchHP(zip(names, vals))
        st_g, st_d = spec.init(z[:, : game.dim]), spec.init(z[:, game.dim :])
        zs, es = [], []
        b = beta[:, None]
        for k in range(1, K + 1):
            z = gd_round(game, z, hpb, scheme, st_g, st_d, lr_d, lr_g, n_d, n_g)
            e = ema_step(e, z, b)
            if k % record_every == 0:
                zs.append(z)
                es.append(e)
        return z, e, torch.stack(zs), torch.stack(es)

    col = lambda v: torch.full((B, 1), v, dtype=like.dtype, device=like.device)  # noqa: E731
    # distinct example tensors: aliased inputs would be traced as one and merged
    ex = (like.clone(), like.clone(), col(0.1), col(0.2), col(0.5)[:, 0].clone(),
          *[hp[n].contiguous().clone() for n in names])
    gm = make_fx(chunk)(*ex)
    fn = torch.compile(gm, dynamic=False)
    _COMPILED[key] = (game, (fn, K))
    return fn, K


# --------------------------------------------------------------------------- #
# EMA of iterates
# --------------------------------------------------------------------------- #
def ema(z: Tensor, beta) -> Tensor:
    """EMA along the first (time) axis: e₀ = z₀, e_k = β e_{k−1} + (1 − β) z_k.

    ``beta`` is a scalar or one value per row (shape (B,)).
    """
    b = torch.as_tensor(beta, dtype=z.dtype, device=z.device)
    if b.ndim == 1:
        b = b[:, None]
    out = torch.empty_like(z)
    out[0] = z[0]
    for k in range(1, z.shape[0]):
        out[k] = ema_step(out[k - 1], z[k], b)
    return out



# --------------------------------------------------------------------------- #
# ODE solvers
# --------------------------------------------------------------------------- #
def _rk4(fn, z0: Tensor, t: Tensor, substeps: int, progress=None) -> Tensor:
    out = [z0]
    z = z0
    for i in range(len(t) - 1):
        h = (t[i + 1] - t[i]) / substeps
        for _ in range(substeps):
            k1 = fn(z)
            k2 = fn(z + 0.5 * h * k1)
            k3 = fn(z + 0.5 * h * k2)
            k4 = fn(z + h * k3)
            z = z + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        out.append(z)
        if progress is not None:
            progress(i + 1)
    return torch.stack(out)


# Dormand–Prince 5(4) tableau
_C = [0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1, 1]
_A = [
    [],
    [1 / 5],
    [3 / 40, 9 / 40],
    [44 / 45, -56 / 15, 32 / 9],
    [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
    [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
    [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
]
_B5 = [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0]
_B4 = [5179 / 57600, 0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40]


def _dopri5(fn, z0: Tensor, t: Tensor, rtol: float, atol: float, max_evals: int = 200_000):
    """Adaptive Dormand–Prince 5(4) with a step size *per row*, stopping exactly on the
    output times; rows that become non-finite stop (their remaining output is NaN)."""
    B = z0.shape[0]
    z = z0.clone()
    tc = torch.full((B,), float(t[0]), dtype=z0.dtype, device=z0.device)
    h = torch.full_like(tc, float(t[-1] - t[0]) / 100)
    nxt = torch.ones(B, dtype=torch.long, device=z0.device)  # index of the next output time
    out = torch.full((len(t), B, z0.shape[1]), float("nan"), dtype=z0.dtype, device=z0.device)
    out[0] = z0
    k1 = fn(z)
    nfe = 1
    T = len(t)
    while True:
        active = nxt < T
        if not bool(active.any()):
            break
        if nfe > max_evals:
            raise SimulationError(f"dopri5 needed more than {max_evals} field evaluations; loosen rtol/atol")
        target = t[nxt.clamp(max=T - 1)]
        hh = torch.minimum(h, target - tc).clamp(min=0)
        hcol = hh[:, None]
        ks = [k1]
        for i in range(1, 7):
            zi = z + hcol * sum(a * k for a, k in zip(_A[i], ks))
            ks.append(fn(zi))
        nfe += 6
        z5 = z + hcol * sum(b * k for b, k in zip(_B5, ks))
        z4 = z + hcol * sum(b * k for b, k in zip(_B4, ks))
        scale = atol + rtol * torch.maximum(z.abs(), z5.abs())
        err = ((z5 - z4) / scale).pow(2).mean(dim=1).sqrt()
        finite = torch.isfinite(z5).all(dim=1) & torch.isfinite(err)
        accept = active & finite & (err <= 1)
        z = torch.where(accept[:, None], z5, z)
        k1 = torch.where(accept[:, None], ks[6], k1)  # FSAL
        tc = torch.where(accept, tc + hh, tc)
        hit = accept & (tc >= target)
        if bool(hit.any()):
            idx = nxt[hit]
            out[idx, hit.nonzero().squeeze(1)] = z[hit]
            tc = torch.where(hit, target, tc)
            nxt = nxt + hit.long()
        factor = torch.where(err > 0, 0.9 * err.clamp(min=1e-10) ** -0.2, torch.full_like(err, 5.0)).clamp(0.2, 5.0)
        h = torch.where(active & finite, (hh * factor).clamp(min=1e-14), h)
        dead = active & ~finite & (hh > 0) & (h < 1e-14)
        h = torch.where(active & ~finite, h * 0.25, h)
        nxt = torch.where(dead, torch.full_like(nxt, T), nxt)  # give up on rows that blow up
    return out, nfe
