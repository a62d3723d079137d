"""Bind a :class:`~gcann.controller.GCANNController` to two torch optimizers.

The controller decides; this adapter only writes the decided learning rates
into ``param_group["lr"]`` and turns a decision into step counts for the loop::

    adapter = GCANNAdapter(GCANNController(config), opt_d, opt_g)
    for real in loader:
        loss_d, loss_g, fake = losses(real)           # forward passes
        decision = adapter.observe(loss_d, loss_g)    # learning rates now applied
        steps = plan(decision)
        if steps.use_diversity:
            loss_g = loss_g + diversity_term(fake, config)
        ...  # step D steps.d_steps times and G steps.g_steps times
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import SupportsFloat

import torch

from gcann.controller import Decision, GCANNController
from gcann.diversity import Metric, diversity_term

__all__ = ["GCANNAdapter", "StepPlan", "plan", "set_lr"]


@dataclass(frozen=True)
class StepPlan:
    """How many optimizer steps each network takes in one training iteration."""

    d_steps: int          # 0 if D is paused/skipped, else 1 + its catch-up steps
    g_steps: int          # 0 if G is paused/skipped, else 1 + its catch-up steps
    use_diversity: bool   # add the diversity term to G's loss this iteration


def plan(decision: Decision) -> StepPlan:
    """Step counts implied by ``decision`` (the regular step plus any extra steps)."""
    return StepPlan(
        d_steps=(1 + decision.extra_d_steps) if decision.train_d else 0,
        g_steps=(1 + decision.extra_g_steps) if decision.train_g else 0,
        use_diversity=decision.use_diversity,
    )


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group of ``optimizer``.

    A rate held as a tensor (a capturable optimizer inside a CUDA graph reads it from the device) is
    changed in place, so that a captured step sees the new value."""
    for group in optimizer.param_groups:
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(lr)
        else:
            group["lr"] = lr


class GCANNAdapter:
    """Applies controller decisions to a D optimizer and a G optimizer."""

    def __init__(
        self,
        controller: GCANNController,
        opt_d: torch.optim.Optimizer,
        opt_g: torch.optim.Optimizer,
    ) -> None:
        self.controller = controller
        self.opt_d = opt_d
        self.opt_g = opt_g
        self.sync()

    def sync(self) -> None:
        """Write the controller's current learning rates into both optimizers (e.g. after a resume)."""
        set_lr(self.opt_d, self.controller.lr_d)
        set_lr(self.opt_g, self.controller.lr_g)

    def apply(self, decision: Decision) -> None:
        """Write the learning rates of ``decision`` into both optimizers."""
        set_lr(self.opt_d, decision.lr_d)
        set_lr(self.opt_g, decision.lr_g)

    def observe(self, loss_d: SupportsFloat, loss_g: SupportsFloat) -> Decision:
        """Feed this step's losses (floats or 0-d tensors) to the controller and apply its decision."""
        decision = self.controller.observe(_scalar(loss_d), _scalar(loss_g))
        self.apply(decision)
        return decision

    def generator_loss(
        self,
        loss_g: torch.Tensor,
        fake: torch.Tensor,
        decision: Decision,
        *,
        metric: Metric = "l2",
        scale: float = 1.0,
    ) -> torch.Tensor:
        """``loss_g`` plus the bounded diversity term when ``decision.use_diversity``."""
        if not decision.use_diversity:
            return loss_g
        return loss_g + diversity_term(fake, self.controller.config, metric=metric, scale=scale)


def _scalar(value: SupportsFloat) -> float:
    if isinstance(value, torch.Tensor):
        return float(value.detach())
    return float(value)
