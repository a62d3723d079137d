"""The command line: JSON contract, one-line errors, exit codes, no half-written files."""
import json
import subprocess
import sys

import numpy as np
import pytest

from gcann.cli import main


def run(args, capsys):
    rc = main(args)
    out, err = capsys.readouterr()
    return rc, out, err


def test_spectrum_json_contract(capsys):
    rc, out, _ = run(["dirac", "spectrum", "--method", "r1", "--gamma", "0.5,2", "--json"], capsys)
    assert rc == 0
    doc = json.loads(out)
    assert isinstance(doc, list) and len(doc) == 2
    for rec, g in zip(doc, (0.5, 2.0)):
        assert set(rec) == {"method", "params", "eigenvalues", "locally_convergent"}
        assert rec["method"] == "r1" and rec["params"]["gamma"] == g and rec["params"]["dim"] == 1
        assert rec["locally_convergent"] is True
        key = lambda z: (z.real, z.imag)  # noqa: E731
        ev = sorted((complex(a, b) for a, b in rec["eigenvalues"]), key=key)
        want = sorted([-g / 2 + complex(g * g / 4 - 0.25) ** 0.5, -g / 2 - complex(g * g / 4 - 0.25) ** 0.5], key=key)
        np.testing.assert_allclose(ev, want, atol=1e-9)


@pytest.mark.parametrize("method,expect", [("gan", False), ("wgan_norm", None), ("conopt", True), ("wgan_gp", None)])
def test_spectrum_verdicts(method, expect, capsys):
    rc, out, _ = run(["dirac", "spectrum", "--method", method, "--json"], capsys)
    assert rc == 0
    rec = json.loads(out)[0]
    assert rec["locally_convergent"] is expect
    if expect is None:
        assert rec["eigenvalues"] == []


def test_all_listed_methods_and_params_accepted(capsys):
    for m, extra in [("gan", []), ("nsgan", []), ("wgan", []), ("wgan_norm", ["--dim", "3"]), ("wgan_gp", ["--c", "0"]),
                     ("dragan", []), ("r1", ["--gamma", "2"]), ("r2", []), ("roth", []), ("gan_qp", ["--lam", "2"]),
                     ("lsgan", []), ("alpha", ["--alpha-d", "0.6", "--alpha-g", "1.2"]), ("instance_noise", ["--sigma", "1"]),
                     ("conopt", ["--gamma", "0.5"]), ("gan", ["--l2", "0.1"])]:
        rc, out, err = run(["dirac", "spectrum", "--method", m, "--json", *extra], capsys)
        assert rc == 0, (m, err)
    rc, out, _ = run(["dirac", "spectrum", "--method", "gan", "--l2", "0.1", "--json"], capsys)
    assert json.loads(out)[0]["locally_convergent"] is True  # L2 on D damps the centre


@pytest.mark.parametrize("args,needle", [
    (["dirac", "spectrum", "--method", "nope"], "unknown method"),
    (["dirac", "spectrum", "--method", "r1", "--gamma", "-1"], "gamma must be >= 0"),
    (["dirac", "spectrum", "--method", "instance_noise", "--sigma", "-2"], "sigma must be >= 0"),
    (["dirac", "spectrum", "--method", "r1", "--gamma", "abc"], "--gamma must be a number"),
    (["dirac", "spectrum", "--method", "r1", "--lr", "0"], "--lr must be > 0"),
    (["dirac", "simulate", "--method", "r1", "--lr", "-0.1"], "lr_d must be > 0"),
    (["dirac", "simulate", "--method", "r1", "--init", "nan,1"], "must be finite"),
    (["dirac", "simulate", "--method", "r1", "--init", "1,2,3"], "--init needs 2 numbers"),
    (["dirac", "simulate", "--method", "r1", "--grid", "-1:1:100000,-1:1:100000"], "grid too large for memory"),
    (["dirac", "simulate", "--method", "r1", "--out", "x.txt"], "--out must end in .json or .npz"),
    (["dirac", "spectrum", "--method", "r1", "--sigma", "1"], "has no parameter"),
    (["dirac", "spectrum", "--bogus"], "No such option"),
])
def test_bad_input_one_line_error(args, needle, capsys):
    rc, out, err = run(args, capsys)
    assert rc == 2
    assert needle in err
    assert err.count("\n") == 1 and err.startswith("gcann: error:")


