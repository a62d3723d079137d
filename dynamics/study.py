"""The Dirac-GAN study: the local-convergence tables of the sources, *computed*.

* Mescheder et al. (2018), Table 1, "general case" column: the 1-D Dirac-GAN.
* Su (2019): the verdicts of the 2-D figures (θ, φ ∈ ℝ²), and EMA.

Every row is decided by the code: from the eigenvalues of the Jacobian at the
equilibrium where the field is differentiable there, otherwise (and always, as
a second opinion) from simulating the ODE from a ring of initial points around
the equilibrium.  The paper's verdict is printed beside the computed one.
"""
from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from typing import Callable


from .dirac import DiracGAN
from .objectives import DEFAULT_DIM, get_objective
from .simulate import simulate
from .spectrum import spectrum
from .verdict import Tolerances, classify_with_rates, describe, majority, circle_points, summarise


@dataclass(frozen=True)
class Row:
    label: str  # the source's name for the method
    method: str  # our method name
    params: dict  # hyper-parameters (CLI names)
    paper: bool  # the source's verdict: locally convergent?
    dim: int = 1
    ema_beta: float | None = None  # judge the EMA of the iterates instead of the iterates


SEED001_GENERAL = [
    Row("unregularized (Goodfellow et al., 2014)", "gan", {}, False),
    Row("WGAN (Arjovsky et al., 2017)", "wgan", {"clip": 1.0}, False),
    Row("WGAN-GP (Gulrajani et al., 2017)", "wgan_gp", {"gamma": 1.0, "c": 1.0}, False),
    Row("DRAGAN (Kodali et al., 2017)", "dragan", {"gamma": 1.0, "c": 1.0}, False),
    Row("Instance noise (Sønderby et al., 2016)", "instance_noise", {"sigma": 1.0}, True),
    Row("ConOpt (Mescheder et al., 2017)", "conopt", {"gamma": 1.0}, True),
    Row("Gradient penalties (Roth et al., 2017)", "roth", {"gamma": 1.0}, True),
    Row("Gradient penalty on real data only (R1)", "r1", {"gamma": 1.0}, True),
    Row("Gradient penalty on fake data only (R2)", "r2", {"gamma": 1.0}, True),
]

SEED003 = [
    Row("vanilla GAN, non-saturating", "nsgan", {}, False, dim=2),
    Row("WGAN, normalised critic", "wgan_norm", {}, False, dim=2),
    Row("WGAN-GP, c = 0", "wgan_gp", {"gamma": 1.0, "c": 0.0}, True, dim=2),
    Row("WGAN-GP, c = 1", "wgan_gp", {"gamma": 1.0, "c": 1.0}, False, dim=2),
    Row("GAN-QP", "gan_qp", {"lam": 1.0}, False, dim=2),
    Row("GAN-QP + L2 on D", "gan_qp", {"lam": 1.0, "l2": 0.1}, True, dim=2),
]


# CLI-facing parameter names <-> objective hyper-parameter names
def to_objective_params(method: str, params: dict) -> tuple[dict, float | None]:
    """Split CLI-style params into (objective hyper-parameters, l2)."""
    p = dict(params)
    l2 = p.pop("l2", None)
    if method == "conopt" and "gamma" in p:
        p["conopt_gamma"] = p.pop("gamma")
    return p, l2


def from_objective_params(method: str, hp: dict) -> dict:
    out = {("gamma" if k == "conopt_gamma" else k): v for k, v in hp.items()}
    return out


def make_game(method: str, params: dict | None = None, dim: int | None = None, base: str | None = None) -> DiracGAN:
    hp, l2 = to_objective_params(method, params or {})
    obj = get_objective(method, l2=l2, base=base, **hp)
    return DiracGAN(obj, dim=dim or DEFAULT_DIM.get(method, 1))


@dataclass
class Verdict:
    row: Row
    eigenvalues: list  # [[re, im], ...] or []
    differentiable: bool
    spectral: bool | None  # locally convergent from the spectrum; None if not differentiable
    simulated: str  # majority simulation label
    fractions: dict
    median_final_distance: float
    rate: float = math.nan  # median fitted rate (per unit t) of the runs with the majority label
    extra: dict = field(default_factory=dict)

    @property
    def computed(self) -> bool:
        """The computed verdict: the spectrum where it exists, else the simulation."""
        return self.spectral if self.spectral is not None else self.simulated == "converging"

    def as_dict(self) -> dict:
        return {
            "label": self.row.label,
            "method": self.row.method,
            "params": {**self.row.params, "dim": self.row.dim},
            "ema_beta": self.row.ema_beta,
            "eigenvalues": self.eigenvalues,
            "differentiable": self.differentiable,
            "locally_convergent_spectrum": self.spectral,
            "simulation": self.simulated,
            "simulation_fractions": self.fractions,
            "simulation_rate": self.rate,
            "median_final_distance": self.median_final_distance,
            "computed": self.computed,
            "paper": self.row.paper,
            "agrees": self.computed == self.row.paper,
            **self.extra,
        }


