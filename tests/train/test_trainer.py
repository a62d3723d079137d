"""The training loop: resume, checkpoints, NaN stops, controller plans, objective, EMA."""
from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from gcann.train import ConfigError, Trainer, TrainingDiverged
from gcann.train.checkpoint import find_checkpoints, load_checkpoint, load_generator
from gcann.control import Plan
from gcann.train.objective import GANObjective
from tests.support.paths import repo_env
from tests.support.train_fixtures import ScriptedControl, TensorSet, fixture_for, tiny


def _states_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _metrics(run: Path) -> list[dict]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
    for r in rows:
        r.pop("time", None)
    return rows


# --------------------------------------------------------------------------- resume
RESUME_CFG = dict(controller="gcann", gcann={"baseline_steps": 2, "gc_lr_window": 3, "cooldown_period": 2,
                                             "max_loss_diff": 0.05, "diversity_check_interval": 2},
                  ema=0.9, reg=("r1", "noise"), reg_every=2, noise_anneal_steps=20, max_steps=14, ckpt_every=4)


@pytest.mark.parametrize("lazy", [False, True], ids=["in-memory", "dataloader"])
def test_resumed_run_equals_uninterrupted_run(tmp_path, lazy):
    cfg = tiny(**RESUME_CFG)
    ds = fixture_for(cfg, lazy=lazy)  # 48 samples / batch 16: 3 steps per epoch, so epochs turn over
    Trainer(cfg, tmp_path / "a", dataset=ds, quiet=True).fit()

    Trainer(cfg.replace(max_steps=9), tmp_path / "b", dataset=ds, quiet=True).fit()
    (tmp_path / "b" / "config.json").write_text(json.dumps(cfg.replace(max_steps=9).to_dict()))
    resumed = Trainer.resume(tmp_path / "b", max_steps=14, dataset=ds, quiet=True)
    assert resumed.step == 9
    resumed.fit()

    a, b = load_checkpoint(tmp_path / "a"), load_checkpoint(tmp_path / "b")
    assert a["step"] == b["step"] == 14
    for key in ("G", "D", "G_ema"):
        _states_equal(a[key], b[key])
    assert a["control"] == b["control"]
    assert json.dumps(a["opt_d"]["exp_avg"][0].tolist()) == json.dumps(b["opt_d"]["exp_avg"][0].tolist())
    assert _metrics(tmp_path / "a") == _metrics(tmp_path / "b")
    events_a = (tmp_path / "a" / "events.jsonl").read_text()
    assert events_a and events_a == (tmp_path / "b" / "events.jsonl").read_text()


def test_resume_truncates_rows_written_after_the_checkpoint(tmp_path):
    cfg = tiny(max_steps=10, ckpt_every=4, keep_checkpoints=10)
    ds = fixture_for(cfg)
    Trainer(cfg, tmp_path / "run", dataset=ds, quiet=True).fit()
    ref = _metrics(tmp_path / "run")
    for ck in find_checkpoints(tmp_path / "run")[1:]:  # back to step 4, as if killed at step 10 before step 8's checkpoint
        ck.unlink()
    Trainer.resume(tmp_path / "run", dataset=ds, quiet=True).fit()
    assert _metrics(tmp_path / "run") == ref


