"""The GAN objective on minibatches, composed once for the image trainer and the ring study.

:mod:`dynamics.objectives` defines the losses (``GAN_LOSSES``) and the gradient
penalties (``PENALTIES``) per sample; the Dirac-GAN testbed differentiates them
as they are. A trainer on minibatches composes them with a reduction over the
batch, a schedule for the penalties and the values a controller's plan sets
(its *knobs*, :data:`gcann.control.KNOBS`). :class:`MinibatchObjective` is that
composition, written once. D's loss on a batch is

    plain = reduce(loss_d(D(x̃_real), D(x̃_fake)))                 (what the controller reads)
    total = plain + Σ_p w_p · reduce(penalty_p)                     (lazy R1/R2: w = k on every k-th D step)
                  + λ_clc · reduce(D(b_real)² + D(b_fake)²)         (closed-loop control, knob ``clc_weight``)
                  + l2/2 · ‖ψ‖²                                     (weight decay on D)

and G's loss ``reduce(loss_g(D(x̃_fake)))``, where ``x̃ = x + σ·ε`` when instance
noise is on (knob ``noise_sigma``; the caller draws ε and owns its schedule) and
``b_real``, ``b_fake`` are batches from the caller's buffers of past samples.
The knob ``r1_gamma`` sets the R1 weight γ, adding R1 when the configuration has
none.

Rows. A batch may hold several independent runs side by side (the ring study's
seeds: inputs ``(rows, B, ...)``, logits ``(rows, B)``), or one run (the trainer:
inputs ``(B, ...)``, logits ``(B,)``). The objective never looks at that
layout: the caller gives ``reduce(values, rows)``, which averages per-sample
values of the rows ``rows`` (a slice) over the batch, one value per row (the
trainer: ``values.mean()``; the ring: each row's mean over its valid points).
Rows may use different losses (contiguous runs of equal losses are evaluated
together) and per-row hyper-parameters (tensors of shape ``(rows, 1)``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

import torch
from torch import Tensor

from .objectives import GAN_LOSSES, HP, PENALTIES, Context, ObjectiveError

__all__ = ["MinibatchObjective", "contiguous_runs", "DLoss", "Reduce", "PenaltyFn", "ClcFn", "LAZY_PENALTIES"]

#: ``reduce(values, rows)``: per-sample values of the rows ``rows`` -> their batch means (one per row).
Reduce = Callable[[Tensor, slice], Tensor]

#: Penalties that may be applied lazily (every k-th D step with weight k; Karras et al., 2020).
LAZY_PENALTIES = ("r1", "r2")

#: ``penalty_fn(name, rows, x_real, x_fake, x_interp, pen_hp)``: per-sample values of a penalty on the rows
#: ``rows`` (the caller's way of evaluating D there; default :meth:`MinibatchObjective.penalty` on every row).
PenaltyFn = Callable[[str, slice, Tensor, Tensor, "Tensor | None", dict], Tensor]

#: ``clc_fn(x_real, x_fake)``: closed-loop control's unweighted term (:meth:`MinibatchObjective.clc`) on a batch
#: from the caller's buffers, which take this batch first; returns ``(term per row, row indices or None = all)``.
ClcFn = Callable[[Tensor, Tensor], "tuple[Tensor, Tensor | None]"]

ALL = slice(None)


@dataclass
class DLoss:
    """D's loss on a batch: ``total`` (what D minimises), ``plain`` (the GAN loss alone, what a controller reads),
    and D's logits on the (noisy) reals and fakes, for the controllers' statistics."""

    total: Tensor
    plain: Tensor
    out_real: Tensor
    out_fake: Tensor


def contiguous_runs(values: Sequence) -> list[tuple[int, int, object]]:
    """Contiguous runs ``(start, stop, value)`` of equal values."""
    out, start = [], 0
    for i in range(1, len(values) + 1):
        if i == len(values) or values[i] != values[start]:
            out.append((start, i, values[start]))
            start = i
    return out


def _rows_of(hp: HP, rows: slice) -> dict:
    return {k: v[rows] if isinstance(v, Tensor) and v.dim() > 0 else v for k, v in hp.items()}


class MinibatchObjective:
    """A GAN loss with its penalties and knob-driven terms, on minibatches of one or several rows.

    ``losses``: one ``GAN_LOSSES`` name, or one per row; ``hp``: the losses'
    hyper-parameters (floats, or per-row tensors ``(rows, 1)``); ``penalties``:
    ``PENALTIES`` names added to D's loss, with ``pen_hp`` (``gamma``, and ``c``
    for the one-centred ones); ``reg_every = k > 1``: the lazy penalties
    (:data:`LAZY_PENALTIES`) on every k-th D step only, with weight k;
    ``l2``: weight decay ``l2/2·‖ψ‖²`` on D's parameters.
    """

    def __init__(self, losses: str | Sequence[str], hp: HP, penalties: Sequence[str] = (),
                 pen_hp: HP | None = None, *, reg_every: int = 1, l2: float = 0.0) -> None:
        names = [losses] if isinstance(losses, str) else list(losses)
        if not names:
            raise ObjectiveError("a minibatch objective needs at least one loss")
        for n in names:
            if n not in GAN_LOSSES:
                raise ObjectiveError(f"unknown loss {n!r}; choose from {sorted(GAN_LOSSES)}")
        for p in penalties:
            if p not in PENALTIES:
                raise ObjectiveError(f"unknown penalty {p!r}; choose from {sorted(PENALTIES)}")
        missing = sorted({k for n in set(names) for k in GAN_LOSSES[n].params if k not in hp})
        if missing:
            raise ObjectiveError(f"loss(es) {sorted(set(names))} need hyper-parameter(s) {missing}")
        if reg_every < 1:
            raise ObjectiveError(f"reg_every must be >= 1, got {reg_every}")
        self.single = isinstance(losses, str)
        self.groups = [(ALL, GAN_LOSSES[names[0]])] if self.single else \
            [(slice(a, b), GAN_LOSSES[n]) for a, b, n in contiguous_runs(names)]
        self.hp = dict(hp)
        self.penalties = tuple(penalties)
        self.pen_hp = dict(pen_hp or {})
        self.reg_every = int(reg_every)
        self.l2 = float(l2)
        self.lazy = tuple(p for p in self.penalties if p in LAZY_PENALTIES)

    # ------------------------------------------------------------------ the GAN losses
    def _per_group(self, fn: Callable, reduce: Reduce) -> Tensor:
        if self.single:
            spec = self.groups[0][1]
            return reduce(fn(spec, ALL, self.hp), ALL)
        return torch.cat([reduce(fn(spec, rows, _rows_of(self.hp, rows)), rows) for rows, spec in self.groups])

    def d_gan(self, out_real: Tensor, out_fake: Tensor, x_real: Tensor, x_fake: Tensor, reduce: Reduce) -> Tensor:
        """D's plain GAN loss per row: the loss's ``d`` on the logits, reduced over the batch."""
        return self._per_group(lambda spec, r, hp: spec.d(out_real[r], out_fake[r], Context(x_real[r], x_fake[r], hp)),
                               reduce)

    def g_gan(self, out_fake: Tensor, x_fake: Tensor, reduce: Reduce) -> Tensor:
        """G's GAN loss per row: the loss's ``g`` on the fakes' logits, reduced over the batch."""
        return self._per_group(lambda spec, r, hp: spec.g(out_fake[r], Context(x_fake[r], x_fake[r], hp)), reduce)

    # ------------------------------------------------------------------ penalties and knobs
    def active_penalties(self, knobs: Mapping | None = None) -> tuple[tuple[str, ...], dict]:
        """The penalties of this step and their hyper-parameters: a plan's ``r1_gamma`` knob sets R1's γ (a float,
        or a per-row tensor) and adds R1 when the configuration has none."""
        penalties, pen_hp = self.penalties, self.pen_hp
        if knobs and "r1_gamma" in knobs:
            penalties = penalties if "r1" in penalties else penalties + ("r1",)
            gamma = knobs["r1_gamma"]
            pen_hp = {**pen_hp, "gamma": gamma if isinstance(gamma, Tensor) else float(gamma)}
        return penalties, pen_hp

    def penalty_weight(self, name: str, d_step: int) -> float | None:
        """The weight of penalty ``name`` on D's update number ``d_step``: 1, or under lazy regularisation
        ``reg_every`` on every ``reg_every``-th update and None (skipped) on the others."""
        if name in self.lazy and self.reg_every > 1:
            return float(self.reg_every) if d_step % self.reg_every == 0 else None
        return 1.0

    @staticmethod
    def penalty(name: str, D: Callable[[Tensor], Tensor], x_real: Tensor, x_fake: Tensor, x_interp: Tensor | None,
                pen_hp: HP) -> Tensor:
        """Per-sample values of penalty ``name`` (``dynamics.objectives.PENALTIES``) for the critic ``D``."""
        return PENALTIES[name].fn(D, x_real, x_fake, x_interp, pen_hp)

    @staticmethod
    def interpolates(x_real: Tensor, x_fake: Tensor, rand: Callable[..., Tensor]) -> Tensor:
        """WGAN-GP's points ``ε·x_real + (1 − ε)·x_fake``, ``ε ~ U(0, 1)`` per sample (``rand(shape)``)."""
        eps = rand((x_real.shape[0],) + (1,) * (x_real.dim() - 1))
        return eps * x_real.detach() + (1 - eps) * x_fake.detach()

    @staticmethod
    def clc(out_real: Tensor, out_fake: Tensor, reduce: Reduce, rows: slice = ALL) -> Tensor:
        """Closed-loop control's term per row (Xu et al., 2020): ``reduce(D(b_real)² + D(b_fake)²)`` on D's logits
        of a batch of past reals and one of past fakes (its weight λ is the ``clc_weight`` knob)."""
        return reduce(out_real.pow(2) + out_fake.pow(2), rows)

    def l2_term(self, params) -> Tensor | float:
        """Weight decay on D: ``l2/2·Σ‖ψ‖²`` (0 when ``l2`` is 0)."""
        if not self.l2:
            return 0.0
        return 0.5 * self.l2 * sum(q.pow(2).sum() for q in params)

    # ------------------------------------------------------------------ the composition
    def d_loss(self, D: Callable[[Tensor], Tensor], x_real: Tensor, x_fake: Tensor, reduce: Reduce, *,
               d_step: int = 0, knobs: Mapping | None = None, noise: Callable[[Tensor], Tensor] | None = None,
               penalty_fn: PenaltyFn | None = None, penalty_rows: Sequence[slice] = (ALL,),
               rand: Callable[..., Tensor] | None = None, clc_fn: ClcFn | None = None,
               params: Iterable[Tensor] = ()) -> DLoss:
        """D's loss on ``x_real`` and ``x_fake`` (detached fakes), composed as the module docstring says.

        ``noise``: instance noise, ``x -> x + σ·ε`` (applied to the reals, then the fakes); ``penalty_fn`` and
        ``penalty_rows``: how and on which rows the penalties are evaluated (default: every row, through ``D``);
        ``rand``: ``U(0, 1)`` draws for WGAN-GP's points; ``clc_fn``: the term of the ``clc_weight`` knob (needed
        with it; without the knob it is not called); ``params``: D's parameters, for weight decay.
        """
        xr, xf = (x_real, x_fake) if noise is None else (noise(x_real), noise(x_fake))
        out = self.d_plain(D, xr, xf, reduce)
        total, out_r, out_f = out.plain, out.out_real, out.out_fake
        penalties, pen_hp = self.active_penalties(knobs)
        if penalty_fn is None:
            def penalty_fn(name, rows, a, b, xi, hp):
                return self.penalty(name, D, a, b, xi, hp)
        for name in penalties:
            weight = self.penalty_weight(name, d_step)
            if weight is None:
                continue
            xi = None
            if name == "gp":
                if rand is None:
                    raise ObjectiveError("the WGAN-GP penalty needs random draws (rand) for its points")
                xi = self.interpolates(xr, xf, rand)
            for rows in penalty_rows:
                value = reduce(penalty_fn(name, rows, xr, xf, xi, _rows_of(pen_hp, rows)), rows)
                term = value if weight == 1.0 else weight * value
                if rows == ALL:
                    total = total + term
                else:
                    total = torch.cat([total[:rows.start], total[rows] + term, total[rows.stop:]])
        if knobs and "clc_weight" in knobs:
            if clc_fn is None:
                raise ObjectiveError("the clc_weight knob needs the caller's buffers of past samples (clc_fn)")
            term, idx = clc_fn(xr, xf)
            lam = knobs["clc_weight"]
            if idx is None:
                total = total + (lam.to(term.device, term.dtype) if isinstance(lam, Tensor) else float(lam)) * term
            else:
                total = total.index_add(0, idx, lam.to(term.device, term.dtype)[idx] * term)
        if self.l2:
            total = total + self.l2_term(params)
        return DLoss(total, out.plain, out_r, out_f)

    def d_plain(self, D: Callable[[Tensor], Tensor], x_real: Tensor, x_fake: Tensor, reduce: Reduce,
                noise: Callable[[Tensor], Tensor] | None = None) -> DLoss:
        """D's plain GAN loss alone (``total`` is ``plain``): what a controller reads when D does not train, a
        measurement with no penalty (they need gradients) and no buffers touched; ``noise`` as in :meth:`d_loss`."""
        xr, xf = (x_real, x_fake) if noise is None else (noise(x_real), noise(x_fake))
        out_r, out_f = D(xr), D(xf)
        plain = self.d_gan(out_r, out_f, xr, xf, reduce)
        return DLoss(plain, plain, out_r, out_f)

    def g_loss(self, D: Callable[[Tensor], Tensor], x_fake: Tensor, reduce: Reduce,
               noise: Callable[[Tensor], Tensor] | None = None) -> Tensor:
        """G's GAN loss per row on ``x_fake`` (with its graph to G); ``noise`` as in :meth:`d_loss`."""
        xf = x_fake if noise is None else noise(x_fake)
        return self.g_gan(D(xf), xf, reduce)