@dataclass(frozen=True)
class SimSettings:
    n_init: int = 16  # initial points on a ring around the equilibrium
    radius: float = 0.5  # their distance to the equilibrium
    t1: float = 200.0  # ODE horizon
    steps: int = 400  # recorded states
    substeps: int = 5  # RK4 steps per record
    tol: Tolerances = Tolerances()
    seed: int = 0  # directions of the initial points in dim ≥ 2


def judge(row: Row, sim: SimSettings = SimSettings()) -> Verdict:
    game = make_game(row.method, row.params, row.dim)
    spec = spectrum(game)
    diff = bool(spec.differentiable[0])
    eig = [[e.real, e.imag] for e in spec.eigenvalues[0].tolist()] if diff else []
    z0 = circle_points(sim.n_init, sim.radius, row.dim, seed=sim.seed)
    tr = simulate(game, z0, scheme="ode", steps=sim.steps, t1=sim.t1, substeps=sim.substeps, ema_beta=row.ema_beta)
    ema = row.ema_beta is not None
    d = tr.distance(ema=ema)
    labels, rates = classify_with_rates(d, sim.tol, z=tr.z_ema if ema else tr.z, t=tr.t)
    label = majority(labels)
    rate = statistics.median(r for lab, r in zip(labels, rates) if lab == label)
    return Verdict(row, eig, diff, spec.locally_convergent[0], label, summarise(labels),
                   float(d[-1].median()), rate)


def table(rows: list[Row], sim: SimSettings = SimSettings(), progress: Callable[[str], None] | None = None
          ) -> list[Verdict]:
    """The verdict of every row; ``progress(label)`` after each."""
    out = []
    for r in rows:
        out.append(judge(r, sim))
        if progress:
            progress(r.label)
    return out


def _mark(b: bool | None) -> str:
    return "n/a" if b is None else ("✓" if b else "✗")


def _fmt_eigs(e: list) -> str:
    if not e:
        return "not differentiable"
    return ", ".join(f"{re:+.3g}{im:+.3g}i" for re, im in e)


def markdown(title: str, verdicts: list[Verdict], sim: SimSettings = SimSettings()) -> str:
    head = (
        f"### {title}\n\n"
        "| method | params | eigenvalues at equilibrium | spectrum | simulation (ODE) | median final ‖z‖ | computed | paper | agrees |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for v in verdicts:
        p = ", ".join(f"{k}={x:g}" for k, x in v.row.params.items()) or "–"
        lines.append(
            f"| {v.row.label} | {p} | {_fmt_eigs(v.eigenvalues)} | {_mark(v.spectral)} | {describe(v.simulated, v.rate, 't')} "
            f"| {v.median_final_distance:.2e} | {_mark(v.computed)} | {_mark(v.row.paper)} "
            f"| {'yes' if v.computed == v.row.paper else 'NO'} |"
        )
    foot = (
        f"\nSpectrum: ✓ iff every eigenvalue of ∂v/∂z at the equilibrium has real part < 0. Simulation: RK4, "
        f"{sim.n_init} initial points at distance {sim.radius} from the equilibrium, t ∈ [0, {sim.t1:g}], "
        f"majority label (dynamics.verdict: converging = exponential, with the fitted rate of ‖z‖ ∝ e^(rate·t) "
        f"over the last half); tolerances {json.dumps(sim.tol.as_dict())}. Computed = spectrum where the field is "
        "differentiable at the equilibrium, else simulation.\n"
    )
    return head + "\n".join(lines) + "\n" + foot


def run_tables(sim: SimSettings = SimSettings(), progress: Callable[[str], None] | None = None) -> dict:
    """Both sources' tables; ``progress(label)`` is called after each row."""
    out = {}
    for key, title, rows in (
        ("seed001_general", "Mescheder et al. (2018), Table 1, general case (1-D Dirac-GAN)", SEED001_GENERAL),
        ("seed003", "Su (2019): 2-D Dirac-GAN verdicts", SEED003),
    ):
        vs = table(rows, sim, progress)
        out[key] = {"title": title, "rows": [v.as_dict() for v in vs], "markdown": markdown(title, vs, sim)}
    return out


def ema_summary(method: str = "nsgan", beta: float = 0.99, sim: SimSettings = SimSettings(), dim: int = 2) -> dict:
    """Raw vs EMA final distance from the equilibrium (Su: EMA finds the centre of the oscillation)."""
    game = make_game(method, {}, dim)
    tr = simulate(game, circle_points(sim.n_init, sim.radius, dim, seed=sim.seed), scheme="ode", steps=sim.steps, t1=sim.t1,
                  substeps=sim.substeps, ema_beta=beta)
    raw, avg = tr.distance()[-1], tr.distance(ema=True)[-1]
    return {"method": method, "dim": dim, "ema_beta": beta, "median_final_distance_raw": float(raw.median()),
            "median_final_distance_ema": float(avg.median()), "ratio": float((avg / raw).median())}
