"""The README's controller example runs as written, and its loop does what the decisions say.

The block after the marker comment is executed unchanged.  What it did is checked against
torch's own bookkeeping, not against the controller: Adam counts its steps per parameter, so
D's and G's step counts must equal the sums of the planned steps; the optimisers' learning
rates must be the last decision's; and a fresh controller fed the same losses (as plain
floats) must make the same decisions (the adapter passes the losses through unchanged).
"""
from __future__ import annotations

import re

from gcann import GCANNController
from gcann.adapter import plan
from tests.support.paths import ROOT

README = ROOT / "README.md"
MARKER = "<!-- controller example: tests/test_dirac_readme.py runs this block -->"


def _controller_block() -> str:
    text = README.read_text(encoding="utf-8")
    assert text.count(MARKER) == 1, "the README's controller example marker is missing or repeated"
    m = re.search(re.escape(MARKER) + r"\s*```python\n(.*?)\n```", text, re.S)
    assert m, "no python block right after the controller example marker"
    return m.group(1)


def test_readme_controller_example_runs_and_its_loop_follows_the_decisions(monkeypatch, capsys):
    seen: list[tuple[float, float, object]] = []
    observe = GCANNController.observe

    def recording(self, loss_d, loss_g):
        dec = observe(self, loss_d, loss_g)
        seen.append((loss_d, loss_g, dec))
        return dec

    monkeypatch.setattr(GCANNController, "observe", recording)
    ns: dict = {}
    exec(compile(_controller_block(), str(README), "exec"), ns)

    ctrl, opt_d, opt_g = ns["ctrl"], ns["opt_d"], ns["opt_g"]
    assert len(seen) == 300 == ctrl.step
    assert all(isinstance(x, float) for ld, lg, _ in seen for x in (ld, lg))

    # Adam's step counters: each optimiser stepped exactly as often as the plans said
    want_d = sum(plan(dec).d_steps for _, _, dec in seen)
    want_g = sum(plan(dec).g_steps for _, _, dec in seen)
    for opt, want in ((opt_d, want_d), (opt_g, want_g)):
        counts = {int(st["step"]) for st in opt.state.values()}
        assert counts == {want}
    # the example is meant to show the controller acting: some iteration was not a plain 1 + 1
    assert any(plan(dec).d_steps != 1 or plan(dec).g_steps != 1 or dec.events for _, _, dec in seen)

    last = seen[-1][2]
    assert {g["lr"] for g in opt_d.param_groups} == {last.lr_d} and {g["lr"] for g in opt_g.param_groups} == {last.lr_g}
    assert (ctrl.lr_d, ctrl.lr_g) == (last.lr_d, last.lr_g)

    assert capsys.readouterr().out.startswith(f"{ctrl.lr_d} {ctrl.lr_g} [")

    # a fresh controller fed the recorded losses makes the same decisions
    monkeypatch.setattr(GCANNController, "observe", observe)
    replay = GCANNController(ctrl.config)
    for ld, lg, dec in seen:
        again = replay.observe(ld, lg)
        assert (again.train_d, again.train_g, again.extra_d_steps, again.extra_g_steps, again.lr_d, again.lr_g) == \
            (dec.train_d, dec.train_g, dec.extra_d_steps, dec.extra_g_steps, dec.lr_d, dec.lr_g)

