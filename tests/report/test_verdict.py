"""gcann verdict: the plans at cpu and full size, a tiny end-to-end suite, --report-only, bad input."""
from __future__ import annotations

import json
import shutil

import pytest

from gcann.cli import main
from gcann.report import verdict as V


# ---------------------------------------------------------------------------- plans (nothing runs)
def test_cpu_plan_sizes_and_runs():
    parts = {p.name: p for p in V.plan("cpu")}
    assert list(parts) == ["ring", "mnist5k", "fashion", "biped"]
    ring = parts["ring"]
    assert ring.size["seeds"] >= 8 and ring.settings[0] == "ns(1,1)" and "ns(1,1)+gcann" in ring.settings
    for name, preset, seeds in (("mnist5k", "mnist5k-demo", 6), ("fashion", "fashion-dcgan", 6),
                                ("biped", "biped3d-dcgan", 3)):
        p = parts[name]
        assert p.size["seeds"] >= seeds and p.controllers == ["none", "gcann"]
        assert len(p.runs) == 2 * p.size["seeds"]
        cfgs = [c for _, c in p.runs]
        assert {c.preset for c in cfgs} == {preset}
        assert sorted({c.controller for c in cfgs}) == ["gcann", "none"]
        assert {c.seed for c in cfgs} == set(range(p.size["seeds"]))
        assert all(c.max_steps is not None and c.device == "cpu" for c in cfgs)
    assert parts["mnist5k"].size["metrics"].split(",")[:2] == ["fd_domain", "kid_domain"]
    assert "chamfer" in parts["biped"].size["metrics"]
    assert {c.gcann_preset for _, c in parts["biped"].runs} == {"paper-bicar3d"}   # the paper's 3-D values
    assert {c.gcann_preset for _, c in parts["fashion"].runs} == {"paper-celeba"}
    total = sum(p.estimate_s() for p in parts.values())
    assert 40 * 60 <= total <= 90 * 60      # aimed at about an hour; within 2 hours


def test_controllers_option_and_unknown_controller():
    parts = V.plan("cpu", controllers="gcann,ttur")
    assert all(p.controllers == ["none", "gcann", "ttur"] for p in parts)
    assert "ns(1,1)+ttur" in parts[0].settings
    with pytest.raises(V.VerdictError, match="unknown controller"):
        V.plan("cpu", controllers="none,nope")


def test_full_plan_needs_data_root(tmp_path):
    with pytest.raises(V.VerdictError, match="--data-root"):
        V.plan("full")
    with pytest.raises(V.VerdictError, match="celeba"):
        V.plan("full", data_root=tmp_path)
    (tmp_path / "celeba").mkdir()
    (tmp_path / "bicar3d").mkdir()
    parts = {p.name: p for p in V.plan("full", data_root=tmp_path)}
    assert set(parts) == {"ring", "mnist5k", "fashion", "celeba", "bicar3d"}
    assert (parts["ring"].size["seeds"], parts["ring"].size["epochs"]) == (200, 400)
    celeba = [c for _, c in parts["celeba"].runs]
    assert {c.data_root for c in celeba} == {str(tmp_path / "celeba")}
    assert all(c.max_steps is None and c.epochs == 100 and "fid" in c.metrics for c in celeba)
    assert all(c.dataset == "bicar3d" and "chamfer" in c.metrics for _, c in parts["bicar3d"].runs)
    assert all(p.estimate_s() is None for p in parts.values())
    rows = V.submit_full(list(parts.values()), tmp_path / "out", dry_run=True)
    assert len(rows) == 1 + sum(len(p.runs) for p in parts.values() if p.kind == "sweep")
    assert not (tmp_path / "out").exists()


def test_cli_dry_run_full(tmp_path, capsys):
    (tmp_path / "celeba").mkdir()
    (tmp_path / "bicar3d").mkdir()
    assert main(["verdict", "--size", "full", "--dry-run", "--data-root", str(tmp_path),
                 "--out", str(tmp_path / "v")]) == 0
    out = capsys.readouterr().out
    assert "part celeba" in out and "celeba-dcgan-controller=gcann-seed9" in out
    assert not (tmp_path / "v").exists()


