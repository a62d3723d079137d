"""Figures of Dirac-GAN dynamics (matplotlib only, no display needed).

Every figure function takes explicit parameters with defaults and returns a
:class:`matplotlib.figure.Figure` built without ``pyplot`` (so it works under
any backend, including ``Agg``, and leaves no global state behind):

* :func:`vector_field`   the (θ, ψ) field of the 1-D Dirac-GAN with ODE / simGD / altGD trajectories
* :func:`vector_fields`  several methods side by side (the README figure)
* :func:`theta_plane`    θ ∈ ℝ² trajectories of the 2-D forms (Su's cases)
* :func:`ema_comparison` a raw trajectory beside its exponential moving average
* :func:`r1_locus`       eigenvalues of the R1 Jacobian over γ against the closed form
* :func:`all_methods`    one panel per method in :data:`dynamics.METHODS`, with verdicts
* :func:`animate`        a GIF of a trajectory moving over the field

:data:`PLOTS` maps the README figure names to zero-argument callables and
:func:`make_all` writes them all (``gcann dirac plot --all --out figures``).

Unknown methods, hyper-parameters or bad values raise a one-line ``ValueError``
(the objective's and simulator's own errors).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from .dirac import DiracGAN
from .objectives import DEFAULT_DIM, METHODS, get_objective
from .simulate import SCHEMES, Trajectory, simulate
from .spectrum import spectrum
from .verdict import MIN_RECORDS, classify_with_rates, describe

DTYPE = torch.float64

#: θ-plane cases of Su (seed 003): (method, hyper-parameters); ``l2`` adds D weight decay.
#: Su's WGAN-GP uses λ(‖φ‖ − c)² with λ = 0.1, which is γ = 2λ = 0.2 here.
#: A third entry overrides the ODE end time t1 for that case (Su runs the WGAN to T = 10).
SU_CASES: list[tuple] = [
    ("nsgan", {}),
    ("wgan_norm", {}, 10.0),
    ("wgan_gp", {"gamma": 0.2, "c": 0.0}),
    ("wgan_gp", {"gamma": 0.2, "c": 1.0}),
    ("gan_qp", {"lam": 1.0}),
    ("gan_qp", {"lam": 1.0, "l2": 0.1}),
]
#: Su's initial point (θ₁, θ₂, ψ₁, ψ₂) = (0.2, 0.1, 0.1, 0.2), in this package's [θ, ψ] order.
SU_INIT = (0.2, 0.1, 0.1, 0.2)

_SCHEME_STYLE = {
    "ode": dict(color="tab:blue", lw=1.8, label="ODE"),
    "simgd": dict(color="tab:orange", lw=1.2, label="simGD"),
    "altgd": dict(color="tab:green", lw=1.2, label="altGD"),
}
_EQ_STYLE = dict(color="red", s=40, zorder=6, label="equilibrium")
_INIT_STYLE = dict(marker="o", s=36, facecolors="none", edgecolors="black", zorder=6, label="init")


# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #
def _split_hp(hp: Mapping | None) -> tuple[dict, float | None]:
    hp = dict(hp or {})
    l2 = hp.pop("l2", None)
    out = {}
    for k, v in hp.items():
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"hyper-parameter {k} must be a number, got {v!r}") from None
    return out, (None if l2 is None else float(l2))


def make_game(method: str, hp: Mapping | None = None, dim: int | None = None) -> DiracGAN:
    """The Dirac-GAN of ``method`` with hyper-parameters ``hp`` (``l2`` adds D weight decay).

    ``dim`` defaults to the method's natural dimension (2 for the 2-D forms)."""
    if not isinstance(method, str):
        raise ValueError(f"method must be a name, got {method!r}")
    defaults, l2 = _split_hp(hp)
    obj = get_objective(method, l2=l2, **defaults)  # one-line ObjectiveError (a ValueError)
    return DiracGAN(obj, DEFAULT_DIM.get(method, 1) if dim is None else dim)


#: the methods' names in figures
METHOD_NAMES = {
    "gan": "GAN (saturating)", "nsgan": "non-saturating GAN", "wgan": "WGAN (weight clipping)",
    "wgan_norm": "WGAN, normalised critic", "wgan_gp": "WGAN-GP", "dragan": "DRAGAN", "r1": "R1 penalty",
    "r2": "R2 penalty", "roth": "Roth et al. penalty", "gan_qp": "GAN-QP", "lsgan": "LSGAN",
    "alpha": "(α_D, α_G)-GAN", "alpha_sat": "(α_D, α_G)-GAN, saturating", "instance_noise": "instance noise",
    "conopt": "ConOpt",
}
#: hyper-parameter symbols in figures
PARAM_SYMBOLS = {"gamma": "γ", "conopt_gamma": "γ", "sigma": "σ", "lam": "λ", "alpha_d": "α_D", "alpha_g": "α_G",
                 "l2": "L2"}


