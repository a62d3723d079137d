"""Pictures of a run: sample grids, voxel renders, loss curves with the controller's events.

Voxel grids are drawn as depth-shaded orthographic views (front, side, top):
for each pixel, the depth of the first occupied voxel along the view axis is
turned into a grey level and lit from the depth map's gradient, which shows the
shape's relief at a cost independent of the number of voxels (matplotlib's
``voxels`` takes seconds per 64³ grid).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from torch import Tensor

from gcann.fileio import atomic_write

__all__ = ["depth_views", "save_image_grid", "save_loss_curves", "save_voxel_renders"]


#: saved grids are enlarged (each pixel repeated k×k, no interpolation) until their longer side is at least this
GRID_MIN_SIDE = 512


def save_image_grid(images: Tensor, path: Path, nrow: int | None = None, min_side: int = GRID_MIN_SIDE) -> Path:
    """A PNG grid of images in [-1, 1], ``(N, C, H, W)``, enlarged by a whole factor (nearest neighbour: every
    pixel becomes a k×k block of the same value) so that its longer side is at least ``min_side`` pixels; the
    samples themselves are not changed (``gcann sample --out x.npz`` stores them at their own size)."""
    from torchvision.utils import make_grid, save_image

    images = images.detach().float().cpu().clamp(-1, 1) * 0.5 + 0.5
    nrow = nrow or max(1, int(math.ceil(math.sqrt(images.shape[0]))))
    grid = make_grid(images, nrow=nrow, padding=2)
    k = max(1, math.ceil(min_side / max(grid.shape[1:])))
    if k > 1:
        grid = grid.repeat_interleave(k, dim=1).repeat_interleave(k, dim=2)
    return atomic_write(path, lambda tmp: save_image(grid, tmp, format="png"))


def depth_views(vox: np.ndarray, threshold: float = 0.5) -> list[np.ndarray]:
    """Shaded front (along x), side (along y) and top (along z) views of one grid ``(R, R, R)``, values in [0, 1]."""
    occ = vox > threshold
    r = occ.shape[0]
    views = []
    for axis in (0, 1, 2):
        hit = occ.any(axis=axis)
        depth = np.where(hit, occ.argmax(axis=axis), r).astype(np.float64)
        near = 1.0 - depth / r                                   # nearer is brighter
        gy, gx = np.gradient(np.where(hit, depth, depth.max()))
        light = 1.0 / np.sqrt(1.0 + gx ** 2 + gy ** 2)           # facing the viewer is brighter
        img = np.where(hit, 0.25 + 0.75 * near * light, 1.0)      # white background
        views.append(np.rot90(img) if axis != 2 else img)
    return views


def save_voxel_renders(voxels: Tensor, path: Path, max_items: int = 16) -> Path:
    """Front/side/top depth views of up to ``max_items`` grids ``(N, 1, R, R, R)`` in [0, 1], as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    v = voxels.detach().float().cpu().numpy()[:max_items, 0]
    n = v.shape[0]
    cols = min(4, n)
    rows = int(math.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols * 3, figsize=(cols * 3 * 1.1, rows * 1.2), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i in range(n):
        for j, img in enumerate(depth_views(v[i])):
            axes[i // cols, (i % cols) * 3 + j].imshow(img, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    fig.suptitle("generated grids: front / side / top", fontsize=8)
    fig.tight_layout(pad=0.2)
    out = atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)
    return out


_EVENT_STYLE = {"reactive": ("tab:red", "-"), "proactive": ("tab:purple", "--"), "pause_d": ("tab:blue", ":"),
                "pause_g": ("tab:orange", ":"), "skip_d": ("tab:cyan", ":"), "skip_g": ("tab:olive", ":")}


def save_loss_curves(run_dir: Path, path: Path | None = None) -> Path | None:
    """``loss_curves.png``: loss_d and loss_g over steps, learning rates below, controller events marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    rows = _read_jsonl(run_dir / "metrics.jsonl")
    rows = [r for r in rows if "loss_d" in r]
    if not rows:
        return None
    events = _read_jsonl(run_dir / "events.jsonl")
    step = [r["step"] for r in rows]
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(8, 5), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    ax.plot(step, [r["loss_d"] for r in rows], label="loss_d", lw=0.9)
    ax.plot(step, [r["loss_g"] for r in rows], label="loss_g", lw=0.9)
    seen = set()
    for e in events:
        style = _EVENT_STYLE.get(e.get("event"))
        if style is None:
            continue
        label = e["event"] if e["event"] not in seen else None
        seen.add(e["event"])
        ax.axvline(e["step"], color=style[0], ls=style[1], lw=0.6, alpha=0.6, label=label)
    ax.set_ylabel("loss")
    ax.legend(fontsize=7, ncol=4, loc="upper right")
    ax2.semilogy(step, [r["lr_d"] for r in rows], label="lr_d")
    ax2.semilogy(step, [r["lr_g"] for r in rows], label="lr_g")
    ax2.set_xlabel("step")
    ax2.set_ylabel("learning rate")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    out = atomic_write(path or run_dir / "loss_curves.png", lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return out


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            out.append(json.loads(line))
    return out
