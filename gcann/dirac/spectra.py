"""Spectra of the Dirac-GAN at the equilibrium: per setting (:func:`spectrum_records`, behind ``gcann dirac spectrum``),
of the update maps, and what scaling the two learning rates
(as the GCANN controller does) does to them: the explanation of the GCANN table (``docs/gcann_dirac.md``).
"""
from __future__ import annotations

import math
from typing import Iterable

import torch

from dynamics.dirac import DiracGAN
from dynamics.objectives import ObjectiveError
from dynamics.spectrum import equilibrium_jacobian, spectral_radius
from dynamics.study import make_game

from .configs import DEFAULT_LR

__all__ = ["lr_scaling_markdown", "lr_scaling_spectra", "map_spectral_radii", "spectrum_records", "spectrum_text"]


def map_spectral_radii(game: DiracGAN, lr_d: float, lr_g: float) -> tuple[float, float]:
    """Spectral radii of the SGD simGD and altGD update maps at the equilibrium
    (:func:`dynamics.spectrum.spectral_radius`; NaN where the field is not differentiable there)."""
    return tuple(float(spectral_radius(game, lr_d, lr_g, scheme=s)[0]) for s in ("simgd", "altgd"))



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
        raise ObjectiveError(f"{method}: the field is not differentiable at the equilibrium; no spectrum")
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


# --------------------------------------------------------------------------- #
# ``gcann dirac spectrum``: eigenvalues and verdicts over a grid of settings
# --------------------------------------------------------------------------- #
_VERDICT_WORDS = {True: "locally convergent", False: "not locally convergent",
                  None: "not differentiable at the equilibrium: use `gcann dirac simulate` for a verdict"}


def spectrum_records(method: str, params=None, dim: int | None = None, base: str | None = None, *,
                     lr: float | None = None, lr_ratio: float = 1.0, scheme: str = "simgd") -> list[tuple[dict, dict]]:
    """Per setting of the grid ``params`` (name → values, :func:`gcann.dirac.simulation.param_grid`): the
    eigenvalues of the Jacobian at the equilibrium and the continuous-time verdict (``record``, what
    ``gcann dirac spectrum --json`` prints; with ``lr``, also the discrete analysis of ``scheme`` at
    lr_g = ``lr``, lr_d = ``lr_ratio``·lr), and ``extra``: ``max_stable_lr`` (largest stable lr_g) and, with
    ``lr``, ``spectral_radius``, where the Jacobian exists.  Returns ``[(record, extra), ...]``."""
    from dynamics.simulate import SimulationError
    from dynamics.spectrum import max_stable_lr, spectral_radius, spectrum
    from dynamics.study import from_objective_params

    from .simulation import param_grid

    if lr is not None and not lr > 0:
        raise SimulationError(f"--lr must be > 0, got {lr}")
    if not lr_ratio > 0:
        raise SimulationError(f"--lr-ratio must be > 0, got {lr_ratio}")
    out = []
    for _, game in param_grid(method, params, dim, base):
        s = spectrum(game)
        hp = from_objective_params(method, game.objective.resolve())
        rec = {
            "method": method,
            "params": {**hp, "dim": game.dim},
            "eigenvalues": [[e.real, e.imag] for e in s.eigenvalues[0].tolist()] if bool(s.differentiable[0]) else [],
            "locally_convergent": s.locally_convergent[0],
        }
        extra = {}
        if bool(s.differentiable[0]):
            extra["max_stable_lr"] = float(max_stable_lr(game, scheme=scheme, ratio=lr_ratio)[0])
            if lr is not None:
                extra["spectral_radius"] = float(spectral_radius(game, lr_ratio * lr, lr, scheme=scheme)[0])
        if lr is not None:  # the discrete analysis at lr, as the text prints it (None: no Jacobian)
            rec.update(scheme=scheme, lr=lr, lr_ratio=lr_ratio, max_stable_lr=extra.get("max_stable_lr"),
                       spectral_radius=extra.get("spectral_radius"))
        out.append((rec, extra))
    return out


def spectrum_text(records: list[tuple[dict, dict]], *, lr: float | None = None, lr_ratio: float = 1.0,
                  scheme: str = "simgd") -> str:
    """:func:`spectrum_records` for a reader: per setting, the eigenvalues, the verdict, the largest stable rate
    and the spectral radius at ``lr``."""
    lines = []
    for rec, extra in records:
        params = ", ".join(f"{k}={v:g}" for k, v in rec["params"].items())
        lines.append(f"{rec['method']} ({params})")
        if rec["eigenvalues"]:
            lines.append("  eigenvalues: " + ", ".join(f"{a:+.6g}{b:+.6g}i" for a, b in rec["eigenvalues"]))
        lines.append(f"  continuous time: {_VERDICT_WORDS[rec['locally_convergent']]}")
        if "max_stable_lr" in extra:
            lines.append(f"  {scheme}, lr_d = {lr_ratio:g}·lr_g: largest stable lr_g = {extra['max_stable_lr']:.6g}"
                         + (" (none: ρ ≥ 1 for all lr)" if extra["max_stable_lr"] == 0 else ""))
        if "spectral_radius" in extra:
            rho = extra["spectral_radius"]
            what = ("= 1: marginal, neither converges nor diverges" if abs(rho - 1) < 1e-9
                    else "< 1: converges locally" if rho < 1 else "> 1: diverges locally")
            lines.append(f"  {scheme} at lr_g = {lr:g}: spectral radius {rho:.6g} ({what})")
    return "\n".join(lines)
