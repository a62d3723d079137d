"""Stateful test: a controller that is checkpointed and restored at arbitrary moments
behaves exactly like one that never was, and keeps every safety invariant."""

from __future__ import annotations

import json
import random

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from gcann.controller import Decision, GCANNConfig, GCANNController
from tests.support.strategies import configs, small_loss

losses = small_loss


class CheckpointedController(RuleBasedStateMachine):
    """``live`` is checkpointed through JSON and rebuilt; ``shadow`` never is."""

    @initialize(config=configs())
    def start(self, config: GCANNConfig) -> None:
        self.config = config
        self.live = GCANNController(config)
        self.shadow = GCANNController(config)
        self.last_adjustment: int | None = None
        self.adjustments = 0

    def feed(self, loss_d: float, loss_g: float) -> None:
        a = self.live.observe(loss_d, loss_g)
        b = self.shadow.observe(loss_d, loss_g)
        assert a == b
        self.check(a)

    def check(self, dec: Decision) -> None:
        c = self.config
        assert dec.train_d or dec.train_g
        assert max(dec.extra_d_steps, dec.extra_g_steps) <= c.max_skip_iterations
        for e in dec.events:
            if e.event in ("reactive", "proactive"):
                assert dec.step >= c.baseline_steps
                if self.last_adjustment is not None and c.cooldown_unit == "steps":
                    assert dec.step - self.last_adjustment > c.cooldown_period
                elif self.last_adjustment is not None:  # windows ended strictly between the two adjustments
                    ends = sum((w + 1) % c.gc_lr_window == 0 for w in range(self.last_adjustment + 1, dec.step))
                    assert ends >= c.cooldown_period
                self.last_adjustment = dec.step
                self.adjustments += 1

    @rule(loss_d=losses, loss_g=losses)
    def observe(self, loss_d: float, loss_g: float) -> None:
        self.feed(loss_d, loss_g)

    @rule(seed=st.integers(0, 2**16), n=st.integers(1, 60), gap=st.floats(-6.0, 6.0))
    def observe_burst(self, seed: int, n: int, gap: float) -> None:
        """A run of noisy losses around a fixed gap (drives adjustments, pauses, skips)."""
        rng = random.Random(seed)
        for _ in range(n):
            base = abs(rng.gauss(0.5, 0.5))
            self.feed(base + max(gap, 0.0), base + max(-gap, 0.0))

    @rule()
    def checkpoint_and_restore(self) -> None:
        state = json.loads(json.dumps(self.live.state_dict(), allow_nan=False))
        self.live = GCANNController(self.config)
        self.live.load_state_dict(state)
        assert self.live.state_dict() == self.shadow.state_dict()

    @invariant()
    def same_trajectory_as_shadow(self) -> None:
        live, shadow = self.live, self.shadow
        assert (live.step, live.lr_d, live.lr_g) == (shadow.step, shadow.lr_d, shadow.lr_g)
        assert (live.slope_threshold, live.skip_iter_scale) == (shadow.slope_threshold, shadow.skip_iter_scale)
        assert live.slope_thresh_scale == shadow.slope_thresh_scale

    @invariant()
    def learning_rates_in_bounds(self) -> None:
        c = self.config
        assert c.lr_d_min <= self.live.lr_d <= c.lr_d_max
        assert c.lr_g_min <= self.live.lr_g <= c.lr_g_max

    @invariant()
    def slope_thresh_scale_in_range(self) -> None:
        low, high = self.config.slope_thresh_scale_range
        assert low <= self.live.slope_thresh_scale <= high

    @invariant()
    def skip_runs_bounded(self) -> None:
        remaining = (self.live._skip_d, self.live._skip_g)  # noqa: SLF001 - white-box bound check
        assert all(0 <= r < self.config.max_skip_iterations for r in remaining)


CheckpointedController.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=50,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestCheckpointedController = CheckpointedController.TestCase


def test_stateful_runs_do_adjust() -> None:
    """Non-vacuity of the machine above: its burst rule produces adjustments."""
    machine = CheckpointedController()
    machine.start(GCANNConfig(baseline_steps=0, cooldown_period=2, gc_lr_window=3, max_loss_diff=1.0))
    for seed, gap in enumerate((4.0, -4.0, 0.0, 3.0)):
        machine.observe_burst(seed, 20, gap)
        machine.checkpoint_and_restore()
        machine.same_trajectory_as_shadow()
    assert machine.adjustments >= 4
