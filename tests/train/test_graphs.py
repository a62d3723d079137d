"""The trainer's CUDA-graph step (``cuda_graph``): the static-buffer step equals the plain one, keys, refusals.

On the CPU ``cuda_graph="eager"`` runs the step a graph captures (fixed input buffers, one key per
variant, EMA after the step, D's update count kept outside) without capturing it: it must give the
run without graphs bit for bit. The capture itself is checked on a GPU (the test marked for CUDA).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gcann.train import ConfigError, Trainer
from gcann.train.checkpoint import load_checkpoint
from gcann.control import Plan
from gcann.train.graphs import StepGraphs
from tests.support.train_fixtures import ScriptedControl, fixture_for, tiny

def cuda(test):
    """A CUDA-only test: marked ``cuda`` (``pytest -m cuda`` runs them on a GPU machine), skipped without one."""
    return pytest.mark.cuda(pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")(test))


# graph-eligible steps (1 D, 1 G update, with and without the diversity term, at changing rates) between
# steps that run eagerly (pauses, skips, catch-up bursts)
PLANS = [Plan(1, 1, 1e-3, 1e-3, False), Plan(1, 1, 2e-3, 5e-4, False), Plan(0, 2, 1e-3, 1e-3, False),
         Plan(1, 1, 1e-3, 1e-3, True), Plan(3, 1, 7e-4, 1e-3, False), Plan(1, 1, 1e-3, 2e-3, False),
         Plan(1, 0, 1e-3, 1e-3, True), Plan(1, 1, 5e-4, 5e-4, True), Plan(1, 1, 1e-3, 1e-3, False),
         Plan(2, 3, 1e-3, 1e-3, False), Plan(1, 1, 1e-3, 1e-3, False), Plan(1, 1, 3e-3, 1e-3, False)]


def _run(tmp: Path, mode: str, **over) -> tuple[Trainer, dict, list[dict]]:
    cfg = tiny(max_steps=len(PLANS), cuda_graph=mode, **over)
    tr = Trainer(cfg, tmp / mode, dataset=fixture_for(cfg, n=16 * 30), control=ScriptedControl(PLANS), quiet=True)
    tr.fit()
    rows = [json.loads(x) for x in (tmp / mode / "metrics.jsonl").read_text().splitlines()]
    for r in rows:
        r.pop("time")
    return tr, load_checkpoint(tmp / mode), rows


def _same_state(a: dict, b: dict) -> None:
    for key in ("G", "D", "G_ema"):
        if a[key] is None:
            assert b[key] is None
            continue
        for k, v in a[key].items():
            assert torch.equal(v, b[key][k]), (key, k)
    for key in ("opt_d", "opt_g"):
        assert torch.equal(a[key]["steps"], b[key]["steps"]), key
        for name in ("exp_avg", "exp_avg_sq"):
            for i, (x, y) in enumerate(zip(a[key][name], b[key][name], strict=True)):
                assert torch.equal(x, y), (key, i, name)


@pytest.mark.parametrize("over", [
    dict(),
    dict(reg=("r1",), reg_every=2, ema=0.9, ema_start=4),   # lazy R1 (two keys per diversity flag), EMA late
    dict(loss="alpha_ns", alpha_d=0.5, alpha_g=1.2, reg=("r2", "l2")),
], ids=["nsgan", "lazy-r1-ema", "alpha-r2-l2"])
def test_graph_step_uncaptured_equals_the_plain_step(tmp_path, over):
    plain, a, rows_a = _run(tmp_path, "off", **over)
    graphed, b, rows_b = _run(tmp_path, "eager", **over)
    _same_state(a, b)
    assert rows_a == rows_b
    assert plain.d_updates == graphed.d_updates
    # the static step really ran, once per one-D-one-G step, the others eagerly
    assert graphed.graphs.eager == sum(p.d_steps == 1 and p.g_steps == 1 for p in PLANS)
    assert plain.graphs is None


def test_graph_keys_follow_diversity_and_the_lazy_penalty(tmp_path):
    cfg = tiny(max_steps=len(PLANS), cuda_graph="eager", reg=("r1",), reg_every=2)
    tr = Trainer(cfg, None, dataset=fixture_for(cfg, n=16 * 30), control=ScriptedControl(PLANS), quiet=True)
    keys = []
    real = tr._graph_key

    def key(plan):
        k = real(plan)
        keys.append((tr.d_updates, plan, k))
        return k
    tr._graph_key = key
    tr.fit()
    for d_updates, plan, k in keys:
        if (plan.d_steps, plan.g_steps) != (1, 1):
            assert k is None
        else:
            assert k == (plan.use_diversity, d_updates % 2 == 0)
    seen = {k for *_, k in keys if k is not None}
    assert {div for div, _ in seen} == {False, True} and {lazy for _, lazy in seen} == {False, True}


def test_resume_of_a_graph_run_equals_the_uninterrupted_one(tmp_path):
    cfg = tiny(max_steps=12, cuda_graph="eager", controller="gcann", ckpt_every=5, ema=0.9, reg=("r1",), reg_every=2,
               gcann={"baseline_steps": 2, "gc_lr_window": 3, "cooldown_period": 2, "max_loss_diff": 0.05,
                      "diversity_check_interval": 2})
    ds = fixture_for(cfg)
    Trainer(cfg, tmp_path / "a", dataset=ds, quiet=True).fit()
    Trainer(cfg.replace(max_steps=7), tmp_path / "b", dataset=ds, quiet=True).fit()
    Trainer.resume(tmp_path / "b", max_steps=12, dataset=ds, quiet=True).fit()
    _same_state(load_checkpoint(tmp_path / "a"), load_checkpoint(tmp_path / "b"))
    off = Trainer(cfg.replace(cuda_graph="off"), tmp_path / "c", dataset=ds, quiet=True)
    off.fit()
    _same_state(load_checkpoint(tmp_path / "a"), load_checkpoint(tmp_path / "c"))


@pytest.mark.parametrize("over, msg", [
    (dict(cuda_graph="yes"), "cuda_graph must be one of"),
    (dict(cuda_graph="on", compile=True), "does not combine with compile"),
    (dict(cuda_graph="eager", reg=("noise",)), "noise draw random numbers"),
    (dict(cuda_graph="on", reg=("gp0",)), "gp0 draw random numbers"),
])
def test_graph_config_errors(over, msg):
    with pytest.raises(ConfigError, match=msg):
        tiny(**over)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_graphs_on_need_cuda():
    cfg = tiny(cuda_graph="on", device="cpu")
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        Trainer(cfg, None, dataset=fixture_for(cfg), quiet=True)
    with pytest.raises(ValueError, match="need a CUDA device"):
        StepGraphs(True, torch.device("cpu"), (2, 1, 4, 4), torch.contiguous_format, (2, 3))


@cuda
def test_captured_graph_equals_the_uncaptured_step_on_cuda(tmp_path):
    """On a GPU: the captured and replayed step against the same step run eagerly (the same device-side Adam),
    with cuDNN's deterministic algorithms; and against the run without graphs (the same Adam arithmetic, its
    bias factors computed on the host instead of the device)."""
    torch.backends.cudnn.deterministic = True
    try:
        runs = {mode: _run(tmp_path, mode, device="cuda", precision="fp32") for mode in ("on", "eager", "off")}
    finally:
        torch.backends.cudnn.deterministic = False
    on, eager = runs["on"][0], runs["eager"][0]
    assert on.graphs.replays > 0 and on.graphs.graphs
    for key in ("G", "D"):
        for k, v in runs["eager"][1][key].items():
            torch.testing.assert_close(runs["on"][1][key][k], v, rtol=0, atol=1e-6)
            torch.testing.assert_close(runs["off"][1][key][k], v, rtol=1e-4, atol=1e-5)
    assert on.d_updates == eager.d_updates
