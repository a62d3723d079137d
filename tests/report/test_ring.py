"""`gcann report` on a real (tiny) ring study folder written by `gcann ring study`."""
from __future__ import annotations

import json

import numpy as np
import pytest

from gcann.cli import main


@pytest.fixture(scope="session")
def ring_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("ring") / "study"
    rc = main(["ring", "study", "--seeds", "3", "--epochs", "2", "--n-train", "512", "--eval-samples", "500",
               "--curve-samples", "100", "--settings", "ns(1,1) ns(1,1)+gcann", "--no-figures", "--device", "cpu",
               "--out", str(out)])
    assert rc == 0
    return out


@pytest.fixture(scope="session")
def ring_report(ring_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("ring-report")
    assert main(["report", str(ring_dir), "--out", str(out)]) == 0
    return out, json.loads((out / "report.json").read_text())


def test_ring_report_groups(ring_dir, ring_report):
    _, doc = ring_report
    run = json.loads((ring_dir / "run.json").read_text())
    assert [g["setting"] for g in doc["groups"]] == [{"setting": "ns(1,1)"}, {"setting": "ns(1,1)+gcann"}]
    assert doc["metrics"] == ["loss_gap", "loss_gap_var", "modes_covered", "hq_ratio", "kl", "reverse_kl", "success",
                              "failure"]
    for g in doc["groups"]:
        assert g["n_seeds"] == 3 and g["seeds"] == [0, 1, 2]
        for m in g["metrics"].values():
            assert {"per_seed", "mean", "std", "ci95", "interval"} <= set(m)
        rows = [i for i, r in enumerate(run["rows"]) if r["setting"] == g["setting"]["setting"]]
        kl = [run["metrics"]["kl"][i] for i in rows]
        assert [g["metrics"]["kl"]["per_seed"][str(run["rows"][i]["seed"])] for i in rows] == pytest.approx(kl)
        assert g["metrics"]["kl"]["mean"] == pytest.approx(np.mean(kl))
        assert g["metrics"]["modes_covered"]["evaluation"]["samples"] == [500]
        # loss gap: the median over the last half of epochs (epoch 1 of 2 counts: 1 >= 2 / 2) of |L_D - L_G|
        ld, lg = np.array(run["history"]["loss_d"]), np.array(run["history"]["loss_g"])
        gaps = np.median(np.abs(ld - lg), axis=0)
        assert [g["metrics"]["loss_gap"]["per_seed"][str(run["rows"][i]["seed"])] for i in rows] == \
            pytest.approx(gaps[rows].tolist())
        assert g["failures"]["collapsed"] == sum(run["metrics"]["modes_covered"][i] <= 1 for i in rows)


def test_ring_report_comparisons_and_claims(ring_report):
    out, doc = ring_report
    assert {c["metric"] for c in doc["comparisons"]} == set(doc["metrics"])
    for c in doc["comparisons"]:
        assert c["setting"] == {"setting": "ns(1,1)+gcann"} and c["baseline"] == {"setting": "ns(1,1)"}
        assert c["n_pairs"] in (0, 3) and c["p_value"] is None and c["verdict"] == "inconclusive"
    a, b = (g["metrics"]["kl"]["per_seed"] for g in doc["groups"])
    kl = next(c for c in doc["comparisons"] if c["metric"] == "kl")
    assert kl["diff_mean"] == pytest.approx(np.mean([b[s] - a[s] for s in a]))
    claims = [c["claim"] for c in doc["claims"]]
    assert claims[0] == "tighter convergence of the two losses" and len(claims) == 6
    md = (out / "report.md").read_text()
    tail = md[md.index("## The GCANN claims"):]
    assert tail.count("### Claim:") == 6 and "not measured in this report" in tail
    for f in doc["figures"]:
        assert (out / f).stat().st_size > 1000
    assert {"curve_loss_gap.png", "curve_eval_modes_covered.png", "curve_lr_d.png"} <= set(doc["figures"])


def test_ring_events_counted(ring_dir, tmp_path):
    run = json.loads((ring_dir / "run.json").read_text())
    run["events"] = [{"event": "pause", "row": 4, "controller": "gcann"}, {"event": "pause", "row": 4},
                     {"event": "lr_decrease", "row": 5}]
    run["metrics"]["diverged"][5] = True
    d = tmp_path / "ring"
    d.mkdir()
    (d / "run.json").write_text(json.dumps(run))
    assert main(["report", str(d), "--no-figures", "--metrics", "kl"]) == 0
    doc = json.loads((d / "report" / "report.json").read_text())
    g = doc["groups"][1]
    assert [r["events"] for r in g["runs"]] == [{}, {"pause": 2}, {"lr_decrease": 1}]
    assert g["failures"]["diverged"] == 1 and g["metrics"]["kl"]["per_seed"]["2"] is None
    assert "lr_decrease" in (d / "report" / "report.md").read_text()
