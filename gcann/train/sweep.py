"""Multi-seed / multi-config sweeps, submitted through submitit (Slurm, or local processes).

A sweep is the product of seeds and a grid of config values over one preset;
each point is one ordinary run in its own folder under the sweep folder, so
every tool that reads a run folder reads a sweep's runs. ``sweep.json`` lists
the runs and their job ids; :func:`collect` gathers each run's ``status.json``
and last logged losses into ``summary.json``.

The scheduler is submitit's: ``executor="slurm"`` submits a Slurm job array
(partition, time, GPUs from the options), ``"local"`` runs each job as a local
process, ``"debug"`` runs them in this process (for debugging).
"""
from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from gcann.fileio import atomic_write_text

from .config import ConfigError, TrainConfig
from .presets import train_preset

__all__ = ["collect", "expand", "run_config", "submit"]


def expand(preset: str, seeds: list[int], grid: dict[str, list[Any]],
           overrides: dict[str, Any] | None = None) -> list[tuple[str, TrainConfig]]:
    """``(name, config)`` for every point of seeds × grid (validated before anything is submitted). Grid keys are
    config fields, and ``lr``, which sets ``lr_d`` and ``lr_g`` to the same value."""
    keys = list(grid)
    runs = []
    if "lr" in keys and ({"lr_d", "lr_g"} & set(keys) or {"lr_d", "lr_g"} & set(overrides or {})):
        raise ConfigError("the grid key lr sets lr_d and lr_g together; do not also give lr_d or lr_g")
    for values in itertools.product(*(grid[k] for k in keys)):
        point = dict(zip(keys, values))
        fields = {k: v for k, v in point.items() if k != "lr"}
        if "lr" in point:   # one rate for both networks (the (α_D, α_G)-GAN authors' grids)
            fields.update(lr_d=point["lr"], lr_g=point["lr"])
        for seed in seeds:
            cfg = train_preset(preset, **{**(overrides or {}), **fields, "seed": seed})
            tag = "-".join(f"{k}={_tag(v)}" for k, v in point.items())
            runs.append((f"{preset}{'-' + tag if tag else ''}-seed{seed}", cfg))
    names = [n for n, _ in runs]
    if len(set(names)) != len(names):
        raise ConfigError("two sweep points have the same name; give distinct grid values")
    return runs


def _tag(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return "+".join(map(str, v)) or "none"
    return str(v).replace("/", "_")


def run_config(config: dict[str, Any], run_dir: str) -> dict[str, Any]:
    """One job: train ``config`` into ``run_dir`` (resuming it if it has checkpoints, or restarting it from step 0
    if it stopped before its first); returns its status."""
    from .checkpoint import find_checkpoints
    from .loop import Trainer, TrainingDiverged

    if find_checkpoints(run_dir) or (Path(run_dir) / "config.json").is_file():
        trainer = Trainer.resume(run_dir, quiet=True)
    else:
        trainer = Trainer(TrainConfig.from_dict(config), run_dir, quiet=True)
    try:
        trainer.fit()
    except TrainingDiverged:
        pass  # recorded in status.json; a sweep goes on with its other runs
    return json.loads((Path(run_dir) / "status.json").read_text())


def submit(runs: list[tuple[str, TrainConfig]], out: Path, *, executor: str = "local",
           timeout_min: int = 60 * 24, slurm_partition: str | None = None, gpus_per_node: int = 0,
           cpus_per_task: int | None = None) -> list[Any]:
    """Submit one job per run; writes ``out/sweep.json`` and returns the submitit jobs."""
    import submitit

    out.mkdir(parents=True, exist_ok=True)
    cluster = {"slurm": "slurm", "local": "local", "debug": "debug"}.get(executor)
    if cluster is None:
        raise ConfigError(f"executor must be slurm, local or debug, got {executor!r}")
    ex = submitit.AutoExecutor(folder=str(out / "submitit"), cluster=cluster)
    params: dict[str, Any] = {"timeout_min": timeout_min}
    if cluster == "slurm":
        params.update(gpus_per_node=gpus_per_node)
        if slurm_partition:
            params["slurm_partition"] = slurm_partition
        if cpus_per_task:
            params["cpus_per_task"] = cpus_per_task
    ex.update_parameters(**params)
    configs = [cfg.to_dict() for _, cfg in runs]
    dirs = [str(out / name) for name, _ in runs]
    jobs = ex.map_array(run_config, configs, dirs)
    doc = {"executor": executor, "runs": [{"name": n, "run_dir": d, "job_id": str(j.job_id)}
                                          for (n, _), d, j in zip(runs, dirs, jobs)]}
    atomic_write_text(out / "sweep.json", json.dumps(doc, indent=2) + "\n")
    return jobs


def collect(out: Path) -> list[dict[str, Any]]:
    """Each run's state and its last logged losses; written to ``out/summary.json``."""
    doc = json.loads((out / "sweep.json").read_text())
    rows = []
    for r in doc["runs"]:
        rd = Path(r["run_dir"])
        status = json.loads((rd / "status.json").read_text()) if (rd / "status.json").is_file() else {"state": "pending"}
        last = {}
        metrics = rd / "metrics.jsonl"
        if metrics.is_file():
            for line in metrics.read_text().splitlines():
                if line.strip():
                    row = json.loads(line)
                    if "loss_d" in row:
                        last = row
        rows.append({"name": r["name"], "run_dir": str(rd), "state": status.get("state"), "step": status.get("step"),
                     "loss_d": last.get("loss_d"), "loss_g": last.get("loss_g"),
                     "flags": [f.get("flag") for f in status.get("flags", [])]})
    atomic_write_text(out / "summary.json", json.dumps(rows, indent=2) + "\n")
    return rows
