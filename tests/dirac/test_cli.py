"""The Dirac CLI as a user meets it: outputs checked before any work, clean errors for devices and
lists, n/a verdicts, per-setting results, the spectrum's discrete analysis in JSON, event kinds,
seeds, figure formats, progress and time estimates."""
import importlib
import json
import os
import stat
import sys
import time

import numpy as np
import pytest
import torch

import dynamics as dy
from dynamics.study import make_game
from gcann.cli import main


def run(args, capsys):
    rc = main(args)
    out, err = capsys.readouterr()
    return rc, out, err


def one_line_error(rc, err, needle):
    assert rc == 2, err
    assert err.startswith("gcann: error:") and err.count("\n") == 1, err
    assert needle in err, err


# --------------------------------------------------------------------------- outputs, before any work
def _unwritable(tmp_path):
    afile = tmp_path / "a-file"
    afile.write_text("x")
    return [
        (afile / "out.json", "is a file, not a folder"),  # the parent is a file
        ("/proc/gcann-test/out.json", "cannot be written"),  # a folder nothing can be created in
    ]


@pytest.mark.parametrize("cmd", [
    ["dirac", "simulate", "--method", "r1", "--steps", "200000", "--out", "{}"],
    ["dirac", "simulate", "--method", "r1", "--steps", "200000", "--gcann", "dirac", "--events", "{}"],
    ["dirac", "plot", "--kind", "all_methods", "--out", "{}"],
    ["dirac", "table", "--out", "{}"],
    ["dirac", "study", "--out", "{}"],
    ["dirac", "plot", "--all", "--out", "{}"],
])
def test_unwritable_output_fails_at_once_with_one_line(cmd, tmp_path, capsys):
    # before: a PermissionError/FileExistsError traceback after the whole computation (3 min for study)
    for bad, needle in _unwritable(tmp_path):
        bad = str(bad)
        if cmd[1] in ("table", "study") or "--all" in cmd:
            bad = bad.replace("out.json", "outdir")
        elif cmd[1] == "plot":
            bad = bad.replace(".json", ".png")
        elif "--events" in cmd:
            bad = bad.replace(".json", ".jsonl")
        t0 = time.perf_counter()
        rc, _, err = run([a.replace("{}", bad) for a in cmd], capsys)
        assert time.perf_counter() - t0 < 5  # refused before computing
        one_line_error(rc, err, needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_read_only_folder_is_refused(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as root: permissions do not stop writes")
        rc, _, err = run(["dirac", "simulate", "--method", "r1", "--out", str(ro / "t.json")], capsys)
        one_line_error(rc, err, "cannot be written")
    finally:
        ro.chmod(stat.S_IRWXU)


def test_output_kinds_are_checked(tmp_path, capsys):
    d = tmp_path / "d.json"
    d.mkdir()
    rc, _, err = run(["dirac", "simulate", "--method", "r1", "--out", str(d)], capsys)
    one_line_error(rc, err, "is a folder; give a file name")
    f = tmp_path / "f"
    f.write_text("")
    rc, _, err = run(["dirac", "table", "--no-gcann", "--out", str(f)], capsys)
    one_line_error(rc, err, "is a file; give a folder")


def test_files_are_written_with_normal_permissions(tmp_path, capsys):
    old = os.umask(0o022)
    try:
        out = tmp_path / "t.json"
        rc, _, _ = run(["dirac", "simulate", "--method", "r1", "--steps", "20", "--out", str(out), "-q"], capsys)
    finally:
        os.umask(old)
    assert rc == 0 and stat.S_IMODE(out.stat().st_mode) == 0o644  # not mkstemp's 0600


# --------------------------------------------------------------------------- clean errors
@pytest.mark.parametrize("device,needle", [
    ("tpu", "--device must be cpu, cuda or cuda:N"), ("", "--device must be cpu, cuda or cuda:N"),
    ("mps", "not supported"), ("meta", "not supported"),
])
def test_bad_devices_are_one_line(device, needle, capsys):
    # before: tpu / '' ended in a RuntimeError traceback, mps / meta deep inside torch
    rc, _, err = run(["dirac", "simulate", "--method", "r1", "--steps", "10", "--device", device], capsys)
    one_line_error(rc, err, needle)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu(capsys):
    rc, _, err = run(["dirac", "simulate", "--method", "r1", "--steps", "10", "--device", "cuda:0"], capsys)
    one_line_error(rc, err, "CUDA is not available")


@pytest.mark.parametrize("value", ["1,,2", "1,", ",1", " "])
def test_empty_items_in_lists_are_refused(value, capsys):
    # before: "1,,2" silently became [1, 2]
    rc, _, err = run(["dirac", "spectrum", "--method", "r1", "--gamma", value], capsys)
    one_line_error(rc, err, "--gamma")


def test_too_few_records_say_na(capsys):
    # before: --steps 5 printed all-zero verdict fractions
    rc, out, _ = run(["dirac", "simulate", "--method", "r1", "--steps", "5", "-q", "--json"], capsys)
    doc = json.loads(out)
    assert rc == 0 and doc["verdicts"]["n/a"] == 1.0 and "at least 8" in doc["note"]
    assert doc["settings"][0]["verdicts"]["n/a"] == 1.0


# --------------------------------------------------------------------------- per-setting results
def test_simulate_over_a_grid_reports_each_setting(tmp_path, capsys):
    # R1 with γ = 0 is the plain GAN (a centre: simGD diverges); γ = 1 converges (ρ = 0.95 at lr 0.1)
    out = tmp_path / "g.npz"
    rc, stdout, err = run(["dirac", "simulate", "--method", "r1", "--gamma", "0,1", "--grid", "-1:1:2,0.5:1:2",
                           "--steps", "600", "--out", str(out), "--json"], capsys)
    assert rc == 0
    doc = json.loads(stdout)
    assert [s["params"] for s in doc["settings"]] == [{"gamma": 0.0}, {"gamma": 1.0}]
    assert doc["settings"][0]["verdicts"]["diverging"] == 1.0 and doc["settings"][1]["verdicts"]["converging"] == 1.0
    assert doc["settings"][1]["median_rate"] < 0 < doc["settings"][0]["median_rate"]
    assert "setting  gamma" in err  # the per-setting table, on stderr
    data = np.load(out)
    assert data["setting_gamma"].tolist() == [0.0, 1.0] and data["param_gamma"].tolist() == [0.0] * 4 + [1.0] * 4
    assert data["setting_converging"].tolist() == [0.0, 1.0] and data["setting_diverging"].tolist() == [1.0, 0.0]
    assert data["labels"].tolist() == ["diverging"] * 4 + ["converging"] * 4 and data["setting"].tolist() == [0] * 4 + [1] * 4
    # the rates against the linearisation: simGD on R1 (γ = 1) contracts by ρ = 0.95 per step
    assert np.all(np.abs(data["rate"][4:] - np.log(0.95)) < 0.01)
    j = tmp_path / "g.json"
    rc, _, _ = run(["dirac", "simulate", "--method", "r1", "--gamma", "0,1", "--init", "1,1", "--steps", "100",
                    "--out", str(j), "-q"], capsys)
    saved = json.loads(j.read_text())
    assert saved["setting"] == [0, 1] and [s["params"]["gamma"] for s in saved["settings"]] == [0.0, 1.0]


def test_random_starts_are_seeded(tmp_path, capsys):
    def starts(seed):
        out = tmp_path / f"s{seed}.npz"
        rc, _, _ = run(["dirac", "simulate", "--method", "r1", "--random", "5", "--seed", str(seed), "--steps", "10",
                        "--out", str(out), "-q"], capsys)
        assert rc == 0
        return np.load(out)["z"][0]

    a, b, c = starts(1), starts(1), starts(2)
    assert a.shape == (5, 2) and np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.all(np.abs(a) <= 1)


# --------------------------------------------------------------------------- spectrum JSON
def test_spectrum_json_has_the_discrete_analysis_with_lr(capsys):
    # R1 at γ = 1: a double eigenvalue −1/2; simGD ρ = |1 + hλ| = 0.95 at h = 0.1, stable for h < 4
    rc, out, _ = run(["dirac", "spectrum", "--method", "r1", "--gamma", "1", "--lr", "0.1", "--json"], capsys)
    rec = json.loads(out)[0]
    assert {"method", "params", "eigenvalues", "locally_convergent"} <= set(rec)
    assert rec["scheme"] == "simgd" and rec["lr"] == 0.1
    assert rec["spectral_radius"] == pytest.approx(0.95, abs=1e-9) and rec["max_stable_lr"] == pytest.approx(4.0, rel=1e-6)
    # the GAN's centre ±i/2: simGD ρ = √(1 + h²/4) > 1 for every h
    rc, out, _ = run(["dirac", "spectrum", "--method", "gan", "--lr", "0.1", "--json"], capsys)
    rec = json.loads(out)[0]
    assert rec["spectral_radius"] == pytest.approx((1 + 0.01 / 4) ** 0.5, abs=1e-9) and rec["max_stable_lr"] == 0
    rc, out, _ = run(["dirac", "spectrum", "--method", "wgan_gp", "--lr", "0.1", "--json"], capsys)
    rec = json.loads(out)[0]
    assert rec["spectral_radius"] is None and rec["max_stable_lr"] is None  # no Jacobian at the equilibrium


# --------------------------------------------------------------------------- events
def test_event_kinds_are_chosen(tmp_path, capsys):
    ev = tmp_path / "e.jsonl"
    base = ["dirac", "simulate", "--method", "wgan", "--init", "1,0.5", "--steps", "400", "--gcann", "dirac",
            "--events", str(ev), "-q", "--json"]
    rc, out, _ = run(base + ["--event-kinds", "all"], capsys)
    counts = json.loads(out)["gcann"]["events"]
    lines = [json.loads(x) for x in ev.read_text().splitlines()]
    assert rc == 0 and len(lines) == sum(counts.values()) and counts.get("tie_break", 0) > 0
    rc, out, _ = run(base + ["--event-kinds", "reactive,pause_d"], capsys)
    assert {json.loads(x)["event"] for x in ev.read_text().splitlines()} <= {"reactive", "pause_d"}
    assert json.loads(out)["gcann"]["events"] == counts  # counts cover every kind
    rc, _, err = run(base + ["--event-kinds", "reactive,nope"], capsys)
    one_line_error(rc, err, "unknown kind(s) ['nope']")


# --------------------------------------------------------------------------- figures
def test_figure_formats_dpi_and_file_names(tmp_path, capsys):
    pdf = tmp_path / "p.pdf"
    rc, _, _ = run(["dirac", "plot", "--kind", "r1_locus", "--out", str(pdf)], capsys)
    assert rc == 0 and pdf.is_file() and pdf.read_bytes()[:5] == b"%PDF-"  # a file, not a folder named p.pdf
    rc, _, _ = run(["dirac", "plot", "--kind", "r1_locus", "--format", "svg", "--out", str(tmp_path / "figs")], capsys)
    svg = tmp_path / "figs" / "r1_locus.svg"
    assert rc == 0 and b"<svg" in svg.read_bytes()[:500]
    small, big = tmp_path / "a.png", tmp_path / "b.png"
    for p, dpi in ((small, "50"), (big, "200")):
        assert run(["dirac", "plot", "--kind", "r1_locus", "--dpi", dpi, "--out", str(p)], capsys)[0] == 0
    from PIL import Image

    w50, w200 = Image.open(small).size[0], Image.open(big).size[0]
    assert w200 == pytest.approx(4 * w50, rel=0.02)
    rc, _, err = run(["dirac", "plot", "--kind", "r1_locus", "--format", "svg", "--out", str(tmp_path / "x.png")], capsys)
    one_line_error(rc, err, "does not match")
    rc, _, err = run(["dirac", "plot", "--all", "--out", str(tmp_path / "all.pdf")], capsys)
    one_line_error(rc, err, "must be a folder")
    rc, _, err = run(["dirac", "plot", "--kind", "ema", "--dpi", "0"], capsys)
    one_line_error(rc, err, "--dpi must be >= 1")


def test_plot_kind_reaches_the_gcann_figures(tmp_path, monkeypatch, capsys):
    from gcann.dirac.figures import FIGURES
    from gcann.dirac.figures import controller as gplots

    assert {"gcann_trajectories", "gcann_loss_events", "all_methods", "ema"} <= set(FIGURES)
    calls = []
    real = gplots.loss_curves_with_events

    def short(*a, **k):  # the real figure with 300 steps instead of 2000
        calls.append(k.get("steps"))
        return real(*a, **{**k, "steps": 300})

    monkeypatch.setattr(gplots, "loss_curves_with_events", short)
    out = tmp_path / "ev.png"
    rc, stdout, _ = run(["dirac", "plot", "--kind", "gcann_loss_events", "--out", str(out)], capsys)
    assert rc == 0 and out.read_bytes()[:4] == b"\x89PNG" and len(calls) == 2


def test_ema_figure_no_longer_calls_a_levelling_curve_converging():
    from gcann.dirac import figures as plots

    fig = plots.ema_comparison(steps=600)  # Su's point, ODE to t = 60
    labels = [t.get_text() for t in fig.axes[2].get_legend().get_texts()]
    assert labels[1].startswith("EMA: slowly converging") and "rate" in labels[1]


# --------------------------------------------------------------------------- progress and estimates
def test_progress_bar_only_on_a_terminal(monkeypatch, capsys):
    from gcann.cli.common import progress_bar

    with progress_bar(10, "work") as update:
        for _ in range(10):
            update()
    assert capsys.readouterr().err == ""  # not a terminal (pytest's capture): silent
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    with progress_bar(10, "work") as update:
        for k in range(10):
            update(k + 1, label="row")
    err = capsys.readouterr().err
    assert "work:" in err and "/10" in err
    with progress_bar(10, "work", quiet=True) as update:
        update()
    assert capsys.readouterr().err == ""


def test_a_long_run_is_announced_with_an_estimate(monkeypatch, capsys):
    cli_dirac = importlib.import_module("gcann.cli.dirac")
    simulation = importlib.import_module("gcann.dirac.simulation")

    game = make_game("r1")
    z = torch.ones(4, 2, dtype=torch.float64)
    est = simulation.estimate_seconds(game, z, {}, "simgd", 10**9, 1, 1, "rk4", False)
    assert est > 86400  # a 10⁹-step run takes days on any CPU
    # measured, not assumed: the estimate is within a factor 10 of a real 300-step run
    short = simulation.estimate_seconds(game, z, {}, "simgd", 300, 1, 1, "rk4", False)
    t0 = time.perf_counter()
    dy.simulate(game, z, steps=300)
    real = time.perf_counter() - t0
    assert real / 10 < short < real * 10
    monkeypatch.setattr(simulation, "estimate_seconds", lambda *a: 3 * 86400.0)
    monkeypatch.setattr(cli_dirac, "progress_bar", _no_bar)
    monkeypatch.setattr(importlib.import_module("dynamics.simulate"), "simulate", _fake_simulate)
    rc, _, err = run(["dirac", "simulate", "--method", "r1", "--steps", "1000000000", "--record-every", "100000000"],
                     capsys)
    assert rc == 0 and "about 3 days (estimate)" in err


class _no_bar:
    def __init__(self, *a, **k):
        pass

    def __enter__(self):
        return lambda *a, **k: None

    def __exit__(self, *a):
        return False


def _fake_simulate(game, z, **kw):  # stands in for the 10⁹ steps
    T = kw["steps"] // kw["record_every"] + 1
    return dy.Trajectory(torch.arange(T, dtype=torch.float64), z.expand(T, *z.shape).clone(), 1, "simgd")


def test_version(capsys):
    rc, out, _ = run(["--version"], capsys)
    import gcann

    assert rc == 0 and out.strip() == f"gcann {gcann.__version__}"


# --------------------------------------------------------------------------- one output convention, one error base
def test_commands_print_a_summary_and_json_with_the_flag(tmp_path, capsys):
    args = ["dirac", "simulate", "--method", "r1", "--gamma", "0,1", "--init", "1,1", "--steps", "100", "-q"]
    rc, out, _ = run(args, capsys)
    assert rc == 0 and out.startswith("r1, simgd: 2 trajectories:") and "setting  gamma" in out
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)
    rc, out, _ = run(args + ["--json"], capsys)
    assert rc == 0 and json.loads(out)["batch"] == 2
    png = tmp_path / "r.png"
    rc, out, _ = run(["dirac", "plot", "--kind", "r1_locus", "--out", str(png), "--json"], capsys)
    assert rc == 0 and json.loads(out) == [str(png)]


@pytest.mark.parametrize("args,line", [
    (["dirac", "spectrum", "--method", "r1", "--dim", "0"], "gcann: error: --dim must be >= 1, got 0\n"),
    (["dirac", "spectrum", "--method", "r1", "--lr-ratio", "-1"], "gcann: error: --lr-ratio must be > 0, got -1.0\n"),
    (["dirac", "simulate", "--method", "r1", "--random", "0"], "gcann: error: --random must be >= 1, got 0\n"),
    (["dirac", "table", "--n-init", "0"], "gcann: error: --n-init must be >= 1, got 0\n"),
])
def test_ranges_are_checked_by_the_option_types(args, line, capsys):
    rc, _, err = run(args, capsys)
    assert rc == 2 and err == line


def test_dirac_errors_share_the_one_base():
    from dynamics.objectives import ObjectiveError
    from dynamics.simulate import SimulationError
    from gcann.dirac.figures import FigureError
    from gcann.errors import GcannError

    for cls in (ObjectiveError, SimulationError, FigureError):
        assert issubclass(cls, GcannError) and issubclass(cls, ValueError)


def test_importing_the_figures_does_not_import_pyplot():
    import subprocess

    code = "import sys, gcann.dirac, gcann.dirac.figures; assert 'matplotlib.pyplot' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
