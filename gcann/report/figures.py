"""Curves over training with bands across seeds: one PNG per curve, one line per setting.

The line is the median over the seeds of a setting at each logged point, the band spans the seeds'
minimum to maximum (a run that stopped early, e.g. diverged, leaves the points after its stop).
Curves: the loss gap ``|L_D − L_G|``, the learning rates, the knobs a controller set, and the
evaluations over training (a ring study's coverage curves, a run's periodic FID/KID...).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from gcann.fileio import atomic_write

from .load import Study

__all__ = ["draw_curves"]

TITLES = {"loss_gap": "loss gap |L_D − L_G|", "lr_d": "D learning rate", "lr_g": "G learning rate",
          "sigma": "instance-noise σ", "diversity": "diversity term", "d_steps": "D updates per step",
          "g_steps": "G updates per step"}


def _title(name: str) -> str:
    if name.startswith("eval:"):
        return f"evaluated {name[5:]}"
    if name.startswith("knob:"):
        return f"knob {name[5:]}"
    return TITLES.get(name, name)


def _band(curves: list[tuple[list, list]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    xs = np.array(sorted({float(x) for c in curves for x in c[0]}))
    m = np.full((len(curves), len(xs)), np.nan)
    where = {x: j for j, x in enumerate(xs)}
    for i, (x, y) in enumerate(curves):
        for a, b in zip(x, y):
            if b is not None:
                m[i, where[float(a)]] = float(b)
    keep = np.isfinite(m).any(axis=0)
    m, xs = m[:, keep], xs[keep]
    return xs, np.nanmedian(m, axis=0), np.nanmin(m, axis=0), np.nanmax(m, axis=0)


def draw_curves(study: Study, out: str | Path, *, dpi: int = 110) -> list[Path]:
    """Write ``out/curve_<name>.png`` for every curve the runs have; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    groups: dict[str, list] = {}
    for r in study.runs:
        groups.setdefault(r.key, []).append(r)
    names = list(dict.fromkeys(n for r in study.runs for n in r.curves))
    written = []
    for name in names:
        fig, ax = plt.subplots(figsize=(6.4, 4.0))
        drawn = False
        for key in sorted(groups):
            curves = [r.curves[name] for r in groups[key] if name in r.curves and len(r.curves[name][0])]
            if not curves:
                continue
            xs, mid, lo, hi = _band(curves)
            if not len(xs):
                continue
            label = ", ".join(f"{k}={v}" for k, v in json.loads(key).items()) or "all runs"
            line, = ax.plot(xs, mid, marker="o" if len(xs) < 12 else None, ms=3, label=f"{label} ({len(curves)})")
            ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.2, lw=0)
            drawn = True
        if not drawn:
            plt.close(fig)
            continue
        ax.set_xlabel(study.x_label)
        ax.set_title(f"{_title(name)}: median over seeds, band min–max", fontsize=10)
        if name in ("lr_d", "lr_g") or name.startswith("knob:"):
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = out / f"curve_{name.replace(':', '_')}.png"
        atomic_write(path, lambda tmp, fig=fig: fig.savefig(tmp, dpi=dpi, format="png"))
        plt.close(fig)
        written.append(path)
    return written
