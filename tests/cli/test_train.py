"""``gcann train``, ``gcann sample``, ``gcann sweep`` from the command line: contracts and one-line errors."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support.data_fixtures import truncated_jpeg
from gcann.cli import main


def _images(folder: Path, n: int = 24, size: int = 40) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (size, size + 8, 3), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    return folder


TINY = ["--width-g", "4", "--width-d", "4", "--batch-size", "8", "--log-every", "1", "--sample-every", "2",
        "--ckpt-every", "2", "--num-samples", "4", "--quiet"]


def test_train_resume_sample_on_an_image_folder(tmp_path, capsys):
    root = _images(tmp_path / "imgs")
    out = tmp_path / "run"
    args = ["train", "--preset", "celeba-dcg-gcann", "--dataset", "images", "--data-root", str(root),
            "--max-steps", "3", "--out", str(out), "--set", 'gcann={"baseline_steps": 0, "gc_lr_window": 1}',
            "--num-workers", "1", *TINY]
    assert main(args) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["max_steps"] == 3 and cfg["controller"] == "gcann" and cfg["gcann"]["gc_lr_window"] == 1
    assert main(["train", "--resume", str(out), "--max-steps", "5"]) == 0
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2, 3, 4]
    assert {"step", "loss_d", "loss_g", "lr_d", "lr_g"} <= set(rows[-1])
    assert json.loads((out / "config.json").read_text())["max_steps"] == 5
    assert (out / "events.jsonl").exists() and list((out / "samples").glob("*.png"))
    assert any(p.name.startswith("events.out.tfevents") for p in (out / "tb").iterdir())
    capsys.readouterr()
    assert main(["sample", str(out), "--n", "6", "--out", str(tmp_path / "s.npz")]) == 0
    arr = np.load(tmp_path / "s.npz")["samples"]
    assert arr.shape == (6, 64, 64, 3) and arr.dtype == np.uint8
    assert main(["sample", str(out / "checkpoints" / "step_0000005.pt"), "--out", str(tmp_path / "g.png")]) == 0
    assert Image.open(tmp_path / "g.png").size[0] > 64
    capsys.readouterr()
    for args, msg in ((["--device", "bogus"], "--device must be cpu, cuda or cuda:N"),
                      (["--out", "/proc/gcann-s.png"], "--out '/proc/gcann-s.png'"),
                      (["--out", str(out / "config.json" / "s.png")], "--out")):
        assert main(["sample", str(out), *args]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("gcann: error:") and msg in err and "\n" not in err, err


@pytest.mark.parametrize("args, msg", [
    (["train", "--preset", "nope"], "unknown preset 'nope'"),
    (["train"], "give --preset NAME"),
    (["train", "--preset", "mnist5k-demo", "--loss", "bogus"], "loss must be one of"),
    (["train", "--preset", "mnist5k-demo", "--reg", "r1,,r2"], "empty item"),
    (["train", "--preset", "mnist5k-demo", "--batch-size", "0"], "batch_size must be an integer >= 1"),
    (["train", "--preset", "mnist5k-demo", "--set", "nonsense"], "--set takes KEY=VALUE"),
    (["train", "--preset", "mnist5k-demo", "--set", "nokey=1"], "unknown"),
    (["train", "--preset", "mnist5k-demo", "--gcann", "{oops"], "--gcann takes a JSON object or KEY=VALUE"),
    (["train", "--resume", "/nonexistent/run"], "no such run folder"),
    (["train", "--preset", "mnist5k-demo", "--out", "/proc/gcann-run"], "cannot write the run folder"),
    (["sample", "/nonexistent.pt"], "no checkpoint at"),
])
def test_train_errors_are_one_line(args, msg, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gcann: error:") and msg in err and "\n" not in err


def test_a_run_refused_before_its_first_step_leaves_no_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "a" / "b" / "run"
    assert main(["train", "--preset", "celeba-dcgan", "--dataset", "images", "--data-root", str(tmp_path / "empty"),
                 "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith("gcann: error:")
    assert not (tmp_path / "a").exists()
    (tmp_path / "mine").mkdir()                    # a folder the user made stays
    assert main(["train", "--preset", "celeba-dcgan", "--dataset", "images", "--data-root", str(tmp_path / "empty"),
                 "--out", str(tmp_path / "mine")]) == 2
    assert (tmp_path / "mine").is_dir()


def test_resume_refuses_other_options_and_existing_out_is_refused(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "f").write_text("x")
    assert main(["train", "--resume", str(tmp_path / "run"), "--lr-d", "1e-3"]) == 2
    assert "only --max-steps may be given" in capsys.readouterr().err
    assert main(["train", "--preset", "mnist5k-demo", "--out", str(tmp_path / "run")]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "run")]) == 2
    assert "holds no checkpoints" in capsys.readouterr().err


def test_missing_data_root_is_one_line_before_any_file(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--preset", "celeba-dcgan", "--data-root", str(tmp_path / "nothing"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gcann: error:") and "\n" not in err and str(tmp_path / "nothing") in err
    assert not (out / "config.json").exists()


def test_nan_exits_3(tmp_path):
    root = tmp_path / "imgs"
    _images(root, n=16)
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "gcann.cli", "train", "--preset", "celeba-dcgan", "--dataset", "images",
                        "--data-root", str(root), "--out", str(out), "--max-steps", "4", "--lr-d", "1e30",
                        "--lr-g", "1e30", "--loss", "wgan", *TINY], capture_output=True, text=True)
    assert r.returncode == 3, r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("gcann: error: non-finite loss at step")


def test_sweep_on_the_local_executor(tmp_path):
    root = _images(tmp_path / "imgs", n=16)
    out = tmp_path / "sweep"
    rc = main(["sweep", "--preset", "celeba-dcgan", "--seeds", "0,1", "--grid", "controller=gcann",
               "--set", "dataset=images", "--set", f"data_root={root}", "--set", "max_steps=2",
               "--set", "width_g=4", "--set", "width_d=4", "--set", "batch_size=8", "--set", "num_workers=0",
               "--out", str(out), "--executor", "local", "--wait"])
    assert rc == 0
    doc = json.loads((out / "sweep.json").read_text())
    names = sorted(r["name"] for r in doc["runs"])
    assert names == ["celeba-dcgan-controller=gcann-seed0", "celeba-dcgan-controller=gcann-seed1"]
    summary = json.loads((out / "summary.json").read_text())
    assert [r["state"] for r in summary] == ["finished"] * 2 and all(r["step"] == 2 for r in summary)
    cfgs = {r["name"]: json.loads((Path(r["run_dir"]) / "config.json").read_text()) for r in doc["runs"]}
    assert cfgs["celeba-dcgan-controller=gcann-seed1"]["controller"] == "gcann"
    assert cfgs["celeba-dcgan-controller=gcann-seed1"]["seed"] == 1


def test_sweep_wait_with_a_failing_run_collects_the_rest_and_exits_non_zero(tmp_path, capsys):
    """One grid point's data holds a truncated image (found in training): --wait says which run failed and why in
    one line, still writes summary.json for every run, and the command's status is not 0."""
    good = _images(tmp_path / "good", n=16)
    bad = _images(tmp_path / "bad", n=16)
    truncated_jpeg(bad / "zz_truncated.jpg")
    out = tmp_path / "sweep"
    rc = main(["sweep", "--preset", "celeba-dcgan", "--seeds", "0", "--grid", f"data_root={good},{bad}",
               "--set", "dataset=images", "--set", "max_steps=3", "--set", "width_g=4", "--set", "width_d=4",
               "--set", "batch_size=8", "--set", "num_workers=0", "--out", str(out), "--executor", "local", "--wait"])
    err = capsys.readouterr().err
    assert rc == 2, err
    failed = [x for x in err.splitlines() if ": failed: " in x]
    assert len(failed) == 1 and "bad" in failed[0].split(": failed: ")[0], err
    assert re.search(r": failed: \S*Error: .*zz_truncated", failed[0]), failed[0]
    assert err.strip().splitlines()[-1].startswith("gcann: error: 1 of 2 run(s) failed")
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(r["state"] for r in summary) == ["failed", "finished"]


