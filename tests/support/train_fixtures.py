"""Tiny in-memory datasets and configs for trainer tests (generated, seeded)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from gcann.train import TrainConfig
from gcann.control import Bounds, Controller, Plan


class TensorSet(Dataset):
    """A dataset with the attributes of gcann.data's in-memory sets."""

    def __init__(self, n: int = 96, shape: tuple[int, ...] = (1, 28, 28), kind: str = "image", seed: int = 0,
                 lazy: bool = False) -> None:
        g = torch.Generator().manual_seed(seed)
        if kind == "image":
            x = torch.rand((n, *shape), generator=g) * 2 - 1
        else:
            x = (torch.rand((n, *shape), generator=g) > 0.7).float()
        self.kind, self.sample_shape, self.name, self.key = kind, shape, "fixture", f"fixture-{seed}"
        self._x = x
        if not lazy:
            self.data = x

    def __len__(self) -> int:
        return len(self._x)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self._x[i]


def tiny(**over) -> TrainConfig:
    """A 28×28 grayscale DCGAN small enough for a step in milliseconds."""
    base = dict(dataset="fixture", width_g=8, width_d=8, nz=16, batch_size=16, max_steps=6, log_every=1,
                sample_every=1000, ckpt_every=1000, num_samples=4)
    return TrainConfig(**{**base, **over}).validated()


def fixture_for(cfg: TrainConfig, n: int = 48, lazy: bool = False) -> TensorSet:
    shape = (cfg.channels, cfg.resolution, cfg.resolution) if cfg.kind == "image" else (1,) + (cfg.resolution,) * 3
    return TensorSet(n=n, shape=shape, kind=cfg.kind, lazy=lazy)


class ScriptedControl(Controller):
    """A controller that plays a fixed list of plans (plan k after the k-th observation, plan 0 before any)
    and records what it observed."""

    name = "scripted"
    source = law = "(tests)"

    @dataclass(frozen=True)
    class Settings:
        pass

    def __init__(self, plans: list[Plan]) -> None:
        super().__init__(1e-3, 1e-3)
        self.plans, self.i, self.seen = plans, 0, []

    def _initial(self) -> Plan:
        return self.plans[0]

    def _decide(self, obs) -> Plan:
        self.seen.append((obs.loss_d, obs.loss_g))
        self.i += 1
        return self.plans[self.i]

    def bounds(self) -> Bounds:
        return Bounds((0.0, 1.0), (0.0, 1.0), max_steps=10)

    def _state(self) -> dict:
        return {"i": self.i}

    def _load(self, state) -> None:
        self.i = state["i"]
