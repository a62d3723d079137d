"""The engines' side of the interface: ControlRows (plans as per-row tensors, the lag, events, saving)
and the CLC sample buffers, against lone controllers fed the same observations and against counting."""
from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gcann.control import ControlRows, Observation, make_controller
from gcann.control.buffers import SampleBuffers
from gcann.controller import ControllerError

LIVELY = {"baseline_steps": 0, "gc_lr_window": 3, "cooldown_period": 0, "max_loss_diff": 0.1,
          "diversity_check_interval": 2}
ROWS = [("gcann", LIVELY), ("none", {}), ("gap", {}), ("ada", {"interval": 1, "kimg": 1.0}), ("ttur", {}),
        ("clc", {"weight": 3.0})]


def rows_and_lone(lag: int):
    made = [make_controller(n, 2e-4, 1e-4, dict(s), batch_size=64) for n, s in ROWS]
    lone = [make_controller(n, 2e-4, 1e-4, dict(s), batch_size=64) for n, s in ROWS]
    return ControlRows(made, lag=lag, knob_defaults={"r1_gamma": [0.0, 1.0, 0.0, 0.0, 0.0, 0.0]}), lone


losses = st.lists(st.tuples(st.floats(0.0, 5.0), st.floats(0.0, 5.0), st.floats(-1.0, 1.0), st.booleans()),
                  min_size=1, max_size=40)


@settings(max_examples=30, deadline=None, derandomize=True, database=None)
@given(seq=losses, lag=st.integers(0, 3), cut=st.floats(0.0, 1.0))
def test_row_k_follows_its_lone_controller_lag_steps_later_and_resumes(seq, lag, cut):
    """The plan applied at step t is the lone controller's plan after observation t − lag (its initial plan
    before); a stopped row gets counts 0; a JSON save and restore at any step gives the same future."""
    bank, lone = rows_and_lone(lag)
    S = len(ROWS)
    history = [[c.initial_plan() for c in lone]]      # history[j + 1]: the lone plans after observation j
    live = [True] * S
    known = list(live)           # the live mask as the bank last heard it (a stop applies from then on)
    k_cut = int(cut * len(seq))
    for t, (ld, lg, sign, kill) in enumerate(seq):
        if t == k_cut:
            saved = json.loads(json.dumps(bank.state_dict()))
            bank, _ = rows_and_lone(lag)
            bank.load_state_dict(saved)
        if kill and t == len(seq) // 2:
            live[0] = False
        obs = [Observation(t, ld + k, lg, t // 7, real_sign=sign) for k in range(S)]
        if lag == 0:
            bank.observe(t, [o.loss_d for o in obs], [lg] * S, live=live, stats={"real_sign": [sign] * S}, epoch=t // 7)
            known = list(live)
        applied = bank.plans()
        expect = [history[max(t - lag + 1, 0)][k] if lag else None for k in range(S)]
        new = [c.observe(o) if (live[k] or k != 0) else history[-1][k] for k, (c, o) in enumerate(zip(lone, obs))]
        history.append(new)
        if lag == 0:
            expect = new
        for k in range(S):
            want = expect[k]
            assert float(applied.lr_d[k]) == want.lr_d and float(applied.lr_g[k]) == want.lr_g
            assert int(applied.d_steps[k]) == want.d_steps * known[k]
            assert int(applied.g_steps[k]) == want.g_steps * known[k]
            assert bool(applied.use_diversity[k]) == (want.use_diversity and known[k])
            for name, v in want.knobs.items():
                assert float(applied.knobs[name][k]) == v
        assert float(applied.knobs["r1_gamma"][1]) == 1.0          # the engine's default where no controller sets it
        if lag:
            bank.observe(t, [o.loss_d for o in obs], [lg] * S, live=live, stats={"real_sign": [sign] * S}, epoch=t // 7)
            known = list(live)


def test_events_carry_the_row_and_the_controller_and_static_rows_are_not_called():
    bank = ControlRows([make_controller("none", 1e-4, 1e-4), make_controller("gcann", 1e-4, 1e-4, LIVELY)])
    assert bank.dynamic == [1]
    events = []
    for t in range(30):
        events += bank.observe(t, [0.1, 0.1 + (t % 5)], [3.0, 0.2])
    assert events and all(e["row"] == 1 and e["controller"] == "gcann" and {"step", "event", "reason"} <= set(e)
                          for e in events)
    assert bank.controllers[0].steps_seen == 0 and bank.controllers[1].steps_seen == 30


def test_refusals():
    ada = make_controller("ada", 1e-4, 1e-4)
    with pytest.raises(ControllerError, match="real_sign"):
        ControlRows([ada]).observe(0, [1.0], [1.0])
    with pytest.raises(ControllerError, match="lag"):
        ControlRows([ada], lag=-1)
    with pytest.raises(ControllerError, match="rows"):
        ControlRows([ada], lag=1).load_state_dict(ControlRows([ada, ada], lag=1).state_dict())
    with pytest.raises(ControllerError, match="knob"):
        ControlRows([ada], knob_defaults={"volume": 1.0})


def test_sample_buffers_append_then_overwrite_and_draw_without_replacement():
    gen = torch.Generator().manual_seed(0)
    buf = SampleBuffers([12], 4, (1,), [gen])
    seen = []
    for step in range(6):
        real = torch.arange(4 * step, 4 * step + 4, dtype=torch.float32).view(4, 1)
        a, b = buf.push_and_draw(0, real, -real)
        seen.append(real)
        assert len(a) == 4 and len(set(a.flatten().tolist())) == 4            # without replacement
        assert torch.equal(b, -a)                                              # reals and fakes drawn together
        stored = set(buf.store[0][0][:buf.fill[0]].flatten().tolist())
        assert set(a.flatten().tolist()) <= stored
        if step < 3:                                                           # appending until full
            assert buf.fill[0] == 4 * (step + 1) and stored == set(torch.cat(seen).flatten().tolist())
        else:                                                                  # then random slots overwritten
            assert buf.fill[0] == 12 and float(real[-1]) in stored          # the last sample always lands
            assert stored <= set(torch.cat(seen).flatten().tolist())
    none = SampleBuffers([0], 4, (1,), [torch.Generator()])
    x = torch.randn(4, 1)
    assert none.push_and_draw(0, x, -x)[0] is x                                # capacity 0: the batch itself
    with pytest.raises(ControllerError, match="at least one batch"):
        SampleBuffers([3], 4, (1,), [torch.Generator()])


def test_update_rounds_is_the_catch_up_order():
    """Round r updates the rows planned more than r updates; rounds end when no row is left."""
    from gcann.control import update_rounds

    counts = torch.tensor([0, 1, 3, 2])
    got = [(r, m.tolist()) for r, m in update_rounds(counts)]
    assert got == [(0, [False, True, True, True]), (1, [False, False, True, True]), (2, [False, False, True, False])]
    assert [r for r, _ in update_rounds(counts, start=1)] == [1, 2]
    assert list(update_rounds(torch.zeros(3, dtype=torch.long))) == []
    assert sum(int(m.sum()) for _, m in update_rounds(counts)) == int(counts.sum())
