"""The contract every registered controller keeps, property-tested over the registry.

For arbitrary observation sequences (noise, spikes, plateaus, huge and tiny values): plans stay
finite and inside the bounds the controller declares, update counts are >= 0 and both networks are
never idle longer than declared, decisions are a function of the observations and the settings
alone, a saved and restored state gives the same future plans, and non-finite input is refused with
the project's error. A new controller in ``gcann.control.CONTROLLERS`` is tested here with no new code.
"""
from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gcann.control import CONTROLLERS, Observation, make_controller
from gcann.controller import ControllerError, NonFiniteLossError
from gcann.errors import GcannError

NAMES = sorted(CONTROLLERS)

#: Settings under which a controller acts within a few hundred steps (its defaults are tested too).
LIVELY = {
    name: {"baseline_steps": 0, "gc_lr_window": 5, "cooldown_period": 2, "max_loss_diff": 0.5,
           "diversity_check_interval": 3}
    for name in NAMES if name.startswith("gcann")
}

CONTRACT = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

values = st.one_of(
    st.floats(-1e3, 1e3),                                  # noise
    st.sampled_from([0.0, 1e-30, -1e-30, 1e30, -1e30, 1e300, 5e-324]),   # huge and tiny
    st.floats(0.0, 1.0),
)


@st.composite
def sequences(draw) -> list[Observation]:
    """Plateaus with spikes: runs of one value pair, now and then a spike."""
    out: list[Observation] = []
    n = draw(st.integers(1, 250))
    while len(out) < n:
        ld, lg, dr, df = (draw(values) for _ in range(4))
        sign = draw(st.floats(-1.0, 1.0))
        for _ in range(draw(st.integers(1, 40))):
            t = len(out)
            out.append(Observation(t, ld, lg, epoch=t // 50, d_real=dr, d_fake=df, real_sign=sign))
        if draw(st.booleans()):
            t = len(out)
            out.append(Observation(t, draw(values), draw(values), epoch=t // 50, d_real=draw(values),
                                   d_fake=draw(values), real_sign=draw(st.sampled_from([-1.0, 1.0]))))
    return out[:n]


def build(name: str, lively: bool):
    return make_controller(name, 2e-4, 1e-4, LIVELY.get(name, {}) if lively else {})


def check_plans(ctrl, plans) -> None:
    b = ctrl.bounds()
    idle = 0
    for k, plan in enumerate(plans):
        assert not b.contains(plan), (k, b.contains(plan))
        assert plan.d_steps >= 0 and plan.g_steps >= 0
        idle = idle + 1 if plan.d_steps == plan.g_steps == 0 else 0
        assert idle <= b.max_idle, f"both networks idle for {idle} plans (declared at most {b.max_idle})"
        for e in plan.events:
            json.dumps(e.to_dict(), allow_nan=False)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("lively", [False, True])
@CONTRACT
@given(seq=sequences(), cut=st.floats(0.0, 1.0))
def test_plans_bounded_deterministic_and_resumable(name, lively, seq, cut):
    a, b = build(name, lively), build(name, lively)
    assert not a.bounds().contains(a.initial_plan())
    plans_a = [a.observe(o) for o in seq]
    check_plans(a, plans_a)
    k = int(cut * len(seq))
    plans_b = [b.observe(o) for o in seq[:k]]
    saved = json.loads(json.dumps(b.state_dict(), allow_nan=False))
    c = build(name, lively)
    c.load_state_dict(saved)
    plans_c = plans_b + [c.observe(o) for o in seq[k:]]
    assert [p.to_dict() for p in plans_c] == [p.to_dict() for p in plans_a]
    if a.static:   # a controller that declares itself static may be skipped by the engines: it must not react
        assert all(p.same_as(a.initial_plan()) for p in plans_a)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("field", ["loss_d", "loss_g", "d_real", "d_fake", "real_sign"])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_input_is_refused_with_the_project_error(name, field, bad):
    ctrl = build(name, True)
    ctrl.observe(Observation(0, 0.7, 0.7, d_real=0.1, d_fake=-0.1, real_sign=0.2))
    obs = {"step": 1, "loss_d": 0.7, "loss_g": 0.7, "d_real": 0.1, "d_fake": -0.1, "real_sign": 0.2, field: bad}
    with pytest.raises(NonFiniteLossError) as info:
        ctrl.observe(Observation(**obs))
    assert isinstance(info.value, GcannError) and field in str(info.value)


@pytest.mark.parametrize("name", NAMES)
def test_settings_and_listing(name):
    cls = CONTROLLERS[name]
    doc = cls.describe()
    json.dumps(doc, allow_nan=False)
    assert doc["name"] == name and doc["source"] and doc["law"]
    assert set(doc["settings"]) == set(cls.defaults())
    with pytest.raises(ControllerError, match="no_such_setting"):
        make_controller(name, 1e-3, 1e-3, {"no_such_setting": 1})
    for bad in (0.0, -1.0, math.nan):
        with pytest.raises(ControllerError, match="lr_d"):
            make_controller(name, bad, 1e-3)


@pytest.mark.parametrize("name", NAMES)
def test_a_state_of_another_controller_is_refused(name):
    other = "none" if name != "none" else "gcann"
    with pytest.raises(ControllerError):
        build(name, False).load_state_dict(build(other, False).state_dict())


def test_an_unknown_controller_names_the_registered_ones():
    with pytest.raises(ControllerError, match="unknown controller 'pid'.*none"):
        make_controller("pid", 1e-3, 1e-3)
