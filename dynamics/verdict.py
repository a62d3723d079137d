"""Verdicts from simulation: is each trajectory converging, oscillating or diverging?

The distance to the equilibrium d(t) = ‖z(t)‖ is summarised over the run:

* ``diverging``   a non-finite state, or d exceeding ``blowup`` (absolute), or the
                  late window's peak above ``1 + rate_tol`` times the previous
                  window's peak while the final distance exceeds ``grow_factor·d₀``;
* ``converging``  the final distance ≤ ``eps`` (absolute), or the late window's
                  peak below ``1 − rate_tol`` times the previous window's peak while
                  the final distance is below ``shrink_factor·d₀``;
* ``oscillating`` otherwise: bounded, not converging (centres, limit cycles).

The windows are the last quarter of the run and the quarter before it.  Every
threshold is reported with the verdict.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

Tensor = torch.Tensor
LABELS = ("converging", "oscillating", "diverging")


@dataclass(frozen=True)
class Tolerances:
    eps: float = 1e-4  # converged: final distance to the equilibrium at most this
    rate_tol: float = 0.02  # a window's peak must change by more than this fraction to count as a trend
    shrink_factor: float = 0.5  # converging trend also needs d_final < shrink_factor · d0
    grow_factor: float = 2.0  # diverging trend also needs d_final > grow_factor · d0
    blowup: float = 1e6  # any distance above this is divergence

    def as_dict(self) -> dict:
        return asdict(self)


def classify(distance: Tensor, tol: Tolerances = Tolerances()) -> list[str]:
    """Verdict per trajectory from distances of shape (T, B)."""
    d = distance
    T = d.shape[0]
    if T < 8:
        raise ValueError("need at least 8 recorded states to classify a trajectory")
    finite = torch.isfinite(d).all(0)
    dd = torch.nan_to_num(d, nan=float("inf"))
    d0, dT = dd[0], dd[-1]
    late = dd[3 * T // 4 :].amax(0)
    prev = dd[T // 2 : 3 * T // 4].amax(0)
    ratio = late / prev.clamp(min=1e-300)
    diverging = ~finite | (dd.amax(0) > tol.blowup) | ((ratio > 1 + tol.rate_tol) & (dT > tol.grow_factor * d0))
    converging = (dT <= tol.eps) | ((ratio < 1 - tol.rate_tol) & (dT < tol.shrink_factor * d0))
    out = []
    for dv, cv in zip(diverging.tolist(), converging.tolist()):
        out.append("diverging" if dv else "converging" if cv else "oscillating")
    return out


def summarise(labels: list[str]) -> dict:
    """Fractions of each label."""
    n = max(len(labels), 1)
    return {k: sum(lab == k for lab in labels) / n for k in LABELS}


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


def ring(n: int, radius: float, dim: int = 1, seed: int = 0, dtype=torch.float64) -> Tensor:
    """``n`` initial points at distance ``radius`` from the equilibrium, in ℝ^{2·dim}
    (evenly spaced on the circle for dim = 1, random directions otherwise)."""
    if dim == 1:
        a = torch.arange(n, dtype=dtype) * (2 * torch.pi / n) + 0.1
        return radius * torch.stack([torch.cos(a), torch.sin(a)], dim=1)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2 * dim, generator=g, dtype=dtype)
    return radius * x / x.norm(dim=1, keepdim=True)
