"""``gcann verdict``: one suite of studies, a report on each part, and one summary of every GCANN claim.

A suite is a list of :class:`Part`: the ring study (the published controllers and GCANN on the non-saturating GAN, batched over
seeds), DCGAN sweeps on MNIST-5k and Fashion-MNIST with ``controller`` as the grid key, and the biped voxel
stand-in (at ``--size full``: CelebA and 3DBiCar from ``--data-root`` as well). Each part trains into
``OUT/<part>/`` (a sweep folder: ``sweep.json`` and one run folder per seed × controller; the ring: a ring study
folder), is reported by :func:`gcann.report.make_report` into ``OUT/<part>/report/`` (runs evaluated on their
last checkpoint through the report's cached evaluation hook) and recorded in ``OUT/<part>/part.json``; the
summary ``OUT/verdict.json`` and ``OUT/verdict.md`` is rewritten after every part, so an interrupted verdict
keeps what it finished and goes on from there when run again (a part with its ``part.json`` is not run again;
a finished run is not trained again; an evaluated run is not evaluated again).

The claims' tables are taken from the parts' reports (``claims``: the GCANN setting against its baseline,
paired by seed), not recomputed here.

Sizes (:data:`SIZES`):

* ``cpu``: sized for a 2-core CPU (about an hour; the per-step times of :data:`STEP_SECONDS` give the up-front
  estimate; the recorded run's wall time is in its verdict.json); images are judged by the *domain feature* metrics (:mod:`gcann.metrics.domain`; a small
  classifier trained on the same data, its accuracy recorded; not FID) because Inception runs at about
  4 images/s here;
* ``full``: the sources' sizes (200 ring seeds × 400 epochs; the presets' epochs; CelebA and 3DBiCar), the runs
  submitted through ``gcann sweep``'s executor (Slurm or local processes) and evaluated by the trainer at the
  end (FID/KID on 10,000 Inception samples); report them afterwards with ``--report-only``;
* ``tiny``: a seconds-long suite for the tests.
"""
from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from gcann.errors import GcannError
from gcann.fileio import atomic_write_text

from .claims import CLAIMS, IS_NOTE, is_gcann
from .load import ReportError

__all__ = ["Part", "VerdictError", "SIZES", "plan", "run_verdict", "summary_markdown"]


class VerdictError(GcannError):
    """A verdict cannot be planned or read from this input (one line, exit status 2)."""


#: images and 3D: the controllers compared by default (the claims compare DCG-GCANN with DCGAN)
DEFAULT_CONTROLLERS = ("none", "gcann")
#: the ring (batched over seeds; its cost grows with the rows, about 6 ms per row and step on 2 cores): GCANN and
#: the published controllers by default
RING_CONTROLLERS = ("none", "gcann", "ttur", "gap", "clc", "ada")
RING_OBJECTIVE = "ns(1,1)"   # the non-saturating GAN, DCGAN's objective

#: seconds per training step on the 2-core CPU this was sized on, from the first recorded cpu verdict
#: (benchmarks/results/verdict-cpu, 2026-12-03: MNIST-5k and Fashion-MNIST at width 32, batch 64, 11-13 s for
#: 400 steps; the biped at width 16, batch 32, 75 s for 6 runs of 60 steps, evaluation included), per-run
#: overheads (start, the dataset, checkpoint, sample grid, evaluation), and the ring's seconds per epoch per row
STEP_SECONDS = {"mnist5k": 0.03, "fashion": 0.03, "biped": 0.12}
RUN_OVERHEAD_S = {"mnist5k": 15.0, "fashion": 15.0, "biped": 10.0}
RING_EPOCH_ROW_S = 2.3      # 281 ms per step for 48 rows, 391 steps per epoch (README's 8 x 20 CPU study)

_IMG_CPU = dict(width_g=32, width_d=32, batch_size=64, log_every=5, sample_every=10**6, ckpt_every=10**6,
                keep_checkpoints=1, device="cpu", progress_seconds=0.0, gcann_preset="paper-celeba")

SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "cpu": {
        "ring": {"seeds": 8, "epochs": 5, "eval_samples": 25_000, "curve_every": 1, "curve_samples": 2_500},
        "mnist5k": {"preset": "mnist5k-demo", "seeds": 6, "overrides": {**_IMG_CPU, "max_steps": 1500},
                    "metrics": "fd_domain,kid_domain,pairwise", "num_samples": 1000},
        "fashion": {"preset": "fashion-dcgan", "seeds": 6, "overrides": {**_IMG_CPU, "max_steps": 1500},
                    "metrics": "fd_domain,kid_domain,pairwise", "num_samples": 1000},
        "biped": {"preset": "biped3d-dcgan", "seeds": 6,
                  "overrides": dict(width_g=16, width_d=16, batch_size=32, max_steps=400, log_every=5,
                                    sample_every=10**6, ckpt_every=10**6, keep_checkpoints=1, device="cpu",
                                    progress_seconds=0.0, gcann_preset="paper-bicar3d"),
                  "metrics": "chamfer,pairwise_iou,pairwise", "num_samples": 64},
    },
    "full": {
        "ring": {"seeds": 200, "epochs": 400, "eval_samples": 25_000, "curve_every": 1, "curve_samples": 2_500},
        "mnist5k": {"preset": "mnist5k-demo", "seeds": 10, "overrides": {"metrics": ["fd_domain", "kid_domain",
                                                                                     "pairwise"],
                                                                         "eval_samples": 5000}},
        "fashion": {"preset": "fashion-dcgan", "seeds": 10,
                    "overrides": {"metrics": ["fid", "kid", "fd_domain", "kid_domain", "pairwise",
                                              "pairwise_inception"], "eval_samples": 10_000}},
        "celeba": {"preset": "celeba-dcgan", "seeds": 10, "data": "celeba",
                   "overrides": {"metrics": ["fid", "kid", "pairwise", "pairwise_inception"],
                                 "eval_samples": 10_000}},
        "bicar3d": {"preset": "bicar3d-dcgan", "seeds": 6, "data": "bicar3d",
                    "overrides": {"metrics": ["chamfer", "cov", "mmd", "1nna", "pairwise_iou", "pairwise_chamfer",
                                              "pairwise"], "eval_samples": 1000, "gcann_preset": "paper-bicar3d"}},
    },
    "tiny": {
        "ring": {"seeds": 6, "epochs": 1, "eval_samples": 300, "curve_every": 0, "curve_samples": 100,
                 "n_train": 640, "controllers": ["none", "gcann"], "figures": False},
        "mnist5k": {"preset": "mnist5k-demo", "seeds": 2,
                    "overrides": dict(width_g=8, width_d=8, batch_size=16, max_steps=4, log_every=1,
                                      sample_every=10**6, ckpt_every=10**6, keep_checkpoints=1, device="cpu",
                                      num_samples=4, progress_seconds=0.0),
                    "metrics": "fd_domain,kid_domain,pairwise", "num_samples": 150, "domain_steps": 20},
    },
}
SIZE_NOTES = {
    "cpu": ("sized for a 2-core CPU: images judged by the domain feature metrics (fd_domain, kid_domain: a small "
            "classifier trained on the same data; not FID or KID), because Inception runs at about 4 images/s "
            "here; training far shorter than the presets (max_steps), so the verdicts hold at this size only; "
            "GCANN with the paper's CelebA values on images and its 3DBiCar values on the biped"),
    "full": ("the sources' sizes: 200 ring seeds x 400 epochs, the presets' epochs, CelebA and 3DBiCar from "
             "--data-root, the runs evaluated by the trainer at the end (FID/KID on 10,000 Inception samples)"),
    "tiny": "a seconds-long suite for the tests; its numbers mean nothing",
}


