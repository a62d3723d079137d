"""A run as a newcomer meets it: interrupted runs that can be continued, status.json kept true, the nonsense-loss
rule, progress lines without a terminal, data-loader workers that fit the machine, one error base."""
from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gcann.cli import main
from gcann.errors import GcannError
from gcann.train import Trainer, TrainingDiverged, TrainingInterrupted
from gcann.train.checkpoint import find_checkpoints, load_checkpoint
from gcann.train.config import TrainConfig, auto_workers
from tests.support.paths import README, repo_env
from tests.support.train_fixtures import fixture_for, tiny

STATUS_KEYS = {"state", "step", "total_steps", "message", "last_checkpoint", "checkpoint_step", "updated", "flags"}


def _status(run: Path) -> dict:
    return json.loads((run / "status.json").read_text())


# --------------------------------------------------------------------------- interrupts
class _StopAt:
    """A metrics hook that raises KeyboardInterrupt (as Ctrl-C would) at its first call at ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def __call__(self, trainer: Trainer) -> dict:
        if trainer.step == self.step:
            raise KeyboardInterrupt
        return {}


def test_ctrl_c_before_the_first_checkpoint_saves_it_and_resume_equals_an_uninterrupted_run(tmp_path):
    cfg = tiny(max_steps=8, ckpt_every=1000, eval_every=3)
    ds = fixture_for(cfg)
    run = tmp_path / "run"
    with pytest.raises(TrainingInterrupted) as info:
        Trainer(cfg, run, dataset=ds, quiet=True, metrics_hook=_StopAt(3)).fit()
    e = info.value
    assert isinstance(e, GcannError) and e.exit_code == 130
    assert "interrupted (SIGINT) at step 3 of 8" in str(e) and f"gcann train --resume {run}" in str(e)
    assert [c.name for c in find_checkpoints(run)] == ["step_0000003.pt"]
    status = _status(run)
    assert STATUS_KEYS <= set(status)
    assert status["state"] == "interrupted" and status["step"] == 3 and status["checkpoint_step"] == 3
    assert status["last_checkpoint"].endswith("step_0000003.pt")
    assert status["resume_command"] == f"gcann train --resume {run.resolve()}"

    Trainer.resume(run, dataset=ds, quiet=True).fit()
    Trainer(cfg, tmp_path / "ref", dataset=ds, quiet=True).fit()
    a, b = load_checkpoint(run), load_checkpoint(tmp_path / "ref")
    assert a["step"] == b["step"] == 8
    for key in ("G", "D"):
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key])
    assert _status(run)["state"] == "finished"


def test_resume_without_any_checkpoint_starts_again_from_step_0(tmp_path, capsys):
    cfg = tiny(max_steps=4)
    ds = fixture_for(cfg)
    run = tmp_path / "run"
    Trainer(cfg, run, dataset=ds, quiet=True)._open_run_dir()   # as if killed during its first step
    assert _status(run)["state"] == "running" and not find_checkpoints(run)
    resumed = Trainer.resume(run, dataset=ds, quiet=True)
    assert resumed.restarted and resumed.step == 0
    resumed.fit()
    Trainer(cfg, tmp_path / "ref", dataset=ds, quiet=True).fit()
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2, 3]
    a, b = load_checkpoint(run), load_checkpoint(tmp_path / "ref")
    assert all(torch.equal(a["G"][k], b["G"][k]) for k in a["G"])


def _images(folder: Path, n: int = 16) -> Path:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    return folder


TINY = ["--width-g", "4", "--width-d", "4", "--batch-size", "8", "--log-every", "1", "--num-samples", "4"]


def test_every_message_about_a_run_without_checkpoints_names_a_command_that_works(tmp_path, capsys):
    from gcann.train import train_preset

    root = _images(tmp_path / "imgs")
    run = tmp_path / "run"
    cfg = train_preset("celeba-dcgan", dataset="images", data_root=str(root), width_g=4, width_d=4, batch_size=8,
                       max_steps=2, num_samples=4)
    Trainer(cfg, run, quiet=True)._open_run_dir()
    assert main(["sample", str(run)]) == 2
    err = capsys.readouterr().err
    assert "holds no checkpoints yet" in err and f"`gcann train --resume {run}`" in err
    assert main(["train", "--preset", "celeba-dcgan", "--out", str(run)]) == 2
    assert f"continue it with `gcann train --resume {run}`" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "holds no checkpoint yet" in err and "from step 0" in err
    assert _status(run)["state"] == "finished" and _status(run)["step"] == 2
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("x")
    assert main(["train", "--preset", "celeba-dcgan", "--out", str(other)]) == 2
    err = capsys.readouterr().err
    assert "not a gcann run folder" in err and "--resume" not in err
    assert main(["train", "--resume", str(other)]) == 2
    assert "gcann train --preset NAME --out NEW_FOLDER" in capsys.readouterr().err


@pytest.mark.parametrize("sig, code, workers", [(signal.SIGINT, 130, "0"), (signal.SIGTERM, 143, "1")],
                         ids=["SIGINT", "SIGTERM-with-a-loader-worker"])
def test_a_signal_to_the_command_saves_the_step_and_exits_with_its_status(tmp_path, sig, code, workers):
    root = _images(tmp_path / "imgs")
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "gcann.cli", "train", "--preset", "celeba-dcgan", "--dataset", "images",
           "--data-root", str(root), "--out", str(run), "--max-steps", "100000", "--ckpt-every", "100000",
           "--sample-every", "100000", "--progress-seconds", "0", "--num-workers", workers, "--quiet", *TINY]
    env = repo_env()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:   # started: status.json shows a completed step
        try:
            if _status(run)["step"] >= 2:
                break
        except (OSError, ValueError, KeyError):
            pass
        if p.poll() is not None:
            break
        time.sleep(0.2)
    p.send_signal(sig)
    _, err = p.communicate(timeout=240)
    assert p.returncode == code, err
    last = err.strip().splitlines()[-1]
    name = signal.Signals(sig).name
    assert last.startswith(f"gcann: error: interrupted ({name}) at step ") and "saved " in last, last
    assert f"continue with `gcann train --resume {run}`" in last
    status = _status(run)
    k = status["step"]
    assert status["state"] == "interrupted" and status["checkpoint_step"] == k >= 2
    assert [c.name for c in find_checkpoints(run)] == [f"step_{k:07d}.pt"]
    assert main(["train", "--resume", str(run), "--max-steps", str(k + 1), "--quiet"]) == 0
    assert _status(run)["state"] == "finished" and _status(run)["step"] == k + 1


def test_status_names_every_checkpoint_while_running(tmp_path):
    cfg = tiny(max_steps=5, ckpt_every=2, eval_every=1)
    seen = []

    def hook(trainer):
        seen.append(_status(trainer.run_dir))
        return {}

    Trainer(cfg, tmp_path / "run", dataset=fixture_for(cfg), quiet=True, metrics_hook=hook).fit()
    by_step = {s["step"]: s for s in seen if s["step"] in (2, 4)}
    assert by_step[2]["checkpoint_step"] == 2 and by_step[2]["last_checkpoint"].endswith("step_0000002.pt")
    assert by_step[4]["checkpoint_step"] == 4 and all(s["state"] == "running" for s in seen)
    assert _status(tmp_path / "run")["checkpoint_step"] == 5


# --------------------------------------------------------------------------- nonsense losses
def test_nonsense_losses_flag_the_run(tmp_path, capsys):
    # a bound below every loss: the rule fires at the third consecutive logged step (0, 2, 4), once
    cfg = tiny(max_steps=8, log_every=2, nonsense_bound=1e-6, nonsense_steps=3)
    result = Trainer(cfg, tmp_path / "run", dataset=fixture_for(cfg), quiet=True).fit()
    assert [(f["flag"], f["first_step"], f["step"]) for f in result.flags] == [("nonsense", 0, 4)]
    status = _status(tmp_path / "run")
    assert status["state"] == "finished" and status["flags"][0]["step"] == 4
    err = capsys.readouterr().err
    assert "gcann: warning: nonsense losses: |loss| > 1e-06 at 3 consecutive logged steps (steps 0..4" in err
    # ordinary losses never fire the default rule
    plain = Trainer(tiny(max_steps=6), tmp_path / "plain", dataset=fixture_for(cfg), quiet=True).fit()
    assert plain.flags == () and _status(tmp_path / "plain")["flags"] == []


def test_nonsense_losses_stop_the_run_with_on_nonsense_stop(tmp_path):
    cfg = tiny(max_steps=8, log_every=1, nonsense_bound=1e-6, nonsense_steps=2, on_nonsense="stop")
    with pytest.raises(TrainingDiverged, match=r"steps 0\.\.1.*training stopped \(on_nonsense=stop\)") as info:
        Trainer(cfg, tmp_path / "run", dataset=fixture_for(cfg), quiet=True).fit()
    assert info.value.exit_code == 3
    assert _status(tmp_path / "run")["state"] == "diverged"


def test_huge_learning_rates_are_stopped_from_the_command_line(tmp_path):
    root = _images(tmp_path / "imgs")
    r = subprocess.run([sys.executable, "-m", "gcann.cli", "train", "--preset", "celeba-dcgan", "--dataset", "images",
                        "--data-root", str(root), "--out", str(tmp_path / "run"), "--max-steps", "12",
                        "--lr-d", "1e6", "--lr-g", "1e6", "--on-nonsense", "stop", "--quiet", *TINY],
                       capture_output=True, text=True)
    assert r.returncode == 3, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("gcann: error: ") and ("nonsense losses" in last or "non-finite loss" in last), last


# --------------------------------------------------------------------------- progress lines
def test_progress_lines_without_a_terminal(tmp_path, capsys):
    cfg = tiny(max_steps=3, progress_seconds=0)
    Trainer(cfg, tmp_path / "run", dataset=fixture_for(cfg)).fit()
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("gcann train: step")]
    assert [x.split()[3] for x in lines] == ["1/3", "2/3", "3/3"]
    assert all("steps/s, ETA" in x for x in lines) and "loss_d" in lines[-1] and "loss_g" in lines[-1]
    Trainer(cfg, tmp_path / "quiet", dataset=fixture_for(cfg), quiet=True).fit()
    assert "gcann train: step" not in capsys.readouterr().err
    Trainer(tiny(max_steps=3), tmp_path / "default", dataset=fixture_for(cfg)).fit()   # 30 s: none in 3 steps
    assert "gcann train: step" not in capsys.readouterr().err


# --------------------------------------------------------------------------- workers
def test_workers_fit_the_machine_and_config_json_says_how_they_were_chosen(tmp_path):
    assert [auto_workers(c) for c in (1, 2, 3, 4, 6, 64)] == [0, 0, 1, 2, 4, 4]
    from gcann.train import train_preset

    for name in ("celeba-dcgan", "celeba-dcg-gcann", "alphagan-celeba", "lsgan-lsun"):
        assert train_preset(name).num_workers is None
    d = train_preset("celeba-dcgan").to_dict()
    assert d["num_workers_chosen"] == auto_workers() and d["num_workers_how"] == "auto"
    d = train_preset("celeba-dcgan", num_workers=1).to_dict()
    assert (d["num_workers_chosen"], d["num_workers_how"]) == (1, "user")
    assert TrainConfig.from_dict(d) == train_preset("celeba-dcgan", num_workers=1)   # derived keys are read back
    cfg = tiny(max_steps=1)
    Trainer(cfg, tmp_path / "run", dataset=fixture_for(cfg, lazy=True), quiet=True).fit()
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["num_workers"] is None and saved["num_workers_how"] == "auto"


def test_loader_workers_end_with_the_run_so_the_command_exits(tmp_path):
    """Loader workers ignore SIGTERM (the training process stops after its step and saves), so a worker left
    alive after ``fit`` was terminated in vain at the interpreter's exit and joined forever: ``gcann train``
    with workers finished its run and then never exited. The trainer now stops them when ``fit`` ends."""
    import multiprocessing

    def new_children(before):
        return set(multiprocessing.active_children()) - before

    before = set(multiprocessing.active_children())
    cfg = tiny(max_steps=3, num_workers=1, eval_every=1)
    ds = fixture_for(cfg, lazy=True)
    Trainer(cfg, tmp_path / "run", dataset=ds, quiet=True).fit()
    assert not new_children(before)
    with pytest.raises(TrainingInterrupted):
        Trainer(cfg.replace(max_steps=6), tmp_path / "cut", dataset=ds, quiet=True, metrics_hook=_StopAt(2)).fit()
    assert not new_children(before)
    root = _images(tmp_path / "imgs")
    r = subprocess.run([sys.executable, "-m", "gcann.cli", "train", "--preset", "celeba-dcgan", "--dataset", "images",
                        "--data-root", str(root), "--out", str(tmp_path / "cli"), "--max-steps", "2",
                        "--num-workers", "1", "--quiet", *TINY], capture_output=True, text=True, timeout=180,
                       env=repo_env())
    assert r.returncode == 0, r.stderr
    assert _status(tmp_path / "cli")["state"] == "finished"


def test_a_run_through_loader_workers_interrupted_and_resumed_equals_the_in_memory_run(tmp_path):
    """File-backed data goes through loader workers, in-memory data does not: the same samples in the same order
    either way, across an epoch boundary, a stop mid-epoch and a resume (48 samples, 3 steps per epoch)."""
    cfg = tiny(max_steps=8, eval_every=1)
    run = tmp_path / "workers"
    with pytest.raises(TrainingInterrupted):
        Trainer(cfg.replace(num_workers=1), run, dataset=fixture_for(cfg, lazy=True), quiet=True,
                metrics_hook=_StopAt(4)).fit()
    Trainer.resume(run, dataset=fixture_for(cfg, lazy=True), quiet=True).fit()
    Trainer(cfg, tmp_path / "memory", dataset=fixture_for(cfg), quiet=True).fit()
    a, b = load_checkpoint(run), load_checkpoint(tmp_path / "memory")
    assert a["step"] == b["step"] == 8
    for key in ("G", "D"):
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key])


def test_a_config_refuses_what_would_fail_later_at_once():
    """An unbuilt resolution and a metric list that the first evaluation would refuse (hours into a run) are
    refused by the config itself, in one line."""
    from gcann.train import ConfigError

    with pytest.raises(ConfigError, match=r"built for resolution 28, 32, 64, 112; got resolution=16"):
        tiny(resolution=16)
    with pytest.raises(ConfigError, match=r"built for resolution 32, 64; got resolution=20"):
        tiny(arch="voxel", channels=1, resolution=20)
    with pytest.raises(ConfigError, match=r"metrics: unknown metric\(s\) bogus"):
        tiny(metrics="bogus")
    with pytest.raises(ConfigError, match=r"metrics: metric 'chamfer' is for voxel samples, not image"):
        tiny(metrics="chamfer")
    with pytest.raises(ConfigError, match=r"metric 'fd_domain' needs at least 128 .* got eval_samples=10"):
        tiny(metrics="fd_domain", eval_samples=10)
    assert tiny(metrics="pairwise", eval_samples=10).metrics == ("pairwise",)


def test_status_says_failed_after_any_other_error(tmp_path):
    def broken(trainer):
        raise ValueError("a damaged file\nsecond line")

    cfg = tiny(max_steps=4, eval_every=2)
    with pytest.raises(ValueError):
        Trainer(cfg, tmp_path / "run", dataset=fixture_for(cfg), quiet=True, metrics_hook=broken).fit()
    status = _status(tmp_path / "run")
    assert status["state"] == "failed" and status["message"] == "ValueError: a damaged file"


def test_resume_drops_a_half_written_last_record_and_refuses_a_damaged_one(tmp_path):
    cfg = tiny(max_steps=4, ckpt_every=2)
    ds = fixture_for(cfg)
    run = tmp_path / "run"
    Trainer(cfg, run, dataset=ds, quiet=True).fit()
    with open(run / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write('{"step": 4, "loss')                       # killed while writing a record
    Trainer.resume(run, dataset=ds, quiet=True, max_steps=6).fit()
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2, 3, 4, 5]
    lines = (run / "metrics.jsonl").read_text().splitlines()
    lines[2] = "not json"
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    from gcann.train import RunError

    with pytest.raises(RunError, match=r"metrics.jsonl, line 3, is not valid JSON"):
        Trainer.resume(run, dataset=ds, quiet=True, max_steps=8).fit()


def test_resume_refuses_a_max_steps_below_the_checkpoint(tmp_path):
    from gcann.train import RunError

    cfg = tiny(max_steps=4, ckpt_every=2)
    ds = fixture_for(cfg)
    Trainer(cfg, tmp_path / "run", dataset=ds, quiet=True).fit()
    with pytest.raises(RunError, match=r"at step 4: --max-steps 3 would end it before"):
        Trainer.resume(tmp_path / "run", dataset=ds, quiet=True, max_steps=3)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["max_steps"] == 4


# --------------------------------------------------------------------------- errors and help
def test_user_errors_share_one_base_and_bugs_keep_their_traceback(tmp_path, monkeypatch):
    from gcann.data import DataError
    from gcann.metrics import MetricError, MetricUnavailable
    from gcann.train import ConfigError, RunError
    from gcann.train.checkpoint import CheckpointError

    for cls in (ConfigError, RunError, CheckpointError, DataError, MetricError, MetricUnavailable):
        assert issubclass(cls, GcannError) and issubclass(cls, ValueError) and cls.exit_code == 2
    assert issubclass(TrainingDiverged, GcannError) and TrainingDiverged.exit_code == 3
    assert issubclass(TrainingInterrupted, GcannError)

    def bug(self):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(Trainer, "fit", bug)
    with pytest.raises(ZeroDivisionError):
        main(["train", "--preset", "mnist5k-demo", "--max-steps", "1", "--out", str(tmp_path / "run")])


def test_option_help_is_the_fields_own_metadata():
    from click.testing import CliRunner

    from gcann.cli import cli
    from gcann.cli import train as cli_train

    fields = [f for f in dataclasses.fields(TrainConfig) if f.name != "preset"]
    assert all(f.metadata.get("help") for f in dataclasses.fields(TrainConfig))
    text = " ".join(CliRunner().invoke(cli, ["train", "--help"], terminal_width=4000).output.split())
    for f in fields:
        assert " ".join(f.metadata["help"].split()) in text, f.name
    src = Path(cli_train.__file__).read_text()
    assert "getsource" not in src and "re.match" not in src


def test_the_readme_and_train_list_give_the_same_measured_demo_time(capsys):
    from gcann.train.presets import DEMO_MEASURED

    assert main(["train", "--list"]) == 0
    assert DEMO_MEASURED in capsys.readouterr().out
    readme = README.read_text()
    minutes = DEMO_MEASURED.split(" min")[0]
    assert f"the demo took {minutes} min" in readme and "2-core Intel Xeon" in readme
    assert "dataset-fashion-mnist" in readme
