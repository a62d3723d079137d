"""Figures of the Dirac-GAN's dynamics in state space: the (θ, ψ) vector field with ODE, simGD and altGD
trajectories (:func:`vector_field`, :func:`vector_fields`), the generator's θ-plane in the 2-D forms of
Su (2019) (:func:`theta_plane`), a trajectory beside the EMA of its iterates (:func:`ema_comparison`), one
panel per method with its verdicts (:func:`all_methods`) and a GIF of a trajectory (:func:`animate`).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from dynamics.objectives import METHODS

from .common import (
    _EQ_STYLE, _INIT_STYLE, _SCHEME_STYLE, _SPECTRAL_WORDS, PARAM_SYMBOLS, METHOD_NAMES, FigureError, _check_positive,
    _check_positive_int, _check_schemes, _draw_field, _init, _limits, _new_figure, _np, _spectral, _square, _time_line,
    _title, _verdict, make_game, run,
)

#: θ-plane cases of Su Jianlin (2019), the Dirac-GAN note: (method, hyper-parameters); ``l2`` adds D weight decay.
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
        raise FigureError("methods must name at least one method")
    hps = list(hps) if hps is not None else [None] * len(methods)
    if len(hps) != len(methods):
        raise FigureError(f"hps has {len(hps)} entries for {len(methods)} methods")
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
    raise FigureError(f"each case must be a method name, (method, hp) or (method, hp, t1), got {entry!r}")


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
        raise FigureError("methods_with_hp must hold at least one case")
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
        raise FigureError(f"dim must be 1 or 2, got {dim!r}")
    game = make_game(method, hp, dim=dim)
    (scheme,) = _check_schemes([scheme])
    steps = _check_positive_int("steps", steps)
    lr = _check_positive("lr", lr)
    beta = float(beta)
    if not 0 <= beta < 1:
        raise FigureError(f"beta must be in [0, 1), got {beta!r}")
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
        raise FigureError("methods must name at least one method")
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
