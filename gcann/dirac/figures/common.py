"""What the Dirac-GAN figures share: the figure error, the game of a figure, styles, checks, one trajectory,
the field on a grid, frames and limits, and :func:`save` (atomic, png/pdf/svg).

Every figure is a :class:`matplotlib.figure.Figure` built without ``pyplot`` (so it works under any
backend, including ``Agg``, and leaves no global state behind).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import torch
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from dynamics.dirac import DiracGAN
from dynamics.objectives import DEFAULT_DIM, get_objective
from dynamics.simulate import SCHEMES, Trajectory, simulate
from dynamics.spectrum import spectrum
from dynamics.verdict import MIN_RECORDS, classify_with_rates, describe
from gcann.errors import GcannError

DTYPE = torch.float64


class FigureError(GcannError, ValueError):
    """A bad figure request (a value out of range, a wrong number of coordinates, an unknown name or format);
    the CLI prints it as one line.  Unknown methods and hyper-parameters raise the objective's own
    :class:`dynamics.objectives.ObjectiveError`."""


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
            raise FigureError(f"hyper-parameter {k} must be a number, got {v!r}") from None
    return out, (None if l2 is None else float(l2))


def make_game(method: str, hp: Mapping | None = None, dim: int | None = None) -> DiracGAN:
    """The Dirac-GAN of ``method`` with hyper-parameters ``hp`` (``l2`` adds D weight decay).

    ``dim`` defaults to the method's natural dimension (2 for the 2-D forms)."""
    if not isinstance(method, str):
        raise FigureError(f"method must be a name, got {method!r}")
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
        raise FigureError(f"{name} must be a positive integer, got {v!r}")
    return int(v)


def _check_positive(name: str, v) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise FigureError(f"{name} must be a number, got {v!r}") from None
    if not (f > 0 and math.isfinite(f)):
        raise FigureError(f"{name} must be > 0, got {v!r}")
    return f


def _init(init, width: int, name: str = "init") -> torch.Tensor:
    z = torch.as_tensor(np.asarray(init, dtype=np.float64), dtype=DTYPE).reshape(-1)
    if z.numel() != width:
        raise FigureError(f"{name} must have {width} numbers ([θ, ψ] with dim {width // 2}), got {z.numel()}")
    if not bool(torch.isfinite(z).all()):
        raise FigureError(f"{name} must be finite")
    return z[None]


def _check_schemes(schemes: Iterable[str]) -> tuple[str, ...]:
    schemes = tuple(schemes)
    for s in schemes:
        if s not in SCHEMES:
            raise FigureError(f"unknown scheme {s!r}; choose from {', '.join(SCHEMES)}")
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


FORMATS = ("png", "pdf", "svg")


def save(fig: Figure, path: str | Path, dpi: int = 110, fmt: str | None = None) -> Path:
    """Write ``fig`` to ``path`` atomically (never half a file) in ``fmt`` (default: the suffix)."""
    from gcann.fileio import atomic_write

    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise FigureError(f"figure format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if not (isinstance(dpi, (int, float)) and dpi > 0):
        raise FigureError(f"dpi must be > 0, got {dpi!r}")
    # svg and pdf embed no creation date, so the same figure gives the same bytes
    meta = {"Date": None} if fmt in ("svg", "pdf") else {}
    return atomic_write(path, lambda p: fig.savefig(p, dpi=dpi, format=fmt, metadata=meta))
