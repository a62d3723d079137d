"""Each published controller's law: its step response on scripted observations, computed by hand here."""
from __future__ import annotations

import math

import pytest

from gcann.control import CONTROLLERS, Observation, make_controller
from gcann.control.gap import ideal_d_loss
from gcann.controller import ControllerError


def feed(ctrl, losses_d, loss_g=0.7, real_sign=None):
    return [ctrl.observe(Observation(t, ld, loss_g, real_sign=None if real_sign is None else real_sign[t]))
            for t, ld in enumerate(losses_d)]


def test_none_and_ttur_are_open_loop():
    none = make_controller("none", 2e-4, 1e-4)
    ttur = make_controller("ttur", 9.9, 1e-4)                 # D's run rate is not used: 3 x G's
    ttur4 = make_controller("ttur", 1.0, 1e-4, {"ratio": 4.0})
    for p in feed(none, [0.1, 50.0, 1e-9]):
        assert (p.d_steps, p.g_steps, p.lr_d, p.lr_g, dict(p.knobs)) == (1, 1, 2e-4, 1e-4, {})
    for p in [ttur.initial_plan(), *feed(ttur, [0.1, 50.0])]:
        assert (p.lr_d, p.lr_g) == (3.0 * 1e-4, 1e-4)
    assert feed(ttur4, [1.0])[0].lr_d == 4.0 * 1e-4


def test_gap_ideal_losses_are_the_closed_forms():
    assert ideal_d_loss("gan") == pytest.approx(math.log(4), abs=1e-12)
    assert ideal_d_loss("nsgan") == pytest.approx(math.log(4), abs=1e-12)
    assert ideal_d_loss("lsgan") == pytest.approx(0.25, abs=1e-9)                     # (b - a)^2 / 4
    assert ideal_d_loss("lsgan", {"a": -1.0, "b": 1.0, "c": 0.0}) == pytest.approx(1.0, abs=1e-9)
    assert ideal_d_loss("hinge") == pytest.approx(2.0, abs=1e-12)
    for alpha in (0.3, 0.5, 2.0, 5.0):
        a = alpha / (alpha - 1)
        want = 2 * a * (1 - 2 ** (-1 / a))
        assert ideal_d_loss("alpha_ns", {"alpha_d": alpha, "alpha_g": 1.0}) == pytest.approx(want, rel=1e-9)
    for loss in ("wgan", "gan_qp"):
        with pytest.raises(ControllerError):
            ideal_d_loss(loss)
    with pytest.raises(ControllerError, match="law is undefined"):
        make_controller("gap", 1e-3, 1e-3, {"loss": "wgan"})


def test_gap_step_response_losing_and_winning():
    v = math.log(4)
    # D losing by 1 nat: s_1 = V* + 0.05 (EMA 0.95 from V*); x_max = 0.1 V*: factor 2^(0.05/(0.1 log 4)) = e^0.25
    up = make_controller("gap", 1e-3, 5e-4)
    plans = feed(up, [v + 1.0] * 200)
    assert plans[0].lr_d == pytest.approx(1e-3 * math.exp(0.25), rel=1e-12)
    s2 = 0.95 * (v + 0.05) + 0.05 * (v + 1.0)                                 # s_2 = V* + 0.0975
    assert plans[1].lr_d == pytest.approx(1e-3 * 2 ** (0.0975 / (0.1 * v)), rel=1e-12)
    assert s2 - v == pytest.approx(0.0975)
    assert plans[-1].lr_d == pytest.approx(2e-3, rel=1e-12)                  # saturated at f_max
    assert all(p.lr_g == 5e-4 and (p.d_steps, p.g_steps) == (1, 1) for p in plans)
    # D winning by 1 nat: x = -0.05, factor 0.1^(0.05/(0.1 log 4)); then down to h_min = 0.1
    down = make_controller("gap", 1e-3, 5e-4)
    plans = feed(down, [v - 1.0] * 200)
    assert plans[0].lr_d == pytest.approx(1e-3 * 0.1 ** (0.05 / (0.1 * v)), rel=1e-12)
    assert plans[-1].lr_d == pytest.approx(1e-4, rel=1e-12)
    # at the equilibrium value the rate is the base rate
    assert feed(make_controller("gap", 1e-3, 5e-4), [v] * 3)[-1].lr_d == pytest.approx(1e-3, rel=1e-15)


def test_gap_uses_the_objective_of_the_run():
    lsgan = make_controller("gap", 1e-3, 1e-3, {"loss": "lsgan"})
    p = feed(lsgan, [0.25 + 1.0])[0]                                          # s_1 = 0.3, x_max = 0.025
    assert p.lr_d == pytest.approx(1e-3 * 2.0, rel=1e-12)                    # x / x_max = 2: clipped at f_max
    given = make_controller("gap", 1e-3, 1e-3, {"ideal_loss": 1.0, "x_max": 0.5})
    assert feed(given, [2.0])[0].lr_d == pytest.approx(1e-3 * 2 ** (0.05 / 0.5), rel=1e-12)


