"""Figures of the ring study and Welfert et al.'s 1-D toy (see ``docs/ring.md``).

* ``success_failure``: success and failure rates per setting with Wilson 95 % intervals;
* ``modes_hq``: mean modes covered and mean HQ ratio per setting (± one standard deviation);
* ``coverage_epochs``: mean modes covered over epochs per setting (Welfert et al.'s Figure 1, left);
* ``scatter``: generated samples over the discriminator's decision contours σ(D(x)), first seed of each setting;
* ``controller_events``: the controller events of each row with a feedback controller (+gcann, +gap, ...) over
  training, and the mean learning rates;
* :func:`alpha_sweep_figure`: the paper's Figure 1, coverage over epochs and success/failure against α_D;
* :func:`toy_objectives_figure`: the generator objectives under the optimal discriminator (1-D toy).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import matplotlib
import torch
from matplotlib.figure import Figure
from torch import Tensor

from dynamics.objectives import GAN_LOSSES, Context
from gcann.dirac.figures.controller import EVENT_STYLE
from gcann.fileio import atomic_write

from .data import dataset_modes, eval_generator
from .models import DISCRIMINATOR, mlp_forward, select
from .train import RingRun, generate

__all__ = ["study_figures", "alpha_sweep_figure", "controller_events_figure", "toy_optimal_logit", "toy_generator_objectives",
           "toy_objectives_figure", "TOY_PAIRS"]

TOY_PAIRS = ((1.0, 1.0), (0.2, 1.0), (0.2, 2.0))   # (α_D, α_G) of Welfert et al.'s toy figure
TOY_REAL, TOY_FAKE, TOY_VAR = -3.0, -1.0, 0.5      # P_r = N(−3, 0.5), P_g = N(−1, 0.5), read as N(μ, σ²)


def _subplots(*args, figsize: tuple[float, float], **kw):
    """A figure and its axes, built without pyplot (no backend chosen, nothing global changed)."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*args, **kw)


def _save(fig, path: Path) -> None:
    atomic_write(path, lambda p: fig.savefig(p, dpi=110, bbox_inches="tight"))


def study_figures(run: RingRun, metrics: dict[str, Tensor], results: Sequence[dict], out: Path, *,
                  dataset: str = "ring") -> list[Path]:
    out = Path(out)
    names = [r["setting"] for r in results]
    y = list(range(len(names)))
    paths = []

    fig, ax = _subplots(figsize=(7, 0.35 * len(names) + 1.2))
    for off, key, colour in ((-0.18, "success", "tab:green"), (0.18, "failure", "tab:red")):
        val = [r[key] for r in results]
        lo = [r[key] - r[f"{key}_ci95"][0] for r in results]
        hi = [r[f"{key}_ci95"][1] - r[key] for r in results]
        ax.barh([i + off for i in y], val, height=0.34, color=colour, xerr=[lo, hi], capsize=2, label=key)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"rate over {results[0]['n_seeds']} seeds (Wilson 95 % intervals)")
    ax.legend(loc="lower right")
    paths.append(out / "success_failure.png")
    _save(fig, paths[-1])

    k = dataset_modes(dataset).k
    fig, (a1, a2) = _subplots(1, 2, figsize=(10, 0.35 * len(names) + 1.2), sharey=True)
    a1.barh(y, [r["modes_mean"] for r in results], xerr=[r["modes_std"] for r in results], color="tab:blue", capsize=2)
    a1.set_xlim(0, k)
    a1.set_xlabel(f"modes covered (of {k}), mean ± sd")
    a2.barh(y, [r["hq_mean"] for r in results], xerr=[r["hq_std"] for r in results], color="tab:purple", capsize=2)
    a2.set_xlim(0, 1)
    a2.set_xlabel("high-quality ratio (within 3σ), mean ± sd")
    a1.set_yticks(y, names)
    a1.invert_yaxis()
    paths.append(out / "modes_hq.png")
    _save(fig, paths[-1])

    if run.curve:
        fig, ax = _subplots(figsize=(7, 4.5))
        modes = torch.stack([c["modes_covered"].double() for c in run.curve])    # (E, S)
        for name in names:
            rows = [i for i, s in enumerate(run.settings) if s.name == name]
            ax.plot(run.curve_epochs, modes[:, rows].mean(1), marker="o", ms=3, label=name,
                    ls="--" if "+" in name else "-")
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"mean modes covered (of {k})")
        ax.set_ylim(0, k + 0.3)
        ax.legend(fontsize=6, ncol=2)
        paths.append(out / "coverage_epochs.png")
        _save(fig, paths[-1])

    paths.append(out / "scatter.png")
    _scatter(run, names, dataset, paths[-1])

    if any(s.controller != "none" for s in run.settings):
        paths.append(out / "controller_events.png")
        controller_events_figure(run.settings, run.seeds, run.events, run.lr_d, run.lr_g, run.steps, paths[-1])
    return paths


