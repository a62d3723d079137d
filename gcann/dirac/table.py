"""The GCANN table: plain / +GCANN / +EMA / +GCANN+EMA per method from a batch of initial
conditions (:func:`gcann_table`), and every table ``gcann dirac table`` prints (:func:`study_tables`:
the sources' tables of :mod:`dynamics.study`, the EMA summary and the GCANN table).
See ``docs/gcann_dirac.md``.
"""
from __future__ import annotations

import math
import time

import torch

from dynamics.objectives import ObjectiveError
from dynamics.simulate import simulate
from dynamics.study import make_game
from dynamics.verdict import LABELS, Tolerances, classify, steps_to_reach

from .configs import DEFAULT_LR, DIRAC_CHANGES, dirac_config, paper_config
from .controlled_simulator import effective_distance, simulate_gcann
from .spectra import map_spectral_radii

Tensor = torch.Tensor

__all__ = ["COLUMN_TITLES", "COLUMNS", "CONFIG_TITLES", "dirac_controllers", "EXTRA_METHODS", "TABLE_METHODS",
           "controller_table", "default_configs", "gcann_table", "study_tables", "study_table_rows"]

#: (label, method, params, dim) of the table rows
TABLE_METHODS: list[tuple[str, str, dict, int]] = [
    ("gan", "gan", {}, 1),
    ("nsgan", "nsgan", {}, 1),
    ("wgan (clip 1)", "wgan", {"clip": 1.0}, 1),
    ("wgan_gp (γ=1, c=1)", "wgan_gp", {"gamma": 1.0, "c": 1.0}, 1),
    ("dragan (γ=1, c=1)", "dragan", {"gamma": 1.0, "c": 1.0}, 1),
    ("r1 (γ=1)", "r1", {"gamma": 1.0}, 1),
    ("r2 (γ=1)", "r2", {"gamma": 1.0}, 1),
    ("roth (γ=1)", "roth", {"gamma": 1.0}, 1),
    ("instance_noise (σ=1)", "instance_noise", {"sigma": 1.0}, 1),
    ("conopt (γ=1)", "conopt", {"gamma": 1.0}, 1),
    ("lsgan", "lsgan", {}, 1),
    ("nsgan 2-D", "nsgan", {}, 2),
    ("gan_qp 2-D (λ=1)", "gan_qp", {"lam": 1.0}, 2),
    ("wgan_norm 2-D", "wgan_norm", {}, 2),
]

#: available but not in the default table: α = 1 is exactly nsgan (same numbers), and the α-loss
#: evaluation is ~100x slower than nsgan's once |ψθ| is large (dynamics.objectives._alpha_loss_real)
EXTRA_METHODS: list[tuple[str, str, dict, int]] = [("alpha (α=1)", "alpha", {}, 1),
                                                   ("alpha (α=2)", "alpha", {"alpha_d": 2.0, "alpha_g": 2.0}, 1)]

COLUMNS = ("plain", "gcann", "ema", "gcann_ema")
COLUMN_TITLES = {"plain": "plain", "gcann": "+GCANN", "ema": "+EMA", "gcann_ema": "+GCANN+EMA"}


def _inits(n_init: int, dim: int, seed: int = 0, box: float = 1.0) -> Tensor:
    """``n_init`` initial points uniform in [−box, box]^{2·dim}, seeded (the same for every column)."""
    g = torch.Generator().manual_seed(seed + 1000 * dim)
    return (torch.rand(n_init, 2 * dim, generator=g, dtype=torch.float64) * 2 - 1) * box