@dataclass
class Part:
    name: str
    kind: str                              # "ring" or "sweep"
    size: dict[str, Any]
    controllers: list[str]
    runs: list[tuple[str, Any]] = field(default_factory=list)   # sweep: (name, TrainConfig)
    settings: list[str] = field(default_factory=list)            # ring: setting names
    cpu_sized: bool = True                                       # whether the CPU estimate applies

    def sizes(self) -> dict[str, Any]:
        """What is recorded of the part's size in verdict.json."""
        s = {k: v for k, v in self.size.items() if k not in ("overrides", "controllers", "figures")}
        if self.kind == "sweep":
            cfg = self.runs[0][1]
            s.update(preset=self.size["preset"], runs=len(self.runs),
                     steps=cfg.max_steps if cfg.max_steps is not None else f"{cfg.epochs} epochs",
                     batch_size=cfg.batch_size, width_g=cfg.width_g, width_d=cfg.width_d,
                     controllers=self.controllers, gcann_preset=cfg.gcann_preset)
        else:
            s.update(settings=self.settings, rows=len(self.settings) * self.size["seeds"], controllers=self.controllers)
        return s

    def estimate_s(self) -> float | None:
        """The up-front estimate of the part's wall time on the CPU it was sized on (``None`` off the CPU sizes)."""
        if not self.cpu_sized:
            return None
        if self.kind == "ring":
            return RING_EPOCH_ROW_S * self.size["epochs"] * len(self.settings) * self.size["seeds"] + 20.0
        if self.name not in STEP_SECONDS or self.size["overrides"].get("max_steps") is None:
            return None
        steps = self.size["overrides"]["max_steps"]
        return len(self.runs) * (steps * STEP_SECONDS[self.name] + RUN_OVERHEAD_S[self.name]) + 30.0


def parse_controllers(text: str | Sequence[str] | None) -> list[str] | None:
    """The controllers named in ``text`` (comma- or space-separated; ``none`` is added as the baseline)."""
    from gcann.control import CONTROLLERS

    if text is None:
        return None
    names = text.replace(",", " ").split() if isinstance(text, str) else list(text)
    if not names:
        raise VerdictError("--controllers is empty; e.g. --controllers none,gcann")
    bad = [n for n in names if n not in CONTROLLERS]
    if bad:
        raise VerdictError(f"unknown controller(s) {', '.join(bad)}; known: {', '.join(CONTROLLERS)}")
    if len(set(names)) != len(names):
        raise VerdictError(f"--controllers lists a controller twice: {','.join(names)}")
    return list(dict.fromkeys(["none", *names]))


def plan(size: str, *, controllers: str | Sequence[str] | None = None, data_root: str | Path | None = None,
         overrides: dict[str, dict] | None = None, need_data: bool = True) -> list[Part]:
    """The parts of the suite at ``size`` (``cpu``, ``full``, ``tiny``): which runs with which configs; nothing runs.

    ``controllers``: every part compares these (``none`` always included); default: :data:`DEFAULT_CONTROLLERS` for
    the images and 3D, :data:`RING_CONTROLLERS` for the ring. ``data_root`` (``full`` only, required): a folder
    holding ``celeba/`` and ``bicar3d/``, the roots of those data sets. ``overrides``: per part, keys replacing
    those of :data:`SIZES` (the tests' small sizes)."""
    from gcann.train.config import ConfigError
    from gcann.train.sweep import expand

    if size not in SIZES:
        raise VerdictError(f"--size must be {' or '.join(SIZES)}, got {size!r}")
    chosen = parse_controllers(controllers)
    table = copy.deepcopy(SIZES[size])
    for name, extra in (overrides or {}).items():
        if name not in table:
            raise VerdictError(f"no part {name!r} at size {size}; parts: {', '.join(table)}")
        table[name].update(extra)
    roots: dict[str, Path] = {}
    if size == "full" and (need_data or data_root is not None):   # reading a finished suite needs no data
        if data_root is None:
            raise VerdictError("--size full needs --data-root DIR holding celeba/ and bicar3d/ (the CelebA and "
                               "3DBiCar roots; see the README's data table)")
        for name, spec in table.items():
            if "data" in spec:
                root = Path(data_root).expanduser() / spec["data"]
                if not root.is_dir():
                    raise VerdictError(f"--data-root {data_root}: no {spec['data']}/ folder in it ({root}); put the "
                                       f"{spec['data']} data there")
                roots[name] = root
    parts = []
    for name, spec in table.items():
        if name == "ring":
            ctl = chosen or list(spec.get("controllers", RING_CONTROLLERS))
            settings = [RING_OBJECTIVE + ("" if c == "none" else f"+{c}") for c in ctl]
            parts.append(Part(name, "ring", spec, ctl, settings=settings, cpu_sized=size != "full"))
            continue
        ctl = chosen or list(DEFAULT_CONTROLLERS)
        over = dict(spec.get("overrides", {}))
        if name in roots:
            over["data_root"] = str(roots[name])
        try:
            runs = expand(spec["preset"], list(range(spec["seeds"])), {"controller": ctl}, over)
        except ConfigError as e:
            raise VerdictError(f"part {name}: {e}") from None
        parts.append(Part(name, "sweep", spec, ctl, runs=runs, cpu_sized=size != "full"))
    return parts