@pytest.mark.parametrize("args, msg", [
    (["--size", "cpu", "--controllers", "none,nope"], "unknown controller"),
    (["--size", "full"], "--data-root"),
    (["--size", "cpu", "--report-only"], "--report-only"),
])
def test_cli_bad_input_one_line_exit_2(tmp_path, capsys, args, msg):
    (tmp_path / "empty").mkdir()
    assert main(["verdict", *args, "--out", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gcann: error:") and msg in err and "\n" not in err


def test_report_only_missing_folder(tmp_path, capsys):
    assert main(["verdict", "--size", "cpu", "--report-only", "--out", str(tmp_path / "nothing")]) == 2
    assert "does not exist" in capsys.readouterr().err


# ---------------------------------------------------------------------------- a tiny suite, end to end
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("verdict") / "tiny"
    lines: list[str] = []
    doc = V.run_verdict("tiny", out, log=lines.append)
    return out, doc, lines


def test_tiny_verdict_end_to_end(tiny):
    out, doc, lines = tiny
    assert any("estimate for the whole suite" in m for m in lines)
    on_disk = json.loads((out / "verdict.json").read_text())
    assert [p["part"] for p in on_disk["parts"]] == ["ring", "mnist5k"]
    assert all(p["status"] == "done" and p["seconds"] > 0 for p in on_disk["parts"])
    mn = on_disk["parts"][1]
    assert mn["sizes"]["seeds"] == 2 and mn["sizes"]["steps"] == 4 and mn["sizes"]["num_samples"] == 150
    assert 0.0 <= mn["sizes"]["domain_classifier_accuracy"] <= 1.0
    assert mn["evaluation"]["fd_domain"]["se_how"].startswith("std over bootstrap")
    claims = {c["claim"]: c for c in on_disk["claims"]}
    conv = claims["tighter convergence of the two losses"]["rows"]
    assert {(r["part"], r["metric"]) for r in conv} >= {("ring", "loss_gap"), ("mnist5k", "loss_gap")}
    assert all(r["verdict"] in ("better", "worse", "inconclusive") for r in conv)
    # the rows are the reports' own comparisons, not recomputed
    rep = json.loads((out / "mnist5k" / "report" / "report.json").read_text())
    ref = next(c for c in rep["comparisons"] if c["metric"] == "loss_gap")
    row = next(r for r in conv if r["part"] == "mnist5k" and r["metric"] == "loss_gap")
    assert (row["diff_mean"], row["ci95"], row["verdict"]) == (ref["diff_mean"], ref["ci95"], ref["verdict"])
    quality = claims["higher visual quality (images): FID or its stand-ins (KID; fd_domain, kid_domain)"]["rows"]
    assert {r["metric"] for r in quality} == {"fd_domain", "kid_domain"} and {r["part"] for r in quality} == {"mnist5k"}
    md = (out / "verdict.md").read_text()
    assert "fd_domain" in md and "IS needs" in md and "FID" in md
    for g in rep["groups"]:
        fd = g["metrics"]["fd_domain"]
        assert fd["n"] == 2 and set(fd["evaluation"]["se_per_seed"]) == {"0", "1"}
    runs = sorted((out / "mnist5k").glob("mnist5k-demo-*"))
    assert len(runs) == 4 and all((r / "eval.json").is_file() for r in runs)
    assert list((out / "domain").glob("domain-*.pt"))


def test_tiny_verdict_resumes_and_report_only_reads(tiny, monkeypatch):
    out, doc, _ = tiny
    import gcann.metrics.evaluate as ev
    import gcann.ring.study as study
    import gcann.train.sweep as sweep

    def boom(*a, **k):
        raise AssertionError("nothing may be trained or evaluated again")

    monkeypatch.setattr(ev, "evaluate_checkpoint", boom)
    monkeypatch.setattr(sweep, "run_config", boom)
    monkeypatch.setattr(study, "run_study", boom)
    again = V.run_verdict("tiny", out, log=lambda m: None)          # every part has its part.json
    assert [p["status"] for p in again["parts"]] == ["done", "done"]
    read = V.run_verdict("tiny", out, report_only=True, log=lambda m: None)
    assert read["claims"] == doc["claims"]
    # a part made with other controllers is not taken for this one: refused, naming what differs
    with pytest.raises(V.VerdictError, match="controllers"):
        V.run_verdict("tiny", out, controllers="gcann,ttur", log=lambda m: None)
    record = out / "ring" / "part.json"
    kept = record.read_text()
    record.write_text("{not json")
    try:
        with pytest.raises(V.VerdictError, match="unreadable"):
            V.run_verdict("tiny", out, log=lambda m: None)
    finally:
        record.write_text(kept)


def test_report_only_on_a_copy_without_part_records(tiny, tmp_path):
    out, doc, _ = tiny
    copy = tmp_path / "copy"
    shutil.copytree(out / "mnist5k", copy / "mnist5k")
    for f in copy.glob("mnist5k/part.json"):
        f.unlink()
    read = V.run_verdict("tiny", copy, report_only=True, log=lambda m: None)
    status = {p["part"]: p["status"] for p in read["parts"]}
    assert status == {"ring": "missing", "mnist5k": "done"}
    mn = next(c for c in read["claims"] if c["claim"] == "tighter convergence of the two losses")
    assert {r["part"] for r in mn["rows"]} == {"mnist5k"}


def test_report_evaluate_flag_caches(tiny, tmp_path, monkeypatch, capsys):
    out, _, _ = tiny
    sweep_dir = tmp_path / "sweep"
    shutil.copytree(out / "mnist5k", sweep_dir, ignore=shutil.ignore_patterns("report", "part.json", "sweep.json"))
    for e in sweep_dir.glob("*/eval.json"):
        e.unlink()
    monkeypatch.setenv("GCANN_CACHE", str(tmp_path / "cache"))
    import gcann.metrics.domain as dom

    monkeypatch.setattr(dom, "CLF_STEPS", 5)
    args = ["report", str(sweep_dir), "--evaluate", "--eval-metrics", "pairwise,fd_domain", "--num-samples", "130",
            "--no-figures"]
    assert main(args) == 0
    first = capsys.readouterr().err
    assert first.count("evaluating") == 4
    assert all((d / "eval.json").is_file() for d in sweep_dir.glob("mnist5k-demo-*"))
    assert main(args) == 0
    assert "evaluating" not in capsys.readouterr().err                 # the second report evaluates nothing
    rep = json.loads((sweep_dir / "report" / "report.json").read_text())
    assert {"fd_domain", "pairwise"} <= set(rep["metrics"]) and "domain_accuracy" not in rep["metrics"]
    assert main(["report", str(sweep_dir), "--num-samples", "10"]) == 2


def test_reading_a_full_suite_needs_no_data_root():
    parts = V.plan("full", need_data=False)
    assert {p.name for p in parts} >= {"ring", "celeba", "bicar3d"}
    with pytest.raises(V.VerdictError, match="--data-root"):
        V.plan("full")