def test_simulate_writes_json_and_npz(tmp_path, capsys):
    j = tmp_path / "t.json"
    rc, out, _ = run(["dirac", "simulate", "--method", "r1", "--gamma", "0.5,1", "--init", "1,1", "--init", "0.5,-0.5",
                      "--steps", "300", "--lr", "0.2", "--ema-beta", "0.9", "--out", str(j), "--json"], capsys)
    assert rc == 0
    summary = json.loads(out)
    assert summary["batch"] == 4 and summary["verdicts"]["converging"] == 1.0
    doc = json.loads(j.read_text())
    assert np.array(doc["z"]).shape == (301, 4, 2) and np.array(doc["z_ema"]).shape == (301, 4, 2)
    assert [p["gamma"] for p in doc["params"]] == [0.5, 0.5, 1.0, 1.0]
    n = tmp_path / "t.npz"
    rc, _, _ = run(["dirac", "simulate", "--method", "gan", "--scheme", "ode", "--t1", "5", "--steps", "20",
                    "--grid", "-1:1:3,-1:1:2", "--out", str(n)], capsys)
    assert rc == 0
    data = np.load(n)
    assert data["z"].shape == (21, 6, 2)
    assert [p.name for p in tmp_path.iterdir()] == sorted(["t.json", "t.npz"]) or len(list(tmp_path.iterdir())) == 2


def test_console_script_no_traceback():
    r = subprocess.run([sys.executable, "-m", "gcann.cli", "dirac", "spectrum", "--method", "r1", "--gamma", "-3"],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and r.stderr.strip().count("\n") == 0


def test_plot_one_kind_with_method(tmp_path, capsys):
    out = tmp_path / "vf.png"
    rc, stdout, _ = run(["dirac", "plot", "--kind", "vector_field", "--method", "r1", "--lr", "0.2", "--out", str(out)],
                        capsys)
    assert rc == 0 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rc, _, err = run(["dirac", "plot", "--kind", "r1_locus", "--method", "r1", "--out", str(tmp_path / "x.png")], capsys)
    assert rc == 2 and "apply to --kind vector_field, ema or gcann_*" in err
    rc, _, err = run(["dirac", "plot", "--kind", "nope"], capsys)
    assert rc == 2 and "unknown --kind" in err
    assert not (tmp_path / "x.png").exists()


def test_simulate_with_the_gcann_controller(tmp_path, capsys):
    ev = tmp_path / "events.jsonl"
    rc, out, _ = run(["dirac", "simulate", "--method", "r1", "--init", "1,1", "--init", "-0.5,0.5", "--steps", "300",
                      "--gcann", "dirac", "--events", str(ev), "--json"], capsys)
    assert rc == 0
    summary = json.loads(out)
    assert summary["gcann"]["config"] == "dirac"
    lines = [json.loads(x) for x in ev.read_text().splitlines()]
    # the default kinds are logged (not the per-step skips and tie breaks); every kind is counted
    logged = summary["events_logged"]
    assert "skip_g" not in logged and "tie_break" not in logged and "reactive" in logged
    assert sum(n for k, n in summary["gcann"]["events"].items() if k in logged) == len(lines) > 0
    assert {x["event"] for x in lines} <= set(logged)
    assert {x["row"] for x in lines} <= {0, 1}
    assert all(x["step"] >= 100 or x["event"] == "slope_threshold" for x in lines)  # DIRAC_CONFIG warm-up: 100 steps
    rc, _, err = run(["dirac", "simulate", "--method", "r1", "--scheme", "ode", "--gcann", "paper"], capsys)
    assert rc == 2 and "discrete schemes" in err
    rc, _, err = run(["dirac", "simulate", "--method", "r1", "--events", str(tmp_path / "x.jsonl")], capsys)
    assert rc == 2 and "--events needs a controller" in err and not (tmp_path / "x.jsonl").exists()