# ============================================================================ running a part
def _runs_done(run_dir: Path) -> bool:
    status = run_dir / "status.json"
    if not status.is_file():
        return False
    try:
        return json.loads(status.read_text()).get("state") in ("finished", "diverged")
    except ValueError:
        return False


def _write_sweep_listing(part: Part, folder: Path, executor: str) -> None:
    doc = {"executor": executor, "runs": [{"name": n, "run_dir": str(folder / n), "job_id": "in-process"}
                                          for n, _ in part.runs]}
    atomic_write_text(folder / "sweep.json", json.dumps(doc, indent=2) + "\n")


def _check_data(part: Part) -> str | None:
    """``None`` when the part's data set can be built here, else why not (one line)."""
    cfg = part.runs[0][1]
    try:
        cfg.build_data()
    except GcannError as e:
        return str(e).splitlines()[0]
    return None


def _train_part(part: Part, folder: Path, log: Callable[[str], None]) -> None:
    from gcann.train.sweep import run_config

    folder.mkdir(parents=True, exist_ok=True)
    _write_sweep_listing(part, folder, "in-process (sequential)")
    t0 = time.perf_counter()
    for i, (name, cfg) in enumerate(part.runs):
        rd = folder / name
        if _runs_done(rd):
            log(f"  [{part.name}] {i + 1}/{len(part.runs)} {name}: already trained")
            continue
        t = time.perf_counter()
        status = run_config(cfg.to_dict(), str(rd))
        log(f"  [{part.name}] {i + 1}/{len(part.runs)} {name}: {status.get('state')} at step {status.get('step')} "
            f"({time.perf_counter() - t:.0f} s; part {time.perf_counter() - t0:.0f} s)")


def _evaluator(part: Part, out: Path, device: str):
    from gcann.metrics.evaluate import evaluate_checkpoint

    options = {"domain_dir": str(out / "domain")}
    if "domain_steps" in part.size:
        options["domain_steps"] = part.size["domain_steps"]

    from .measures import Evaluator

    def evaluate(run_dir: Path) -> dict:
        return evaluate_checkpoint(run_dir, metrics=part.size["metrics"], num_samples=part.size["num_samples"],
                                   device=device, options=options)

    return Evaluator(evaluate, tuple(part.size["metrics"].split(",")), part.size["num_samples"])


def _ring_part(part: Part, folder: Path, log: Callable[[str], None], device: str = "cpu") -> None:
    from gcann.ring.study import parse_settings, run_study

    s = part.size
    run_study(parse_settings(part.settings), s["seeds"], s["epochs"], folder, eval_samples=s["eval_samples"],
              curve_every=s["curve_every"], curve_samples=s["curve_samples"], figures=s.get("figures", True),
              device=device, checkpoint_every=1, resume=(folder / "state.pt").is_file(),
              log=lambda m: log(f"  [ring] {m.strip()}"), **({"n_train": s["n_train"]} if "n_train" in s else {}))


