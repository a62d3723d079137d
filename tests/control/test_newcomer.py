"""A newcomer's controller: one class and one registry entry, and every engine runs it.

The controller below exists only in this test. Registered in ``gcann.control.CONTROLLERS`` (and nowhere
else), it drives the Dirac testbed, the ring study and the image trainer, and each engine's record of
what it did is checked against the law, applied by hand to the losses that engine logged.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import torch

from gcann.control import CONTROLLERS, Observation, make_controller
from gcann.control.base import Bounds, Controller, Plan, setting
from tests.control.test_contract import check_plans


class Seesaw(Controller):
    name = "seesaw"
    source = "a test's newcomer"
    law = "after a step whose D loss rose: two D updates at factor x lr_D and no G update; else one G update"

    @dataclass(frozen=True)
    class Settings:
        factor: float = setting(2.0, "D's rate multiple in its catch-up", low=1.0)

    def __init__(self, lr_d, lr_g, settings=None) -> None:
        super().__init__(lr_d, lr_g, settings)
        self.last_d: float | None = None

    def _decide(self, obs: Observation) -> Plan:
        rose, self.last_d = self.last_d is not None and obs.loss_d > self.last_d, obs.loss_d
        if rose:
            return Plan(2, 0, self.base_lr_d * self.settings.factor, self.base_lr_g)
        return Plan(0, 1, self.base_lr_d, self.base_lr_g)

    def bounds(self) -> Bounds:
        return Bounds((self.base_lr_d, self.base_lr_d * self.settings.factor), (self.base_lr_g, self.base_lr_g),
                      max_steps=2)

    def _state(self) -> dict:
        return {"last_d": self.last_d}

    def _load(self, state) -> None:
        self.last_d = state["last_d"]


def law(losses_d: list[float], k: int) -> tuple[int, int]:
    """The plan after observing step ``k`` of ``losses_d`` (D's losses, step by step)."""
    return (2, 0) if k > 0 and losses_d[k] > losses_d[k - 1] else (0, 1)


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setitem(CONTROLLERS, Seesaw.name, Seesaw)


def test_the_newcomer_keeps_the_contract(registered):
    seq = [Observation(t, 0.5 + 0.3 * ((-1) ** t) + 0.01 * t, 0.6) for t in range(30)]
    a = make_controller("seesaw", 2e-4, 1e-4, {"factor": 3.0})
    plans = [a.observe(o) for o in seq]
    check_plans(a, plans)
    b = make_controller("seesaw", 2e-4, 1e-4, {"factor": 3.0})
    for o in seq[:11]:
        b.observe(o)
    c = make_controller("seesaw", 2e-4, 1e-4, {"factor": 3.0})
    c.load_state_dict(json.loads(json.dumps(b.state_dict())))
    assert [c.observe(o).to_dict() for o in seq[11:]] == [p.to_dict() for p in plans[11:]]


def test_the_trainer_runs_the_newcomer(registered, tmp_path):
    from gcann.train import Trainer
    from tests.support.train_fixtures import fixture_for, tiny

    cfg = tiny(max_steps=8, controller="seesaw", controller_set={"factor": 3.0})
    Trainer(cfg, tmp_path / "run", dataset=fixture_for(cfg, n=16 * 30), quiet=True).fit()
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(8))
    assert (rows[0]["d_steps"], rows[0]["g_steps"]) == (1, 1)          # before the first decision
    losses = [r["loss_d"] for r in rows]
    for t, row in enumerate(rows[1:], 1):                              # lag 1 on the CPU: step t - 1 decides
        assert (row["d_steps"], row["g_steps"]) == law(losses, t - 1), t
        assert row["lr_d"] == pytest.approx(cfg.lr_d * (3.0 if row["d_steps"] == 2 else 1.0))
    assert {r["d_steps"] for r in rows[1:]} == {0, 2}                  # both branches of the law were taken


def test_the_ring_runs_the_newcomer(registered):
    from gcann.ring.study import parse_settings
    from gcann.ring.train import train_ring

    settings = parse_settings("ns(1,1)+seesaw lsgan+seesaw")
    trace: list = []
    train_ring(settings, [0, 1], epochs=1, n_train=256, batch_size=32, max_steps=7, curve_every=0, trace=trace,
               form="exact", controller_settings={"seesaw": {"factor": 3.0}})
    assert len(trace) == 7
    assert trace[0]["d_steps"] == [1, 1] and trace[0]["g_steps"] == [1, 1]
    for k in range(2):                                                 # the ring observes after each step (lag 1)
        losses = [now["loss_d"][k] for now in trace]
        for t, now in enumerate(trace[1:], 1):
            assert (now["d_steps"][k], now["g_steps"][k]) == law(losses, t - 1), (k, t)
    assert {d for now in trace[1:] for d in now["d_steps"]} == {0, 2}


def test_the_dirac_testbed_runs_the_newcomer(registered):
    from dynamics.study import make_game
    from gcann.dirac.controlled_simulator import simulate_controlled

    game = make_game("gan")
    z0 = torch.tensor([[1.0, 0.5], [0.3, -0.2], [-0.8, 0.1]], dtype=torch.float64)
    ctrls = [make_controller("seesaw", 0.1, 0.1, {"factor": 3.0}) for _ in range(3)]
    _, logs = simulate_controlled(game, z0, controllers=ctrls, steps=12)
    for b in range(3):                                                 # lag 0: each step's own losses decide it
        losses = logs.loss_d[:, b].tolist()
        for k in range(12):
            d, g = law(losses, k)
            assert (bool(logs.train_d[k, b]), bool(logs.train_g[k, b])) == (d > 0, g > 0), (k, b)
            assert int(logs.extra_d[k, b]) == max(d - 1, 0)
            assert float(logs.lr_d[k, b]) == pytest.approx(0.1 * (3.0 if d else 1.0))
    assert set(logs.train_d.flatten().tolist()) == {True, False}
