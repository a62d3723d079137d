"""Verdicts from simulation: how does each trajectory behave near the equilibrium?

The distance to the equilibrium d(t) = ‖z(t)‖ is summarised over the last half of
the run, cut into four windows; ``w₁ … w₄`` are the windows' peaks (the envelope,
which removes the oscillation of a spiral).  The *fitted rate* is the least-squares
slope of log wᵢ against the windows' mean times: d ∝ e^{rate·t} per unit of ``t``
(per update for discrete schemes when every state is recorded).

* ``diverging``          a non-finite state, or d above ``blowup`` (absolute), or a
                         growing envelope (w₄ > (1 + rate_tol)·w₁) while the final
                         distance exceeds ``grow_factor·d₀``;
* ``converging``         the final distance ≤ ``eps`` (absolute), or a shrinking
                         envelope (w₄ < (1 − rate_tol)·w₁, d_T < ``shrink_factor·d₀``)
                         at a steady exponential rate: with p₂, p₃, p₄ the peaks of the
                         last three quarters of the run, the decrease log(p₃/p₄) is at
                         least ``exp_ratio``·log(p₂/p₃) (1 for e^{−ct}; ≈ 0.58 for any
                         power law t^{−p});
* ``slowly converging``  a shrinking envelope that decelerates (sublinear approach,
                         e.g. the non-saturating GAN, or an approach that levels off);
* ``stalled``            neither trend, and the iterates have stopped: their path over
                         the last half is shorter than ``stall_tol·d_T`` (a point away
                         from the equilibrium; needs the states ``z``);
* ``oscillating``        otherwise: bounded and moving (centres, limit cycles).

Every threshold is reported with the verdict.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

Tensor = torch.Tensor
LABELS = ("converging", "slowly converging", "stalled", "oscillating", "diverging")
#: the fewest recorded states a verdict needs (four windows over the last half)
MIN_RECORDS = 8


@dataclass(frozen=True)
class Tolerances:
    eps: float = 1e-4  # converged: final distance to the equilibrium at most this
    rate_tol: float = 0.02  # the envelope must change by more than this fraction over the last half to be a trend
    shrink_factor: float = 1.0  # a converging trend also needs d_final < shrink_factor · d0
    grow_factor: float = 1.0  # a diverging trend also needs d_final > grow_factor · d0
    blowup: float = 1e6  # any distance above this is divergence
    exp_ratio: float = 0.8  # steady (exponential) decay: last quarter's log-decrease ≥ exp_ratio × the one before
    stall_tol: float = 0.05  # stalled: path length over the last half < stall_tol · final distance

    def as_dict(self) -> dict:
        return asdict(self)


def classify_with_rates(distance: Tensor, tol: Tolerances = Tolerances(), *, z: Tensor | None = None,
                        t: Tensor | None = None) -> tuple[list[str], list[float]]:
    """Verdicts and fitted rates per trajectory from distances of shape (T, B).

    ``z`` (T, B, m): the states, to tell a stalled run from an orbit (without them a
    run that neither shrinks nor grows is ``oscillating``).  ``t`` (T,): the record
    times, the unit of the rate (default: the record index).  The rate is NaN for
    non-finite runs and −inf for runs that reach exactly 0.
    """
    d = distance
    T = d.shape[0]
    if T < MIN_RECORDS:
        raise ValueError(f"need at least {MIN_RECORDS} recorded states to classify a trajectory, got {T}")
    t = torch.arange(T, dtype=torch.float64) if t is None else torch.as_tensor(t, dtype=torch.float64).cpu()
    d = d.detach().to(torch.float64).cpu()
    finite = torch.isfinite(d).all(0)
    dd = torch.nan_to_num(d, nan=math.inf)
    d0, dT = dd[0], dd[-1]
    h = T // 2
    wins = torch.arange(h, T).tensor_split(4)
    w = torch.stack([dd[i].amax(0) for i in wins])  # (4, B) envelope
    tc = torch.stack([t[i].mean() for i in wins])  # (4,)
    logw = w.clamp(min=1e-300).log()
    x = tc - tc.mean()
    rate = (x[:, None] * (logw - logw.mean(0))).sum(0) / (x * x).sum()
    q = w[3] / w[0].clamp(min=1e-300)
    # deceleration from the peaks of the last three quarters (windows long enough to hold an oscillation)
    P = torch.stack([dd[i].amax(0) for i in torch.arange(T // 4, T).tensor_split(3)]).clamp(min=1e-300).log()
    early, late = P[1] - P[0], P[2] - P[1]
    steady = late <= tol.exp_ratio * early  # both negative: the late decrease is at least exp_ratio × the early one
    diverging = ~finite | (dd.amax(0) > tol.blowup) | ((q > 1 + tol.rate_tol) & (dT > tol.grow_factor * d0))
    reached = dT <= tol.eps
    shrinking = (q < 1 - tol.rate_tol) & (dT < tol.shrink_factor * d0)
    if z is not None:
        zz = z.detach().to(torch.float64).cpu()[h:]
        path = (zz[1:] - zz[:-1]).norm(dim=-1).sum(0)
        stalled = path < tol.stall_tol * dT
    else:
        stalled = torch.zeros_like(finite)
    labels = []
    for b in range(d.shape[1]):
        if bool(diverging[b]):
            lab = "diverging"
        elif bool(reached[b]) or (bool(shrinking[b]) and bool(steady[b])):
            lab = "converging"
        elif bool(shrinking[b]):
            lab = "slowly converging"
        elif bool(stalled[b]):
            lab = "stalled"
        else:
            lab = "oscillating"
        labels.append(lab)
    rates = [math.nan if not bool(finite[b]) else (-math.inf if float(dT[b]) == 0 else float(rate[b]))
             for b in range(d.shape[1])]
    return labels, rates


def classify(distance: Tensor, tol: Tolerances = Tolerances(), *, z: Tensor | None = None,
             t: Tensor | None = None) -> list[str]:
    """Verdict per trajectory from distances of shape (T, B) (see :func:`classify_with_rates`)."""
    return classify_with_rates(distance, tol, z=z, t=t)[0]


def describe(label: str, rate: float, unit: str = "step") -> str:
    """``"converging (rate −0.05/step)"``: a verdict with its fitted rate, for tables and figures."""
    if not math.isfinite(rate):
        return label
    return f"{label} (rate {rate:+.2g}/{unit})".replace("-", "−")


def summarise(labels: list[str]) -> dict:
    """Fractions of each label (``n/a``: too few records to judge)."""
    n = max(len(labels), 1)
    out = {k: sum(lab == k for lab in labels) / n for k in LABELS}
    na = sum(lab == "n/a" for lab in labels)
    if na:
        out["n/a"] = na / n
    return out


def majority(labels: list[str]) -> str:
    counts = {k: sum(lab == k for lab in labels) for k in LABELS}
    return max(LABELS, key=lambda k: counts[k])


def steps_to_reach(distance: Tensor, t: Tensor, eps: float) -> Tensor:
    """First time at which d ≤ eps and stays there to the end; NaN where never."""
    below = torch.nan_to_num(distance, nan=float("inf")) <= eps
    # stays below from index k on  <=>  suffix-all
    suffix = torch.flip(torch.cumprod(torch.flip(below, [0]).to(torch.int8), 0), [0]).bool()
    any_ = suffix.any(0)
    first = torch.argmax(suffix.to(torch.int8), dim=0)
    out = t[first].to(torch.float64)
    return torch.where(any_, out, torch.full_like(out, float("nan")))


def circle_points(n: int, radius: float, dim: int = 1, seed: int = 0, dtype=torch.float64) -> Tensor:
    """``n`` initial points at distance ``radius`` from the equilibrium, in ℝ^{2·dim}
    (evenly spaced on the circle for dim = 1, random directions otherwise)."""
    if dim == 1:
        a = torch.arange(n, dtype=dtype) * (2 * torch.pi / n) + 0.1
        return radius * torch.stack([torch.cos(a), torch.sin(a)], dim=1)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2 * dim, generator=g, dtype=dtype)
    return radius * x / x.norm(dim=1, keepdim=True)