def _part_record(part: Part, folder: Path, report: dict, seconds: float | None, status: str) -> dict:
    rec = {"part": part.name, "status": status, "folder": str(folder), "report": str(folder / "report" / "report.md"),
           "sizes": part.sizes(), "seconds": None if seconds is None else round(seconds, 1),
           "estimate_s": None if part.estimate_s() is None else round(part.estimate_s(), 0),
           "n_runs": sum(g["n_seeds"] for g in report["groups"]),
           "failures": {_label(g["setting"]): g["failures"] for g in report["groups"]},
           "claims": report["claims"], "comparisons": report["comparisons"],
           "baseline": report["baseline"], "method": report["method"]}
    acc = sorted({v for g in report["groups"] for v in g.get("domain_classifier_accuracy", {}).values()})
    if acc:
        rec["sizes"]["domain_classifier_accuracy"] = acc[0] if len(acc) == 1 else acc
    ev = {}
    for g in report["groups"]:
        for name, m in g["metrics"].items():
            e = m.get("evaluation", {})
            if e.get("samples"):
                ev.setdefault(name, {"samples": e["samples"], **({"samples_are": e["samples_are"]}
                                                                   if "samples_are" in e else {})})
            if "se_mean" in e:
                ev.setdefault(name, {})["se_how"] = e.get("se_how")
    rec["evaluation"] = ev
    return rec


def _label(setting: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in setting.items()) or "(all runs)"


def _report(folder: Path, evaluate) -> dict:
    from . import make_report

    doc, _ = make_report([folder], folder / "report", evaluate=evaluate)
    return doc