def hp_label(game: DiracGAN) -> str:
    """``"γ=1, c=0"``: the objective's hyper-parameters, for titles."""
    d = game.objective.defaults
    return ", ".join(f"{PARAM_SYMBOLS.get(k, k)}={float(v):g}" for k, v in d.items())


def _title(method: str, game: DiracGAN) -> str:
    lab = hp_label(game)
    name = METHOD_NAMES.get(method, method)
    return f"{name} ({lab})" if lab else name


def _check_positive_int(name: str, v) -> int:
    if isinstance(v, bool) or int(v) != v or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return int(v)


def _check_positive(name: str, v) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {v!r}") from None
    if not (f > 0 and math.isfinite(f)):
        raise ValueError(f"{name} must be > 0, got {v!r}")
    return f


def _init(init, width: int, name: str = "init") -> torch.Tensor:
    z = torch.as_tensor(np.asarray(init, dtype=np.float64), dtype=DTYPE).reshape(-1)
    if z.numel() != width:
        raise ValueError(f"{name} must have {width} numbers ([θ, ψ] with dim {width // 2}), got {z.numel()}")
    if not bool(torch.isfinite(z).all()):
        raise ValueError(f"{name} must be finite")
    return z[None]


def _check_schemes(schemes: Iterable[str]) -> tuple[str, ...]:
    schemes = tuple(schemes)
    for s in schemes:
        if s not in SCHEMES:
            raise ValueError(f"unknown scheme {s!r}; choose from {', '.join(SCHEMES)}")
    return schemes


def run(game: DiracGAN, z0: torch.Tensor, scheme: str, *, lr: float, steps: int, t1: float | None = None,
        substeps: int = 2, ema_beta: float | None = None) -> Trajectory:
    """One trajectory. The ODE runs to ``t1`` (default ``lr·steps``, the time the discrete
    schemes cover) with ``steps`` recorded points and RK4 ``substeps`` per point."""
    if scheme == "ode":
        t1 = lr * steps if t1 is None else t1
        return simulate(game, z0, scheme="ode", steps=steps, t1=t1, substeps=substeps, ema_beta=ema_beta)
    return simulate(game, z0, scheme=scheme, steps=steps, lr=lr, ema_beta=ema_beta)


def _np(x: torch.Tensor) -> np.ndarray:
    a = x.detach().cpu().numpy().astype(float)
    a[~np.isfinite(a)] = np.nan
    return a


def _verdict(tr: Trajectory, ema: bool = False) -> str:
    """The simulation verdict of row 0 with its fitted rate (``dynamics.verdict``)."""
    if tr.z.shape[0] < MIN_RECORDS:
        return "n/a (too few records)"
    labels, rates = classify_with_rates(tr.distance(ema=ema), z=tr.z_ema if ema else tr.z, t=tr.t)
    return describe(labels[0], rates[0], "t" if tr.scheme == "ode" else "step")


def _spectral(game: DiracGAN) -> bool | None:
    return spectrum(game).locally_convergent[0]


_SPECTRAL_WORDS = {True: "locally convergent", False: "not locally convergent",
                   None: "not differentiable at the equilibrium"}


def _field_grid(game: DiracGAN, xlim, ylim, n: int):
    """The 1-D field on an n×n grid (one batched call); an even n avoids the singular axes."""
    xs = np.linspace(*xlim, n)
    ys = np.linspace(*ylim, n)
    X, Y = np.meshgrid(xs, ys)
    z = torch.tensor(np.stack([X.ravel(), Y.ravel()], 1), dtype=DTYPE)
    v = game.field(z)
    U = np.nan_to_num(_np(v[:, 0]).reshape(X.shape))
    V = np.nan_to_num(_np(v[:, 1]).reshape(X.shape))
    return xs, ys, U, V


def _draw_field(ax, game: DiracGAN, lim: float, grid: int) -> None:
    xs, ys, U, V = _field_grid(game, (-lim, lim), (-lim, lim), grid)
    speed = np.hypot(U, V)
    if np.any(speed > 0):
        ax.streamplot(xs, ys, U, V, color="0.72", density=0.9, linewidth=0.6, arrowsize=0.7, zorder=1)
    if game.objective.clip:
        c = float(game.objective.defaults["clip"])
        for s in (-c, c):
            ax.axhline(s, color="0.4", ls="--", lw=0.8, zorder=2)


