"""Properties and paper examples for the GCANN controller and its presets."""

from __future__ import annotations

import ast
import json
import math
import random
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gcann.controller import Decision, GCANNConfig, GCANNController, NonFiniteLossError
from gcann.presets import PRESETS, preset
from tests.support.strategies import configs, long_sequences, loss_lists, noisy_losses, sequences

CONTROLLER_FILE = Path(__file__).resolve().parents[1] / "gcann" / "controller.py"
ADJUSTMENTS = ("reactive", "proactive")

PROPERTY = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def run(config: GCANNConfig, losses: list[tuple[float, float]]) -> list[Decision]:
    ctrl = GCANNController(config)
    return [ctrl.observe(d, g) for d, g in losses]


# ---------------------------------------------------------------------------- invariants
def check_invariants(config: GCANNConfig, decisions: list[Decision]) -> None:
    """Every safety property of a decision sequence."""
    adjust_steps = []
    for dec in decisions:
        assert config.lr_d_min <= dec.lr_d <= config.lr_d_max
        assert config.lr_g_min <= dec.lr_g <= config.lr_g_max
        assert dec.train_d or dec.train_g, f"both networks idle at step {dec.step}"
        assert 0 <= dec.extra_d_steps <= config.max_skip_iterations
        assert 0 <= dec.extra_g_steps <= config.max_skip_iterations
        assert not (dec.extra_d_steps and dec.extra_g_steps)
        assert dec.train_d or not dec.extra_d_steps, f"extra D steps for an idle D at step {dec.step}"
        assert dec.train_g or not dec.extra_g_steps, f"extra G steps for an idle G at step {dec.step}"
        assert dec.use_diversity == (dec.step % config.diversity_check_interval == 0)
        for e in dec.events:
            assert e.step == dec.step
            if e.event in ("skip_d", "skip_g"):
                assert 1 <= e.detail["skip_iterations"] <= config.max_skip_iterations
            if e.event in ADJUSTMENTS:
                adjust_steps.append(dec.step)
                check_direction(config, e)
                assert (e.lr_d_new, e.lr_g_new) == (dec.lr_d, dec.lr_g)
    assert all(s >= config.baseline_steps for s in adjust_steps), "adjustment during warm-up"
    for a, b in zip(adjust_steps, adjust_steps[1:]):
        if config.cooldown_unit == "steps":
            assert b - a > config.cooldown_period, f"adjustments {adjust_steps} violate cooldown"
        else:  # window ends (steps w with (w + 1) % gc_lr_window == 0) strictly between the two adjustments
            ends = sum((w + 1) % config.gc_lr_window == 0 for w in range(a + 1, b))
            assert ends >= config.cooldown_period, f"adjustments {adjust_steps} violate a cooldown in windows"


def check_direction(config: GCANNConfig, e) -> None:
    """The learning rates move the way the stated reason implies (or sit at a bound)."""
    if e.reason == "d_overpowering":
        assert e.lr_d_new < e.lr_d_old or e.lr_d_new == config.lr_d_min
        assert e.lr_g_new > e.lr_g_old or e.lr_g_new == config.lr_g_max
    else:
        assert e.reason == "g_overpowering"
        assert e.lr_g_new < e.lr_g_old or e.lr_g_new == config.lr_g_min
        assert e.lr_d_new > e.lr_d_old or e.lr_d_new == config.lr_d_max


# ---------------------------------------------------------------------------- properties
@PROPERTY
@given(configs(), long_sequences)
def test_invariants_on_long_noisy_sequences(config: GCANNConfig, losses) -> None:
    decisions = run(config, losses)
    check_invariants(config, decisions)
    kinds = Counter(e.event for d in decisions for e in d.events)
    for kind in kinds:
        event(kind)