# ============================================================================ the verdict
def run_verdict(size: str, out: str | Path, *, controllers: str | Sequence[str] | None = None,
                report_only: bool = False, data_root: str | Path | None = None, device: str = "cpu",
                overrides: dict[str, dict] | None = None, log: Callable[[str], None] = print,
                submit: Callable[[list[Part], Path], None] | None = None) -> dict:
    """Run (or, ``report_only``, read) the suite at ``size`` into ``out``; returns the verdict (``verdict.json``).

    ``size="full"`` without ``report_only`` trains nothing here: ``submit(parts, out)`` hands the runs to the
    sweep executor (:func:`submit_full`), and a later ``report_only`` call reports them."""
    out = Path(out)
    parts = plan(size, controllers=controllers, data_root=data_root, overrides=overrides, need_data=not report_only)
    if report_only:
        present = [p for p in parts if (out / p.name).is_dir()]
        if not present:
            raise VerdictError(f"--report-only: {out} holds no part of a {size} verdict "
                               f"({', '.join(p.name + '/' for p in parts)}); run it first without --report-only")
    elif size == "full":
        if submit is None:
            raise VerdictError("--size full submits its runs through the sweep executor; use the command line "
                               "(gcann verdict --size full --executor slurm|local)")
        submit(parts, out)
        return {"size": size, "submitted": [p.name for p in parts]}
    out.mkdir(parents=True, exist_ok=True)
    total = sum(p.estimate_s() or 0.0 for p in parts)
    if not report_only:
        for p in parts:
            est = p.estimate_s()
            what = (f"{len(p.settings)} settings x {p.size['seeds']} seeds, {p.size['epochs']} epochs" if p.kind == "ring"
                    else f"{len(p.runs)} runs ({', '.join(p.controllers)} x {p.size['seeds']} seeds), "
                         f"{p.runs[0][1].max_steps} steps each")
            log(f"verdict: part {p.name}: {what}; estimate {_human(est) if est else '?'}")
        log(f"verdict: estimate for the whole suite {_human(total)} (per-step times measured on a 2-core CPU)")
    verdict: dict[str, Any] = {"size": size, "size_note": SIZE_NOTES[size], "out": str(out),
                               "controllers": {"images_3d": list(parts[-1].controllers) if parts else [],
                                               "ring": next((p.controllers for p in parts if p.kind == "ring"), []),
                                               "how": ("given by --controllers (none added as the baseline)"
                                                       if controllers is not None else
                                                       "default: none and gcann for the images and 3D (the claims "
                                                       "compare DCG-GCANN with DCGAN; more controllers do not fit the "
                                                       "CPU budget); none, gcann, ttur, gap, clc and ada on the ring (batched "
                                                       "over seeds; every row costs time)")},
                               "estimate_s": round(total), "is_note": IS_NOTE, "parts": []}
    t_all = time.perf_counter()
    for p in parts:
        folder = out / p.name
        rec_file = folder / "part.json"
        if rec_file.is_file() and not report_only:
            try:
                rec = json.loads(rec_file.read_text())
            except (OSError, ValueError) as e:
                raise VerdictError(f"{rec_file} is unreadable ({type(e).__name__}); delete it to run the part "
                                   f"again") from None
            want = json.loads(json.dumps(p.sizes()))
            have = rec.get("sizes") if isinstance(rec.get("sizes"), dict) else {}
            keys = sorted(k for k in want if have.get(k) != want[k])   # what the run adds (accuracy...) aside
            if rec.get("size") != size or keys:
                keys = keys or ["size"]
                raise VerdictError(f"{folder} holds this part made with another {', '.join(keys)} (size "
                                   f"{rec.get('size')}); choose another --out, or delete {folder}")
            log(f"verdict: part {p.name}: done before ({rec.get('seconds')} s); not run again")
            verdict["parts"].append(rec)
            _write(verdict, out)
            continue
        if report_only and not folder.is_dir():
            verdict["parts"].append({"part": p.name, "status": "missing", "folder": str(folder),
                                     "sizes": p.sizes(), "message": f"{folder} does not exist: not run"})
            continue
        t0 = time.perf_counter()
        if p.kind == "sweep" and not report_only:
            why = _check_data(p)
            if why is not None:
                log(f"verdict: part {p.name}: data unavailable here: {why}")
                verdict["parts"].append({"part": p.name, "status": "unavailable", "folder": str(folder),
                                         "sizes": p.sizes(), "message": f"data unavailable: {why}"})
                _write(verdict, out)
                continue
        if not report_only:
            log(f"verdict: part {p.name} ...")
            if p.kind == "ring":
                _ring_part(p, folder, log, device)
            else:
                _train_part(p, folder, log)
        evaluate = None if report_only or p.kind == "ring" else _evaluator(p, out, device)
        try:
            doc = _report(folder, evaluate)
        except ReportError as e:
            if not report_only:
                raise
            verdict["parts"].append({"part": p.name, "status": "unreadable", "folder": str(folder),
                                     "sizes": p.sizes(), "message": str(e)})
            continue
        seconds = None if report_only else time.perf_counter() - t0
        if report_only and rec_file.is_file():
            seconds = json.loads(rec_file.read_text()).get("seconds")
        rec = _part_record(p, folder, doc, seconds, "done")
        rec["size"] = size
        if not report_only:
            atomic_write_text(rec_file, json.dumps(rec, indent=1) + "\n")
            log(f"verdict: part {p.name} done in {_human(seconds)} (estimate {_human(p.estimate_s() or 0)})")
        verdict["parts"].append(rec)
        _write(verdict, out)
    if not report_only:
        verdict["seconds_this_call"] = round(time.perf_counter() - t_all, 1)
    verdict["seconds_total"] = round(sum(r.get("seconds") or 0 for r in verdict["parts"]), 1)
    _write(verdict, out)
    return verdict


def _human(s: float | None) -> str:
    if s is None:
        return "?"
    return f"{s / 60:.1f} min" if s >= 90 else f"{s:.0f} s"


def _write(verdict: dict, out: Path) -> None:
    verdict["claims"] = claims_summary(verdict["parts"])
    atomic_write_text(out / "verdict.json", json.dumps(verdict, indent=1, default=str) + "\n")
    atomic_write_text(out / "verdict.md", summary_markdown(verdict))


