"""A network's Adam in the trainer: the project's one Adam, :class:`dynamics.optim.RowOptimiser`, with the
network's parameters as one row.

The ring study steps many seeds as rows of stacked tensors and the Dirac testbed many trajectories; the
image trainer is the one-row case of the same optimiser. :class:`NetworkAdam` views each parameter (and
its gradient) with a leading row axis of length 1 (views: the update writes into the network's own
storage) and hands them to :class:`~dynamics.optim.RowOptimiser`: on the CPU torch's fused Adam kernel,
on a GPU the multi-tensor form (``docs/training.md``). The rate is the plan's, set before each step.

A captured CUDA graph (:mod:`gcann.train.graphs`) cannot read the host: :meth:`NetworkAdam.step_on_device`
takes the rate and the count from device tensors that :meth:`prepare_device_step` fills before the step
runs, and :meth:`count_device_steps` advances the host's count after it.

Checkpoints hold :meth:`state_dict` (the count and both moments, shaped ``(1, *param.shape)``);
:func:`from_torch_adam` reads the ``torch.optim.Adam`` states of checkpoints of format 1.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from dynamics.optim import RowOptimiser

__all__ = ["NetworkAdam", "from_torch_adam"]


class NetworkAdam:
    """Adam over ``module``'s parameters as one row of :class:`~dynamics.optim.RowOptimiser`; ``lr`` is the
    rate of the next update (the trainer sets the plan's each step)."""

    def __init__(self, module: nn.Module, lr: float, betas: tuple[float, float]) -> None:
        self.params = list(module.parameters())
        self.rows = RowOptimiser([p.detach().unsqueeze(0) for p in self.params], "adam", betas=betas)
        self.lr = float(lr)
        dev = self.params[0].device
        self.device_lr = torch.zeros(1, dtype=torch.float64, device=dev)
        self.device_steps = torch.zeros(1, dtype=torch.long, device=dev)

    @property
    def steps(self) -> int:
        """Updates taken so far."""
        return int(self.rows.steps[0])

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def _grads(self) -> list[Tensor]:
        missing = [i for i, p in enumerate(self.params) if p.grad is None]
        if missing:
            raise RuntimeError(f"parameters {missing} have no gradient: every parameter of a network must take "
                               "part in its loss")
        return [p.grad.unsqueeze(0) for p in self.params]

    def step(self) -> None:
        """One update at :attr:`lr` (the count and the rate read on the host)."""
        self.rows.step(self._grads(), torch.tensor([self.lr], dtype=torch.float64))

    def prepare_device_step(self) -> None:
        """Copy the rate and the count to the device tensors that :meth:`step_on_device` reads."""
        self.device_lr.fill_(self.lr)
        self.device_steps.fill_(self.steps)

    def step_on_device(self) -> None:
        """One update with no host work (what a CUDA graph captures); the same numbers as :meth:`step`."""
        self.rows.step_all_on_device(self._grads(), self.device_lr, self.device_steps)

    def count_device_steps(self, n: int = 1) -> None:
        """Advance the host's count by the ``n`` updates :meth:`step_on_device` took."""
        self.rows.steps += n

    def state_dict(self) -> dict[str, Any]:
        return self.rows.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s numbers (the count and the moments) in place, checked by
        :meth:`RowOptimiser.load_state_dict <dynamics.optim.RowOptimiser.load_state_dict>` (a state that has
        not stepped may hold no moments); one of another form or another network: ValueError."""
        try:
            self.rows.load_state_dict(state)
        except ValueError as e:
            raise ValueError(f"an optimiser state that cannot be loaded into this network's {len(self.params)} "
                             f"parameters: {e}") from None


def from_torch_adam(state: dict[str, Any]) -> dict[str, Any]:
    """:meth:`NetworkAdam.state_dict`'s form of a ``torch.optim.Adam`` state dict (one parameter group, no
    AMSGrad): its count and moments, a row axis added (no moments if it has not stepped)."""
    per = state["state"]
    order = sorted(per)
    steps = {int(float(per[i]["step"])) for i in order} or {0}
    if len(steps) != 1:
        raise ValueError(f"the Adam state's parameters took different numbers of steps ({sorted(steps)})")
    return {"rule": "adam", "steps": torch.tensor([steps.pop()], dtype=torch.long),
            "exp_avg": [per[i]["exp_avg"].unsqueeze(0) for i in order],
            "exp_avg_sq": [per[i]["exp_avg_sq"].unsqueeze(0) for i in order]}
