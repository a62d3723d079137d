"""Figures of the GCANN controller on the Dirac-GAN (see ``docs/gcann_dirac.md``).

* :func:`trajectories_with_without`: (θ, ψ) paths, plain vs +GCANN, from the same
  initial points, with the EMA of the iterates; the equilibrium is marked.
* :func:`loss_curves_with_events`: the two losses of one +GCANN run with every
  controller event marked on the time axis, and the learning rates below.
* :func:`trajectories_figure` (``gcann_trajectories``) and :func:`loss_events_figure`
  (``gcann_loss_events``): the two figures of the README and the docs
  (:mod:`gcann.dirac.figures.registry` writes them).

Built on :class:`matplotlib.figure.Figure`, without ``pyplot``.
"""
from __future__ import annotations

import matplotlib
import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from dynamics.simulate import simulate
from dynamics.study import make_game
from dynamics.verdict import LABELS, classify
from gcann.dirac.configs import DEFAULT_LR, dirac_config
from gcann.dirac.controlled_simulator import effective_distance, simulate_gcann

__all__ = ["trajectories_with_without", "loss_curves_with_events", "trajectories_figure", "loss_events_figure",
           "EVENT_STYLE"]

#: colour and marker per controller event type
EVENT_STYLE = {
    "reactive": ("tab:red", "v"),
    "proactive": ("tab:purple", "D"),
    "pause_d": ("tab:blue", "s"),
    "pause_g": ("tab:orange", "s"),
    "skip_d": ("tab:cyan", "|"),
    "skip_g": ("gold", "|"),
    "tie_break": ("tab:brown", "x"),
    "slope_threshold": ("tab:gray", "o"),
    "slope_thresh_scale": ("tab:olive", "^"),
    "diverged": ("black", "X"),
}


def _inits(k: int, radius: float, dim: int) -> torch.Tensor:
    a = torch.arange(k, dtype=torch.float64) * (2 * torch.pi / k) + 0.4
    z = torch.zeros(k, 2 * dim, dtype=torch.float64)
    z[:, 0], z[:, dim] = radius * torch.cos(a), radius * torch.sin(a)
    return z


def trajectories_with_without(method: str = "gan", params: dict | None = None, dim: int = 1, *, n: int = 3,
                              radius: float = 0.8, steps: int = 2000, lr: float = DEFAULT_LR,
                              ema_beta: float = 0.99, config=None, ax_row=None, title: str | None = None):
    """(θ, ψ) trajectories plain vs +GCANN from the same ``n`` initial points (first
    coordinates when dim > 1); solid: iterates, dashed: their EMA (β = ``ema_beta``)."""
    game = make_game(method, params or {}, dim)
    z0 = _inits(n, radius, dim)
    cfg = config if config is not None else dirac_config(lr)
    plain = simulate(game, z0, scheme="simgd", steps=steps, lr_d=lr, lr_g=lr, ema_beta=ema_beta)
    ctrl, logs = simulate_gcann(game, z0, config=cfg, steps=steps, ema_beta=ema_beta)
    if ax_row is None:
        fig = Figure(figsize=(10, 4.6))
        ax_row = fig.subplots(1, 2, sharex=True, sharey=True)
    else:
        fig = ax_row[0].figure
    colours = matplotlib.colormaps["viridis"](torch.linspace(0.05, 0.85, n).numpy())
    for ax, tr, name in ((ax_row[0], plain, "plain simGD"), (ax_row[1], ctrl, "simGD + GCANN")):
        th, ps = tr.z[..., 0].numpy(), tr.z[..., dim].numpy()
        eth, eps_ = tr.z_ema[..., 0].numpy(), tr.z_ema[..., dim].numpy()
        for b in range(n):
            ax.plot(th[:, b], ps[:, b], color=colours[b], lw=0.7, alpha=0.85)
            ax.plot(eth[:, b], eps_[:, b], color=colours[b], lw=1.6, ls="--")
            ax.plot(th[0, b], ps[0, b], "o", color=colours[b], ms=6, mec="k")
            ax.plot(th[-1, b], ps[-1, b], "s", color=colours[b], ms=5, mec="k")
        ax.plot(0, 0, marker="*", color="red", ms=16, mec="k", zorder=5, ls="none")
        d = tr.distance()[-1]
        de = tr.distance(ema=True)[-1]
        labels = classify(effective_distance(tr), z=tr.z, t=tr.t)
        verdict = ", ".join(f"{labels.count(k)} {k}" for k in LABELS if k in labels)
        ax.set_title(f"{title or method}: {name}\n{verdict}; final ‖z‖ median {d.median():.2g} "
                     f"(EMA {de.median():.2g})", fontsize=10)
        ax.set_xlabel("θ (generator)")
        ax.grid(alpha=0.3)
    ax_row[0].set_ylabel("ψ (discriminator)")
    handles = [Line2D([], [], color="k", lw=0.7, label="iterates"),
               Line2D([], [], color="k", lw=1.6, ls="--", label=f"EMA β={ema_beta}"),
               Line2D([], [], marker="o", color="w", mec="k", label="start"),
               Line2D([], [], marker="s", color="w", mec="k", label=f"after {steps} steps"),
               Line2D([], [], marker="*", color="red", mec="k", ms=12, ls="none", label="equilibrium")]
    ax_row[1].legend(handles=handles, fontsize=8, loc="upper right", framealpha=0.85)
    return fig, (plain, ctrl, logs)


