"""The ring study: settings × seeds trained as one batch, judged as Welfert et al. (2023) judge them.

:func:`run_study` trains every (setting, seed) row of the study in one batched model
(:func:`~gcann.ring.train.train_ring`), evaluates each row on 25,000 samples
(:func:`~gcann.ring.train.evaluate_run`) and summarises each setting: success and
failure rates with Wilson 95 % intervals, mean modes covered, mean HQ ratio, KL and
reverse KL of the mode histogram (add-one smoothing).
"""
from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path
from typing import Callable, Sequence

import torch

from gcann.control import CONTROLLERS
from gcann.fileio import atomic_write_text
from gcann.metrics.toy import TOY_EVAL_SAMPLES
from gcann.sysmem import keep_freed_memory

from .data import BATCH_SIZE, N_TRAIN, RingError, batches_per_epoch
from .train import EMA_BETA, R1_GAMMA, RingRun, RingSetting, evaluate_run, train_ring

__all__ = ["BASES", "VARIANTS", "CPU_DEFAULT", "FULL_SIZE", "ALPHA_SWEEP", "PUBLISHED_FIGURE1", "form_note",
           "default_settings", "alpha_sweep_settings", "alpha_sweep_summary", "parse_settings", "run_study",
           "summarise", "wilson", "markdown_table"]

#: The objectives of the study (Welfert et al.'s Figure 1 and its CelebA comparison).
BASES = ("sat(1,1)", "sat(0.3,1)", "ns(1,1)", "ns(0.5,1.2)", "lsgan")
#: The variants of each objective.
VARIANTS = ("", "+gcann", "+r1", "+ema")
#: A study that finishes in about half an hour on a 2-core CPU (the source's size is FULL_SIZE).
CPU_DEFAULT = {"seeds": 2, "epochs": 2}
FULL_SIZE = {"seeds": 200, "epochs": 400}

#: Figure 1 (right) of the (α_D, α_G)-GAN paper: saturating (α_D, 1)-GANs on the ring, α_D from 0.2 to 1.
ALPHA_SWEEP = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
#: The counts behind that figure, α_D -> (successes, failures, seeds): success = all 8 modes covered, failure =
#: none, after 400 epochs; counted from the authors' metrics/ring_S_metrics.csv (SankarLab/AlphaGan-Papers-
#: Results, settings "...-d_alpha-A-g_alpha-1-epoch_step-400"; made by an earlier version of their 2D.py).
PUBLISHED_FIGURE1 = {0.2: (158, 7, 200), 0.3: (174, 4, 200), 0.4: (153, 11, 200), 0.5: (159, 9, 200),
                     0.6: (157, 9, 200), 0.7: (147, 13, 199), 0.8: (136, 16, 199), 0.9: (108, 32, 200),
                     1.0: (93, 59, 200)}
def form_note(form: str, n_train: int, batch_size: int) -> str:
    """What a form of the study is, with its steps per epoch at ``n_train`` points and batches of ``batch_size``
    (results.md and run.json say which ran)."""
    steps, short = batches_per_epoch(form, n_train, batch_size), n_train % batch_size
    if form == "source":
        last = f"{steps} steps per epoch, the last of {short}" if short else f"{steps} steps per epoch"
        return ("the authors' code (experiments/2D.py): data, training codes and evaluation codes drawn once under "
                "seed 1 and shared by every seed, the codes pool reshuffled every epoch, the last short batch kept "
                f"(of {n_train:,} points: {last}), σ clamped to [1e-7, 1 − 1e-7] in the α-losses (BCE, "
                "log ≥ −100, at α = 1)")
    return ("the project's exact form: a data set and fresh codes per seed, the last short batch dropped "
            f"({steps} steps per epoch of {n_train:,} points), exact α-losses; a row whose loss is NaN/Inf is stopped "
            "and counted a failure")


_NAME = re.compile(r"^(?:(sat|ns)\((\d*\.?\d+),(\d*\.?\d+)\)|(lsgan|gan|nsgan))((?:\+[a-z0-9-]+)*)$")


def default_settings() -> list[str]:
    return [b + v for b in BASES for v in VARIANTS]