# --------------------------------------------------------------------------- checkpoints
def test_kill_during_checkpoint_write_leaves_previous_checkpoint(tmp_path):
    """A process that dies half-way through writing step 6's checkpoint leaves step 3's loadable."""
    script = textwrap.dedent(f"""
        import os, sys, torch
        from tests.support.train_fixtures import fixture_for, tiny
        from gcann.train import Trainer
        cfg = tiny(max_steps=6, ckpt_every=3)
        real_save = torch.save
        calls = []
        def dying_save(obj, f, *a, **k):
            calls.append(1)
            if len(calls) == 2:          # the second checkpoint: write half of it, then die
                import io
                buf = io.BytesIO(); real_save(obj, buf)
                with open(f, "wb") as fh:
                    fh.write(buf.getvalue()[: len(buf.getvalue()) // 2]); fh.flush()
                os._exit(9)
            return real_save(obj, f, *a, **k)
        torch.save = dying_save
        Trainer(cfg, {str(tmp_path / "run")!r}, dataset=fixture_for(cfg), quiet=True).fit()
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=repo_env())
    assert r.returncode == 9, r.stderr
    ckpts = find_checkpoints(tmp_path / "run")
    assert [c.name for c in ckpts] == ["step_0000003.pt"]
    state = load_checkpoint(tmp_path / "run")
    assert state["step"] == 3
    G, info = load_generator(tmp_path / "run")
    assert info["step"] == 3 and all(torch.isfinite(p).all() for p in G.parameters())
    # the resumed run finishes and equals an uninterrupted one
    cfg = tiny(max_steps=6, ckpt_every=3)
    Trainer.resume(tmp_path / "run", dataset=fixture_for(cfg), quiet=True).fit()
    Trainer(cfg, tmp_path / "ref", dataset=fixture_for(cfg), quiet=True).fit()
    _states_equal(load_checkpoint(tmp_path / "run")["G"], load_checkpoint(tmp_path / "ref")["G"])


def test_checkpoints_are_pruned_and_name_their_step(tmp_path):
    cfg = tiny(max_steps=10, ckpt_every=2, keep_checkpoints=2)
    Trainer(cfg, tmp_path / "run", dataset=fixture_for(cfg), quiet=True).fit()
    assert [c.name for c in find_checkpoints(tmp_path / "run")] == ["step_0000008.pt", "step_0000010.pt"]
    assert not [p for p in (tmp_path / "run" / "checkpoints").iterdir() if p.name.startswith(".")]


# --------------------------------------------------------------------------- NaN
def test_nan_loss_stops_with_message_and_good_checkpoint(tmp_path):
    cfg = tiny(max_steps=12, ckpt_every=3, batch_size=16)
    ds = fixture_for(cfg, n=16 * 12)
    ds.data = ds.data.clone()
    ds._x = ds.data
    # the stream's order is a seeded permutation: poison every sample of the 8th batch (step 7)
    from gcann.train.stream import BatchStream

    s = BatchStream(ds, 16, seed=cfg.seed, device=torch.device("cpu"))
    ds.data[s.perm[7 * 16:8 * 16]] = float("nan")
    with pytest.raises(TrainingDiverged, match=r"non-finite loss at step 7 .*last good checkpoint is .*step_0000006\.pt"):
        Trainer(cfg, tmp_path / "run", dataset=ds, quiet=True).fit()
    assert [c.name for c in find_checkpoints(tmp_path / "run")] == ["step_0000003.pt", "step_0000006.pt"]
    state = load_checkpoint(tmp_path / "run")
    assert all(torch.isfinite(v).all() for v in state["G"].values() if v.is_floating_point())
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["state"] == "diverged" and "step 7" in status["message"]


# --------------------------------------------------------------------------- controller plans
def test_trainer_honours_every_plan(tmp_path):
    plans = [Plan(1, 1, 1e-3, 1e-3, False), Plan(0, 3, 2e-3, 5e-4, True), Plan(4, 0, 3e-3, 1e-4, False),
             Plan(0, 1, 1e-3, 1e-3, False), Plan(1, 0, 1e-3, 1e-3, True), Plan(2, 2, 7e-4, 9e-4, False)]
    cfg = tiny(max_steps=len(plans))
    ds = fixture_for(cfg, n=16 * 20)
    control = ScriptedControl(plans)
    tr = Trainer(cfg, None, dataset=ds, control=control, quiet=True)
    log = []

    def counting(opt, name):
        real_step = opt.step

        def step(*a, **k):
            log.append((tr.step, name, opt.lr, tr.stream.pos))
            return real_step(*a, **k)

        opt.step = step

    counting(tr.opt_d, "d")
    counting(tr.opt_g, "g")
    tr.fit()
    for t, p in enumerate(plans):
        d = [e for e in log if e[0] == t and e[1] == "d"]
        g = [e for e in log if e[0] == t and e[1] == "g"]
        assert (len(d), len(g)) == (p.d_steps, p.g_steps), t
        assert all(e[2] == p.lr_d for e in d) and all(e[2] == p.lr_g for e in g)
    # extra D updates draw fresh batches: step 2's four updates read batches 3, 4, 5, 6 (positions after reading)
    assert [e[3] for e in log if e[0] == 2] == [3, 4, 5, 6]
    # the controller saw both losses of every step (lag 1: all but the last), finite, also for 0-update networks
    assert len(control.seen) == len(plans) - 1 and all(math.isfinite(x) for pair in control.seen for x in pair)


class ScriptedCore:
    """Stands in for the GCANN controller's core (GCANNController): a fixed list of Decisions, one per observation."""

    def __init__(self, decisions):
        self.decisions, self.i = decisions, 0

    def observe(self, loss_d, loss_g):
        d = self.decisions[self.i]
        self.i += 1
        return d

    def state_dict(self):
        return {"i": self.i}

    def load_state_dict(self, state):
        self.i = state["i"]


def test_trainer_honours_gcann_decisions_including_zero_step_ones():
    from gcann.control import make_controller
    from gcann.controller import Decision

    D = lambda t, td, tg, ed, eg: Decision(t, td, tg, ed, eg, 1e-3 * (t + 1), 5e-4 * (t + 1), False)  # noqa: E731
    decisions = [D(0, False, True, 0, 2),    # D paused, G catches up: 0 D updates, 3 G updates
                 D(1, True, False, 4, 0),    # G skipping, D catches up: 5 D updates, 0 G updates
                 D(2, True, True, 0, 0),
                 D(3, False, True, 0, 0)]
    cfg = tiny(max_steps=5)
    gc = make_controller("gcann", 1e-3, 1e-3)
    gc.core = ScriptedCore(decisions)        # the GCANN plug-in turns its core's decisions into plans
    tr = Trainer(cfg, None, dataset=fixture_for(cfg, n=16 * 20), control=gc, quiet=True)
    log = []
    for opt, name in ((tr.opt_d, "d"), (tr.opt_g, "g")):
        def step(*a, _real=opt.step, _name=name, _opt=opt, **k):
            log.append((tr.step, _name, _opt.lr))
            return _real(*a, **k)
        opt.step = step
    tr.fit()
    counts = [(sum(1 for e in log if e[:2] == (t, "d")), sum(1 for e in log if e[:2] == (t, "g"))) for t in range(5)]
    # step 0 precedes the first decision (lag 1); decision k governs step k + 1
    assert counts == [(1, 1), (0, 3), (5, 0), (1, 1), (0, 1)]
    assert {e[2] for e in log if e[0] == 2 and e[1] == "d"} == {2e-3}
    assert {e[2] for e in log if e[0] == 1 and e[1] == "g"} == {5e-4}


def test_diversity_term_only_on_planned_steps(tmp_path):
    plans = [Plan(1, 1, 1e-3, 1e-3, True), Plan(1, 1, 1e-3, 1e-3, False), Plan(1, 1, 1e-3, 1e-3, True)]
    cfg = tiny(max_steps=3)
    Trainer(cfg, tmp_path / "run", dataset=fixture_for(cfg), control=ScriptedControl(plans), quiet=True).fit()
    rows = _metrics(tmp_path / "run")
    assert ["diversity" in r for r in rows] == [True, False, True]
    assert all(0.001 <= r["diversity"] <= 3.0 for r in rows if "diversity" in r)


def test_gcann_run_logs_events_and_changes_learning_rates(tmp_path):
    cfg = tiny(max_steps=30, controller="gcann", gcann={"baseline_steps": 3, "gc_lr_window": 4,
                                                        "cooldown_period": 3, "max_loss_diff": 0.05})
    Trainer(cfg, tmp_path / "run", dataset=fixture_for(cfg), quiet=True).fit()
    events = [json.loads(x) for x in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    assert any(e["event"] in ("reactive", "proactive") for e in events)
    assert all(e["step"] == e["observed_step"] + 1 for e in events)
    rows = _metrics(tmp_path / "run")
    assert len({r["lr_d"] for r in rows}) > 1
    first = next(e for e in events if e["event"] in ("reactive", "proactive"))
    row = next(r for r in rows if r["step"] == first["step"])
    assert row["lr_d"] == pytest.approx(first["lr_d_new"]) and row["lr_g"] == pytest.approx(first["lr_g_new"])


# --------------------------------------------------------------------------- objective
class _LinearD(torch.nn.Module):
    """D(x) = w·x: its input gradient is w for every sample."""

    def __init__(self, w):
        super().__init__()
        self.w = torch.nn.Parameter(w)

    def forward(self, x):
        return x.flatten(1) @ self.w


def _linear_D(w):
    return _LinearD(w.detach().clone())


def test_objective_matches_bce_and_lazy_r1_weight():
    torch.manual_seed(0)
    w = torch.randn(12, requires_grad=True)
    real, fake = torch.randn(8, 1, 3, 4), torch.randn(8, 1, 3, 4)
    randn = lambda s: torch.zeros(s)  # noqa: E731
    cfg = tiny(loss="nsgan")
    obj = GANObjective(cfg)
    total, gan = obj.d_loss(_linear_D(w), real, fake, 0, 0, torch.rand, randn)
    w = w.detach()
    dr, df = real.flatten(1) @ w, fake.flatten(1) @ w
    bce = F.binary_cross_entropy_with_logits(dr, torch.ones(8)) + F.binary_cross_entropy_with_logits(df, torch.zeros(8))
    assert torch.allclose(gan, bce) and torch.allclose(total, bce)
    assert torch.allclose(obj.g_loss(_linear_D(w), fake, 0, randn), F.binary_cross_entropy_with_logits(df, torch.ones(8)))
    # R1 for a linear D: ∇ₓD = w for every sample, so γ/2·‖w‖²; lazily every 4th D step with weight 4
    lazy = GANObjective(tiny(reg=("r1",), gamma=3.0, reg_every=4))
    r1 = 0.5 * 3.0 * w.pow(2).sum()
    on, _ = lazy.d_loss(_linear_D(w), real, fake, 0, 8, torch.rand, randn)
    off, _ = lazy.d_loss(_linear_D(w), real, fake, 0, 9, torch.rand, randn)
    assert torch.allclose(on - bce, 4 * r1, rtol=1e-5) and torch.allclose(off, bce)


def test_hinge_and_wgan_gp_c0_and_l2():
    torch.manual_seed(1)
    w = torch.randn(12, requires_grad=True)
    real, fake = torch.randn(6, 1, 3, 4), torch.randn(6, 1, 3, 4)
    zeros = lambda s: torch.zeros(s)  # noqa: E731
    obj = GANObjective(tiny(loss="hinge"))
    w = w.detach()
    dr, df = real.flatten(1) @ w, fake.flatten(1) @ w
    _, gan = obj.d_loss(_linear_D(w), real, fake, 0, 0, torch.rand, zeros)
    assert torch.allclose(gan, (F.relu(1 - dr) + F.relu(1 + df)).mean())
    # WGAN-GP with c = 0 on a linear critic: γ/2·(‖w‖ − 0)²; L2: l2/2·‖w‖²
    obj = GANObjective(tiny(loss="wgan", reg=("gp0", "l2"), gamma=2.0, l2=0.1))
    total, gan = obj.d_loss(_linear_D(w), real, fake, 0, 0, torch.rand, zeros)
    assert torch.allclose(total - gan, (0.5 * 2.0 + 0.5 * 0.1) * w.pow(2).sum(), rtol=1e-5)


def test_the_alpha_clamp_gives_the_authors_codes_losses_and_stays_off_by_default():
    torch.manual_seed(2)
    w = 30.0 * torch.randn(12)                          # logits far past σ's clamp
    real, fake = torch.randn(8, 1, 3, 4), torch.randn(8, 1, 3, 4)
    zeros = lambda s: torch.zeros(s)  # noqa: E731
    dr, df = real.flatten(1) @ w, fake.flatten(1) @ w

    def source_alpha(t, label, alpha, ep=1e-7):   # the authors' AlphaLoss (gan.py), with its batch mean
        out = torch.clamp(torch.sigmoid(t), ep, 1 - ep)
        a = alpha / (alpha - 1)
        return torch.mean(a * (1 - label * out ** (1 / a)) - a * ((1 - label) * (1 - out) ** (1 / a)))
    obj = GANObjective(tiny(loss="alpha_ns", alpha_d=0.3, alpha_g=0.5, alpha_clamp=1e-7))
    _, gan = obj.d_loss(_linear_D(w), real, fake, 0, 0, torch.rand, zeros)
    torch.testing.assert_close(gan, source_alpha(dr, 1, 0.3) + source_alpha(df, 0, 0.3))
    torch.testing.assert_close(obj.g_loss(_linear_D(w), fake, 0, zeros), source_alpha(df, 1, 0.5))
    exact = GANObjective(tiny(loss="alpha_ns", alpha_d=0.3, alpha_g=0.5))
    assert exact.loss_hp["clamp"] == 0.0
    assert not torch.allclose(exact.d_loss(_linear_D(w), real, fake, 0, 0, torch.rand, zeros)[1], gan)
    with pytest.raises(ConfigError, match="alpha_clamp"):
        tiny(loss="alpha_ns", alpha_clamp=0.5)


def test_instance_noise_schedule():
    obj = GANObjective(tiny(reg=("noise",), noise_sigma=0.4, noise_anneal_steps=100))
    assert [obj.sigma(s) for s in (0, 50, 100, 200)] == pytest.approx([0.4, 0.2, 0.0, 0.0])
    assert GANObjective(tiny()).sigma(0) == 0.0


# --------------------------------------------------------------------------- EMA
def test_ema_follows_the_recurrence_and_bn_statistics_are_recomputed(tmp_path):
    cfg = tiny(max_steps=5, ema=0.8, ema_bn="recompute")
    tr = Trainer(cfg, None, dataset=fixture_for(cfg), quiet=True)
    expected = [p.detach().clone() for p in tr.G.parameters()]  # the EMA starts as a copy of G
    real_step = tr.opt_g.step

    def step(*a, **k):
        out = real_step(*a, **k)
        for e, p in zip(expected, tr.G.parameters()):
            e.mul_(0.8).add_(0.2 * p.detach())
        return out

    tr.opt_g.step = step
    tr.fit()
    for e, p in zip(expected, tr.G_ema.parameters()):
        assert torch.allclose(e, p, atol=1e-6)
    # recomputed statistics: the first BatchNorm's running mean is the mean over 16 batches of its input's batch means
    tr.sample(n=4)
    bn = next(m for m in tr.G_ema.modules() if isinstance(m, torch.nn.BatchNorm2d))
    conv = tr.G_ema.net[0]
    gen = torch.Generator().manual_seed(cfg.seed + 4)
    with torch.no_grad():
        means = [conv(torch.randn(tr.local_batch, cfg.nz, generator=gen).reshape(-1, cfg.nz, 1, 1)).mean((0, 2, 3))
                 for _ in range(16)]
    assert torch.allclose(bn.running_mean, torch.stack(means).mean(0), atol=1e-6)


# --------------------------------------------------------------------------- config and run folder
def test_run_folder_contents(tmp_path):
    cfg = tiny(max_steps=6, sample_every=3, ckpt_every=3, log_every=2)
    Trainer(cfg, tmp_path / "run", dataset=fixture_for(cfg), quiet=True).fit()
    run = tmp_path / "run"
    assert json.loads((run / "config.json").read_text()) == cfg.to_dict()
    rows = _metrics(run)
    assert [r["step"] for r in rows] == [0, 2, 4, 5]
    assert {"step", "loss_d", "loss_g", "lr_d", "lr_g"} <= set(rows[0])
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_0000003.png", "step_0000006.png"]
    assert (run / "loss_curves.png").stat().st_size > 0 and (run / "events.jsonl").exists()
    assert any(p.name.startswith("events.out.tfevents") for p in (run / "tb").iterdir())
    assert json.loads((run / "status.json").read_text())["state"] == "finished"


def test_existing_run_folder_is_refused(tmp_path):
    cfg = tiny(max_steps=1)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "x").write_text("")
    from gcann.train import RunError

    with pytest.raises(RunError, match="exists and is not empty"):
        Trainer(cfg, tmp_path / "run", dataset=fixture_for(cfg), quiet=True).fit()


@pytest.mark.parametrize("over, msg", [
    (dict(loss="nope"), "loss must be one of"),
    (dict(reg="r1,,r2"), "empty item"),
    (dict(reg=("r3",)), "unknown regulariser"),
    (dict(batch_size=0), "batch_size must be an integer >= 1"),
    (dict(ema=1.0), "ema must be in"),
    (dict(lr_d=float("nan")), "lr_d must be a finite number"),
    (dict(device="tpu"), "device must be"),
    (dict(arch="voxel", channels=3), "one channel"),
    (dict(compile=True, compile_mode="fast"), "compile_mode must be one of"),
    (dict(compile_mode="reduce-overhead"), "applies to compiled networks"),
])
def test_config_errors(over, msg):
    with pytest.raises(ConfigError, match=msg):
        tiny(**over)


def test_compiled_networks_train_like_eager_ones(tmp_path):
    """compile=True (here with compile_mode, which the CPU accepts and runs without CUDA graphs) trains
    through torch.compile and ends within float tolerance of the eager run."""
    from torch import _dynamo as dynamo

    ds = fixture_for(tiny())
    runs = {}
    for name, over in (("eager", {}), ("compiled", dict(compile=True, compile_mode="reduce-overhead"))):
        dynamo.reset()
        dynamo.utils.counters.clear()
        cfg = tiny(max_steps=3, **over)
        Trainer(cfg, tmp_path / name, dataset=ds, quiet=True).fit()
        runs[name] = load_checkpoint(tmp_path / name)
        frames = sum(dynamo.utils.counters["frames"].values())
        assert (frames > 0) == (name == "compiled")
    rows = {name: [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
            for name in runs}
    for a, b in zip(rows["eager"], rows["compiled"]):                # the losses of every step
        assert a["loss_d"] == pytest.approx(b["loss_d"], rel=1e-4) and a["loss_g"] == pytest.approx(b["loss_g"], rel=1e-4)
    for key in ("G", "D"):                                           # weights within half an Adam step (lr 2e-4)
        for k, v in runs["eager"][key].items():
            if v.is_floating_point():
                torch.testing.assert_close(runs["compiled"][key][k], v, rtol=0, atol=1e-4)


def test_dataset_shape_mismatch_is_one_line():
    cfg = tiny(resolution=32)
    with pytest.raises(ConfigError, match=r"samples of shape \(1, 28, 28\).*expect \(1, 32, 32\)"):
        Trainer(cfg, None, dataset=TensorSet(shape=(1, 28, 28)), quiet=True)


# --------------------------------------------------------------------------- data parallel
DDP_SCRIPT = """
import sys, torch
from tests.support.train_fixtures import fixture_for, tiny
from gcann.train import Trainer
cfg = tiny(**{over!r})
torch.set_num_threads(1)
Trainer(cfg, {out!r}, dataset=fixture_for(cfg, n=64), quiet=True).fit()
"""


@pytest.mark.parametrize("over", [
    dict(max_steps=4, batch_size=16, reg=("r1",), controller="gcann",
         gcann={"baseline_steps": 1, "gc_lr_window": 2, "cooldown_period": 1, "max_loss_diff": 0.05}),
], ids=["bn-r1-gcann"])
def test_two_gloo_processes_match_one_process_on_the_same_global_batch(tmp_path, over):
    for name, nproc in (("one", 1), ("two", 2)):
        script = tmp_path / f"{name}.py"
        script.write_text(DDP_SCRIPT.format(over=over, out=str(tmp_path / name)))
        r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
                            str(script)], capture_output=True, text=True, timeout=300, env=repo_env())
        assert r.returncode == 0, r.stderr[-3000:]
    one, two = load_checkpoint(tmp_path / "one"), load_checkpoint(tmp_path / "two")
    assert set(one["G"]) == set(two["G"])  # the synchronised batch norm saves as plain batch norm
    # float32 sums over the batch are split differently across processes: equal to rounding (measured: 6e-8)
    for key in ("G", "D"):
        for k, v in one[key].items():
            if v.is_floating_point():
                assert torch.allclose(v, two[key][k], rtol=1e-5, atol=1e-6), (key, k, (v - two[key][k]).abs().max())
    ev1, ev2 = ([json.loads(x) for x in (tmp_path / name / "events.jsonl").read_text().splitlines()]
                for name in ("one", "two"))
    key = lambda e: (e["step"], e["event"], e["reason"], e["lr_d_new"], e["lr_g_new"])  # noqa: E731
    assert ev1 and [key(e) for e in ev1] == [key(e) for e in ev2]
    assert [e["detail"].get("loss_g") for e in ev1] == pytest.approx([e["detail"].get("loss_g") for e in ev2], rel=1e-5)
    assert _metrics(tmp_path / "one")[-1]["loss_d"] == pytest.approx(_metrics(tmp_path / "two")[-1]["loss_d"], rel=1e-4)
    # rank 0 alone wrote the run folder: one TensorBoard file, one row per logged step
    assert len(list((tmp_path / "two" / "tb").iterdir())) == 1
    assert [r["step"] for r in _metrics(tmp_path / "two")] == [r["step"] for r in _metrics(tmp_path / "one")]