def claims_summary(parts: list[dict]) -> list[dict]:
    """Per claim of :data:`CLAIMS`: one row per part and metric, taken from that part's report's ``claims``."""
    out = []
    for claim, names, note in CLAIMS:
        rows = []
        for rec in parts:
            if rec.get("status") != "done":
                continue
            entry = next((c for c in rec["claims"] if c["claim"] == claim), None)
            if entry is None:
                continue
            for m in entry["metrics"]:
                if not m["measured"]:
                    continue
                for c in m["comparisons"]:
                    rows.append({"part": rec["part"], "metric": m["metric"], "direction": m["direction"],
                                 "setting": c["setting"], "baseline": c["baseline"], "n_pairs": c["n_pairs"],
                                 "diff_mean": c["diff_mean"], "ci95": c["ci95"], "p_value": c["p_value"],
                                 "verdict": c["verdict"]})
        counts = {v: sum(1 for r in rows if r["verdict"] == v) for v in ("better", "worse", "inconclusive")}
        out.append({"claim": claim, "metrics": names, "note": note, "rows": rows, "counts": counts})
    return out


def _num(v, digits=4) -> str:
    if v is None:
        return "–"
    return f"{v:.{digits}g}"


def summary_markdown(verdict: dict) -> str:
    """``verdict.md``: the suite, each part's sizes and time, one table per claim, the other comparisons."""
    lines = [f"# Verdict on GCANN's claims ({verdict['size']} size)", "", verdict["size_note"] + ".", "",
             f"Controllers: images and 3D {', '.join(verdict['controllers']['images_3d'])}; ring "
             f"{', '.join(verdict['controllers']['ring'])} ({verdict['controllers']['how']}).", "",
             "Each row pairs the GCANN setting with its baseline (controller none; the ring's plain objective) seed "
             "by seed: the mean difference (GCANN − baseline), its 95 % interval over seeds, the Wilcoxon "
             "signed-rank p-value and the verdict (better/worse when p < 0.05 and the interval excludes 0, by the "
             "metric's direction; inconclusive otherwise and below 6 pairs). Seed variance is in the intervals; "
             "the evaluation's own sampling error is per part below and per seed in each part's report.", "",
             "## Parts", "",
             "| part | status | seeds | steps / epochs | runs | evaluation | time (estimate) |",
             "|---|---|---:|---|---:|---|---|"]
    for rec in verdict["parts"]:
        s = rec.get("sizes", {})
        steps = f"{s.get('epochs')} epochs" if "epochs" in s and "preset" not in s else s.get("steps", "–")
        ev = rec.get("evaluation", {})
        evtext = "; ".join(f"{k}: {_samples(v.get('samples'))}" + (f" (s.e.: {v['se_how']})" if v.get("se_how") else "")
                           for k, v in ev.items() if k not in ("loss_gap", "loss_gap_var")) or "–"
        if "domain_classifier_accuracy" in s:
            evtext += f"; domain classifier held-out accuracy {s['domain_classifier_accuracy']}"
        t = rec.get("seconds")
        lines.append(f"| {rec['part']} | {rec['status']}{': ' + rec['message'] if rec.get('message') else ''} | "
                     f"{s.get('seeds', '–')} | {steps} | {rec.get('n_runs', '–')} | {evtext} | "
                     f"{_human(t) if t else '–'} ({_human(rec.get('estimate_s')) if rec.get('estimate_s') else '–'}) |")
    lines += ["", "## The claims", ""]
    for c in verdict["claims"]:
        lines += [f"### {c['claim']}", "", f"Metrics: {', '.join(c['metrics'])}." + (f" {c['note']}." if c["note"] else ""), ""]
        if not c["rows"]:
            lines += ["Not measured in any part of this suite." + (" IS: " + IS_NOTE + "." if "is" in c["metrics"] else ""),
                      ""]
            continue
        lines += ["| part | metric | setting | n pairs | diff (GCANN − base) | 95 % CI | p | verdict |",
                  "|---|---|---|---:|---:|---|---:|---|"]
        for r in c["rows"]:
            ci = f"[{_num(r['ci95'][0])}, {_num(r['ci95'][1])}]" if r["ci95"] else "–"
            lines.append(f"| {r['part']} | {r['metric']} ({r['direction']} is better) | {_label(r['setting'])} | "
                         f"{r['n_pairs']} | {_num(r['diff_mean'])} | {ci} | {_num(r['p_value'], 3)} | "
                         f"**{r['verdict']}** |")
        k = c["counts"]
        lines += ["", f"{k['better']} better, {k['worse']} worse, {k['inconclusive']} inconclusive.", ""]
    other = [(rec["part"], cmp) for rec in verdict["parts"] if rec.get("status") == "done"
             for cmp in rec["comparisons"] if not is_gcann(cmp["setting"])]
    if other:
        lines += ["## The other controllers against the same baseline", "",
                  "| part | setting | metric | n pairs | diff | 95 % CI | p | verdict |",
                  "|---|---|---|---:|---:|---|---:|---|"]
        for part, cmp in other:
            ci = f"[{_num(cmp['ci95'][0])}, {_num(cmp['ci95'][1])}]" if cmp["ci95"] else "–"
            lines.append(f"| {part} | {_label(cmp['setting'])} | {cmp['metric']} | {cmp['n_pairs']} | "
                         f"{_num(cmp['diff_mean'])} | {ci} | {_num(cmp['p_value'], 3)} | {cmp['verdict']} |")
        lines.append("")
    lines += [f"Time: {_human(verdict.get('seconds_total'))} in all (the parts' recorded wall times); "
              f"up-front estimate {_human(verdict.get('estimate_s'))}.", ""]
    return "\n".join(lines)