def loss_curves_with_events(method: str = "nsgan", params: dict | None = None, dim: int = 1, *,
                            z0=(0.8, 0.6), steps: int = 2000, lr: float = DEFAULT_LR, config=None,
                            axes=None, title: str | None = None):
    """One +GCANN run: loss_d and loss_g over steps with every controller event marked
    (top: losses and vertical lines at learning-rate adjustments; middle: one marker row per
    event type; bottom: lr_d, lr_g and the steps at which each player was idle)."""
    game = make_game(method, params or {}, dim)
    z = torch.as_tensor(z0, dtype=torch.float64).reshape(1, -1)
    cfg = config if config is not None else dirac_config(lr)
    tr, logs = simulate_gcann(game, z, config=cfg, steps=steps)
    ev = logs.events[0]
    if axes is None:
        fig = Figure(figsize=(10, 7.5))
        axes = fig.subplots(3, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.4, 2]})
    else:
        fig = axes[0].figure
    k = torch.arange(steps).numpy()
    a0, a1, a2 = axes
    a0.plot(k, logs.loss_d[:, 0].numpy(), color="tab:blue", lw=1.1, label="loss_d (D minimises)")
    a0.plot(k, logs.loss_g[:, 0].numpy(), color="tab:orange", lw=1.1, label="loss_g (G minimises)")
    a0.axvspan(0, cfg.baseline_steps, color="0.9", zorder=0, label=f"warm-up ({cfg.baseline_steps} steps)")
    for e in ev:
        if e["event"] in ("reactive", "proactive", "diverged"):
            a0.axvline(e["step"], color=EVENT_STYLE[e["event"]][0], lw=0.8, alpha=0.6)
    a0.set_ylabel("loss")
    a0.set_title(title or f"{method}: simGD + GCANN, one run from (θ, ψ) = {tuple(z0)}; lr = {lr:g}", fontsize=10)
    a0.grid(alpha=0.3)
    a0.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.005, 0.5), framealpha=0.85)
    kinds = [kk for kk in EVENT_STYLE if any(e["event"] == kk for e in ev)]
    for i, kind in enumerate(kinds):
        steps_k = [e["step"] for e in ev if e["event"] == kind]
        col, mk = EVENT_STYLE[kind]
        a1.plot(steps_k, [i] * len(steps_k), ls="none", marker=mk, color=col, ms=7 if mk == "|" else 5,
                mew=1.5 if mk in "|x" else 0.5, label=f"{kind} ({len(steps_k)})")
    a1.set_yticks(range(len(kinds)), kinds, fontsize=8)
    a1.set_ylim(-0.7, max(len(kinds), 1) - 0.3)
    a1.grid(alpha=0.3, axis="x")
    a1.set_ylabel("events", fontsize=9)
    a2.semilogy(k, logs.lr_d[:, 0].numpy(), color="tab:blue", label="lr_d")
    a2.semilogy(k, logs.lr_g[:, 0].numpy(), color="tab:orange", label="lr_g")
    a2.semilogy(k, (logs.lr_d[:, 0] * logs.lr_g[:, 0] / lr).numpy(), color="k", ls=":",
                label="lr_d·lr_g / lr\n(= a·b·lr: what\nthe spectrum sees)")
    idle_g = (~logs.train_g[:, 0]).numpy()
    idle_d = (~logs.train_d[:, 0]).numpy()
    lo = min(float(logs.lr_d.min()), float(logs.lr_g.min())) * 0.5
    a2.fill_between(k, lo, lo * 1.6, where=idle_g, color="tab:orange", alpha=0.5, step="mid", label="G idle")
    a2.fill_between(k, lo * 1.6, lo * 2.6, where=idle_d, color="tab:blue", alpha=0.5, step="mid", label="D idle")
    a2.set_ylabel("learning rate")
    a2.set_xlabel("step")
    a2.grid(alpha=0.3, which="both")
    a2.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.005, 0.5), framealpha=0.85)
    return fig, (tr, logs)


def trajectories_figure(*, lr: float = DEFAULT_LR, steps: int = 2000):
    """``gcann_trajectories``: GAN, WGAN (clip 1) and R1 without and with the controller."""
    fig = Figure(figsize=(10, 13))
    axs = fig.subplots(3, 2, sharex="row", sharey="row")
    trajectories_with_without("gan", steps=steps, lr=lr, ax_row=axs[0], title="GAN (saturating)")
    trajectories_with_without("wgan", {"clip": 1.0}, steps=steps, lr=lr, ax_row=axs[1], title="WGAN (clip 1)")
    trajectories_with_without("r1", {"gamma": 1.0}, steps=steps, lr=lr, ax_row=axs[2], title="R1 (γ=1)")
    fig.suptitle(f"Dirac-GAN, simGD + SGD, lr = {lr:g}: without (left) and with (right) the GCANN controller "
                 "(DIRAC_CONFIG)", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    return fig


def loss_events_figure(*, lr: float = DEFAULT_LR, steps: int = 2000):
    """``gcann_loss_events``: the losses of one NSGAN and one GAN run with every controller event."""
    fig = Figure(figsize=(11.5, 14))
    axs = fig.subplots(6, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.3, 2, 3, 1.3, 2]})
    loss_curves_with_events("nsgan", steps=steps, lr=lr, axes=axs[:3],
                            title=f"NSGAN, simGD + GCANN (DIRAC_CONFIG), one run from (θ, ψ) = (0.8, 0.6), lr = {lr:g}")
    loss_curves_with_events("gan", steps=steps, lr=lr, axes=axs[3:],
                            title=f"GAN (saturating), simGD + GCANN (DIRAC_CONFIG), same start, lr = {lr:g}")
    for a in axs[:2]:
        a.tick_params(labelbottom=False)
    axs[2].set_xlabel("")
    fig.tight_layout()
    return fig

