"""Checkpoints: written atomically, complete enough to resume to the last digit.

A checkpoint ``checkpoints/step_XXXXXXX.pt`` holds the resolved config, both
networks, the generator EMA, both optimisers, the controller, the data
stream's position and every random state (the run's own generators and the
global torch, CUDA, NumPy and Python states), plus the losses measured but not
yet observed by the controller (see :mod:`gcann.train.loop`). It is written
and read through :mod:`gcann.state` (the ring study's state files too): to a
temporary file renamed into place, so a kill during the write leaves the
previous checkpoint intact and no partial file under a checkpoint's name.
"""
from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gcann.state import CheckpointError, load_state, save_state

__all__ = ["CheckpointError", "find_checkpoints", "latest_checkpoint", "load_checkpoint", "load_generator",
           "save_checkpoint"]

_NAME = re.compile(r"^step_(\d+)\.pt$")
FORMAT = 2   # 2: the optimisers' states are gcann.train.optimiser.NetworkAdam's (1: torch.optim.Adam's)
KIND = "checkpoint"


def _from_format_1(state: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint of format 1 in format 2's form: its ``torch.optim.Adam`` states as NetworkAdam's."""
    from .optimiser import from_torch_adam

    return {**state, "opt_d": from_torch_adam(state["opt_d"]), "opt_g": from_torch_adam(state["opt_g"])}


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"step_{step:07d}.pt"


def find_checkpoints(run_dir: str | Path) -> list[Path]:
    """The checkpoints of a run folder, oldest first."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: str | Path) -> Path:
    ckpts = find_checkpoints(run_dir)
    if not ckpts:
        if (Path(run_dir) / "config.json").is_file():
            raise CheckpointError(f"{run_dir} holds no checkpoints yet: the run stopped before its first one; "
                                  f"`gcann train --resume {shlex.quote(str(run_dir))}` trains it from step 0")
        raise CheckpointError(f"{run_dir} holds no checkpoints/step_*.pt and no config.json: it is not a gcann run "
                              "folder; start a run with `gcann train --preset NAME --out NEW_FOLDER` "
                              "(`gcann train --list` shows the presets)")
    return ckpts[-1]


def save_checkpoint(path: Path, state: dict[str, Any], keep: int | None = None) -> Path:
    """Write ``state`` atomically to ``path``; then keep only the newest ``keep`` checkpoints beside it."""
    save_state(path, KIND, FORMAT, state)
    if keep is not None:
        for old in find_checkpoints(path.parent.parent)[:-keep]:
            old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint file, or a run folder's latest one."""
    path = Path(path)
    if path.is_dir():
        path = latest_checkpoint(path)
    state = load_state(path, KIND, FORMAT, what="checkpoint", map_location=map_location,
                       fix="use another checkpoint (a run folder's checkpoints/step_*.pt)", older={1: _from_format_1})
    state["path"] = str(path)
    return state


def load_generator(path: str | Path, *, ema: bool = True,
                   device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """The generator of a checkpoint (or a run folder's latest one), in eval mode, and what it makes.

    ``ema=True`` returns the EMA generator when the run kept one (its batch-norm
    statistics as the run left them: see ``ema_bn``). ``info`` has ``kind``
    ("image"/"voxel"), ``nz``, ``dataset``, ``data_root``, ``resolution``,
    ``channels``, ``step``, ``ema`` (whether the EMA weights were loaded) and
    the run's ``config``.
    """
    from gcann.models import build_models

    from .config import TrainConfig

    state = load_checkpoint(path, map_location="cpu")
    cfg = TrainConfig.from_dict(state["config"])
    G, _ = build_models(cfg.arch, resolution=cfg.resolution, channels=cfg.channels, nz=cfg.nz,
                        width_g=cfg.width_g, width_d=cfg.width_d, norm_g=cfg.norm_g, norm_d=cfg.norm_d)
    use_ema = ema and state.get("G_ema") is not None
    try:
        G.load_state_dict(state["G_ema"] if use_ema else state["G"])
    except RuntimeError as e:
        raise CheckpointError(f"{state['path']}: the generator's weights do not fit its config "
                              f"({str(e).splitlines()[0]})") from None
    G.to(device).eval()
    info = {"kind": cfg.kind, "nz": cfg.nz, "dataset": cfg.dataset, "data_root": cfg.data_root,
            "resolution": cfg.resolution, "channels": cfg.channels, "step": int(state["step"]),
            "ema": use_ema, "config": cfg.to_dict(), "path": state["path"]}
    return G, info
