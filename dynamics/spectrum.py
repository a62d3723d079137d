"""Local analysis at the equilibrium: Jacobians by autograd, eigenvalues, verdicts.

* Continuous time (ż = v(z)): locally convergent iff every eigenvalue of the
  Jacobian ∂v/∂z at the equilibrium has a negative real part.
* Discrete time: the Jacobian of one update map (simultaneous or alternating
  gradient descent at given learning rates) at the equilibrium; locally
  convergent iff its spectral radius is < 1.

Where the field is not differentiable at the equilibrium (a normalised critic,
a 1-centred gradient penalty, ...) the Jacobian does not exist; the functions
here say so (``differentiable == False``) and the verdict must come from
simulation (:mod:`dynamics.verdict`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .dirac import DiracGAN
from .objectives import HP
from .simulate import SimulationError, _per_row

Tensor = torch.Tensor

#: an eigenvalue counts as having negative real part when Re λ < −REAL_TOL
REAL_TOL = 1e-8


def _batch_size(hp: HP | None, batch: int | None) -> int:
    sizes = {int(torch.as_tensor(v).numel()) for v in (hp or {}).values() if torch.as_tensor(v).ndim == 1}
    if len(sizes) > 1:
        raise SimulationError(f"hyper-parameter grids have different lengths {sorted(sizes)}")
    return batch or (sizes.pop() if sizes else 1)


def jacobian_of(fn, z: Tensor) -> Tensor:
    """Per-row Jacobian of a row-wise map ``fn: (B, m) -> (B, m)`` at ``z``: (B, m, m)."""
    with torch.enable_grad():
        z = z.detach().requires_grad_(True)
        out = fn(z)
        rows = []
        for i in range(out.shape[1]):
            (g,) = torch.autograd.grad(out[:, i].sum(), z, retain_graph=True, allow_unused=True)
            rows.append(torch.zeros_like(z) if g is None else g)
    return torch.stack(rows, dim=1).detach()


def jacobian(game: DiracGAN, hp: HP | None = None, z: Tensor | None = None, batch: int | None = None,
             dtype=torch.float64, device="cpu") -> Tensor:
    """∂v/∂z at ``z`` (default: the equilibrium), one matrix per hyper-parameter row."""
    B = _batch_size(hp, batch)
    if z is None:
        z = game.equilibrium(dtype, device).expand(B, -1).clone()
    return jacobian_of(lambda x: game.field(x, hp, create_graph=True), z)


def equilibrium_jacobian(game: DiracGAN, hp: HP | None = None, batch: int | None = None,
                         radius: float = 1e-5, probes: int = 4, rtol: float = 1e-3,
                         dtype=torch.float64) -> tuple[Tensor, Tensor]:
    """``(J, differentiable)``: the Jacobian of v at the equilibrium and whether v is
    differentiable there, per row, judged numerically.

    The Jacobian is also evaluated at ``2·probes`` points ±radius·u around the
    equilibrium (fixed directions u).  A differentiable field has (nearly) the
    same Jacobian at all of them; a kink or a singularity does not.  Where the
    autograd expression is 0/0 exactly at the equilibrium (e.g. ‖ψ‖ in instance
    noise) but the probes agree, J is their symmetric mean, accurate to O(radius²).
    Objectives built with a normalised critic are non-differentiable by construction.
    """
    B = _batch_size(hp, batch)
    m = 2 * game.dim
    gen = torch.Generator().manual_seed(1234)
    dirs = torch.randn(probes, m, generator=gen, dtype=dtype)
    dirs = dirs / dirs.norm(dim=1, keepdim=True)
    pts = torch.cat([torch.zeros(1, m, dtype=dtype), radius * dirs, -radius * dirs])
    P = pts.shape[0]
    hp_rep = {k: (torch.as_tensor(v).repeat(P) if torch.as_tensor(v).ndim == 1 else v) for k, v in (hp or {}).items()}
    zp = pts.repeat_interleave(B, 0)
    J = jacobian(game, hp_rep, z=zp).reshape(P, B, m, m)
    v = game.field(zp, hp_rep).reshape(P, B, m)
    exact, near = J[0], J[1:]
    finite_near = torch.isfinite(near).flatten(2).all(-1).all(0)
    near = torch.nan_to_num(near, nan=0.0, posinf=0.0, neginf=0.0)
    limit = near.mean(0)
    scale = 1.0 + limit.abs().flatten(1).amax(-1)
    spread = (near - limit).abs().flatten(2).amax(-1).amax(0)
    # the field itself must be continuous and first-order accurate: v(ru) − v(−ru) ≈ 2r·J·u
    vp, vm = v[1 : probes + 1], v[probes + 1 :]
    lin = 2 * radius * torch.einsum("bij,pj->pbi", limit, dirs)
    jump = torch.nan_to_num((vp - vm - lin).abs(), nan=float("inf")).amax(-1).amax(0)
    diff = finite_near & (spread <= rtol * scale) & (jump <= rtol * radius * scale)
    if not game.objective.smooth:
        diff = torch.zeros_like(diff)
    exact_ok = torch.isfinite(exact).flatten(1).all(-1)
    exact_ok = exact_ok & ((torch.nan_to_num(exact) - limit).abs().flatten(1).amax(-1) <= rtol * scale)
    J0 = torch.where(exact_ok[:, None, None], exact, limit)
    J0 = torch.where(diff[:, None, None], J0, torch.full_like(J0, float("nan")))
    return J0, diff


def differentiable_at_equilibrium(game: DiracGAN, hp: HP | None = None, batch: int | None = None) -> Tensor:
    """Whether v is differentiable at the equilibrium, per row (see :func:`equilibrium_jacobian`)."""
    return equilibrium_jacobian(game, hp, batch)[1]


@dataclass
class Spectrum:
    """Eigen-analysis of the continuous-time dynamics at the equilibrium, per row."""

    eigenvalues: Tensor  # (B, 2n) complex; NaN where not differentiable
    jacobian: Tensor  # (B, 2n, 2n); NaN where not differentiable
    differentiable: Tensor  # (B,) bool
    max_real: Tensor  # (B,) largest real part

    @property
    def locally_convergent(self) -> list[bool | None]:
        """True/False from the eigenvalues; None where the field is not differentiable."""
        return [None if not d else bool(r < -REAL_TOL) for d, r in zip(self.differentiable.tolist(), self.max_real.tolist())]


def spectrum(game: DiracGAN, hp: HP | None = None, batch: int | None = None) -> Spectrum:
    J, diff = equilibrium_jacobian(game, hp, batch=batch)
    ok = diff
    ev = torch.full(J.shape[:2], complex("nan"), dtype=torch.complex128)
    if bool(ok.any()):
        ev[ok] = _sorted_eigs(torch.linalg.eigvals(J[ok]))
    max_real = torch.where(diff, ev.real.amax(-1), torch.full_like(ev.real[:, 0], float("nan")))
    return Spectrum(ev, J, diff, max_real)


def _sorted_eigs(ev: Tensor) -> Tensor:
    """Eigenvalues in a stable order: by real part, then imaginary part (descending)."""
    key = ev.real * 1e6 + ev.imag
    return torch.gather(ev, -1, torch.argsort(key, dim=-1, descending=True))


# --------------------------------------------------------------------------- #
# Discrete time
# --------------------------------------------------------------------------- #
def update_map_jacobian(J: Tensor, lr_d: Tensor, lr_g: Tensor, dim: int, scheme: str = "simgd",
                        n_d: int = 1, n_g: int = 1) -> Tensor:
    """Jacobian at the equilibrium of one plain gradient-descent round, from the field's
    Jacobian J (B, 2n, 2n) and per-row learning rates (B,).

    simGD  z ← z + H v(z):                         I + H J,  H = diag(lr_g·I, lr_d·I)
    altGD  n_d steps on ψ, then n_g steps on θ:    (I + lr_g P_θ J)^{n_g} (I + lr_d P_ψ J)^{n_d}
    (every sub-step fixes the equilibrium, so the chain rule multiplies sub-step Jacobians).
    """
    m = J.shape[-1]
    eye = torch.eye(m, dtype=J.dtype, device=J.device).expand_as(J)
    pg = torch.zeros(m, dtype=J.dtype, device=J.device)
    pg[:dim] = 1.0
    pd = 1.0 - pg
    Dg = lr_g[:, None, None] * pg[None, :, None] * J  # rows of θ scaled by lr_g
    Dd = lr_d[:, None, None] * pd[None, :, None] * J
    if scheme == "simgd":
        return eye + Dg + Dd
    if scheme != "altgd":
        raise SimulationError(f"discrete spectra need scheme 'simgd' or 'altgd', got {scheme!r}")
    return torch.linalg.matrix_power(eye + Dg, n_g) @ torch.linalg.matrix_power(eye + Dd, n_d)


def _radius(M: Tensor) -> Tensor:
    ok = torch.isfinite(M).flatten(1).all(-1)
    out = torch.full(M.shape[:1], float("nan"), dtype=M.dtype, device=M.device)
    if bool(ok.any()):  # never hand a non-finite matrix to LAPACK
        out[ok] = torch.linalg.eigvals(M[ok]).abs().amax(-1)
    return out


def spectral_radius(game: DiracGAN, lr_d, lr_g=None, hp: HP | None = None, scheme: str = "simgd",
                    n_d: int = 1, n_g: int = 1, batch: int | None = None) -> Tensor:
    """Spectral radius of the update map at the equilibrium, per row (NaN where the
    field is not differentiable there).  Rows: the hyper-parameter grid and/or the
    learning rates, each a scalar or (B,)."""
    lr_g = lr_d if lr_g is None else lr_g
    B = max(_batch_size(hp, batch), torch.as_tensor(lr_d).numel(), torch.as_tensor(lr_g).numel())
    like = torch.zeros((), dtype=torch.float64)
    lr_d, lr_g = _per_row(lr_d, B, "lr_d", like), _per_row(lr_g, B, "lr_g", like)
    for n, name in ((n_d, "n_d"), (n_g, "n_g")):
        if int(n) != n or n < 1:
            raise SimulationError(f"{name} must be a positive integer, got {n!r}")
    J, _ = equilibrium_jacobian(game, hp, batch=_batch_size(hp, None))
    J = J.expand(B, -1, -1) if J.shape[0] == 1 else J
    return _radius(update_map_jacobian(J, lr_d, lr_g, game.dim, scheme, n_d, n_g))


def max_stable_lr(game: DiracGAN, hp: HP | None = None, scheme: str = "simgd", ratio: float = 1.0,
                  n_d: int = 1, n_g: int = 1, lo: float = 1e-5, hi: float = 1e2, grid: int = 400,
                  bisections: int = 50) -> Tensor:
    """Largest h such that the update map with lr_g = h, lr_d = ratio·h has spectral
    radius < 1 for every learning rate in (0, h] (scanned on a log grid, then refined
    by bisection); 0 where even ``lo`` is unstable, NaN where not differentiable."""
    B = _batch_size(hp, None)
    J, diff = equilibrium_jacobian(game, hp, batch=B)
    hs = torch.logspace(torch.log10(torch.tensor(lo)), torch.log10(torch.tensor(hi)), grid, dtype=torch.float64)

    def rho(h: Tensor, Jr: Tensor) -> Tensor:
        return _radius(update_map_jacobian(Jr, ratio * h, h, game.dim, scheme, n_d, n_g))

    R = rho(hs.repeat_interleave(B), J.repeat(grid, 1, 1)).reshape(grid, B)
    stable = R < 1 - 1e-12
    out = torch.full((B,), float("nan"), dtype=torch.float64)
    for b in range(B):
        if not bool(diff[b]):
            continue
        if not bool(stable[0, b]):
            out[b] = 0.0
            continue
        bad = (~stable[:, b]).nonzero()
        if len(bad) == 0:
            out[b] = hi
            continue
        a, c = hs[bad[0, 0] - 1].item(), hs[bad[0, 0]].item()
        for _ in range(bisections):
            mid = 0.5 * (a + c)
            if float(rho(torch.tensor([mid], dtype=torch.float64), J[b : b + 1])[0]) < 1 - 1e-12:
                a = mid
            else:
                c = mid
        out[b] = a
    return out
