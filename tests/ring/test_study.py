"""The ring study: Wilson intervals, setting names, 1-D toy closed forms, metrics on hand-made samples, the CLI."""
from __future__ import annotations

import json
import math

import pytest
import torch
from hypothesis import given, settings as hsettings, strategies as st

from dynamics.objectives import _alpha_loss_real
from gcann.cli import main
from gcann.metrics.toy import ring_modes, toy_mode_metrics
from gcann.ring.plots import TOY_FAKE, TOY_REAL, TOY_VAR, toy_generator_objectives, toy_optimal_logit
from gcann.ring.study import default_settings, parse_settings, wilson
from tests.support.paths import ROOT


@given(st.integers(1, 400).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
@hsettings(max_examples=60, deadline=None)
def test_wilson_interval_is_where_the_score_test_accepts(kn):
    """The Wilson bounds are the roots of |p̂ − p| = z·sqrt(p(1−p)/n): checked against that equation."""
    k, n = kn
    z = 1.959963984540054
    lo, hi = wilson(k, n)
    p_hat = k / n
    assert 0 <= lo <= p_hat <= hi <= 1
    for p in (lo, hi):
        if 0 < p < 1:
            assert abs(p_hat - p) == pytest.approx(z * math.sqrt(p * (1 - p) / n), rel=1e-9, abs=1e-12)
    if k == 0:
        assert lo == 0 and hi == pytest.approx(z * z / (n + z * z))


def test_setting_names_round_trip_and_bad_names_are_refused():
    parsed = parse_settings(default_settings())
    assert len(parsed) == 20 and [s.name for s in parsed] == default_settings()
    s = parse_settings("ns(0.5,1.2)+gcann+r1")[0]
    assert (s.loss, s.alpha_d, s.alpha_g, s.controller, s.r1 > 0, s.ema) == ("alpha_ns", 0.5, 1.2, "gcann", True, 0.0)
    for bad in ("foo", "sat(1,1)+bar", "sat(1)", "lsgan+r1+r1", "sat(1,1) sat(1,1)", "ns(0,1)"):
        with pytest.raises(ValueError):
            parse_settings(bad)


# --------------------------------------------------------------------------- 1-D toy
def test_optimal_discriminator_logit_maximises_the_alpha_d_value_pointwise():
    """Brute force: for each x, D* maximises −ℓ_αD(1, D)p_r(x) − ℓ_αD(0, D)p_g(x) over a fine grid of logits."""
    x = torch.tensor([-4.0, -3.0, -2.2, -2.0, -1.0, 0.5], dtype=torch.float64)
    pr = torch.exp(-0.5 * (x - TOY_REAL) ** 2 / TOY_VAR)
    pg = torch.exp(-0.5 * (x - TOY_FAKE) ** 2 / TOY_VAR)
    t = torch.linspace(-20, 20, 400_001, dtype=torch.float64)[:, None]
    for alpha in (1.0, 0.2, 2.0):
        value = -_alpha_loss_real(t, alpha) * pr - _alpha_loss_real(-t, alpha) * pg
        best = t[value.argmax(0), 0]
        torch.testing.assert_close(best, toy_optimal_logit(x, alpha), atol=2e-4, rtol=0)


def test_toy_generator_objectives_against_the_alpha_loss_formula():
    x = torch.linspace(-5, 1, 13, dtype=torch.float64)
    for ad, ag in ((1.0, 1.0), (0.2, 1.0), (0.2, 2.0)):
        obj = toy_generator_objectives(x, ad, ag)
        d = torch.sigmoid(toy_optimal_logit(x, ad))
        if ag == 1.0:
            sat, ns = torch.log(1 - d), -torch.log(d)                                   # −ℓ₁(0, D), ℓ₁(1, D)
        else:
            k = (ag - 1) / ag
            sat = -ag / (ag - 1) * (1 - (1 - d) ** k)
            ns = ag / (ag - 1) * (1 - d ** k)
        torch.testing.assert_close(obj["saturating"], sat, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(obj["non_saturating"], ns, rtol=1e-9, atol=1e-9)


# --------------------------------------------------------------------------- metrics as the study uses them
def test_mode_metrics_on_hand_made_sample_sets():
    modes = ring_modes()
    m = modes.means.float()
    # 3 modes hit exactly, one sample 2.9σ off mode 4 (high quality), one 3.1σ off mode 5 (not), 5 far away
    x = torch.cat([m[0:3].repeat(10, 1), (m[3] + torch.tensor([0.029, 0.0]))[None], (m[4] + torch.tensor([0, 0.031]))[None],
                   torch.zeros(5, 2)])
    out = toy_mode_metrics(x[None], modes)
    assert out["modes_covered"].item() == 4
    assert out["hq_ratio"].item() == pytest.approx(31 / 37)
    assert not out["success"].item() and not out["failure"].item()
    counts = out["counts"][0].double()
    p_gen = (counts + 1) / (37 + 8)
    assert out["kl"].item() == pytest.approx(float((1 / 8 * torch.log((1 / 8) / p_gen)).sum()))
    full = toy_mode_metrics(m.repeat(3, 1)[None], modes)
    assert full["success"].item() and full["modes_covered"].item() == 8


# --------------------------------------------------------------------------- end to end
def test_two_epoch_study_end_to_end(tmp_path, capsys):
    out = tmp_path / "study"
    rc = main(["ring", "study", "--seeds", "2", "--epochs", "2", "--n-train", "256", "--eval-samples", "500",
               "--curve-samples", "100", "--settings", "ns(1,1);ns(1,1)+gcann;sat(0.3,1)+r1;lsgan+ema", "--out", str(out)])
    assert rc == 0
    results = json.loads((out / "results.json").read_text())
    assert [r["setting"] for r in results] == ["ns(1,1)", "ns(1,1)+gcann", "sat(0.3,1)+r1", "lsgan+ema"]
    run = json.loads((out / "run.json").read_text())
    for r in results:
        assert r["n_seeds"] == 2
        per = [m for row, m in zip(run["rows"], run["metrics"]["modes_covered"]) if row["setting"] == r["setting"]]
        assert r["modes_mean"] == pytest.approx(sum(per) / 2)
        k = sum(v == 8 for v in per)
        assert r["success"] == k / 2 and r["success_ci95"] == pytest.approx(list(wilson(k, 2)))
        assert 0 <= r["hq_mean"] <= 1 and r["failure_ci95"][0] <= r["failure"] <= r["failure_ci95"][1]
    assert run["meta"]["epochs"] == 2 and run["curves"]["epochs"] == [1, 2]
    assert "reduced size: 2 seeds x 2 epochs" in (out / "results.md").read_text()
    for fig in ("success_failure", "modes_hq", "coverage_epochs", "scatter", "controller_events"):
        assert (out / f"{fig}.png").stat().st_size > 1000
    assert "reduced size" in capsys.readouterr().err


def test_a_study_stopped_and_resumed_writes_the_uninterrupted_studys_results(tmp_path, capsys):
    """``--checkpoint-every 1`` for one epoch, then ``--resume --epochs 2``: results.json, the curves and the
    histories equal those of the 2-epoch study run at once (the CPU gives the same bits)."""
    args = ["ring", "study", "--seeds", "2", "--n-train", "256", "--eval-samples", "500", "--curve-samples", "100",
            "--settings", "ns(1,1) sat(0.3,1)+gcann", "--no-figures"]
    assert main([*args, "--epochs", "2", "--out", str(tmp_path / "whole")]) == 0
    part = tmp_path / "part"
    assert main([*args, "--epochs", "1", "--checkpoint-every", "1", "--out", str(part)]) == 0
    assert (part / "state.pt").is_file()
    assert main([*args, "--epochs", "2", "--resume", "--out", str(part)]) == 0
    whole, resumed = (json.loads((d / "run.json").read_text()) for d in (tmp_path / "whole", part))
    assert (part / "results.json").read_text() == (tmp_path / "whole" / "results.json").read_text()
    for key in ("curves", "history", "events", "d_updates", "g_updates", "metrics", "rows"):
        assert resumed[key] == whole[key], key
    assert resumed["meta"]["resumed"] and not whole["meta"]["resumed"]
    # other arguments than the saved run's: one line, exit 2, the state and the results left as they were
    state, results = (part / "state.pt").read_bytes(), (part / "results.json").read_text()
    assert main([*args[:3], "3", *args[4:], "--epochs", "3", "--resume", "--out", str(part)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("gcann: error: ") and "was saved by a run with another 'settings'" in err
    assert (part / "state.pt").read_bytes() == state and (part / "results.json").read_text() == results


def test_the_alpha_sweep_writes_figure_1_and_says_which_form_ran(tmp_path):
    """``--alpha-sweep``: one saturating (α_D, 1) setting per α_D, rates with Wilson intervals beside the
    published ones, Figure 1; results.json, results.md and run.json name the form."""
    for form in ("source", "exact"):
        out = tmp_path / form
        assert main(["ring", "study", "--alpha-sweep", "--alpha-d", "0.3,1,0.45", "--seeds", "3", "--epochs", "2",
                     "--n-train", "300", "--eval-samples", "400", "--curve-samples", "100", "--form", form,
                     "--out", str(out)]) == 0
        results = json.loads((out / "results.json").read_text())
        assert [r["setting"] for r in results] == ["sat(0.3,1)", "sat(1,1)", "sat(0.45,1)"]
        assert {r["form"] for r in results} == {form}
        assert f"Form: **{form}**" in (out / "results.md").read_text()
        run = json.loads((out / "run.json").read_text())
        assert run["meta"]["form"] == form and run["meta"]["steps"] == (6 if form == "source" else 4)
        sweep = json.loads((out / "alpha_sweep.json").read_text())
        assert sweep["form"] == form and [r["alpha_d"] for r in sweep["rates"]] == [0.3, 0.45, 1.0]
        for r in sweep["rates"]:
            mine = next(x for x in results if x["alpha_d"] == r["alpha_d"])
            assert r["success"] == mine["success"] and r["failure_ci95"] == mine["failure_ci95"]
        pub = {r["alpha_d"]: r.get("published") for r in sweep["rates"]}
        assert pub[0.45] is None                                 # not in the paper's sweep
        assert pub[1.0]["success"] == pytest.approx(93 / 200) and pub[1.0]["failure"] == pytest.approx(59 / 200)
        assert pub[0.3]["success_ci95"] == pytest.approx(list(wilson(174, 200)))
        assert (out / "figure1.png").stat().st_size > 1000


@pytest.mark.parametrize("args,msg", [(["--seeds", "0"], "--seeds must be >= 1"),
                                      (["--settings", "sat(1,1)+foo"], "unknown setting"),
                                      (["--epochs", "-1"], "--epochs must be >= 1"),
                                      (["--device", "cpu", "--fused-adam", "--settings", "ns(1,1)"], "--fused-adam applies to the CUDA"),
                                      (["--fused-adam", "--settings", "ns(1,1) lsgan+gcann"], "settings with a controller"),
                                      (["--device", "cpu", "--tf32"], "--tf32 applies to CUDA"),
                                      (["--resume"], "state.pt' does not exist"),
                                      (["--checkpoint-every", "-1"], "--checkpoint-every must be >= 0"),
                                      (["--alpha-sweep", "--settings", "ns(1,1)"], "drop --settings"),
                                      (["--alpha-sweep", "--alpha-d", "0.3,x"], "--alpha-d: not a number"),
                                      (["--alpha-sweep", "--alpha-d", "0.3,0.3"], "repeats a value"),
                                      (["--alpha-sweep", "--alpha-d", "0.3,-1"], "alpha_d must be a finite number > 0"),
                                      (["--eval-samples", "100", "--curve-samples", "200"], "must not exceed"),
                                      (["--form", "other"], "Invalid value for '--form'")])
def test_study_user_errors_are_one_line(tmp_path, capsys, args, msg):
    assert main(["ring", "study", *args, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gcann: error: ") and msg in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_the_full_size_part_runs_at_a_tiny_size_and_writes_small_results(tmp_path):
    """benchmarks/ring_full.sh (cuda_all.sh's ring-full part) on the CPU with a tiny size appended: it writes
    results.json and results.md (each far under 16 MiB) and no state file."""
    import os
    import subprocess

    script = ROOT / "benchmarks" / "ring_full.sh"
    env = {**os.environ, "RING_DEVICE": "cpu"}
    proc = subprocess.run(["bash", str(script), str(tmp_path), "--seeds", "1", "--epochs", "1", "--n-train", "200",
                           "--eval-samples", "300", "--curve-samples", "100"], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = tmp_path / "ring-full"
    results = json.loads((out / "results.json").read_text())
    assert [r["setting"] for r in results] == ["sat(1,1)", "sat(0.3,1)", "ns(1,1)", "ns(0.5,1.2)"]
    assert {r["form"] for r in results} == {"source"}
    for name in ("results.json", "results.md"):
        assert 0 < (out / name).stat().st_size < 16 * 2**20
    assert not (out / "state.pt").exists()


def test_form_notes_count_the_steps_of_the_run():
    from gcann.ring.study import form_note

    assert "(of 50,000 points: 391 steps per epoch, the last of 80)" in form_note("source", 50_000, 128)
    assert "(of 256 points: 2 steps per epoch)" in form_note("source", 256, 128)
    assert "(of 300 points: 3 steps per epoch, the last of 44)" in form_note("source", 300, 128)
    assert "(390 steps per epoch of 50,000 points)" in form_note("exact", 50_000, 128)
