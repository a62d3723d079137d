"""The Dirac-GAN: real data is the point 0, the generator is the point θ ∈ ℝⁿ and
the discriminator is linear, D_ψ(x) = ψ·x (Mescheder et al. 2018 for n = 1,
Su 2019 for n ≥ 2).  The unique equilibrium is θ = ψ = 0.

A state is a tensor ``z`` of shape ``(B, 2n)``: ``z[:, :n] = θ``, ``z[:, n:] = ψ``.
Rows are independent games; hyper-parameters may be given per row.

The vector field is derived from the objective's two losses by autograd::

    v(θ, ψ) = (−∇_θ loss_g(θ, ψ), −∇_ψ loss_d(θ, ψ))
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .objectives import (HP, Context, Objective, ObjectiveError, fixed_order_sum, gauss_hermite, input_grad,
                         logit_losses, normal_trapezoid, spread)

Tensor = torch.Tensor


class BatchHP(dict):
    """Hyper-parameters already resolved, validated and broadcast to (B,) tensors."""


def as_batch_hp(hp: HP, batch: int, dtype, device) -> dict[str, Tensor]:
    """Every hyper-parameter as a tensor of shape (batch,)."""
    if isinstance(hp, BatchHP):
        return hp
    out = BatchHP()
    for k, v in hp.items():
        t = torch.as_tensor(v, dtype=dtype, device=device)
        if t.ndim == 0:
            t = t.expand(batch)
        elif t.shape != (batch,):
            raise ObjectiveError(f"hyper-parameter {k} has shape {tuple(t.shape)}; expected a scalar or ({batch},)")
        out[k] = t
    return out


@dataclass(frozen=True)
class DiracGAN:
    """A Dirac-GAN under ``objective`` with θ, ψ ∈ ℝ^dim."""

    objective: Objective
    dim: int = 1
    quadrature_nodes: int = 401  # instance noise: trapezoid nodes (separable losses)
    product_nodes: int = 24  # instance noise: Gauss–Hermite nodes per axis (non-separable losses)

    def __post_init__(self):
        if int(self.dim) != self.dim or self.dim < 1:
            raise ObjectiveError(f"dim must be a positive integer, got {self.dim!r}")

    # ---- parts -------------------------------------------------------------
    def split(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return z[..., : self.dim], z[..., self.dim :]

    def equilibrium(self, dtype=torch.float64, device="cpu") -> Tensor:
        return torch.zeros(2 * self.dim, dtype=dtype, device=device)

    def critic(self, psi: Tensor):
        """The discriminator D_ψ as a function of the input x (batch-aligned with ψ)."""
        if self.objective.critic == "normalised":
            return lambda x: (psi * x).sum(-1) / psi.norm(dim=-1)
        return lambda x: (psi * x).sum(-1)

    def prepare(self, hp: HP | None, batch: int, dtype=torch.float64, device="cpu") -> BatchHP:
        """Resolve defaults, validate and broadcast once; pass the result to :meth:`field`
        in loops to skip the checks (and to make the field traceable)."""
        return as_batch_hp(self.objective.resolve(hp), batch, dtype, device)

    def _hp(self, hp, z: Tensor) -> BatchHP:
        return hp if isinstance(hp, BatchHP) else self.prepare(hp, z.shape[0], z.dtype, z.device)

    # ---- losses ------------------------------------------------------------
    def losses(self, z: Tensor, hp: HP | None = None) -> tuple[Tensor, Tensor]:
        """Per-row ``(loss_d, loss_g)``, without the ConOpt term (which is a field modifier)."""
        obj = self.objective
        hp = self._hp(hp, z)
        theta, psi = self.split(z)
        if obj.custom is not None:
            try:
                ld, lg = obj.custom[0](theta, psi, hp), obj.custom[1](theta, psi, hp)
            except KeyError as e:
                if e.args and e.args[0] in hp:
                    raise
                raise ObjectiveError(
                    f"custom objective {obj.name!r} reads hyper-parameter {e.args[0]!r}, which it was not given; "
                    f"pass it to custom_objective({e.args[0]}=...) or in hp") from None
            for name, t in (("loss_d", ld), ("loss_g", lg)):
                if t.shape != (z.shape[0],):
                    raise ObjectiveError(f"custom objective {obj.name!r}: {name} must have shape ({z.shape[0]},), "
                                         f"one value per row; got {tuple(t.shape)}")
        else:
            ld, lg = self._logit_losses(theta, psi, hp)
        if obj.l2:
            ld = ld + 0.5 * hp["l2"] * psi.pow(2).sum(-1)
        return ld, lg

    def _logit_losses(self, theta: Tensor, psi: Tensor, hp: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        obj = self.objective
        D = self.critic(psi)
        x_real = torch.zeros_like(theta)
        x_fake = theta
        x_mid = 0.5 * (x_real + x_fake)  # D is linear in x: every interpolate gives the same ∇ₓD
        base = None
        if obj.noise:
            base = lambda loss: self._noisy_losses(loss, D, x_real, x_fake, D(x_real), D(x_fake), hp)  # noqa: E731
        return logit_losses(obj.loss, obj.penalties, D, x_real, x_fake, hp, x_mid, base)

    def _noisy_losses(self, loss, D, x_real, x_fake, d_real, d_fake, hp):
        """Exact expectation over instance noise x ← x + σε, ε ~ N(0, I).

        D is linear in x, so D(x + σε) = D(x) + σ‖∇ₓD‖·Z with Z ~ N(0, 1): a
        one-dimensional Gaussian expectation per sample.  Losses that separate into a
        real and a fake term use one trapezoid rule for both (accurate to ~1e-15, see
        :func:`normal_trapezoid`); others a Gauss–Hermite product rule over the two
        independent noises.

        Every sum over the nodes, in the losses and in their gradients, is taken in one
        fixed order (:func:`~dynamics.objectives.fixed_order_sum`, :func:`~dynamics.objectives.spread`),
        so that the last bits of the field do not depend on torch's reduction kernels: a run
        that sits on an unstable fixed point (the GCANN table's instance-noise rows) keeps
        or leaves it depending on those bits.
        """
        _, g = input_grad(D, x_real)
        s = hp["sigma"] * g.flatten(1).norm(dim=1)  # (B,)
        B = d_real.shape[0]
        if loss.separable:
            # E[a(R) + b(F)] = E[a(R)] + E[b(F)]: the same nodes serve both axes
            z, w = normal_trapezoid(self.quadrature_nodes, dtype=d_real.dtype)
            zr, zf, wq = z, z, w
        else:  # a product rule over the independent real and fake noise
            z, w = gauss_hermite(self.product_nodes, dtype=d_real.dtype)
            zr, zf = (u.reshape(-1) for u in torch.meshgrid(z, z, indexing="ij"))
            wq = (w[:, None] * w[None, :]).reshape(-1)
        zr, zf, wq = zr.to(d_real.device), zf.to(d_real.device), wq.to(d_real.device)
        Q = zr.numel()

        def expect(fn, *cols):
            rep = {k: v.repeat_interleave(Q) for k, v in hp.items()}
            ctx = Context(x_real.repeat_interleave(Q, 0), x_fake.repeat_interleave(Q, 0), rep)
            return fixed_order_sum(fn(*[c.reshape(-1) for c in cols], ctx).reshape(B, Q) * wq)

        s_q = spread(s, Q)
        r = spread(d_real, Q) + s_q * zr
        f = spread(d_fake, Q) + s_q * zf
        ld = expect(loss.d, r, f)
        lg = expect(loss.g, f)
        return ld, lg

    # ---- the vector field --------------------------------------------------
    def field(self, z: Tensor, hp: HP | None = None, *, create_graph: bool = False) -> Tensor:
        """v(z) = (−∇_θ loss_g, −∇_ψ loss_d), per row, shape (B, 2n)."""
        with torch.enable_grad():
            if not z.requires_grad:
                z = z.detach().requires_grad_(True)
            hp = self._hp(hp, z)
            conopt = self.objective.conopt
            need_graph = create_graph or conopt
            v = self._plain_field(z, hp, need_graph)
            if conopt:
                gam = hp["conopt_gamma"]
                (gc,) = torch.autograd.grad(0.5 * v.pow(2).sum(), z, create_graph=create_graph)
                v = v - gam[:, None] * gc
        return v if create_graph else v.detach()

    def _plain_field(self, z: Tensor, hp, create_graph: bool) -> Tensor:
        theta, psi = self.split(z)
        ld, lg = self.losses(z, hp)
        # ∂loss_g/∂z restricted to θ, ∂loss_d/∂z restricted to ψ (rows independent: sum is exact)
        gg = _grad(lg.sum(), z, create_graph)
        gd = _grad(ld.sum(), z, create_graph)
        return -torch.cat([gg[:, : self.dim], gd[:, self.dim :]], dim=1)

    def project(self, z: Tensor, hp: HP | None = None) -> Tensor:
        """Apply the discriminator's parameter constraint (WGAN weight clipping)."""
        if not self.objective.clip:
            return z
        c = self._hp(hp, z)["clip"][:, None]
        theta, psi = self.split(z)
        return torch.cat([theta, torch.maximum(torch.minimum(psi, c), -c)], dim=1)

    def projected_field(self, z: Tensor, hp: HP | None = None) -> Tensor:
        """The field restricted to the constraint set (continuous-time clipping):
        components pushing ψ out of [−clip, clip] at the boundary are zeroed."""
        hp = self._hp(hp, z)
        v = self.field(z, hp)
        if not self.objective.clip:
            return v
        c = self._hp(hp, z)["clip"][:, None]
        _, psi = self.split(z)
        vpsi = v[:, self.dim :]
        out = ((psi >= c) & (vpsi > 0)) | ((psi <= -c) & (vpsi < 0))
        return torch.cat([v[:, : self.dim], torch.where(out, torch.zeros_like(vpsi), vpsi)], dim=1)


def _grad(y: Tensor, z: Tensor, create_graph: bool) -> Tensor:
    (g,) = torch.autograd.grad(y, z, create_graph=create_graph, retain_graph=True, allow_unused=True)
    return torch.zeros_like(z) if g is None else g