def test_clc_carries_its_weight_every_step():
    clc = make_controller("clc", 1e-4, 1e-4)
    for p in [clc.initial_plan(), *feed(clc, [0.0, 100.0, 3.0])]:
        assert dict(p.knobs) == {"clc_weight": 10.0} and (p.lr_d, p.lr_g) == (1e-4, 1e-4)
    assert make_controller("clc", 1e-4, 1e-4, {"weight": 0.01}).initial_plan().knob("clc_weight", 0) == 0.01


def test_ada_integrates_the_sign_every_interval():
    step = 64 * 4 / (500 * 1000)                                              # 5.12e-4 per adjustment at batch 64
    ada = make_controller("ada", 1e-3, 1e-3)
    plans = feed(ada, [0.7] * 12, real_sign=[1.0] * 12)
    knobs = [p.knob("noise_sigma", -1) for p in plans]
    assert knobs[:3] == [0.0] * 3
    assert knobs[3:7] == [pytest.approx(step)] * 4
    assert knobs[7] == pytest.approx(2 * step) and knobs[11] == pytest.approx(3 * step)
    # the mean over the interval decides: (1, 1, 1, -1) averages 0.5 < 0.6, so p goes down (from 3 steps up)
    plans = feed(ada, [0.7] * 4, real_sign=[1.0, 1.0, 1.0, -1.0])
    assert plans[-1].knob("noise_sigma", -1) == pytest.approx(2 * step)
    # at the target exactly it does not move; at 0 it cannot go below 0
    at_target = make_controller("ada", 1e-3, 1e-3, {"p_init": 0.5})
    assert feed(at_target, [0.7] * 8, real_sign=[0.6] * 8)[-1].knob("noise_sigma", -1) == 0.5
    floor = make_controller("ada", 1e-3, 1e-3)
    assert feed(floor, [0.7] * 8, real_sign=[-1.0] * 8)[-1].knob("noise_sigma", -1) == 0.0
    # R1's weight instead, scaled, and capped at p_max
    r1 = make_controller("ada", 1e-3, 1e-3, {"knob": "r1_gamma", "scale": 10.0, "kimg": 0.001, "batch_size": 1,
                                             "interval": 1, "p_max": 0.5})
    ks = [p.knob("r1_gamma", -1) for p in feed(r1, [0.7] * 3, real_sign=[1.0] * 3)]
    assert ks == [5.0, 5.0, 5.0]    # p: 0 + 1 per step, capped at p_max = 0.5 from the first; knob = 10 p
    with pytest.raises(ControllerError, match="real_sign"):
        make_controller("ada", 1e-3, 1e-3).observe(Observation(0, 0.7, 0.7))


LIVE = {"baseline_steps": 0, "gc_lr_window": 4, "cooldown_period": 0, "max_loss_diff": 0.5,
        "diversity_check_interval": 3, "discriminator_pause_threshold": 0.05, "discriminator_skip_threshold": 0.1}


def _run_gcann(name):
    ctrl = make_controller(name, 1e-3, 1e-3, LIVE)
    # D far ahead (L_D tiny, L_G large) then balanced: every mechanism has a reason to act
    losses = [(0.01, 3.0)] * 30 + [(0.7, 0.7)] * 30
    return [ctrl.observe(Observation(t, ld, lg)) for t, (ld, lg) in enumerate(losses)]


def test_gcann_ablations_keep_only_their_mechanism():
    full = _run_gcann("gcann")
    kinds = {e.event for p in full for e in p.events}
    assert {"reactive", "pause_d"} <= kinds and any(p.use_diversity for p in full)
    for name, allowed_events, rates_move, diversity, idles in (
        ("gcann-reactive", {"reactive"}, True, False, False),
        ("gcann-proactive", {"proactive", "slope_threshold", "slope_thresh_scale"}, True, False, False),
        ("gcann-skip", {"pause_d", "pause_g", "skip_d", "skip_g", "tie_break"}, False, False, True),
        ("gcann-div", {"slope_threshold", "slope_thresh_scale"}, False, True, False),
    ):
        plans = _run_gcann(name)
        events = {e.event for p in plans for e in p.events}
        assert events <= allowed_events, (name, events)
        assert any(p.lr_d != 1e-3 for p in plans) == rates_move, name
        assert any(p.use_diversity for p in plans) == diversity, name
        assert any(0 in (p.d_steps, p.g_steps) for p in plans) == idles, name
    assert "proactive" in {e.event for p in _run_gcann("gcann-proactive") for e in p.events}
    with pytest.raises(ControllerError, match="fixed by this ablation"):
        make_controller("gcann-skip", 1e-3, 1e-3, {"reactive_rule": True})


def test_registry_holds_the_issue_names():
    assert {"none", "gcann", "gcann-reactive", "gcann-proactive", "gcann-skip", "gcann-div", "ttur", "gap", "clc",
            "ada"} <= set(CONTROLLERS)