def alpha_sweep_figure(run: RingRun, sweep: Sequence[dict], path: Path, *, dataset: str = "ring") -> None:
    """Figure 1 of the (α_D, α_G)-GAN paper from a study of saturating (α_D, 1) settings. Left: modes covered over
    epochs, mean over seeds with the band between the quartiles, per α_D. Right: success and failure rates against
    α_D with Wilson 95 % intervals, and the published rates (hollow markers, their 200 seeds, 400 epochs)."""
    k = dataset_modes(dataset).k
    fig, (a1, a2) = _subplots(1, 2, figsize=(11, 4.2))
    alphas = [r["alpha_d"] for r in sweep]
    colours = matplotlib.colormaps["viridis"]([i / max(len(alphas) - 1, 1) for i in range(len(alphas))])
    if run.curve:
        modes = torch.stack([c["modes_covered"].double() for c in run.curve])     # (E, S)
        for a, colour in zip(alphas, colours):
            rows = [i for i, s in enumerate(run.settings) if s.loss == "alpha_sat" and s.alpha_g == 1.0
                    and s.alpha_d == a and not (s.controller != "none" or s.r1 or s.ema)]
            m = modes[:, rows]
            a1.plot(run.curve_epochs, m.mean(1), color=colour, label=f"α_D = {a:g}")
            if len(rows) > 1:
                q = torch.quantile(m, torch.tensor([0.25, 0.75], dtype=m.dtype), dim=1)
                a1.fill_between(run.curve_epochs, q[0], q[1], color=colour, alpha=0.15)
        a1.legend(fontsize=7, ncol=2)
    a1.set_xlabel("epoch")
    a1.set_ylabel(f"modes covered (of {k}): mean, quartile band")
    a1.set_ylim(0, k + 0.3)
    a1.set_title("saturating (α_D, 1)-GAN: mode coverage over epochs", fontsize=9)
    for key, colour in (("success", "tab:green"), ("failure", "tab:red")):
        val = [r[key] for r in sweep]
        err = [[r[key] - r[f"{key}_ci95"][0] for r in sweep], [r[f"{key}_ci95"][1] - r[key] for r in sweep]]
        a2.errorbar(alphas, val, yerr=err, color=colour, marker="o", capsize=3,
                    label=f"{key}, {sweep[0]['n_seeds'] if sweep else 0} seeds")
        pub = [(r["alpha_d"], r["published"][key]) for r in sweep if "published" in r]
        if pub:
            a2.plot(*zip(*pub), ls=":", marker="o", mfc="none", color=colour, label=f"{key}, published (200 seeds)")
    a2.set_xlabel("α_D (α_G = 1)")
    a2.set_ylabel("rate (Wilson 95 % intervals)")
    a2.set_ylim(0, 1)
    a2.set_title(f"success (all {k} modes covered) and failure (none) after training", fontsize=9)
    a2.legend(fontsize=7)
    _save(fig, path)


def controller_events_figure(settings: Sequence, seeds: Sequence[int], events: Sequence[dict], lr_d: Sequence[Tensor],
                             lr_g: Sequence[Tensor], steps: int, path: Path) -> None:
    """Each controlled row's events over the steps (one marker per event; a long study has tens of
    thousands, drawn as one scatter per kind of event) and the mean learning rates per epoch."""
    gc = [i for i, s in enumerate(settings) if s.controller != "none"]
    line = {row: j for j, row in enumerate(gc)}
    fig, (a1, a2) = _subplots(2, 1, figsize=(8, 6), gridspec_kw={"height_ratios": [2, 1]})
    kinds = sorted({e["event"] for e in events})
    for kind in kinds:
        mine = [e for e in events if e["event"] == kind]
        colour, marker = EVENT_STYLE.get(kind, ("k", "."))
        a1.scatter([e["step"] for e in mine], [line[e["row"]] for e in mine], c=colour, marker=marker, s=12,
                   label=f"{kind} ({len(mine)})")
    a1.set_yticks(range(len(gc)), [f"{settings[i].name} s{seeds[i]}" for i in gc], fontsize=6)
    a1.set_xlabel("step")
    a1.set_xlim(0, steps)
    if kinds:
        a1.legend(fontsize=6, loc="upper left", ncol=4)
    a1.set_title("controller events (rows with a controller)")
    epochs = range(1, len(lr_d) + 1)
    rates_d, rates_g = torch.stack(list(lr_d))[:, gc], torch.stack(list(lr_g))[:, gc]
    a2.plot(epochs, rates_d.mean(1), label="lr_D (mean over rows with a controller)")
    a2.plot(epochs, rates_g.mean(1), label="lr_G")
    a2.set_yscale("log")
    a2.set_xlabel("epoch")
    a2.legend(fontsize=7)
    _save(fig, path)