@pytest.mark.slow
@settings(max_examples=1500, deadline=None, derandomize=False, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(configs(), long_sequences)
def test_invariants_on_long_noisy_sequences_many(config: GCANNConfig, losses) -> None:
    """The long-sequence property on ~10⁶ fresh controller steps (run by benchmarks/slow_tests.py)."""
    check_invariants(config, run(config, losses))
    half = len(losses) // 2
    ctrl = GCANNController(config)
    for d, g in losses[:half]:
        ctrl.observe(d, g)
    restored = GCANNController(config)
    restored.load_state_dict(json.loads(json.dumps(ctrl.state_dict())))
    assert [restored.observe(d, g) for d, g in losses[half:]] == [ctrl.observe(d, g) for d, g in losses[half:]]


@PROPERTY
@given(configs(), loss_lists)
def test_invariants_on_arbitrary_floats(config: GCANNConfig, losses) -> None:
    check_invariants(config, run(config, losses))


@PROPERTY
@given(configs(), sequences)
def test_same_inputs_same_decisions(config: GCANNConfig, losses) -> None:
    assert run(config, losses) == run(config, losses)


@PROPERTY
@given(configs(), sequences, st.floats(0.0, 1.0))
def test_state_dict_json_round_trip_changes_nothing(config: GCANNConfig, losses, where: float) -> None:
    k = int(where * len(losses))
    original = GCANNController(config)
    for d, g in losses[:k]:
        original.observe(d, g)
    restored = GCANNController(config)
    restored.load_state_dict(json.loads(json.dumps(original.state_dict(), allow_nan=False)))
    assert restored.events == original.events
    for d, g in losses[k:]:
        assert restored.observe(d, g) == original.observe(d, g)
    assert restored.state_dict() == original.state_dict()
    event("scale tuned" if original.slope_thresh_scale != config.slope_thresh_scale else "scale untouched")


@PROPERTY
@given(configs(), st.floats(0.0, 5.0), st.floats(0.0, 5.0))
def test_gap_above_max_loss_diff_after_warmup_adjusts_at_once(config: GCANNConfig, base: float, extra: float) -> None:
    """Non-vacuity: a large gap right after warm-up triggers a reactive adjustment."""
    config = replace(config, reactive_every_step=True)
    gap = config.max_loss_diff + 0.5 + extra
    ctrl = GCANNController(config)
    for _ in range(config.baseline_steps):
        assert not any(e.event in ADJUSTMENTS for e in ctrl.observe(1.0, 1.0).events)
    dec = ctrl.observe(base, base + gap)
    [adj] = [e for e in dec.events if e.event == "reactive"]
    d_over = config.sign_convention == "consistent"
    assert adj.reason == ("d_overpowering" if d_over else "g_overpowering")
    check_direction(config, adj)


def test_events_of_every_kind_happen_on_a_noisy_run() -> None:
    config = GCANNConfig(baseline_steps=50, gc_lr_window=10, cooldown_period=20, max_loss_diff=2.0)
    kinds = Counter(e.event for d in run(config, noisy_losses(0, 5000)) for e in d.events)
    for kind in ("reactive", "proactive", "pause_d", "pause_g", "skip_d", "skip_g", "tie_break", "slope_threshold"):
        assert kinds[kind] > 0, kinds


# ---------------------------------------------------------------------------- paper examples
def small(**kw) -> GCANNConfig:
    base = dict(baseline_steps=10, gc_lr_window=10, cooldown_period=5, lr_d=1e-3, lr_g=1e-3)
    return GCANNConfig(**{**base, **kw})


def warm(ctrl: GCANNController, n: int, d: float = 1.0, g: float = 1.0) -> None:
    for _ in range(n):
        ctrl.observe(d, g)


def test_reactive_d_overpowering_default_sign() -> None:
    """L_G - L_D = 5 > max_loss_diff = 3: D's loss is much lower, so D is overpowering."""
    ctrl = GCANNController(small(alpha=0.8, beta=0.6, max_loss_diff=3.0, gc_lr_window=1000))
    warm(ctrl, 10)
    dec = ctrl.observe(0.5, 5.5)
    [e] = dec.events
    assert (e.event, e.reason) == ("reactive", "d_overpowering")
    assert dec.lr_d == pytest.approx(1e-3 * (1 - 0.8))
    assert dec.lr_g == pytest.approx(1e-3 * (1 + 0.6))
    assert dec.extra_g_steps == round(5 * 1.25) and dec.extra_d_steps == 0
    assert ctrl.skip_iter_scale == pytest.approx(1 / 1.25)


def test_reactive_g_overpowering_default_sign() -> None:
    ctrl = GCANNController(small(alpha=0.5, beta=0.25, gc_lr_window=1000))
    warm(ctrl, 10)
    dec = ctrl.observe(5.0, 0.5)
    assert dec.events[0].reason == "g_overpowering"
    assert (dec.lr_d, dec.lr_g) == (pytest.approx(1.5e-3), pytest.approx(0.75e-3))
    assert dec.extra_d_steps == round(5 * 1.25) and dec.extra_g_steps == 0


def test_reactive_literal_sign_follows_the_papers_text() -> None:
    """Literal: L_D - L_G > max_loss_diff means D is overpowering."""
    ctrl = GCANNController(small(sign_convention="literal", gc_lr_window=1000))
    warm(ctrl, 10)
    dec = ctrl.observe(5.0, 0.5)
    assert dec.events[0].reason == "d_overpowering"
    assert dec.lr_d < 1e-3 < dec.lr_g


def test_no_adjustment_during_warmup_and_cooldown() -> None:
    ctrl = GCANNController(small(cooldown_period=5, gc_lr_window=1000))
    decisions = [ctrl.observe(0.5, 5.5) for _ in range(30)]
    steps = [d.step for d in decisions if d.events and d.events[0].event == "reactive"]
    assert steps == [10, 16, 22, 28]


def test_learning_rates_clipped_at_bounds() -> None:
    ctrl = GCANNController(small(cooldown_period=0, gc_lr_window=1000, lr_d_min=1e-4, lr_g_max=2e-3))
    warm(ctrl, 10)
    for _ in range(20):
        dec = ctrl.observe(0.5, 5.5)
    assert (dec.lr_d, dec.lr_g) == (1e-4, 2e-3)


def test_proactive_slope_trigger() -> None:
    """Gap of window means grows 0 -> 1 in one window of 10: slope 0.1 > slope_threshold 0.01."""
    ctrl = GCANNController(small(baseline_steps=0, cooldown_period=0))
    warm(ctrl, 10, 1.0, 1.0)
    decisions = [ctrl.observe(1.0, 2.0) for _ in range(10)]
    assert all(not d.events for d in decisions[:-1])
    [e] = decisions[-1].events
    assert (e.event, e.reason) == ("proactive", "d_overpowering")
    assert e.detail["loss_diff_slope"] == pytest.approx(0.1)
    assert e.detail["clauses"] == ["slope_above_threshold"]


def test_proactive_window_gap_trigger() -> None:
    ctrl = GCANNController(small(baseline_steps=0, reactive_every_step=False, max_loss_diff=1.0))
    decisions = [ctrl.observe(3.5, 1.5 + (i % 2)) for i in range(10)]
    [e] = decisions[-1].events
    assert (e.event, e.reason) == ("proactive", "g_overpowering")
    assert e.detail["clauses"] == ["gap_above_max_loss_diff"]


def test_proactive_text_trigger_fires_on_bare_d_mean_above_g_mean() -> None:
    for trigger, expected in (("algorithm", []), ("text", ["d_mean_above_g_mean"])):
        ctrl = GCANNController(small(baseline_steps=0, proactive_trigger=trigger))
        decisions = [ctrl.observe(1.2, 1.0) for _ in range(10)]
        clauses = [c for d in decisions for e in d.events for c in e.detail.get("clauses", [])]
        assert clauses == expected


def test_slope_range_trigger_mode_fires_on_a_closing_gap() -> None:
    for mode, fires in (("clamp", False), ("trigger", True)):
        ctrl = GCANNController(small(baseline_steps=0, slope_range_mode=mode, cooldown_period=0))
        warm(ctrl, 10, 1.0, 3.5)
        decisions = [ctrl.observe(1.0, 1.0) for _ in range(10)]  # slope -0.25 < -0.1
        assert any(e.event == "proactive" for e in decisions[-1].events) == fires


def test_slope_threshold_learned_from_a_stable_region() -> None:
    """Windows of one step: slopes 0.001, 0.001, 0.001 (stable), then 1.0 ends the region."""
    ctrl = GCANNController(small(gc_lr_window=1, baseline_steps=100, target_slope_aggressiveness=0.5,
                                 slope_thresh_scale=1.0, slope_threshold=0.01, slope_thresh_scale_mode="constant"))
    for gap in (0.0, 0.001, 0.002, 0.003, 1.003):
        dec = ctrl.observe(1.0, 1.0 + gap)
    assert ctrl.max_stable_slope == pytest.approx(0.001)
    assert ctrl.slope_threshold == pytest.approx(0.5 * 0.001)
    assert dec.events[0].event == "slope_threshold"


def test_adaptive_scale_moves_the_learned_threshold_at_the_same_window() -> None:
    """As above, adaptive: the ending slope 1.0 exceeds the new threshold, so the scale is
    multiplied by exp(rate·(1 - target)) and the threshold with it."""
    ctrl = GCANNController(small(gc_lr_window=1, baseline_steps=100, slope_threshold=0.01,
                                 slope_thresh_scale_rate=0.1, slope_thresh_scale_target=0.1))
    for gap in (0.0, 0.001, 0.002, 0.003):
        ctrl.observe(1.0, 1.0 + gap)
    assert ctrl.slope_thresh_scale == 1.0  # nothing learned yet: the rule has not acted
    dec = ctrl.observe(1.0, 2.003)
    assert [e.event for e in dec.events] == ["slope_threshold"]
    assert dec.events[0].detail["new"] == pytest.approx(0.0005)
    assert ctrl.slope_thresh_scale == pytest.approx(math.exp(0.1 * 0.9))
    assert ctrl.slope_threshold == pytest.approx(0.5 * 0.001 * math.exp(0.09))


def test_slope_threshold_clamped_into_target_range() -> None:
    ctrl = GCANNController(small(gc_lr_window=1, baseline_steps=100, target_slope_range=(0.002, 0.2)))
    for gap in (0.0, 0.001, 0.002, 0.003, 1.003):
        ctrl.observe(1.0, 1.0 + gap)
    assert ctrl.slope_threshold == 0.002


def test_single_window_region_is_not_stable() -> None:
    ctrl = GCANNController(small(gc_lr_window=1, baseline_steps=100))
    for gap in (0.0, 0.001, 1.001):
        ctrl.observe(1.0, 1.0 + gap)
    assert ctrl.slope_threshold == 0.01 and ctrl.max_stable_slope == 0.0


def test_pause_below_threshold_and_event_only_on_transition() -> None:
    ctrl = GCANNController(small(gc_lr_window=1000, discriminator_skip_threshold=0.0))
    warm(ctrl, 10)
    decisions = [ctrl.observe(0.01, 1.0) for _ in range(3)] + [ctrl.observe(1.0, 1.0)]
    assert [d.train_d for d in decisions] == [False, False, False, True]
    assert all(d.train_g for d in decisions)
    assert [len(d.events) for d in decisions] == [1, 0, 0, 0]


def test_skip_run_lasts_skip_iterations_steps() -> None:
    """0.025 < L_D <= 0.05: D is skipped for round(p / skip_iter_scale) = 5 steps."""
    ctrl = GCANNController(small(gc_lr_window=1000))
    warm(ctrl, 10)
    decisions = [ctrl.observe(0.04, 1.0)] + [ctrl.observe(1.0, 1.0) for _ in range(6)]
    assert [d.train_d for d in decisions] == [False] * 5 + [True] * 2
    assert decisions[0].events[0].event == "skip_d"


def test_literal_skip_rule_skips_the_high_loss_network() -> None:
    ctrl = GCANNController(small(gc_lr_window=1000, skip_rule="literal", generator_skip_threshold=10.0))
    warm(ctrl, 10)
    dec = ctrl.observe(1.0, 1.0)
    assert (dec.train_d, dec.train_g) == (False, True)


def test_tie_break_trains_the_network_with_the_higher_loss() -> None:
    ctrl = GCANNController(small(gc_lr_window=1000))
    warm(ctrl, 10)
    dec = ctrl.observe(0.02, 0.005)
    assert (dec.train_d, dec.train_g) == (True, False)
    assert [e.event for e in dec.events][-1] == "tie_break"


def test_no_pause_or_skip_during_warmup() -> None:
    ctrl = GCANNController(small())
    assert all(d.train_d and d.train_g for d in (ctrl.observe(0.0, 0.0) for _ in range(10)))


def test_diversity_interval() -> None:
    ctrl = GCANNController(small(diversity_check_interval=3))
    assert [ctrl.observe(1, 1).use_diversity for _ in range(7)] == [True, False, False, True, False, False, True]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nonfinite_loss_raises_and_leaves_state_unchanged(bad: float) -> None:
    ctrl = GCANNController(small())
    warm(ctrl, 3)
    before = ctrl.state_dict()
    with pytest.raises(NonFiniteLossError, match=r"step 3: loss_g="):
        ctrl.observe(1.0, bad)
    assert ctrl.state_dict() == before
    assert ctrl.observe(1.0, 1.0).step == 3


def test_nonfinite_loss_diverged_mode() -> None:
    ctrl = GCANNController(small(on_nonfinite="diverged"))
    warm(ctrl, 3)
    dec = ctrl.observe(float("nan"), 1.0)
    assert dec.diverged and not (dec.train_d or dec.train_g) and dec.events[0].event == "diverged"
    later = ctrl.observe(1.0, 1.0)
    assert later.diverged and later.step == 4 and not later.events
    assert ctrl.diverged and json.dumps(ctrl.state_dict(), allow_nan=False)


@pytest.mark.parametrize(
    "field, value",
    [
        ("alpha", 1.0), ("beta", 0.0), ("lr_d", -1.0), ("lr_g", float("nan")), ("max_loss_diff", 0.0),
        ("gc_lr_window", 0), ("gc_lr_window", 2.5), ("cooldown_period", -1), ("baseline_steps", -5),
        ("p", -1), ("max_skip_iterations", 0), ("skip_iter_scale", 100.0), ("target_slope_range", (0.2, 0.1)),
        ("target_slope_aggressiveness", 1.0), ("slope_thresh_scale", 0.0), ("max_stable_slope", -1.0),
        ("lr_d_min", 1.0), ("lr_g_max", 1e-9), ("diversity_check_interval", 0), ("topend_diversity_loss", 0.0),
        ("discriminator_pause_threshold", -0.1), ("sign_convention", "other"), ("skip_rule", "x"),
        ("on_nonfinite", "ignore"), ("reactive_every_step", 1),
        ("slope_thresh_scale_mode", "fixed"), ("slope_thresh_scale_target", 0.0), ("slope_thresh_scale_target", 1.0),
        ("slope_thresh_scale_rate", 0.0), ("slope_thresh_scale_rate", float("inf")),
        ("slope_thresh_scale_range", (0.0, 1.0)), ("slope_thresh_scale_range", (2.0, 1.0)),
        ("slope_thresh_scale_range", (1.0,)), ("slope_thresh_scale", 5.0), ("cooldown_unit", "epochs"),
        ("diversity_scaling", "sigmoid"),
    ],
)
def test_config_validation_names_the_parameter(field: str, value) -> None:
    with pytest.raises(ValueError, match=f"GCANNConfig.{field} "):
        GCANNConfig(**{field: value})


def test_config_defaults_and_from_epochs() -> None:
    c = GCANNConfig(lr_d=1e-3)
    assert (c.lr_d_min, c.lr_d_max) == (pytest.approx(1e-5), pytest.approx(1e-1))
    assert GCANNConfig.from_epochs(2, 50).baseline_steps == 100
    assert json.loads(json.dumps(c.to_dict()))["target_slope_range"] == [-0.1, 0.1]
    assert GCANNConfig(target_slope_range=[0.0, 1.0]).target_slope_range == (0.0, 1.0)
    assert GCANNConfig(slope_thresh_scale_range=[0.5, 2.0]).slope_thresh_scale_range == (0.5, 2.0)
    assert json.loads(json.dumps(c.to_dict()))["slope_thresh_scale_range"] == [0.25, 4.0]
    # outside the adaptive range only matters when the scale is adaptive
    assert GCANNConfig(slope_thresh_scale=5.0, slope_thresh_scale_mode="constant").slope_thresh_scale == 5.0
    assert (c.slope_thresh_scale_mode, c.cooldown_unit, c.diversity_scaling) == ("adaptive", "steps", "tanh")


def test_write_events_jsonl(tmp_path: Path) -> None:
    ctrl = GCANNController(small(gc_lr_window=1000))
    warm(ctrl, 10)
    ctrl.observe(0.5, 5.5)
    path = tmp_path / "events.jsonl"
    ctrl.write_events_jsonl(path)
    [line] = path.read_text().splitlines()
    assert json.loads(line)["reason"] == "d_overpowering"


def test_load_state_dict_rejects_unknown_version() -> None:
    with pytest.raises(ValueError, match="version"):
        GCANNController().load_state_dict({"version": 99})


# ---------------------------------------------------------------------------- adaptive slope_thresh_scale
def learned(ctrl: GCANNController) -> float:
    """Windows of one step: slopes 0.001 ×3 (a stable region under the initial threshold 0.01), then
    a slope of 1.0 ends it: max_stable_slope = 0.001. Returns the gap reached (5.003)."""
    for gap in (0.0, 0.001, 0.002, 0.003, 5.003):
        ctrl.observe(1.0, 1.0 + gap)
    return 5.003


def one_step_windows(**kw) -> GCANNConfig:
    base = dict(gc_lr_window=1, baseline_steps=10**9, slope_threshold=0.01, target_slope_aggressiveness=0.5,
                target_slope_range=(-10.0, 10.0), slope_thresh_scale_range=(1e-3, 1e3))
    return small(**{**base, **kw})


def test_adaptive_scale_follows_the_documented_feedback_rule() -> None:
    """After learning, each window multiplies the scale by exp(rate·(1 - target)) if its slope exceeds
    the threshold and by exp(-rate·target) otherwise: scale = exp(rate·(n_up·(1-τ) - n_down·τ)).
    Falling windows (slope -0.1) never raise max_stable_slope, so the threshold is 0.5·0.001·scale."""
    rate, target = 0.2, 0.3
    ctrl = GCANNController(one_step_windows(slope_thresh_scale_rate=rate, slope_thresh_scale_target=target))
    gap = learned(ctrl)
    rng = random.Random(3)
    moves = [rng.choice((0.1, -0.1)) for _ in range(40)]
    for m in moves:
        gap += m
        ctrl.observe(1.0, 1.0 + gap)
    n_up = 1 + moves.count(0.1)  # the window that ended the first region exceeded too
    n_down = moves.count(-0.1)
    expected = math.exp(rate * (n_up * (1 - target) - n_down * target))
    assert ctrl.max_stable_slope == pytest.approx(0.001)
    assert ctrl.slope_thresh_scale == pytest.approx(expected, rel=1e-12)
    assert ctrl.slope_threshold == pytest.approx(0.5 * 0.001 * expected, rel=1e-12)


@pytest.mark.parametrize("rate", [1.0, 1e6])
@pytest.mark.parametrize("move, bound", [(0.1, 4.0), (-0.1, 0.25)])
def test_adaptive_scale_clipped_into_its_range(move: float, bound: float, rate: float) -> None:
    ctrl = GCANNController(one_step_windows(slope_thresh_scale_rate=rate, slope_thresh_scale_range=(0.25, 4.0)))
    gap = learned(ctrl)
    for _ in range(40):  # the gap stays positive: 5.003 - 40·0.1 > 0
        gap += move
        ctrl.observe(1.0, 1.0 + gap)
    assert ctrl.slope_thresh_scale == bound
    assert ctrl.slope_threshold == pytest.approx(0.5 * 0.001 * bound)


def test_adaptive_scale_waits_for_a_learned_threshold() -> None:
    """Slopes alternating ±1 exceed the threshold every other window but never form a stable
    region of two windows: nothing is learned, so the scale (and the threshold) stay put."""
    ctrl = GCANNController(one_step_windows())
    for k in range(200):
        ctrl.observe(1.0, 2.0 + (k % 2))
    assert (ctrl.slope_thresh_scale, ctrl.slope_threshold, ctrl.max_stable_slope) == (1.0, 0.01, 0.0)


def test_constant_mode_keeps_the_scale() -> None:
    ctrl = GCANNController(one_step_windows(slope_thresh_scale_mode="constant", slope_thresh_scale=1.5))
    gap = learned(ctrl)
    for k in range(50):
        gap += 0.1
        ctrl.observe(1.0, 1.0 + gap)
    assert ctrl.slope_thresh_scale == 1.5
    assert ctrl.slope_threshold == pytest.approx(0.5 * 0.001 * 1.5)
    assert not any(e.event == "slope_thresh_scale" for e in ctrl.events)


def exceed_fraction(mode: str, seed: int, n: int = 20_000) -> tuple[float, GCANNController]:
    """Fraction of windows (last 3/4 of the run) whose slope, computed here from the inputs, exceeds
    the threshold the controller held before the window; the gap is 0.5 + N(0, 0.02) noise."""
    rng = random.Random(seed)
    ctrl = GCANNController(one_step_windows(slope_thresh_scale_mode=mode, slope_threshold=0.05))
    prev, exceeded, counted = None, 0, 0
    for k in range(n):
        gap = 0.5 + rng.gauss(0.0, 0.02)
        threshold = ctrl.slope_threshold
        ctrl.observe(1.0, 1.0 + gap)
        if prev is not None and k >= n // 4:
            counted += 1
            exceeded += gap - prev > threshold
        prev = gap
    return exceeded / counted, ctrl


@pytest.mark.parametrize("seed", [0, 1])
def test_adaptive_scale_reaches_the_target_fraction(seed: int) -> None:
    """The rule is a Robbins–Monro quantile tracker: a fraction slope_thresh_scale_target (0.1) of
    windows exceed the threshold, with the scale strictly inside its range (the feedback, not the
    clip, holds it there). The constant scale, on the same noise, is far from the target."""
    fraction, ctrl = exceed_fraction("adaptive", seed)
    assert fraction == pytest.approx(0.1, abs=0.01)
    low, high = ctrl.config.slope_thresh_scale_range
    assert low < ctrl.slope_thresh_scale < high and ctrl.slope_thresh_scale != 1.0
    constant, _ = exceed_fraction("constant", seed)
    assert abs(constant - 0.1) > 0.05


@PROPERTY
@given(configs(), long_sequences)
def test_adaptive_scale_stays_in_range_and_logs_sparingly(config: GCANNConfig, losses) -> None:
    """Every scale event marks a move by a factor >= SCALE_LOG_FACTOR = 2 since the previous one; as a
    window moves log(scale) by at most rate·max(τ, 1-τ), there are at most that many windows' worth
    of moves / log 2 events."""
    config = replace(config, slope_thresh_scale_mode="adaptive")
    ctrl = GCANNController(config)
    for d, g in losses:
        ctrl.observe(d, g)
    low, high = config.slope_thresh_scale_range
    assert low <= ctrl.slope_thresh_scale <= high
    scale_events = [e for e in ctrl.events if e.event == "slope_thresh_scale"]
    for e in scale_events:
        ratio = e.detail["new"] / e.detail["old"]
        assert ratio >= 2 or ratio <= 0.5
        assert low <= e.detail["new"] <= high
    windows = len(losses) // config.gc_lr_window
    per_window = config.slope_thresh_scale_rate * max(config.slope_thresh_scale_target,
                                                      1 - config.slope_thresh_scale_target)
    assert len(scale_events) <= windows * per_window / math.log(2) + 1e-9
    event("scale events" if scale_events else "no scale event")


@PROPERTY
@given(configs(), sequences)
def test_constant_threshold_factor_at_most_one_sets_the_threshold_once(config: GCANNConfig, losses) -> None:
    """docs/gcann.md item 12: with a constant scale and (1 - aggressiveness)·scale <= 1 the threshold
    changes at most once (when the first stable region ends with max_stable_slope > 0)."""
    limit = 0.999 / (1 - config.target_slope_aggressiveness)
    config = replace(config, slope_thresh_scale_mode="constant",
                     slope_thresh_scale=min(config.slope_thresh_scale, limit))
    ctrl = GCANNController(config)
    values = [ctrl.slope_threshold]
    for d, g in losses:
        ctrl.observe(d, g)
        if ctrl.slope_threshold != values[-1]:
            values.append(ctrl.slope_threshold)
    assert len(values) <= 2
    event("threshold set" if len(values) == 2 else "threshold kept")


def test_adaptive_threshold_moves_both_ways() -> None:
    """The adaptive scale lifts the 'set once' property: the threshold rises and falls."""
    ctrl = GCANNController(GCANNConfig(baseline_steps=50, gc_lr_window=10, cooldown_period=20, max_loss_diff=2.0))
    values = [ctrl.slope_threshold]
    for d, g in noisy_losses(0, 5000):
        ctrl.observe(d, g)
        values.append(ctrl.slope_threshold)
    steps = [b - a for a, b in zip(values, values[1:]) if b != a]
    assert sum(x > 0 for x in steps) > 3 and sum(x < 0 for x in steps) > 3


# ---------------------------------------------------------------------------- cooldown and its units
def adjustment_steps(config: GCANNConfig, n: int, loss_d: float = 0.5, loss_g: float = 5.5) -> list[int]:
    ctrl = GCANNController(config)
    return [d.step for d in (ctrl.observe(loss_d, loss_g) for _ in range(n))
            if any(e.event in ADJUSTMENTS for e in d.events)]


def test_cooldown_in_windows_blocks_until_the_last_cooled_window_has_ended() -> None:
    """Windows of 10 steps end at steps 9, 19, 29, …; a reactive adjustment at step 10 blocks every
    step up to the end of the 2nd window completed after it (step 29): next adjustment at 30."""
    config = small(gc_lr_window=10, cooldown_period=2, cooldown_unit="windows")
    assert adjustment_steps(config, 75) == [10, 30, 50, 70]
    assert adjustment_steps(replace(config, cooldown_unit="steps"), 20) == [10, 13, 16, 19]


@pytest.mark.parametrize("cooldown, expected", [(0, [19, 29, 39, 49, 59]), (1, [19, 39, 59]), (2, [19, 49])])
def test_cooldown_in_windows_matches_the_pseudo_codes_counter(cooldown: int, expected: list[int]) -> None:
    """The pseudo-code's counter, checked at window ends only: after an adjustment at window check k
    the next one is at check k + cooldown_period + 1 (window checks at steps 19, 29, …)."""
    config = small(gc_lr_window=10, cooldown_period=cooldown, cooldown_unit="windows", reactive_every_step=False)
    assert adjustment_steps(config, 60) == expected


@pytest.mark.parametrize("cooldown, expected", [(10, [19, 39, 59]), (9, [19, 29, 39, 49, 59])])
def test_strict_cooldown_in_steps_fires_every_other_window_when_equal_to_the_window(
        cooldown: int, expected: list[int]) -> None:
    """Adjustments at step s block s+1 … s+cooldown_period; window ends are gc_lr_window = 10 apart,
    so with cooldown 10 the next window end (s+10) is blocked, with cooldown 9 it is not."""
    config = small(gc_lr_window=10, cooldown_period=cooldown, reactive_every_step=False)
    assert adjustment_steps(config, 60) == expected


# ---------------------------------------------------------------------------- boundaries of the rules
def test_reactive_rule_needs_a_gap_strictly_above_max_loss_diff() -> None:
    ctrl = GCANNController(small(gc_lr_window=1000, max_loss_diff=3.0, cooldown_period=0))
    warm(ctrl, 10)
    assert 3.5 - 0.5 == 3.0  # exactly representable: the gap equals max_loss_diff
    assert not ctrl.observe(0.5, 3.5).events
    assert not ctrl.observe(3.5, 0.5).events
    assert [e.event for e in ctrl.observe(0.5, math.nextafter(3.5, math.inf)).events] == ["reactive"]


def test_window_gap_clause_needs_a_gap_strictly_above_max_loss_diff() -> None:
    """Ten losses 0.5 and 3.5 have means exactly 0.5 and 3.5: gap 3.0, not above max_loss_diff 3.0."""
    ctrl = GCANNController(small(baseline_steps=0, reactive_every_step=False, max_loss_diff=3.0))
    assert not any(ctrl.observe(0.5, 3.5).events for _ in range(10))
    ctrl = GCANNController(small(baseline_steps=0, reactive_every_step=False, max_loss_diff=math.nextafter(3.0, 0)))
    assert [e.event for e in [ctrl.observe(0.5, 3.5) for _ in range(10)][-1].events] == ["proactive"]


@pytest.mark.parametrize("direction", ["d_overpowering", "g_overpowering"])
def test_skip_iter_scale_clipped_after_many_same_direction_adjustments(direction: str) -> None:
    """rate 1: each D-overpowering adjustment halves the scale, each G-overpowering one doubles it,
    within [1/max_skip_iterations, max_skip_iterations] = [1/4, 4]; one step back from the bound
    then gives catch-up bursts of round(6·0.5) = 3 (D) or round(6/2) = 3 (G)."""
    ctrl = GCANNController(small(cooldown_period=0, gc_lr_window=1000, max_skip_iterations=4,
                                 skip_iter_scale_rate=1.0, p=6))
    warm(ctrl, 10)
    push, back = ((0.5, 5.5), (5.5, 0.5)) if direction == "d_overpowering" else ((5.5, 0.5), (0.5, 5.5))
    for _ in range(8):
        ctrl.observe(*push)
    assert ctrl.skip_iter_scale == (0.25 if direction == "d_overpowering" else 4.0)
    dec = ctrl.observe(*back)
    assert ctrl.skip_iter_scale == (0.5 if direction == "d_overpowering" else 2.0)
    assert (dec.extra_d_steps, dec.extra_g_steps) == ((3, 0) if direction == "d_overpowering" else (0, 3))


@pytest.mark.parametrize("scale", [2.0, 0.5])
def test_skip_runs_are_scaled_by_skip_iter_scale(scale: float) -> None:
    """D's skip run lasts round(p / skip_iter_scale) steps, G's round(p · skip_iter_scale) (p = 6)."""
    ctrl = GCANNController(small(gc_lr_window=1000, p=6, skip_iter_scale=scale))
    warm(ctrl, 10)
    d_run = [ctrl.observe(0.04, 1.0).train_d] + [ctrl.observe(1.0, 1.0).train_d for _ in range(15)]
    g_run = [ctrl.observe(1.0, 0.04).train_g] + [ctrl.observe(1.0, 1.0).train_g for _ in range(15)]
    n_d, n_g = round(6 / scale), round(6 * scale)
    assert d_run == [False] * n_d + [True] * (16 - n_d)
    assert g_run == [False] * n_g + [True] * (16 - n_g)


@pytest.mark.parametrize("case", ["g_paused", "d_paused", "both_paused_d_trains", "both_paused_g_trains",
                                  "g_skipping"])
def test_no_extra_steps_for_a_network_that_does_not_train(case: str) -> None:
    """An adjustment grants the lagging network a burst, but that network is paused or skipping
    (and in two cases the other one too, so the tie-break trains the other): the burst is dropped."""
    literal = dict(sign_convention="literal", gc_lr_window=1000)
    setups = {  # config, losses before, losses at the adjustment, expected (train_d, train_g)
        "g_paused": (small(**literal), [], (5.0, 0.005), (True, False)),
        "d_paused": (small(**literal), [], (0.02, 5.0), (False, True)),
        "both_paused_d_trains": (small(**literal, max_loss_diff=0.004), [], (0.02, 0.005), (True, False)),
        "both_paused_g_trains": (small(**literal, max_loss_diff=0.003), [], (0.005, 0.009), (False, True)),
        "g_skipping": (small(gc_lr_window=1000), [(1.0, 0.04)], (0.5, 5.5), (True, False)),
    }
    config, before, (ld, lg), trains = setups[case]
    ctrl = GCANNController(config)
    warm(ctrl, 10)
    for d, g in before:
        ctrl.observe(d, g)
    dec = ctrl.observe(ld, lg)
    [adj] = [e for e in dec.events if e.event == "reactive"]
    granted = adj.detail["extra_d_steps"] + adj.detail["extra_g_steps"]
    assert granted == round(5 * 1.25)  # the adjustment did grant a burst (p = 5, scale moved by 1.25) ...
    assert (dec.train_d, dec.train_g) == trains
    assert (dec.extra_d_steps, dec.extra_g_steps) == (0, 0)  # ... that the idle network does not take


# ---------------------------------------------------------------------------- state and config
@pytest.mark.parametrize("cut", [1200, 2500])
def test_round_trip_in_the_middle_of_scale_tuning(cut: int) -> None:
    config = GCANNConfig(baseline_steps=50, gc_lr_window=10, cooldown_period=2, cooldown_unit="windows",
                         max_loss_diff=2.0)
    losses = noisy_losses(1, 4000)
    original = GCANNController(config)
    for d, g in losses[:cut]:
        original.observe(d, g)
    assert original.slope_thresh_scale != config.slope_thresh_scale  # tuning under way
    restored = GCANNController(config)
    restored.load_state_dict(json.loads(json.dumps(original.state_dict(), allow_nan=False)))
    assert [restored.observe(d, g) for d, g in losses[cut:]] == [original.observe(d, g) for d, g in losses[cut:]]
    assert any(e.event == "slope_thresh_scale" for e in original.events)


def test_load_state_dict_refuses_a_state_saved_under_another_config() -> None:
    saved = GCANNController(small(cooldown_period=5))
    warm(saved, 3)
    state = json.loads(json.dumps(saved.state_dict()))
    other = GCANNController(small(cooldown_period=6, p=4))
    with pytest.raises(ValueError, match=r"different config: cooldown_period \(saved 5, current 6\); "
                                         r"p \(saved 5, current 4\)$"):
        other.load_state_dict(state)
    assert other.step == 0
    ranged = GCANNController(small(cooldown_period=5, slope_thresh_scale_range=(0.5, 2.0)))
    with pytest.raises(ValueError, match=r"slope_thresh_scale_range \(saved \[0.25, 4.0\], current \[0.5, 2.0\]\)"):
        ranged.load_state_dict(state)
    same = GCANNController(small(cooldown_period=5))
    same.load_state_dict(state)
    assert same.step == 3 and same.state_dict() == saved.state_dict()


def test_load_state_dict_refuses_a_state_without_config() -> None:
    state = GCANNController().state_dict()
    del state["config"]
    with pytest.raises(ValueError, match="no config"):
        GCANNController().load_state_dict(state)


# ---------------------------------------------------------------------------- presets
def test_presets_carry_the_papers_values() -> None:
    celeba = preset("paper-celeba")
    assert (celeba.max_loss_diff, celeba.target_slope_range, celeba.gc_lr_window) == (3, (-0.1, 0.1), 100)
    assert (celeba.discriminator_pause_threshold, celeba.generator_pause_threshold) == (0.025, 0.01)
    assert (celeba.discriminator_skip_threshold, celeba.generator_skip_threshold) == (0.05, 0.05)
    assert (celeba.max_skip_iterations, celeba.cooldown_period, celeba.baseline_steps) == (25, 100, 1583)
    assert (celeba.diversity_weight, celeba.diversity_check_interval) == (1, 5)
    assert (celeba.topend_diversity_loss, celeba.bottomend_diversity_loss) == (3, 0.001)
    bicar = preset("paper-bicar3d")
    assert (bicar.lr_d, bicar.lr_g, bicar.alpha, bicar.beta, bicar.max_loss_diff) == (1e-4, 1e-4, 0.8, 0.6, 3)
    assert (bicar.diversity_weight, bicar.diversity_check_interval) == (1, 10)
    assert (bicar.topend_diversity_loss, bicar.bottomend_diversity_loss) == (5, 0.01)
    assert (bicar.cooldown_period, bicar.target_slope_range, bicar.max_skip_iterations) == (150, (0.001, 0.2), 30)
    for p in PRESETS.values():
        assert (p.epochs, p.batch_size) == (100, 128)
        assert p.paper_values - {"baseline_epochs", "epochs", "batch_size"} <= set(p.values)
        for name in p.paper_values & set(p.values):
            assert getattr(p.config(), name) == p.values[name]


def test_default_config_is_the_celeba_preset() -> None:
    assert preset("paper-celeba") == GCANNConfig()


def test_preset_overrides_and_errors() -> None:
    c = preset("paper-celeba", steps_per_epoch=10, cooldown_period=3)
    assert (c.baseline_steps, c.cooldown_period) == (10, 3)
    assert preset("paper-bicar3d", baseline_steps=7).baseline_steps == 7
    with pytest.raises(ValueError, match="unknown GCANN preset 'nope'.*paper-bicar3d, paper-celeba"):
        preset("nope")
    with pytest.raises(ValueError, match="max_los_diff"):
        preset("paper-celeba", max_los_diff=1.0)


# ---------------------------------------------------------------------------- purity
def _imported_modules(path) -> set[str]:
    tree = ast.parse(path.read_text())
    mods = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    return mods | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}


def test_controller_module_imports_only_the_standard_library() -> None:
    """The standard library, and of the project only its error base (itself standard-library only)."""
    mods = _imported_modules(CONTROLLER_FILE) - {"gcann.errors"}
    roots = {m.split(".")[0] for m in mods}
    assert roots <= set(sys.stdlib_module_names), roots - set(sys.stdlib_module_names)
    errors_roots = {m.split(".")[0] for m in _imported_modules(CONTROLLER_FILE.parent / "errors.py")}
    assert errors_roots <= set(sys.stdlib_module_names), errors_roots


def test_controller_loads_without_torch() -> None:
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('gcann_controller', {str(CONTROLLER_FILE)!r})\n"
        "mod = importlib.util.module_from_spec(spec); sys.modules[spec.name] = mod; spec.loader.exec_module(mod)\n"
        "c = mod.GCANNController(mod.GCANNConfig(baseline_steps=0)); c.observe(0.5, 5.5)\n"
        "assert 'torch' not in sys.modules and 'numpy' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