def _stats(d: Tensor, t: Tensor, eps: float, tol: Tolerances, z: Tensor | None = None) -> dict:
    labels = classify(d, tol, z=z, t=t)
    n = len(labels)
    fin = d[-1]
    reach = steps_to_reach(d, t, eps)
    ok = reach[torch.isfinite(reach)]
    return {
        "converged": sum(lab == "converging" for lab in labels) / n,
        **{k.replace(" ", "_"): sum(lab == k for lab in labels) / n for k in LABELS if k != "converging"},
        "median_final_distance": float(fin.median()) if bool(torch.isfinite(fin).any()) else math.inf,
        "reached_eps": ok.numel() / n,
        # median over all rows, "never" counting as +inf: NaN (shown "–") when fewer than half reach ε
        "median_steps_to_eps": float(ok.sort().values[n // 2]) if ok.numel() > n // 2 else math.nan,
    }



def _run_method(label, method, params, dim, *, n_init, steps, lr, eps, ema_beta, configs, tol, seed):
    game = make_game(method, params, dim)
    z0 = _inits(n_init, dim, seed)
    t0 = time.perf_counter()
    rho, rho_alt = map_spectral_radii(game, lr, lr)
    plain = simulate(game, z0, scheme="simgd", steps=steps, lr_d=lr, lr_g=lr, ema_beta=ema_beta)
    row = {"label": label, "method": method, "params": {**params, "dim": dim}, "rho_simgd": rho,
           "rho_altgd": rho_alt, "plain": _stats(effective_distance(plain), plain.t, eps, tol, plain.z),
           "ema": _stats(effective_distance(plain, True), plain.t, eps, tol, plain.z_ema)}
    for name, cfg in configs.items():
        cfg, apply = cfg if isinstance(cfg, tuple) else (cfg, {})
        traj, logs = simulate_gcann(game, z0, config=cfg, steps=steps, scheme="simgd", ema_beta=ema_beta, **apply)
        row[name] = {
            "gcann": _stats(effective_distance(traj), traj.t, eps, tol, traj.z),
            "gcann_ema": _stats(effective_distance(traj, True), traj.t, eps, tol, traj.z_ema),
            "events_per_row": {k: v / n_init for k, v in sorted(logs.event_counts().items())},
            "final_lr_d_median": float(logs.lr_d[-1].median()),
            "final_lr_g_median": float(logs.lr_g[-1].median()),
            "final_lr_product_median": float((logs.lr_d[-1] * logs.lr_g[-1] / lr**2).median()),
            "frac_steps_g_idle": float((~logs.train_g).double().mean()),
            "frac_steps_d_idle": float((~logs.train_d).double().mean()),
        }
    row["seconds"] = time.perf_counter() - t0
    return row


def _fmt(x: float, kind: str) -> str:
    if kind == "frac":
        return f"{x:.2f}"
    if kind == "steps":
        return "–" if not math.isfinite(x) else f"{x:.0f}"
    if math.isinf(x):
        return "inf"
    return f"{x:.1e}" if math.isfinite(x) else "–"


def _markdown(doc: dict, config_name: str, title: str) -> str:
    cols = ["plain", "gcann", "ema", "gcann_ema"]
    head = "| method | ρ simGD | " + " | ".join(
        f"{COLUMN_TITLES[c]} conv / med ‖z_T‖ / med steps" for c in cols) + " | events per run (GCANN) |\n"
    head += "|---|---|" + "---|" * len(cols) + "---|\n"
    lines = []
    for r in doc["rows"]:
        g = r[config_name]
        cells = []
        for c in cols:
            s = r[c] if c in ("plain", "ema") else g[c]
            cells.append(f"{_fmt(s['converged'], 'frac')} / {_fmt(s['median_final_distance'], 'dist')} / "
                         f"{_fmt(s['median_steps_to_eps'], 'steps')}")
        ev = ", ".join(f"{k} {v:.1f}" for k, v in g["events_per_row"].items() if k != "slope_threshold") or "none"
        rho = "n/a" if not math.isfinite(r["rho_simgd"]) else f"{r['rho_simgd']:.4f}"
        lines.append(f"| {r['label']} | {rho} | " + " | ".join(cells) + f" | {ev} |")
    s = doc["settings"]
    foot = (f"\nEach cell: fraction converging (dynamics.verdict.classify; EMA columns classify the EMA of the "
            f"iterates, β = {s['ema_beta']}) / median final distance to the equilibrium / median steps to reach "
            f"ε = {s['eps']:g} and stay (– where fewer than half the runs do). {s['n_init']} initial points uniform "
            f"in [−1, 1]^(2n) (seeded, the same for every column), simGD + SGD, lr_d = lr_g = {s['lr']:g}, "
            f"{s['steps']} steps. ρ simGD = spectral radius of the plain update map at the equilibrium (n/a: not "
            f"differentiable there). Controller: {title}.\n")
    return f"#### Dirac-GAN with the GCANN controller — {title}\n\n" + head + "\n".join(lines) + "\n" + foot


CONFIG_TITLES = {
    "dirac": "DIRAC_CONFIG (paper-celeba, shortened windows), all mechanisms",
    "dirac_lr_only": "DIRAC_CONFIG, learning-rate changes only (pauses, skips, catch-up bursts not applied)",
    "paper": "unmodified paper-celeba preset (lr = simulation lr), all mechanisms",
}


def default_configs(lr: float = DEFAULT_LR) -> dict:
    """The table's controllers: DIRAC_CONFIG; the same applying only its learning rates (the
    part the spectral argument is about); the unmodified paper preset."""
    return {"dirac": dirac_config(lr), "dirac_lr_only": (dirac_config(lr), {"apply_pause": False, "apply_extra": False}),
            "paper": paper_config(lr)}


def gcann_table(n_init: int = 64, steps: int = 2000, lr: float = DEFAULT_LR, eps: float = 1e-3,
                methods=None, *, ema_beta: float = 0.99, configs: dict | None = None, seed: int = 0,
                progress=None) -> tuple[str, dict]:
    """plain / +GCANN / +EMA / +GCANN+EMA per method, from ``n_init`` initial conditions.

    ``methods``: None (all of :data:`TABLE_METHODS`), or a list of labels / method names /
    ``(label, method, params, dim)`` tuples.  ``configs``: name -> GCANNConfig or
    (GCANNConfig, simulate_gcann ablation kwargs) (default: :func:`default_configs`); ``progress(label)`` is
    called after each method.  The first config fills the
    ``gcann`` / ``gcann_ema`` columns of ``doc["rows"][i]`` (each config's results are
    also under ``doc["rows"][i][name]``).  Returns ``(markdown, doc)``.
    """
    rows = _select(methods)
    if configs is None:
        configs = default_configs(lr)
    tol = Tolerances()
    t0 = time.perf_counter()
    out_rows = []
    for spec_ in rows:
        r = _run_method(*spec_, n_init=n_init, steps=steps, lr=lr, eps=eps, ema_beta=ema_beta,
                        configs=configs, tol=tol, seed=seed)
        if progress:
            progress(spec_[0])
        first = next(iter(configs))
        r["gcann"], r["gcann_ema"] = r[first]["gcann"], r[first]["gcann_ema"]
        out_rows.append(r)
    doc = {
        "settings": {"n_init": n_init, "steps": steps, "lr": lr, "eps": eps, "ema_beta": ema_beta,
                     "scheme": "simgd", "optimizer": "sgd", "init": "uniform in [-1,1]^(2n)", "seed": seed,
                     "tolerances": tol.as_dict()},
        "columns": list(COLUMNS),
        "configs": {k: {**(v[0] if isinstance(v, tuple) else v).to_dict(),
                        "apply": v[1] if isinstance(v, tuple) else {}} for k, v in configs.items()},
        "dirac_changes": {k: {"paper": v[0], "dirac": v[1], "why": v[2]} for k, v in DIRAC_CHANGES.items()},
        "rows": out_rows,
        "seconds": time.perf_counter() - t0,
    }
    titles = CONFIG_TITLES
    md = "\n".join(_markdown(doc, name, titles.get(name, name)) for name in configs)
    return md, doc


def dirac_controllers() -> tuple[str, ...]:
    """The controllers of ``gcann dirac table --controllers all``: every registered one, a column each (ADA's
    column is n/a with its reason: it reads D on real data, which sit at 0 in the Dirac-GAN)."""
    from gcann.control import CONTROLLERS

    return tuple(CONTROLLERS)


def _cell(c: dict) -> str:
    """A table cell: the converging fraction / median final distance, and the commonest other verdict."""
    if "refused" in c:
        return "n/a"
    text = f"{_fmt(c['converged'], 'frac')} / {_fmt(c['median_final_distance'], 'dist')}"
    others = {k: c.get(k.replace(" ", "_"), 0.0) for k in LABELS if k != "converging"}
    top = max(others, key=others.get)
    return text + (f" ({top} {_fmt(others[top], 'frac')})" if others[top] > 0 else "")


def controller_table(controllers=None, n_init: int = 64, steps: int = 2000, lr: float = DEFAULT_LR,
                     eps: float = 1e-3, methods=None, *, seed: int = 0, progress=None) -> tuple[str, dict]:
    """Which methods converge under each controller: per method (:data:`TABLE_METHODS`) and controller, the
    fraction of ``n_init`` seeded initial points whose trajectory converges (simGD, SGD, lr_D = lr_G = ``lr``,
    ``steps`` steps; the GCANN ones with :data:`gcann.dirac.DIRAC_CONFIG`'s values, the others at their
    defaults), the median final distance and the median steps to ``eps``.  A controller that cannot run on a
    method (the gap controller where D's loss has no equilibrium value, e.g. WGAN) gets its reason instead.
    ``progress(label)`` after each method.  Returns ``(markdown, doc)``."""
    from gcann.control import CONTROLLERS, make_controller
    from gcann.errors import GcannError

    from .configs import controller_settings
    from .controlled_simulator import simulate_controlled

    controllers = dirac_controllers() if controllers is None else tuple(controllers)
    unknown = [c for c in controllers if c not in CONTROLLERS]
    if unknown:
        raise ObjectiveError(f"unknown controller(s) {', '.join(unknown)}; choose from {', '.join(CONTROLLERS)}")
    cfg = dirac_config(lr)
    tol = Tolerances()
    t0 = time.perf_counter()
    rows = []
    for label, method, params, dim in _select(methods):
        game = make_game(method, params, dim)
        z0 = _inits(n_init, dim, seed)
        row = {"label": label, "method": method, "params": {**params, "dim": dim}, "cells": {}}
        for name in controllers:
            settings = controller_settings(name, cfg)
            try:
                ctrls = [make_controller(name, lr, lr, settings, loss=game.objective.loss) for _ in range(n_init)]
                traj, logs = simulate_controlled(game, z0, controllers=ctrls, steps=steps, scheme="simgd")
            except GcannError as e:
                row["cells"][name] = {"refused": str(e)}
                continue
            row["cells"][name] = _stats(effective_distance(traj), traj.t, eps, tol, traj.z)
        rows.append(row)
        if progress:
            progress(label)
    doc = {"settings": {"n_init": n_init, "steps": steps, "lr": lr, "eps": eps, "scheme": "simgd",
                        "optimizer": "sgd", "init": "uniform in [-1,1]^(2n)", "seed": seed,
                        "tolerances": tol.as_dict()},
           "controllers": list(controllers), "rows": rows, "seconds": time.perf_counter() - t0}
    head = "| method | " + " | ".join(controllers) + " |\n|---|" + "---|" * len(controllers) + "\n"
    lines = []
    for r in rows:
        cells = []
        for name in controllers:
            cells.append(_cell(r["cells"][name]))
        lines.append(f"| {r['label']} | " + " | ".join(cells) + " |")
    foot = (f"\nEach cell: fraction of {n_init} seeded initial points (uniform in [−1, 1]^(2n)) converging "
            f"(dynamics.verdict.classify) / median final distance to the equilibrium (and, in brackets, the "
            f"commonest other verdict with its fraction), simGD + SGD, "
            f"lr_d = lr_g = {lr:g}, {steps} steps, one controller per trajectory (gcann.control; the GCANN ones "
            f"with DIRAC_CONFIG's values). n/a: the controller is undefined for that objective "
            f"(table.json says why).\n")
    return "#### Dirac-GAN per controller\n\n" + head + "\n".join(lines) + "\n" + foot, doc


def _select(methods) -> list[tuple[str, str, dict, int]]:
    if methods is None:
        return list(TABLE_METHODS)
    out = []
    for m in methods:
        if isinstance(m, tuple):
            out.append(m)
            continue
        allm = TABLE_METHODS + EXTRA_METHODS
        hit = [r for r in allm if r[0] == m] or [r for r in allm if r[1] == m][:1]
        if not hit:
            raise ObjectiveError(f"unknown table method {m!r}; choose from {[r[0] for r in allm]}")
        out.append(hit[0])
    return out




# --------------------------------------------------------------------------- #
# Every table of ``gcann dirac table``
# --------------------------------------------------------------------------- #
def study_table_rows(with_gcann: bool = True) -> int:
    """How many times :func:`study_tables` calls ``progress``: one per row of the sources' tables, one for the
    EMA summary, one per method of the GCANN table."""
    from dynamics.study import SEED001_GENERAL, SEED003

    return len(SEED001_GENERAL) + len(SEED003) + 1 + (len(TABLE_METHODS) if with_gcann else 0)


def study_tables(with_gcann: bool = True, n_init: int | None = None, seed: int = 0, progress=None) -> tuple[str, dict]:
    """The sources' local-convergence tables, computed (Mescheder, Geiger & Nowozin 2018, Table 1; Su 2019's
    2-D cases; :func:`dynamics.study.run_tables`), Su's EMA summary and, with ``with_gcann``, the GCANN table
    (:func:`gcann_table` with ``n_init`` initial points per method, default 64).

    ``seed``: the random initial points (GCANN columns, 2-D rings); ``progress(label)`` is called after each
    row (:func:`study_table_rows` times).  Returns ``(markdown, doc)``: what ``gcann dirac table`` prints and
    writes as ``table.md`` / ``table.json``.
    """
    from dynamics.study import SimSettings, ema_summary, run_tables

    tick = progress or (lambda label: None)
    sim = SimSettings(seed=seed)
    tabs = run_tables(sim, progress=tick)
    doc = {k: {"title": v["title"], "rows": v["rows"]} for k, v in tabs.items()}
    md = "\n".join(v["markdown"] for v in tabs.values())
    ema = ema_summary(sim=sim)
    tick("EMA")
    doc["ema"] = ema
    md += (f"\nEMA (Su): {ema['method']} in ℝ^{ema['dim']}, β = {ema['ema_beta']}: median final distance "
           f"{ema['median_final_distance_raw']:.3g} (raw) vs {ema['median_final_distance_ema']:.3g} (EMA).\n")
    if with_gcann:
        g_md, g_doc = gcann_table(**({} if n_init is None else {"n_init": n_init}), seed=seed,
                                  progress=lambda label: tick(f"GCANN {label}"))
        md += "\n" + g_md
        doc["gcann"] = g_doc
    return md, doc