def _square(ax, lim: float, xlabel: str, ylabel: str, **label_kw) -> None:
    """A square frame [−lim, lim]² around the equilibrium, equal aspect, labelled axes."""
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xlabel(xlabel, **label_kw)
    ax.set_ylabel(ylabel, **label_kw)


def _limits(points: np.ndarray, pad: float = 0.12, cap: float | None = None) -> float:
    """A symmetric half-width around 0 that contains ``points`` (finite ones, capped)."""
    p = np.abs(points[np.isfinite(points)])
    m = float(p.max()) if p.size else 1.0
    if cap is not None:
        m = min(m, cap)
    return max(m, 1e-3) * (1 + pad)


def _time_line(ax, x: np.ndarray, y: np.ndarray, cmap: str = "viridis", lw: float = 1.4):
    """A line coloured by time (dark at the start, bright at the end)."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    pts = np.stack([x, y], 1)[:, None, :]
    segs = np.concatenate([pts[:-1], pts[1:]], axis=1)
    lc = LineCollection(segs, cmap=cmap, linewidths=lw, zorder=3)
    lc.set_array(np.linspace(0, 1, len(segs)))
    ax.add_collection(lc)
    return lc


def _new_figure(figsize) -> Figure:
    return Figure(figsize=figsize, layout="constrained")


# --------------------------------------------------------------------------- #
# 1. The (θ, ψ) vector field with trajectories
# --------------------------------------------------------------------------- #
def vector_field(method: str = "gan", hp: Mapping | None = None, lr: float = 0.1, steps: int = 400,
                 init: Sequence[float] = (1.0, 1.0), ax=None, schemes: Sequence[str] = ("ode", "simgd", "altgd"),
                 t1: float | None = None, lim: float | None = None, grid: int = 24, substeps: int = 2) -> Figure:
    """Streamlines of the 1-D Dirac-GAN field v(θ, ψ) of ``method`` with trajectories from ``init``.

    The ODE runs to ``t1`` (default ``lr·steps``); simGD and altGD take ``steps`` updates at
    ``lr``.  Each legend entry carries the simulation verdict; the equilibrium is the red dot.
    """
    game = make_game(method, hp, dim=1)
    schemes = _check_schemes(schemes)
    lr = _check_positive("lr", lr)
    steps = _check_positive_int("steps", steps)
    grid = _check_positive_int("grid", grid)
    z0 = _init(init, 2)
    if ax is None:
        fig = _new_figure((5.2, 4.8))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    lim = _limits(_np(z0), pad=0.5) if lim is None else _check_positive("lim", lim)
    _draw_field(ax, game, lim, grid)
    for s in schemes:
        tr = run(game, z0, s, lr=lr, steps=steps, t1=t1, substeps=substeps)
        z = _np(tr.z[:, 0])
        style = dict(_SCHEME_STYLE[s])
        extra = f" (t≤{float(tr.t[-1]):g})" if s == "ode" else ""
        style["label"] = f"{style['label']}{extra}: {_verdict(tr)}"
        ax.plot(z[:, 0], z[:, 1], zorder=4, **style)
    ax.scatter([0], [0], **_EQ_STYLE)
    ax.scatter(z0[0, :1].numpy(), z0[0, 1:].numpy(), **_INIT_STYLE)
    _square(ax, lim, "θ (generator)", "ψ (discriminator)")
    ax.set_title(f"{_title(method, game)}\nlr={lr:g}, {steps} steps", fontsize=10)
    ax.legend(loc="lower left", fontsize=7.5, framealpha=0.85)
    return fig


def vector_fields(methods: Sequence[str] = ("gan", "r1"), hps: Sequence[Mapping | None] | None = None,
                  **kwargs) -> Figure:
    """:func:`vector_field` for several methods side by side (one axes each)."""
    methods = list(methods)
    if not methods:
        raise ValueError("methods must name at least one method")
    hps = list(hps) if hps is not None else [None] * len(methods)
    if len(hps) != len(methods):
        raise ValueError(f"hps has {len(hps)} entries for {len(methods)} methods")
    fig = _new_figure((4.8 * len(methods), 4.9))
    axes = fig.subplots(1, len(methods), squeeze=False)[0]
    for ax, m, hp in zip(axes, methods, hps):
        vector_field(m, hp, ax=ax, **kwargs)
    return fig


# --------------------------------------------------------------------------- #
# 2. θ-plane trajectories of the 2-D forms (Su)
# --------------------------------------------------------------------------- #
def _case(entry) -> tuple[str, dict, float | None]:
    if isinstance(entry, str):
        return entry, {}, None
    if isinstance(entry, (tuple, list)) and len(entry) in (2, 3) and isinstance(entry[0], str):
        t1 = None if len(entry) == 2 or entry[2] is None else _check_positive("t1", entry[2])
        return entry[0], dict(entry[1] or {}), t1
    raise ValueError(f"each case must be a method name, (method, hp) or (method, hp, t1), got {entry!r}")


def _case_label(method: str, hp: dict) -> str:
    parts = [f"{PARAM_SYMBOLS.get(k, k)}={float(v):g}" for k, v in hp.items()]
    name = METHOD_NAMES.get(method, method)
    return f"{name} ({', '.join(parts)})" if parts else name


def theta_plane(methods_with_hp: Sequence = tuple(SU_CASES), init: Sequence[float] = SU_INIT,
                t1: float = 100.0, steps: int = 800, substeps: int = 1, scheme: str = "ode", lr: float = 0.1,
                ncols: int = 3) -> Figure:
    """Trajectories of the generator θ ∈ ℝ² for the 2-D Dirac-GAN, one panel per case.

    Each case is a method name, ``(method, hp)`` or ``(method, hp, t1)``; ``hp`` may hold
    ``l2`` (D weight decay).  All cases start from the same ``init`` = (θ₁, θ₂, ψ₁, ψ₂).
    The ODE runs to ``t1`` (or the case's own t1) with ``steps`` records;
    discrete schemes take ``steps`` updates at ``lr``.  The line is coloured by time
    (dark → bright); the red dot is the equilibrium θ = 0.
    """
    cases = [_case(e) for e in methods_with_hp]
    if not cases:
        raise ValueError("methods_with_hp must hold at least one case")
    (scheme,) = _check_schemes([scheme])
    steps = _check_positive_int("steps", steps)
    ncols = _check_positive_int("ncols", ncols)
    t1 = _check_positive("t1", t1)
    lr = _check_positive("lr", lr)
    games = [make_game(m, hp, dim=2) for m, hp, _ in cases]  # validate everything before running
    z0 = _init(init, 4)
    ncols = min(ncols, len(cases))
    nrows = math.ceil(len(cases) / ncols)
    fig = _new_figure((3.6 * ncols, 3.75 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (m, hp, t1_case), game in zip(axes, cases, games):
        tr = run(game, z0, scheme, lr=lr, steps=steps, t1=t1 if t1_case is None else t1_case, substeps=substeps)
        th = _np(tr.theta[:, 0])
        _time_line(ax, th[:, 0], th[:, 1])
        ax.scatter([0], [0], **_EQ_STYLE)
        ax.scatter(th[:1, 0], th[:1, 1], **_INIT_STYLE)
        last = th[np.isfinite(th).all(1)][-1:]
        ax.scatter(last[:, 0], last[:, 1], marker="x", color="black", s=30, zorder=6, label="end")
        lim = _limits(th, cap=50.0)
        _square(ax, lim, "θ₁", "θ₂")
        when = f"t≤{float(tr.t[-1]):g}" if scheme == "ode" else f"{steps} steps, lr={lr:g}"
        ax.set_title(f"{_case_label(m, hp)}\n{_SCHEME_STYLE[scheme]['label']} {when}: {_verdict(tr)}", fontsize=9)
    for ax in axes[len(cases):]:
        ax.remove()
    axes[0].legend(loc="lower left", fontsize=7, framealpha=0.85)
    fig.suptitle(f"Generator θ ∈ ℝ² of the 2-D Dirac-GAN, shared init (θ, ψ) = {tuple(float(x) for x in init)}"
                 " — colour: time (dark → bright)", fontsize=10)
    return fig


# --------------------------------------------------------------------------- #
# 3. EMA of the iterates
# --------------------------------------------------------------------------- #
def ema_comparison(method: str = "nsgan", beta: float = 0.99, hp: Mapping | None = None, dim: int = 2,
                   scheme: str = "ode", init: Sequence[float] | None = None, lr: float = 0.1, steps: int = 1000,
                   t1: float | None = None, substeps: int = 1) -> Figure:
    """A trajectory beside the exponential moving average of its iterates (β per record).

    Left: the raw trajectory; middle: its EMA (θ-plane for ``dim=2``, the (θ, ψ) plane
    for ``dim=1``); right: the distance ‖z‖ to the equilibrium over time for both.
    ``init`` defaults to Su's point (dim 2) or (1, 1) (dim 1).
    """
    if dim not in (1, 2):
        raise ValueError(f"dim must be 1 or 2, got {dim!r}")
    game = make_game(method, hp, dim=dim)
    (scheme,) = _check_schemes([scheme])
    steps = _check_positive_int("steps", steps)
    lr = _check_positive("lr", lr)
    beta = float(beta)
    if not 0 <= beta < 1:
        raise ValueError(f"beta must be in [0, 1), got {beta!r}")
    z0 = _init(init if init is not None else (SU_INIT if dim == 2 else (1.0, 1.0)), 2 * dim)
    tr = run(game, z0, scheme, lr=lr, steps=steps, t1=t1, substeps=substeps, ema_beta=beta)
    raw, avg = _np(tr.z[:, 0]), _np(tr.z_ema[:, 0])
    if dim == 2:
        P, Q, labels = raw[:, :2], avg[:, :2], ("θ₁", "θ₂")
    else:
        P, Q, labels = raw, avg, ("θ (generator)", "ψ (discriminator)")
    fig = _new_figure((12.5, 4.1))
    axes = fig.subplots(1, 3, width_ratios=[1, 1, 1.35])
    lim = _limits(np.concatenate([P, Q]), cap=50.0)
    for ax, pts, name, col in ((axes[0], P, "raw iterates", "tab:blue"), (axes[1], Q, f"EMA, β={beta:g}", "tab:purple")):
        ax.plot(pts[:, 0], pts[:, 1], color=col, lw=1.0, zorder=3)
        ax.scatter([0], [0], **_EQ_STYLE)
        ax.scatter(pts[-1:, 0], pts[-1:, 1], marker="x", color="black", s=36, zorder=6, label="end")
        _square(ax, lim, labels[0], labels[1])
        ax.set_title(name, fontsize=10)
    axes[0].legend(loc="lower left", fontsize=7.5)
    t = _np(tr.t)
    d_raw, d_ema = _np(tr.distance()[:, 0]), _np(tr.distance(ema=True)[:, 0])
    ax = axes[2]
    ax.semilogy(t, d_raw, color="tab:blue", lw=1.0, label=f"raw: {_verdict(tr)}")
    ax.semilogy(t, d_ema, color="tab:purple", lw=1.4, label=f"EMA: {_verdict(tr, ema=True)}")
    ax.set_xlabel("time t" if scheme == "ode" else "update")
    ax.set_ylabel("‖(θ, ψ)‖  distance to equilibrium")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("distance to the equilibrium", fontsize=10)
    when = f"ODE to t={float(tr.t[-1]):g}, {steps} records" if scheme == "ode" else f"{scheme}, lr={lr:g}, {steps} steps"
    fig.suptitle(f"{_title(method, game)}, dim={dim}: {when}; EMA e_k = β e_(k−1) + (1−β) z_k", fontsize=10)
    return fig


# --------------------------------------------------------------------------- #
# 4. R1 eigenvalue locus
# --------------------------------------------------------------------------- #
def r1_closed_form(gammas) -> np.ndarray:
    """λ = −γ/2 ± sqrt(γ²/4 − f'(0)²) with f'(0) = 1/2 (GAN loss + R1), shape (B, 2)."""
    g = np.asarray(gammas, dtype=np.float64)
    root = np.sqrt((g**2 / 4 - 0.25).astype(complex))
    return np.stack([-g / 2 + root, -g / 2 - root], axis=1)


def r1_locus_data(gammas=None) -> dict:
    """Eigenvalues of the R1 Jacobian at the equilibrium over a γ grid, from one batched
    :func:`dynamics.spectrum` call, beside the closed form (paired row by row).

    Returns ``{"gammas": (B,), "eigenvalues": (B, 2) complex, "closed_form": (B, 2) complex,
    "max_error": float}``.
    """
    g = np.linspace(0.0, 2.0, 200) if gammas is None else np.asarray(gammas, dtype=np.float64).reshape(-1)
    if g.size == 0:
        raise ValueError("gammas must hold at least one value")
    game = make_game("r1", dim=1)
    spec = spectrum(game, hp={"gamma": torch.tensor(g, dtype=DTYPE)})  # check_hp rejects γ < 0
    ev = spec.eigenvalues.numpy()
    cf = r1_closed_form(g)
    # pair each closed-form root with the nearer computed eigenvalue (the sort order may differ)
    swap = np.abs(ev[:, 0] - cf[:, 1]) + np.abs(ev[:, 1] - cf[:, 0]) < np.abs(ev[:, 0] - cf[:, 0]) + np.abs(ev[:, 1] - cf[:, 1])
    cf = np.where(swap[:, None], cf[:, ::-1], cf)
    err = float(np.nanmax(np.abs(ev - cf))) if np.isfinite(ev).all() else float("inf")
    return {"gammas": g, "eigenvalues": ev, "closed_form": cf, "max_error": err}


def r1_locus(gammas=None) -> Figure:
    """Eigenvalues of the R1 Jacobian in the complex plane, coloured by γ, over the closed form.

    Left: the complex plane (dots: computed by :func:`dynamics.spectrum`; line: closed form).
    Right: real and imaginary parts against γ.  The equilibrium is locally convergent where
    every Re λ < 0 (every γ > 0); γ = 1 is critical damping (double root −1/2).
    """
    data = r1_locus_data(gammas)
    g, ev = data["gammas"], data["eigenvalues"]
    fig = _new_figure((12.0, 4.8))
    ax, bx = fig.subplots(1, 2, width_ratios=[1.45, 1])
    # closed form drawn as continuous lines on a fine grid over the same range
    gf = np.linspace(g.min(), g.max(), 1000) if g.size > 1 else g
    cff = r1_closed_form(gf)
    sc = None
    for j in range(2):
        sc = ax.scatter(ev[:, j].real, ev[:, j].imag, c=g, cmap="viridis", s=22, zorder=2,
                        label="dy.spectrum (batched)" if j == 0 else None)
    for j, lab in ((0, "closed form"), (1, None)):
        ax.plot(cff[:, j].real, cff[:, j].imag, color="black", lw=0.8, zorder=3, label=lab)
    ax.axvline(0, color="0.5", lw=0.8, ls=":")
    ax.axhline(0, color="0.5", lw=0.8, ls=":")
    ax.set_xlabel("Re λ")
    ax.set_ylabel("Im λ")
    ax.set_aspect("equal")
    ax.set_title("R1 Jacobian eigenvalues in the complex plane", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    fig.colorbar(sc, ax=ax, label="γ", shrink=0.7)
    for j, ls in ((0, "-"), (1, "--")):
        bx.plot(gf, cff[:, j].real, color="tab:blue", lw=1.0, ls=ls, label="Re λ, closed form" if j == 0 else None)
        bx.plot(gf, cff[:, j].imag, color="tab:red", lw=1.0, ls=ls, label="Im λ, closed form" if j == 0 else None)
    step = max(1, len(g) // 50)
    for j in range(2):
        bx.plot(g[::step], ev[::step, j].real, "o", ms=3, mfc="none", color="tab:blue",
                label="Re λ, spectrum" if j == 0 else None)
        bx.plot(g[::step], ev[::step, j].imag, "o", ms=3, mfc="none", color="tab:red",
                label="Im λ, spectrum" if j == 0 else None)
    bx.axhline(0, color="0.5", lw=0.8, ls=":")
    bx.axvline(1.0, color="0.5", lw=0.8, ls=":")
    bx.set_xlabel("γ")
    bx.set_ylabel("λ")
    bx.legend(fontsize=8, loc="lower left")
    bx.set_title(f"against γ (max |computed − closed form| = {data['max_error']:.1e})", fontsize=10)
    fig.suptitle("Dirac-GAN + R1: λ = −γ/2 ± sqrt(γ²/4 − 1/4)", fontsize=11)
    return fig


# --------------------------------------------------------------------------- #
# 5. Every method
# --------------------------------------------------------------------------- #
def all_methods(methods: Sequence[str] | None = None, init: Sequence[float] = (1.0, 1.0),
                init_2d: Sequence[float] = (1.0, 0.5, 0.5, 1.0), lr: float = 0.1, steps: int = 600,
                schemes: Sequence[str] = ("ode", "simgd"), t1: float | None = None, grid: int = 16,
                ncols: int = 3, substeps: int = 2) -> Figure:
    """One panel per method (default: every entry of :data:`dynamics.METHODS`).

    The default horizon (600 steps at lr 0.1, the ODE to t = 60) is long enough for the
    verdict to tell the non-saturating GAN's sublinear approach ("slowly converging")
    from exponential convergence; at t = 30 its first half-turn still looks exponential.

    1-D methods: streamlines of the (θ, ψ) field with the ODE (to ``t1``, default
    ``lr·steps``) and simGD (``steps`` updates at ``lr``) trajectories from ``init``.
    2-D forms (``DEFAULT_DIM``; wgan_norm and gan_qp): the generator's θ-plane from
    ``init_2d`` = (θ₁, θ₂, ψ₁, ψ₂), no field (it depends on ψ too).  Titles give the
    simulation verdict of each scheme (:func:`dynamics.classify`) and the spectral
    verdict (``locally_convergent``: True / False / None where not differentiable).
    """
    methods = list(METHODS) if methods is None else list(methods)
    if not methods:
        raise ValueError("methods must name at least one method")
    schemes = _check_schemes(schemes)
    lr = _check_positive("lr", lr)
    steps = _check_positive_int("steps", steps)
    ncols = min(_check_positive_int("ncols", ncols), len(methods))
    games = [make_game(m) for m in methods]
    z1, z2 = _init(init, 2, "init"), _init(init_2d, 4, "init_2d")
    nrows = math.ceil(len(methods) / ncols)
    fig = _new_figure((4.6 * ncols, 5.0 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    short = {"ode": "ODE", "simgd": "simGD", "altgd": "altGD"}
    for ax, m, game in zip(axes, methods, games):
        two_d = game.dim == 2
        z0 = z2 if two_d else z1
        lines = []
        trs = {s: run(game, z0, s, lr=lr, steps=steps, t1=t1, substeps=substeps) for s in schemes}
        if two_d:
            pts = np.concatenate([_np(tr.theta[:, 0]) for tr in trs.values()])
            lim = _limits(pts, cap=3 * float(z0.abs().max()))
        else:
            pts = np.concatenate([_np(tr.z[:, 0]) for tr in trs.values()])
            lim = max(_limits(_np(z0), pad=0.5), _limits(pts, cap=3 * float(z0.abs().max())))
            _draw_field(ax, game, lim, grid)
        for s, tr in trs.items():
            xy = _np(tr.theta[:, 0]) if two_d else _np(tr.z[:, 0])
            ax.plot(xy[:, 0], xy[:, 1], zorder=4, **{**_SCHEME_STYLE[s], "lw": _SCHEME_STYLE[s]["lw"] * 0.8})
            lines.append(f"{short[s]}: {_verdict(tr)}")
        ax.scatter([0], [0], **{**_EQ_STYLE, "s": 25})
        start = z0[0, :2].numpy()
        ax.scatter(start[:1], start[1:], **{**_INIT_STYLE, "s": 22})
        ax.tick_params(labelsize=9)
        _square(ax, lim, *(("θ₁  (2-D form, θ-plane)", "θ₂") if two_d else ("θ", "ψ")), fontsize=10)
        spec = _SPECTRAL_WORDS[_spectral(game)]
        ax.set_title(f"{_title(m, game)}" + (" in ℝ²" if two_d else "") + "\n" + "\n".join(lines)
                     + f"\nspectrum: {spec}", fontsize=10)
    for ax in axes[len(methods):]:
        ax.remove()
    handles = [axes[0].plot([], [], **_SCHEME_STYLE[s])[0] for s in schemes]
    fig.legend(handles=handles + [axes[0].scatter([], [], **_EQ_STYLE), axes[0].scatter([], [], **_INIT_STYLE)],
               loc="outside lower center", ncols=len(schemes) + 2, fontsize=11)
    t_ode = lr * steps if t1 is None else t1
    discrete = "/".join(_SCHEME_STYLE[s]["label"] for s in schemes if s != "ode")
    runs = ([f"ODE to t={t_ode:g}"] if "ode" in schemes else []) + ([f"{discrete} {steps} steps, lr={lr:g}"] if discrete else [])
    fig.suptitle(f"Every method: (θ, ψ) field and trajectories ({'; '.join(runs)});\n"
                 "spectrum: the linearisation at the equilibrium; verdicts with the fitted rate of ‖z‖", fontsize=13)
    return fig


# --------------------------------------------------------------------------- #
# 6. Animation
# --------------------------------------------------------------------------- #
def animate(method: str = "gan", path: str | Path = "dirac_gan.gif", hp: Mapping | None = None,
            scheme: str = "ode", init: Sequence[float] = (1.0, 1.0), lr: float = 0.1, steps: int = 300,
            t1: float | None = None, frames: int = 60, fps: int = 12, dpi: int = 80, grid: int = 20) -> Path:
    """Write a GIF of the 1-D trajectory of ``method`` moving over its (θ, ψ) field; returns the path."""
    from matplotlib.animation import FuncAnimation, PillowWriter

    game = make_game(method, hp, dim=1)
    (scheme,) = _check_schemes([scheme])
    frames = _check_positive_int("frames", frames)
    fps = _check_positive_int("fps", fps)
    steps = _check_positive_int("steps", steps)
    lr = _check_positive("lr", lr)
    z0 = _init(init, 2)
    tr = run(game, z0, scheme, lr=lr, steps=steps, t1=t1)
    z = _np(tr.z[:, 0])
    t = _np(tr.t)
    fig = _new_figure((4.2, 4.2))
    ax = fig.add_subplot()
    lim = _limits(_np(z0), pad=0.5)
    _draw_field(ax, game, lim, grid)
    ax.scatter([0], [0], color="red", s=30, zorder=6)
    _square(ax, lim, "θ", "ψ")
    ax.set_title(f"{_title(method, game)}: {_SCHEME_STYLE[scheme]['label']} — {_verdict(tr)}", fontsize=9)
    style = _SCHEME_STYLE[scheme]
    (line,) = ax.plot([], [], color=style["color"], lw=1.5, zorder=4)
    (dot,) = ax.plot([], [], "o", color=style["color"], ms=6, zorder=5)
    label = ax.text(0.02, 0.97, "", transform=ax.transAxes, va="top", fontsize=8)
    idx = np.unique(np.linspace(1, len(z) - 1, min(frames, len(z) - 1)).astype(int))

    def update(i):
        line.set_data(z[: i + 1, 0], z[: i + 1, 1])
        dot.set_data(z[i : i + 1, 0], z[i : i + 1, 1])
        label.set_text(f"t = {t[i]:g}" if scheme == "ode" else f"step {int(t[i])}")
        return line, dot, label

    anim = FuncAnimation(fig, update, frames=idx, blit=False)
    from gcann.fileio import atomic_write

    return atomic_write(Path(path), lambda p: anim.save(str(p), writer=PillowWriter(fps=fps), dpi=dpi))


# --------------------------------------------------------------------------- #
# 7. The README figures
# --------------------------------------------------------------------------- #
PLOTS: dict[str, Callable[..., Figure]] = {
    "vector_field": vector_fields,
    "theta_plane": theta_plane,
    "ema": ema_comparison,
    "r1_locus": r1_locus,
    "all_methods": all_methods,
}

#: small settings for a quick smoke run of :func:`make_all` (tests)
QUICK: dict[str, dict] = {
    "vector_field": dict(steps=40, grid=8),
    "theta_plane": dict(steps=40, t1=4.0, substeps=1),
    "ema": dict(steps=40, substeps=1),
    "r1_locus": dict(gammas=np.linspace(0, 2, 11)),
    "all_methods": dict(methods=["gan", "r1", "wgan_norm"], steps=16, grid=8, substeps=1),
}
GIF_METHODS = ("gan", "r1")


FORMATS = ("png", "pdf", "svg")


def save(fig: Figure, path: str | Path, dpi: int = 110, fmt: str | None = None) -> Path:
    """Write ``fig`` to ``path`` atomically (never half a file) in ``fmt`` (default: the suffix)."""
    from gcann.fileio import atomic_write

    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise ValueError(f"figure format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if not (isinstance(dpi, (int, float)) and dpi > 0):
        raise ValueError(f"dpi must be > 0, got {dpi!r}")
    # svg and pdf embed no creation date, so the same figure gives the same bytes
    meta = {"Date": None} if fmt in ("svg", "pdf") else {}
    return atomic_write(path, lambda p: fig.savefig(p, dpi=dpi, format=fmt, metadata=meta))


def make_all(out_dir: str | Path = "figures", gif: bool = False, names: Sequence[str] | None = None,
             dpi: int = 110, quick: bool = False, kwargs: Mapping[str, Mapping] | None = None,
             gif_methods: Sequence[str] = GIF_METHODS, fmt: str = "png", progress=None) -> list[Path]:
    """Write ``<out_dir>/<name>.<fmt>`` for every figure in :data:`PLOTS` (or ``names``) and,
    with ``gif=True``, ``<out_dir>/dirac_<method>.gif`` for ``gif_methods``.

    ``quick`` uses tiny step counts (:data:`QUICK`); ``kwargs`` maps a name to extra
    arguments of its function; ``progress(name)`` is called after each file.  Returns
    the paths written.
    """
    if fmt not in FORMATS:
        raise ValueError(f"figure format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    names = list(PLOTS) if names is None else list(names)
    for n in names:
        if n not in PLOTS:
            raise ValueError(f"unknown figure {n!r}; choose from {', '.join(PLOTS)}")
    kwargs = dict(kwargs or {})
    for n in kwargs:
        if n not in PLOTS:
            raise ValueError(f"unknown figure {n!r} in kwargs; choose from {', '.join(PLOTS)}")
    if gif:
        for m in gif_methods:
            make_game(m, dim=1)  # fail early on a bad name
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for n in names:
        kw = {**(QUICK.get(n, {}) if quick else {}), **dict(kwargs.get(n, {}))}
        fig = PLOTS[n](**kw)
        written.append(save(fig, out / f"{n}.{fmt}", dpi, fmt))
        if progress:
            progress(n)
    if gif:
        for m in gif_methods:
            kw = dict(steps=16, frames=4, grid=6, dpi=30) if quick else {}
            written.append(animate(m, out / f"dirac_{m}.gif", **kw))
            if progress:
                progress(f"dirac_{m}.gif")
    return written