def _scatter(run: RingRun, names: list[str], dataset: str, path: Path, n: int = 1000) -> None:
    rows = [next(i for i, s in enumerate(run.settings) if s.name == name) for name in names]
    modes = dataset_modes(dataset)
    lim = float(modes.means.abs().max()) * 1.5
    grid = torch.linspace(-lim, lim, 120)
    gx, gy = torch.meshgrid(grid, grid, indexing="xy")
    pts = torch.stack([gx.flatten(), gy.flatten()], -1)
    cols = min(5, len(rows))
    fig, axes = _subplots(math.ceil(len(rows) / cols), cols, figsize=(2.6 * cols, 2.6 * math.ceil(len(rows) / cols)),
                             squeeze=False)
    g_eval = run.eval_params()
    for ax, r in zip(axes.flat, rows):
        z = run.eval_codes[None, :n] if run.eval_codes is not None else \
            torch.randn(1, n, 2, generator=eval_generator(run.seeds[r], final=True))
        x = generate(select(g_eval, r, r + 1), z)[0]
        with torch.no_grad():
            d_row = select(run.d_params, r, r + 1)
            prob = torch.sigmoid(mlp_forward(DISCRIMINATOR, d_row, pts[None].to(d_row[0].device))[0, :, 0]).cpu()
        cs = ax.contourf(gx, gy, prob.view(gx.shape).nan_to_num(0.5), levels=torch.linspace(0, 1, 11), cmap="RdBu_r",
                         alpha=0.7)
        ax.scatter(modes.means[:, 0], modes.means[:, 1], c="k", marker="x", s=14)
        ax.scatter(x[:, 0], x[:, 1], s=1, c="yellow", alpha=0.6)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_title(f"{run.settings[r].name}, seed {run.seeds[r]}", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in list(axes.flat)[len(rows):]:
        ax.axis("off")
    fig.colorbar(cs, ax=axes, shrink=0.6, label="σ(D(x)): D's probability that x is real")
    _save(fig, path)


# --------------------------------------------------------------------------- 1-D toy
def _log_normal(x: Tensor, mean: float, var: float) -> Tensor:
    return -0.5 * (x - mean) ** 2 / var - 0.5 * math.log(2 * math.pi * var)


def toy_optimal_logit(x: Tensor, alpha_d: float, real: float = TOY_REAL, fake: float = TOY_FAKE,
                      var: float = TOY_VAR) -> Tensor:
    """Logit of the optimal α_D-discriminator, ``D* = p_r^α/(p_r^α + p_g^α)``, i.e. ``α_D·log(p_r/p_g)``."""
    return alpha_d * (_log_normal(x, real, var) - _log_normal(x, fake, var))


def toy_generator_objectives(x: Tensor, alpha_d: float, alpha_g: float) -> dict[str, Tensor]:
    """The generator's per-sample objective at x under D*: saturating ``−ℓ_αG(0, D*(x))`` and non-saturating
    ``ℓ_αG(1, D*(x))`` (both minimised by G), from ``dynamics.objectives``' α-losses."""
    t = toy_optimal_logit(x, alpha_d)
    ctx = Context(x, x, {"alpha_d": alpha_d, "alpha_g": alpha_g})
    return {"saturating": GAN_LOSSES["alpha_sat"].g(t, ctx), "non_saturating": GAN_LOSSES["alpha_ns"].g(t, ctx)}


def toy_objectives_figure(path: str | Path, pairs: Sequence[tuple[float, float]] = TOY_PAIRS) -> Path:
    """Welfert et al.'s 1-D toy: P_r = N(−3, 0.5), P_g = N(−1, 0.5), G's objectives under D*, saturating and not."""
    x = torch.linspace(-6, 2, 801, dtype=torch.float64)
    fig, axes = _subplots(1, 2, figsize=(10, 3.8))
    for ax, key, title in ((axes[0], "saturating", "saturating: −ℓ_αG(0, D*(x))"),
                           (axes[1], "non_saturating", "non-saturating: ℓ_αG(1, D*(x))")):
        for ad, ag in pairs:
            ax.plot(x, toy_generator_objectives(x, ad, ag)[key], label=f"(α_D, α_G) = ({ad:g}, {ag:g})")
        twin = ax.twinx()
        twin.fill_between(x, _log_normal(x, TOY_REAL, TOY_VAR).exp(), color="gray", alpha=0.2, label="p_r")
        twin.fill_between(x, _log_normal(x, TOY_FAKE, TOY_VAR).exp(), color="tab:orange", alpha=0.15, label="p_g")
        twin.set_yticks([])
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("x")
        ax.legend(fontsize=7, loc="upper left")
    axes[1].set_ylim(-0.1, 8)
    axes[0].set_ylim(-8, 0.1)
    path = Path(path)
    _save(fig, path)
    return path