def test_sweep_expands_seeds_times_grid():
    from gcann.train.sweep import expand

    runs = expand("fashion-dcgan", [0, 1, 2], {"controller": ["none", "gcann"], "reg": [("r1",), ()]})
    assert len(runs) == 12 and len({n for n, _ in runs}) == 12
    assert {(c.controller, c.reg, c.seed) for _, c in runs} == {
        (ctl, reg, s) for ctl in ("none", "gcann") for reg in (("r1",), ()) for s in (0, 1, 2)}


def test_sweep_errors(tmp_path, capsys):
    assert main(["sweep", "--preset", "celeba-dcgan", "--seeds", "0,x"]) == 2
    assert "--seeds must be" in capsys.readouterr().err
    assert main(["sweep", "--preset", "celeba-dcgan", "--grid", "lr_d="]) == 2
    assert "--grid takes KEY=V1,V2" in capsys.readouterr().err
    assert main(["sweep", "--preset", "celeba-dcgan", "--grid", "loss=nsgan,bogus", "--out", str(tmp_path / "s")]) == 2
    assert "loss must be one of" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("workers", ["0", "1"])
def test_truncated_image_found_in_training_is_one_line(tmp_path, capsys, workers):
    root = tmp_path / "imgs"
    _images(root, n=16)
    truncated_jpeg(root / "zz_truncated.jpg")  # the header survives, the image data does not
    rc = main(["train", "--preset", "celeba-dcgan", "--dataset", "images", "--data-root", str(root),
               "--out", str(tmp_path / "run"), "--max-steps", "6", *TINY, "--num-workers", workers])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert rc == 2 and err.startswith("gcann: error:") and "zz_truncated.jpg" in err, err


def test_controller_settings_as_key_value_or_json(tmp_path, capsys):
    """--controller-set takes KEY=VALUE items or JSON objects, merged left to right, into config.json."""
    root = _images(tmp_path / "imgs")
    out = tmp_path / "run"
    assert main(["train", "--preset", "celeba-dcgan", "--dataset", "images", "--data-root", str(root),
                 "--max-steps", "1", "--out", str(out), "--controller", "ttur", "--controller-set", "ratio=4",
                 "--controller-set", '{"ratio": 5}', "--controller-set", "ratio=2.5", "--num-workers", "1", *TINY]) == 0
    assert json.loads((out / "config.json").read_text())["controller_set"] == {"ratio": 2.5}
    assert main(["train", "--preset", "celeba-dcgan", "--controller", "ttur", "--controller-set", "ratio",
                 "--out", str(tmp_path / "bad")]) == 2
    assert "--controller-set takes a JSON object or KEY=VALUE" in capsys.readouterr().err
