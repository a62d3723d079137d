"""The eigenvalues of the R1-regularised Dirac-GAN's Jacobian over the weight γ, computed beside the closed
form λ = −γ/2 ± √(γ²/4 − 1/4) of Mescheder, Geiger & Nowozin (2018)."""
from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure

from dynamics.spectrum import spectrum

from .common import DTYPE, FigureError, _new_figure, make_game

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
        raise FigureError("gammas must hold at least one value")
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