def parse_settings(text: str | Sequence[str]) -> list[RingSetting]:
    """Settings from names such as ``sat(0.3,1)``, ``ns(0.5,1.2)+gcann``, ``lsgan+r1+ema``, ``ns(1,1)+gap``
    (separated by spaces or semicolons). ``+r1`` uses γ = R1_GAMMA, ``+ema`` β = EMA_BETA, ``+NAME`` the
    controller NAME of :data:`gcann.control.CONTROLLERS` (at most one)."""
    names = text.replace(";", " ").split() if isinstance(text, str) else list(text)
    if not names:
        raise RingError("no settings given")
    out = []
    for name in names:
        m = _NAME.match(name.replace(" ", ""))
        if not m:
            raise RingError(f"unknown setting {name!r}; write e.g. sat(0.3,1), ns(0.5,1.2)+gcann, lsgan+r1, "
                             f"nsgan+ema, ns(1,1)+gap (variants +r1, +ema and +CONTROLLER)")
        kind, ad, ag, plain, variants = m.groups()
        parts = variants.split("+")[1:]
        if len(set(parts)) != len(parts):
            raise RingError(f"setting {name!r} repeats a variant")
        wrong = [p for p in parts if p not in ("r1", "ema") and p not in CONTROLLERS]
        if wrong:
            raise RingError(f"unknown setting {name!r}: no variant +{wrong[0]}; the variants are +r1, +ema and a "
                            f"controller: {', '.join('+' + c for c in CONTROLLERS if c != 'none')}")
        ctl = [p for p in parts if p in CONTROLLERS]
        if len(ctl) > 1:
            raise RingError(f"setting {name!r} names two controllers ({', '.join(ctl)}); a row has one")
        loss = {"sat": "alpha_sat", "ns": "alpha_ns"}[kind] if kind else plain
        s = RingSetting(loss, float(ad) if ad else 1.0, float(ag) if ag else 1.0,
                        r1=R1_GAMMA if "r1" in parts else 0.0, ema=EMA_BETA if "ema" in parts else 0.0,
                        controller=ctl[0] if ctl else "none")
        if s in out:
            raise RingError(f"setting {s.name!r} is given twice")
        out.append(s)
    return out


def alpha_sweep_settings(values: Sequence[float] = ALPHA_SWEEP) -> list[RingSetting]:
    """The settings of Figure 1: saturating (α_D, 1) for each α_D in ``values``."""
    if not values:
        raise RingError("the α_D sweep needs at least one value")
    return [RingSetting("alpha_sat", float(a), 1.0) for a in values]


