"""Every registered controller drives the image trainer through the one interface: its plans reach the
optimisers and the objective, its knobs and statistics are logged, its state resumes bit for bit.
Laws are replayed by hand from the run's own metrics.jsonl (the losses and statistics it read)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from gcann.control import CONTROLLERS
from gcann.train import ConfigError, Trainer
from gcann.train.checkpoint import load_checkpoint
from tests.support.train_fixtures import fixture_for, tiny


def rows(run: Path) -> list[dict]:
    out = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
    for r in out:
        r.pop("time", None)
    return out


def train(tmp_path: Path, name: str, controller: str, steps: int = 8, **over) -> Path:
    cfg = tiny(max_steps=steps, controller=controller, **over)
    Trainer(cfg, tmp_path / name, dataset=fixture_for(cfg, n=16 * 12), quiet=True).fit()
    return tmp_path / name


@pytest.mark.parametrize("name", sorted(CONTROLLERS))
def test_every_controller_trains_and_logs(tmp_path, name):
    run = train(tmp_path, "run", name, steps=4)
    got = rows(run)
    assert [r["step"] for r in got] == [0, 1, 2, 3] and all(math.isfinite(r["loss_d"]) for r in got)
    knobs = CONTROLLERS[name].knob_names
    if name == "clc":
        assert all(r["clc_weight"] == 10.0 for r in got)
    if name == "ada":
        assert all("noise_sigma" in r and -1.0 <= r["real_sign"] <= 1.0 for r in got)
    if not knobs:
        assert not ({"noise_sigma", "r1_gamma", "clc_weight"} & set(got[0]))


def test_ttur_rates_are_three_to_one(tmp_path):
    got = rows(train(tmp_path, "run", "ttur", steps=3, lr_d=5e-4, lr_g=2e-4))
    assert all(r["lr_d"] == pytest.approx(6e-4) and r["lr_g"] == 2e-4 for r in got)


def test_gap_rate_follows_the_logged_losses(tmp_path):
    """lr_D(t) = base · f(s − log 4), s the 0.95-EMA (from log 4) of the D losses observed up to t − 1 (lag 1)."""
    got = rows(train(tmp_path, "run", "gap", steps=10, lr_d=1e-3))
    v = math.log(4.0)
    s = v
    for t, r in enumerate(got):
        x, xm = s - v, 0.1 * v
        f = min(max(2.0 ** min(x / xm, 1.0), 1.0), 2.0) if x > 0 else min(max(0.1 ** min(-x / xm, 1.0), 0.1), 1.0)
        assert r["lr_d"] == pytest.approx(1e-3 * f, rel=1e-9), t
        s = 0.95 * s + 0.05 * r["loss_d"]


def test_ada_sigma_follows_its_integrator_on_the_logged_real_sign(tmp_path):
    """σ(t) = scale · p(t), p moved by sign(r − target) · batch · interval / (kimg · 1000) after each observation."""
    cs = {"interval": 1, "kimg": 0.5, "scale": 0.2, "target": 0.0}
    got = rows(train(tmp_path, "run", "ada", steps=10, controller_set=cs))
    p = 0.0
    for t, r in enumerate(got):
        assert r["noise_sigma"] == pytest.approx(0.2 * p, abs=1e-15), t
        assert r["sigma"] == r["noise_sigma"]                              # the knob is the noise's σ
        rt = r["real_sign"]
        p = min(max(p + (0.0 if rt == 0 else math.copysign(1.0, rt)) * 16 / 500.0, 0.0), 1.0)
    assert len({r["noise_sigma"] for r in got}) > 1


def test_knobs_at_zero_train_exactly_as_no_controller(tmp_path):
    """clc at λ = 0 and ada with σ held at 0 add terms that are exactly zero: the weights equal a run without a
    controller bit for bit. (CLC's extra D passes on its buffers move D's batch-norm running statistics, which
    training never reads: D trains in train mode. Those buffers are left out of the comparison.)"""
    plain = load_checkpoint(train(tmp_path, "plain", "none"))
    for name, cs in (("clc", {"weight": 0.0, "buffer_batches": 2}),
                     ("ada", {"knob": "noise_sigma", "p_max": 1e-300, "kimg": 1e300})):
        other = load_checkpoint(train(tmp_path, name, name, controller_set=cs))
        for key in ("G", "D"):
            for k, v in plain[key].items():
                if "running_" in k or "num_batches" in k:
                    continue
                assert torch.equal(v, other[key][k]), (name, key, k)


@pytest.mark.parametrize("name,cs", [("ada", {"interval": 1, "kimg": 1.0, "target": -0.5}),
                                     ("clc", {"weight": 1.0, "buffer_batches": 2}),
                                     ("gap", {})])
def test_controlled_run_resumes_bit_for_bit(tmp_path, name, cs):
    cfg = tiny(max_steps=10, ckpt_every=4, controller=name, controller_set=cs)
    ds = fixture_for(cfg, n=16 * 12)
    Trainer(cfg, tmp_path / "a", dataset=ds, quiet=True).fit()
    Trainer(cfg.replace(max_steps=6), tmp_path / "b", dataset=ds, quiet=True).fit()
    (tmp_path / "b" / "config.json").write_text(json.dumps(cfg.replace(max_steps=6).to_dict()))
    Trainer.resume(tmp_path / "b", max_steps=10, dataset=ds, quiet=True).fit()
    a, b = load_checkpoint(tmp_path / "a"), load_checkpoint(tmp_path / "b")
    for key in ("G", "D"):
        for k, v in a[key].items():
            assert torch.equal(v, b[key][k]), (key, k)
    assert a["control"] == b["control"]
    assert rows(tmp_path / "a") == rows(tmp_path / "b")


def test_bad_controller_settings_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="controller"):
        tiny(controller="nope")
    with pytest.raises(ConfigError, match="unknown setting"):
        Trainer(tiny(controller="ttur", controller_set={"rato": 2}), None, dataset=fixture_for(tiny()), quiet=True)
    from gcann.cli import main
    assert main(["train", "--preset", "mnist5k-demo", "--controller", "gap", "--controller-set", "{oops",
                 "--out", str(tmp_path / "x")]) == 2


def test_a_sweep_grid_over_every_controller_expands_to_valid_runs():
    from gcann.train.sweep import expand

    runs = expand("mnist5k-demo", [0, 1], {"controller": sorted(CONTROLLERS)})
    assert len(runs) == 2 * len(CONTROLLERS) and len({n for n, _ in runs}) == len(runs)
    assert sorted({cfg.controller for _, cfg in runs}) == sorted(CONTROLLERS)
    with pytest.raises(ConfigError, match="controller"):
        expand("mnist5k-demo", [0], {"controller": ["none", "nope"]})
