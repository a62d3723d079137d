"""`gcann report` end to end on sweep and run folders written in the trainer's and the sweep's formats."""
from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sst

from gcann.cli import main
from gcann.report import make_report
from gcann.train.sweep import expand

N_LOG = 40   # logged points per run


def gap_of(controller: str, seed: int) -> float:
    """The constant loss gap a synthetic run logs: GCANN smaller by 0.1 + 0.01·seed, seeds differing a lot."""
    base = 1.0 + 0.5 * seed
    return base - (0.1 + 0.01 * seed if controller == "gcann" else 0.0)


def write_run(rd: Path, cfg: dict, *, diverge_at: int | None = None, pairwise: float | None = None,
              events: int = 0) -> None:
    """A run folder as gcann.train.loop writes it: config.json, metrics.jsonl, events.jsonl, status.json."""
    rd.mkdir(parents=True)
    (rd / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    gap = gap_of(cfg["controller"], cfg["seed"])
    rows, last = [], N_LOG if diverge_at is None else diverge_at
    for s in range(last):
        wobble = 0.05 * ((s * 7 + cfg["seed"]) % 5 - 2) / 2   # same wobble in both settings at a seed
        rows.append({"step": s, "epoch": s / 100, "loss_d": 0.5 + gap + wobble, "loss_g": 0.5, "lr_d": cfg["lr_d"],
                     "lr_g": cfg["lr_g"], "d_steps": 1, "g_steps": 1, "sigma": 0.0, "time": 0.0})
    if pairwise is not None:
        rows.append({"step": N_LOG, "eval": {"pairwise": pairwise}})
    (rd / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (rd / "events.jsonl").write_text("".join(
        json.dumps({"step": i, "event": "lr_decrease" if i % 2 else "pause", "reason": "x", "observed_step": i})
        + "\n" for i in range(events)))
    state = "finished" if diverge_at is None else "diverged"
    (rd / "status.json").write_text(json.dumps({"state": state, "step": N_LOG if diverge_at is None else diverge_at,
                                                "total_steps": N_LOG, "message": "non-finite loss at step 7" if
                                                diverge_at else "done", "last_checkpoint": None}))


def write_sweep(out: Path, seeds, grid, *, diverged=(), pairwise=None, events=0, order=None) -> list[Path]:
    runs = expand("mnist5k-demo", list(seeds), grid)
    dirs = []
    for name, cfg in runs:
        d = cfg.to_dict()
        key = (d["controller"], d["seed"])
        write_run(out / name, d, diverge_at=7 if key in diverged else None,
                  pairwise=None if pairwise is None else pairwise(*key), events=events if d["controller"] == "gcann" else 0)
        dirs.append(out / name)
    listing = [{"name": n, "run_dir": str(out / n), "job_id": str(i)} for i, (n, _) in enumerate(runs)]
    if order is not None:
        listing = [listing[i] for i in order]
    (out / "sweep.json").write_text(json.dumps({"executor": "local", "runs": listing}))
    return dirs


def run_cli(args, capsys):
    rc = main(["report", *map(str, args)])
    return rc, capsys.readouterr()


def test_sweep_end_to_end(tmp_path, capsys):
    seeds = range(6)
    write_sweep(tmp_path / "sw", seeds, {"controller": ["none", "gcann"]}, pairwise=lambda c, s: 0.2 + 0.01 * s,
                events=3)
    rc, io = run_cli([tmp_path / "sw", "--out", tmp_path / "rep"], capsys)
    assert rc == 0, io.err
    doc = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert {"groups", "comparisons", "claims"} <= set(doc)
    assert [g["setting"] for g in doc["groups"]] == [{"controller": "gcann"}, {"controller": "none"}]
    g = doc["groups"][0]
    assert g["n_seeds"] == 6 and g["failures"]["diverged"] == 0
    m = g["metrics"]["loss_gap"]
    assert {"per_seed", "mean", "std", "ci95", "interval"} <= set(m)
    assert m["interval"] == "t" and set(m["per_seed"]) == {str(s) for s in seeds}
    want = [gap_of("gcann", s) for s in seeds]
    assert [m["per_seed"][str(s)] for s in seeds] == pytest.approx(want, abs=0.03)
    ref = sst.ttest_1samp(list(m["per_seed"].values()), 0).confidence_interval(0.95)
    assert m["ci95"] == pytest.approx([ref.low, ref.high])
    assert g["metrics"]["pairwise"]["evaluation"]["samples"] == [2048]    # the preset's eval_samples
    assert g["runs"][0]["events"] == {"lr_decrease": 1, "pause": 2}
    comp = {c["metric"]: c for c in doc["comparisons"]}
    assert set(comp) == {"loss_gap", "loss_gap_var", "pairwise"}
    c = comp["loss_gap"]
    assert {"setting", "metric", "diff_mean", "ci95", "p_value", "test", "verdict"} <= set(c)
    none = doc["groups"][1]["metrics"]["loss_gap"]["per_seed"]
    diffs = [m["per_seed"][str(s)] - none[str(s)] for s in seeds]
    assert c["diff_mean"] == pytest.approx(np.mean(diffs))
    assert c["p_value"] == pytest.approx(sst.wilcoxon(diffs).pvalue)
    assert c["verdict"] == "better" and c["baseline"] == {"controller": "none"}
    assert "wilcoxon" in c["test"].lower()
    claims = {cl["claim"]: cl for cl in doc["claims"]}
    tight = claims["tighter convergence of the two losses"]
    assert tight["metrics"][0]["comparisons"][0]["verdict"] == "better"
    assert claims["lower Chamfer distance (3D)"]["summary"] == "not measured in this report"
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "### Claim: tighter convergence of the two losses" in md and "not measured in this report" in md
    assert "IS needs the 1008-class Inception logits" in md
    assert (tmp_path / "rep" / "curve_loss_gap.png").stat().st_size > 1000
    assert str(tmp_path / "rep" / "report.md") in io.out


def test_shuffled_listing_gives_the_same_report(tmp_path):
    seeds = [3, 1, 4, 0, 5, 2]
    write_sweep(tmp_path / "a", seeds, {"controller": ["none", "gcann"]})
    dirs = write_sweep(tmp_path / "b", seeds, {"controller": ["none", "gcann"]}, order=list(range(11, -1, -1)))
    shuffled = list(dirs)
    random.Random(1).shuffle(shuffled)
    a, _ = make_report([tmp_path / "a"], tmp_path / "ra", figures=False)
    b, _ = make_report([tmp_path / "b"], tmp_path / "rb", figures=False)
    c, _ = make_report(shuffled, tmp_path / "rc", figures=False)

    def strip(doc):
        return json.loads(json.dumps({k: doc[k] for k in ("groups", "comparisons", "claims")}).replace(
            str(tmp_path / "a"), "X").replace(str(tmp_path / "b"), "X"))

    assert strip(a) == strip(b) == strip(c)
    assert a["groups"][0]["seeds"] == [0, 1, 2, 3, 4, 5]


def test_diverged_run_is_counted_not_dropped(tmp_path):
    write_sweep(tmp_path / "sw", range(4), {"controller": ["none", "gcann"]}, diverged={("gcann", 2)})
    doc, _ = make_report([tmp_path / "sw"], tmp_path / "rep", figures=False)
    g = next(g for g in doc["groups"] if g["setting"] == {"controller": "gcann"})
    assert g["n_seeds"] == 4 and g["failures"]["diverged"] == 1
    m = g["metrics"]["loss_gap"]
    assert m["per_seed"]["2"] is None and "diverged" in m["missing"]["2"] and m["n"] == 3
    kept = [m["per_seed"][s] for s in ("0", "1", "3")]
    assert m["mean"] == pytest.approx(np.mean(kept))
    c = next(c for c in doc["comparisons"] if c["metric"] == "loss_gap")
    assert c["n_pairs"] == 3 and "(not paired): 2" in c["note"]
    run = next(r for r in g["runs"] if r["seed"] == 2)
    assert run["state"] == "diverged"
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "1 diverged" in md and "3 / 4" in md


def test_nan_loss_marks_a_run_diverged(tmp_path):
    write_sweep(tmp_path / "sw", range(2), {"controller": ["none", "gcann"]})
    rd = next(p for p in (tmp_path / "sw").iterdir() if p.name.endswith("gcann-seed1"))
    with open(rd / "metrics.jsonl", "a") as f:
        f.write('{"step": 99, "loss_d": NaN, "loss_g": 0.5}\n')
    doc, _ = make_report([tmp_path / "sw"], tmp_path / "rep", figures=False)
    g = next(g for g in doc["groups"] if g["setting"] == {"controller": "gcann"})
    assert g["failures"]["diverged"] == 1 and g["metrics"]["loss_gap"]["per_seed"]["1"] is None


def test_collapse_rule_counts_and_keeps_values(tmp_path):
    write_sweep(tmp_path / "sw", range(3), {"controller": ["none", "gcann"]},
                pairwise=lambda c, s: 0.01 if (c, s) == ("none", 1) else 0.3)
    doc, _ = make_report([tmp_path / "sw"], tmp_path / "rep", figures=False, metrics="pairwise")
    g = next(g for g in doc["groups"] if g["setting"] == {"controller": "none"})
    assert g["failures"]["collapsed"] == 1 and g["metrics"]["pairwise"]["n"] == 3
    assert doc["metrics"] == ["loss_gap", "pairwise"]


def test_lr_grid_and_explicit_baseline(tmp_path, capsys):
    write_sweep(tmp_path / "sw", range(2), {"lr": [1e-4, 2e-4], "controller": ["none", "gcann"]})
    rc, io = run_cli([tmp_path / "sw", "--out", tmp_path / "rep", "--baseline", "lr=0.0001",
                      "--baseline", "controller=none", "--no-figures"], capsys)
    assert rc == 0, io.err
    doc = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert {json.dumps(g["setting"], sort_keys=True) for g in doc["groups"]} == {
        json.dumps({"controller": c, "lr": lr}, sort_keys=True) for c in ("none", "gcann") for lr in (1e-4, 2e-4)}
    assert {json.dumps(c["baseline"], sort_keys=True) for c in doc["comparisons"]} == {
        json.dumps({"controller": "none", "lr": 1e-4}, sort_keys=True)}
    assert len({json.dumps(c["setting"]) for c in doc["comparisons"]}) == 3
    # the default pairs each controller with controller none at the same lr
    doc, _ = make_report([tmp_path / "sw"], tmp_path / "rep2", figures=False)
    assert all(c["baseline"] == {**c["setting"], "controller": "none"} for c in doc["comparisons"])


def test_eval_hook_caches(tmp_path):
    write_sweep(tmp_path / "sw", range(2), {"controller": ["none", "gcann"]})
    calls = []

    def evaluate(rd):
        calls.append(rd)
        return {"step": 40, "num_samples": 300, "metrics": {"kid": 0.1, "kid_std": 0.01}}

    doc, _ = make_report([tmp_path / "sw"], tmp_path / "r1", figures=False, evaluate=evaluate)
    assert len(calls) == 4 and doc["groups"][0]["metrics"]["kid"]["evaluation"]["se_per_seed"] == {"0": 0.01, "1": 0.01}
    doc2, _ = make_report([tmp_path / "sw"], tmp_path / "r2", figures=False, evaluate=evaluate)
    assert len(calls) == 4 and doc2["groups"] == json.loads(json.dumps(doc["groups"]))


@pytest.mark.parametrize("case", ["missing", "empty", "metric", "baseline-form", "baseline-key", "baseline-value",
                                  "several-no-out", "file"])
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, case):
    sw = tmp_path / "sw"
    write_sweep(sw, range(2), {"controller": ["none", "gcann"]})
    (tmp_path / "empty").mkdir()
    (tmp_path / "f.txt").write_text("x")
    args = {"missing": [tmp_path / "nope"], "empty": [tmp_path / "empty"], "metric": [sw, "--metrics", "fid"],
            "baseline-form": [sw, "--baseline", "controller"], "baseline-key": [sw, "--baseline", "lr=1"],
            "baseline-value": [sw, "--baseline", "controller=ada"], "several-no-out": [sw, tmp_path / "empty"],
            "file": [tmp_path / "f.txt"]}[case]
    rc, io = run_cli(args, capsys)
    assert rc == 2
    lines = io.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gcann: error: "), io.err
    if case == "metric":
        assert "available: loss_gap, loss_gap_var" in lines[0]
    if case == "baseline-value":
        assert '"gcann"' in lines[0] and '"none"' in lines[0]


def test_import_does_not_load_matplotlib():
    import subprocess
    import sys

    code = "import sys, gcann.report, gcann.cli.report; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_single_run_folder(tmp_path, capsys):
    dirs = write_sweep(tmp_path / "sw", [0], {"controller": ["none"]})
    rc, io = run_cli([dirs[0], "--no-figures"], capsys)
    assert rc == 0, io.err
    doc = json.loads((dirs[0] / "report" / "report.json").read_text())
    assert doc["kind"] == "runs" and [g["setting"] for g in doc["groups"]] == [{}]
    assert doc["comparisons"] == [] and doc["groups"][0]["metrics"]["loss_gap"]["ci95"] is None
    assert doc["claims"][0]["summary"] == "measured, no comparison (one setting)"