def alpha_sweep_summary(results: Sequence[dict]) -> list[dict]:
    """Success and failure rates against α_D (Wilson 95 % intervals) of the plain saturating (α_D, 1) settings in
    ``results``, beside the published ones (:data:`PUBLISHED_FIGURE1`) where the paper has that α_D."""
    out = []
    for r in results:
        if (r["loss"] != "alpha_sat" or r["alpha_g"] != 1.0 or r.get("controller", "none") != "none" or r["r1_gamma"]
                or r["ema_beta"]):
            continue
        row = {k: r[k] for k in ("alpha_d", "n_seeds", "success", "success_ci95", "failure", "failure_ci95")}
        pub = PUBLISHED_FIGURE1.get(round(r["alpha_d"], 6))
        if pub is not None:
            s, f, n = pub
            row["published"] = {"n_seeds": n, "success": s / n, "success_ci95": list(wilson(s, n)),
                                "failure": f / n, "failure_ci95": list(wilson(f, n))}
        out.append(row)
    return sorted(out, key=lambda r: r["alpha_d"])


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval (95 % by default) of a proportion ``k / n``."""
    if n <= 0:
        return (float("nan"), float("nan"))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    lo, hi = max(0.0, centre - half), min(1.0, centre + half)
    # at k = 0 (k = n) the lower (upper) bound is exactly 0 (1); keep rounding from moving it
    return (0.0 if k == 0 else lo, 1.0 if k == n else hi)


def summarise(run: RingRun, metrics: dict[str, torch.Tensor], settings: Sequence[RingSetting]) -> list[dict]:
    """One summary object per setting from the per-row metrics."""
    out = []
    for s in settings:
        rows = torch.tensor([k for k, r in enumerate(run.settings) if r == s])
        n = len(rows)
        succ, fail = int(metrics["success"][rows].sum()), int(metrics["failure"][rows].sum())
        modes = metrics["modes_covered"][rows].double()
        hq = metrics["hq_ratio"][rows]
        out.append({
            "setting": s.name, "form": run.form, "loss": s.loss, "alpha_d": s.alpha_d, "alpha_g": s.alpha_g, "r1_gamma": s.r1,
            "ema_beta": s.ema, "controller": s.controller, "n_seeds": n,
            "success": succ / n, "success_ci95": list(wilson(succ, n)),
            "failure": fail / n, "failure_ci95": list(wilson(fail, n)),
            "modes_mean": float(modes.mean()), "modes_std": float(modes.std()) if n > 1 else 0.0,
            "hq_mean": float(hq.mean()), "hq_std": float(hq.std()) if n > 1 else 0.0,
            "kl_mean": float(metrics["kl"][rows].mean()), "reverse_kl_mean": float(metrics["reverse_kl"][rows].mean()),
            "diverged": int(metrics["diverged"][rows].sum()),
            "modes_per_seed": metrics["modes_covered"][rows].tolist(),
        })
    return out


def markdown_table(results: Sequence[dict], header: str = "") -> str:
    lines = [header, ""] if header else []
    lines += ["| setting | seeds | success [95 % CI] | failure [95 % CI] | modes | HQ ratio | KL | reverse KL | diverged |",
              "|---|---:|---|---|---:|---:|---:|---:|---:|"]
    for r in results:
        s, f = r["success_ci95"], r["failure_ci95"]
        lines.append(f"| {r['setting']} | {r['n_seeds']} | {r['success']:.2f} [{s[0]:.2f}, {s[1]:.2f}] | "
                     f"{r['failure']:.2f} [{f[0]:.2f}, {f[1]:.2f}] | {r['modes_mean']:.2f} | {r['hq_mean']:.3f} | "
                     f"{r['kl_mean']:.3f} | {r['reverse_kl_mean']:.3f} | {r['diverged']} |")
    return "\n".join(lines) + "\n"


def run_study(settings: Sequence[RingSetting], n_seeds: int, epochs: int, out: str | Path, *, dataset: str = "ring",
              n_train: int = N_TRAIN, eval_samples: int = TOY_EVAL_SAMPLES, curve_every: int = 1,
              curve_samples: int = 2_500, first_seed: int = 0, figures: bool = True, device: str = "cpu",
              tf32: bool = False, fused_adam: bool = False, checkpoint_every: int = 0, resume: bool = False,
              form: str = "source", alpha_sweep: bool = False, log: Callable[[str], None] = print) -> list[dict]:
    """Train, evaluate and write ``out/results.json``, ``out/results.md``, ``out/run.json`` and the figures.

    ``form``: ``"source"`` (the authors' code) or ``"exact"`` (:func:`form_note`). ``alpha_sweep``: also write
    ``out/alpha_sweep.json`` and ``out/figure1.png`` (Figure 1 of the paper: coverage over epochs and success and
    failure rates against α_D, beside the published rates) from the plain saturating (α_D, 1) settings.

    ``checkpoint_every = E`` saves the whole run to ``out/state.pt`` every E epochs and at the end;
    ``resume`` goes on from that file (same rows and configuration; more epochs allowed), and on the CPU
    gives the uninterrupted study's numbers bit for bit.

    On the CPU this calls :func:`gcann.sysmem.keep_freed_memory` first: a process-wide malloc setting
    (no page faults when the step's large tensors are allocated again; the process keeps its peak memory)."""
    out = Path(out)
    settings = list(settings)
    rows = [(s, first_seed + i) for s in settings for i in range(n_seeds)]
    size = "full size (the source's)" if (n_seeds, epochs) == (FULL_SIZE["seeds"], FULL_SIZE["epochs"]) else \
        f"reduced size: {n_seeds} seeds x {epochs} epochs (the source: {FULL_SIZE['seeds']} x {FULL_SIZE['epochs']})"
    log(f"ring study: {len(settings)} settings x {n_seeds} seeds = {len(rows)} rows in one batch, {epochs} epochs "
        f"of {n_train} points on {dataset}; {size}; form: {form}")
    # a long run on the CPU: let malloc keep freed memory (gcann.sysmem: no page faults on re-allocation)
    malloc_kept = keep_freed_memory() if torch.device(device).type == "cpu" else False
    t0 = time.perf_counter()
    if resume and (out / "state.pt").is_file():
        log(f"  resuming from {out / 'state.pt'}")
    run = train_ring([s for s, _ in rows], [k for _, k in rows], epochs=epochs, form=form, eval_samples=eval_samples,
                     dataset=dataset, n_train=n_train,
                     curve_every=curve_every, curve_samples=curve_samples, device=device, tf32=tf32,
                     fused_adam=fused_adam, state_file=out / "state.pt", save_every=checkpoint_every,
                     resume=resume, progress=lambda e, n: log(f"  epoch {e}/{n}  ({time.perf_counter() - t0:.0f} s)"))
    metrics = evaluate_run(run, dataset, eval_samples)
    results = summarise(run, metrics, settings)
    meta = {
        "form": form, "form_note": form_note(form, n_train, BATCH_SIZE), "dataset": dataset, "n_seeds": n_seeds, "epochs": epochs, "n_train": n_train, "eval_samples": eval_samples,
        "size": size, "steps": run.steps, "rows": len(rows), "first_seed": first_seed,
        "r1_gamma": R1_GAMMA, "ema_beta": EMA_BETA, "seconds_train": run.time_total,
        "seconds_controllers": run.time_control,
        "controller_share": run.time_control / run.time_total if run.time_total else 0.0,
        "ms_per_step": 1e3 * run.time_total / max(run.steps, 1),
        "device": _device_name(device), "torch": torch.__version__, "tf32": tf32, "fused_adam": fused_adam,
        "resumed": bool(resume),
        "torch_threads": torch.get_num_threads(), "malloc_keeps_freed_memory": malloc_kept,
    }
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "results.json", json.dumps(results, indent=1) + "\n")
    header = (f"Ring study ({dataset}): {size}; {eval_samples} evaluation samples per seed; R1 γ = {R1_GAMMA}, "
              f"EMA β = {EMA_BETA}; success/failure with Wilson 95 % intervals.\n\nForm: **{form}**, "
              f"{form_note(form, n_train, BATCH_SIZE)}.")
    atomic_write_text(out / "results.md", markdown_table(results, header))
    curves = {"epochs": run.curve_epochs,
              "modes": [c["modes_covered"].tolist() for c in run.curve],
              "hq": [c["hq_ratio"].tolist() for c in run.curve]}
    history = {"loss_d": [x.tolist() for x in run.loss_d], "loss_g": [x.tolist() for x in run.loss_g],
               "lr_d": [x.tolist() for x in run.lr_d], "lr_g": [x.tolist() for x in run.lr_g],
               "knobs": {name: [x.tolist() for x in values] for name, values in run.knobs.items()}}
    atomic_write_text(out / "run.json", json.dumps({
        "meta": meta, "rows": [{"setting": s.name, "seed": k} for s, k in rows], "curves": curves,
        "history": history, "events": run.events, "d_updates": run.d_updates.tolist(),
        "g_updates": run.g_updates.tolist(), "metrics": {k: metrics[k].tolist() for k in
                                                         ("modes_covered", "hq_ratio", "kl", "reverse_kl", "success",
                                                          "failure", "diverged")},
    }) + "\n")
    if alpha_sweep:
        sweep = alpha_sweep_summary(results)
        atomic_write_text(out / "alpha_sweep.json", json.dumps({"form": form, "epochs": epochs, "rates": sweep,
                                                                 "published_source": "metrics/ring_S_metrics.csv, "
                                                                 "400 epochs"}, indent=1) + "\n")
    if figures:
        from .plots import alpha_sweep_figure, study_figures
        study_figures(run, metrics, results, out, dataset=dataset)
        if alpha_sweep:
            alpha_sweep_figure(run, sweep, out / "figure1.png", dataset=dataset)
    log(f"ring study: {run.steps} steps in {run.time_total:.0f} s ({meta['ms_per_step']:.0f} ms/step for "
        f"{len(rows)} rows); controllers {100 * meta['controller_share']:.2f} % of it; wrote {out}/results.json")
    return results


def _device_name(device: str) -> str:
    dev = torch.device(device)
    return f"cuda ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else dev.type