# ============================================================================ --size full: submission
def submit_full(parts: list[Part], out: Path, *, executor: str = "slurm", slurm_partition: str | None = None,
                gpus_per_node: int = 1, timeout_min: int = 24 * 60, dry_run: bool = False,
                log: Callable[[str], None] = print) -> list[dict]:
    """Hand each part to ``gcann sweep``'s executor: the sweeps' runs as one job array per part
    (:func:`gcann.train.sweep.submit`), the ring study as one job on a GPU. ``dry_run`` lists the jobs only.
    Returns the listing ``[{"part", "name", "run_dir", "config"}]``."""
    listing = []
    for p in parts:
        if p.kind == "ring":
            listing.append({"part": p.name, "name": "ring-study", "run_dir": str(out / p.name),
                            "config": {"settings": p.settings, **p.size, "device": "cuda"}})
        else:
            listing += [{"part": p.name, "name": n, "run_dir": str(out / p.name / n), "config": cfg.to_dict()}
                        for n, cfg in p.runs]
    if dry_run:
        return listing
    import submitit

    from gcann.train.sweep import submit

    for p in parts:
        if p.kind == "ring":
            ex = submitit.AutoExecutor(folder=str(out / p.name / "submitit"), cluster=executor)
            params: dict[str, Any] = {"timeout_min": timeout_min}
            if executor == "slurm":
                params["gpus_per_node"] = gpus_per_node
                if slurm_partition:
                    params["slurm_partition"] = slurm_partition
            ex.update_parameters(**params)
            job = ex.submit(_ring_part, p, out / p.name, print, "cuda" if gpus_per_node else "cpu")
            log(f"verdict: part ring submitted ({executor} job {job.job_id})")
        else:
            jobs = submit(p.runs, out / p.name, executor=executor, timeout_min=timeout_min,
                          slurm_partition=slurm_partition, gpus_per_node=gpus_per_node)
            log(f"verdict: part {p.name}: {len(jobs)} run(s) submitted ({executor})")
    atomic_write_text(out / "submitted.json", json.dumps(listing, indent=1, default=str) + "\n")
    return listing


def _samples(v) -> str:
    if isinstance(v, list):
        return ", ".join(map(str, v)) or "–"
    return str(v)
