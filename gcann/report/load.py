"""Reading what a report is about: a sweep folder, a ring study folder, or run folders, into one list of runs.

Every source becomes a :class:`Study`: a list of :class:`Run` (one per seed of a setting) with the
setting it belongs to, its seed, its state, one value per metric (``None`` with a reason when there
is none), the evaluation's own sampling information, the controllers' event counts and its curves.

* a **sweep folder** (``gcann sweep``): the runs listed in ``sweep.json`` (else every sub-folder with a
  ``config.json``); each run's grid point is read from its ``config.json``: the fields that differ
  between runs once the seed and the fields that do not change training (device, logging, paths, the
  evaluation's settings) are set aside (``lr`` when ``lr_d`` and ``lr_g`` are swept together);
* a **run folder** (``gcann train``) or several: the same, over the folders given;
* a **ring study folder** (``gcann ring study``): ``run.json``'s rows (``{"setting", "seed"}``), its
  per-row ``metrics``, ``history`` (per epoch), ``curves`` and ``events``.

A run's state is ``finished``, ``diverged`` (``status.json`` says so, a logged loss is NaN/Inf, or the
ring's row diverged), ``running`` or ``pending`` (no ``status.json``); only finished runs have values.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from gcann.errors import GcannError

from . import measures

__all__ = ["ReportError", "Run", "Study", "load"]

RING_METRICS = ("modes_covered", "hq_ratio", "kl", "reverse_kl", "success", "failure")
#: config fields that do not change what is trained (set aside when grid points are read from config.json)
NOT_SETTING = {"seed", "device", "data_root", "num_workers", "precision", "channels_last", "compile", "compile_mode",
               "cuda_graph", "log_every", "sample_every", "ckpt_every", "keep_checkpoints", "eval_every", "metrics",
               "eval_samples", "num_samples"}


class ReportError(GcannError):
    """A report cannot be made from this input (one line, exit status 2)."""


@dataclass
class Run:
    setting: dict[str, Any]
    seed: Any
    path: str
    state: str                                   # finished | diverged | running | pending
    values: dict[str, float | None] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)        # metric -> why it has no value
    evaluation: dict[str, dict] = field(default_factory=dict)    # metric -> {"samples": n, "se": ...}
    collapsed: bool | None = None                # None: no rule applies (no diversity metric)
    events: dict[str, int] = field(default_factory=dict)
    curves: dict[str, tuple[list, list]] = field(default_factory=dict)   # name -> (x, y)
    message: str | None = None
    info: dict[str, Any] = field(default_factory=dict)           # e.g. the domain classifier's accuracy

    @property
    def key(self) -> str:
        return json.dumps(self.setting, sort_keys=True)


@dataclass
class Study:
    kind: str                                    # sweep | runs | ring
    sources: list[str]
    runs: list[Run]
    x_label: str                                 # what the curves' x axis counts
    collapse_rule: str
    notes: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def metrics(self) -> list[str]:
        names: list[str] = []
        for r in self.runs:
            for k in list(r.values) + list(r.missing):
                if k not in names:
                    names.append(k)
        first = [n for n in ("loss_gap", "loss_gap_var") if n in names]
        return first + [n for n in names if n not in first]


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ReportError(f"cannot read {path}: {e.strerror or e}") from None
    except ValueError as e:
        raise ReportError(f"{path} is not valid JSON: {e}") from None


def _jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError:
                raise ReportError(f"{path}, line {i + 1}, is not valid JSON") from None
    return rows


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# ============================================================================ train runs
def _train_run(rd: Path, evaluate=None) -> tuple[dict, Run]:
    cfg = _json(rd / "config.json")
    status = _json(rd / "status.json") if (rd / "status.json").is_file() else None
    rows = [r for r in _jsonl(rd / "metrics.jsonl") if "loss_d" in r and "loss_g" in r]
    state = (status or {}).get("state") or "pending"
    nonfinite = [r["step"] for r in rows if not (_finite(r["loss_d"]) and _finite(r["loss_g"]))]
    if nonfinite:
        state = "diverged"
    run = Run(setting={}, seed=cfg.get("seed"), path=str(rd), state=state,
              message=(status or {}).get("message"))
    steps = [r["step"] for r in rows]
    run.curves["loss_gap"] = (steps, [abs(r["loss_d"] - r["loss_g"]) if _finite(r["loss_d"]) and _finite(r["loss_g"])
                                      else float("nan") for r in rows])
    for k in ("lr_d", "lr_g", "sigma", "diversity", "d_steps", "g_steps"):
        pts = [(r["step"], r[k]) for r in rows if _finite(r.get(k))]
        if pts and (k not in ("sigma", "d_steps", "g_steps") or len({v for _, v in pts}) > 1):
            run.curves[k] = ([p[0] for p in pts], [p[1] for p in pts])
    for e in _jsonl(rd / "events.jsonl"):
        name = str(e.get("event", "event"))
        run.events[name] = run.events.get(name, 0) + 1
    why = None if state == "finished" else (f"diverged ({run.message})" if state == "diverged" and run.message
                                            else state)
    ld, lg = [r["loss_d"] for r in rows], [r["loss_g"] for r in rows]
    for name, fn in (("loss_gap", measures.loss_gap), ("loss_gap_var", measures.loss_gap_var)):
        v = fn(steps, ld, lg) if why is None else None
        _put(run, name, v, why or ("no logged losses" if not rows else "too few logged points"))
        run.evaluation[name] = {"samples": sum(1 for s in steps if steps and s >= max(steps) / 2),
                                "samples_are": "logged points in the last half"}
    ev = measures.cached_eval(rd, final_step=(status or {}).get("step"), num_samples=cfg.get("eval_samples"),
                              evaluate=evaluate if state == "finished" else None)
    if ev is not None:
        for name, v in ev["metrics"].items():
            if name in measures.NOT_METRICS or name.endswith(("_std", "_se", "_unavailable")) or not (
                    v is None or isinstance(v, (int, float))):
                continue
            reason = why or ev["metrics"].get(f"{name}_unavailable") or "not computed"
            _put(run, name, None if why else v, reason)
            run.evaluation[name] = {"samples": ev.get("num_samples"), "source": ev["source"], "step": ev.get("step"),
                                    **measures.sampling_error(name, ev["metrics"])}
        if isinstance(ev["metrics"].get("domain_accuracy"), (int, float)):
            run.info["domain_accuracy"] = float(ev["metrics"]["domain_accuracy"])
        pw = run.values.get("pairwise")
        run.collapsed = None if pw is None else pw < measures.COLLAPSE_PAIRWISE
    for name, (x, y) in _eval_curves(rd).items():
        run.curves[f"eval:{name}"] = (x, y)
    return cfg, run


def _eval_curves(rd: Path) -> dict[str, tuple[list, list]]:
    out: dict[str, tuple[list, list]] = {}
    for r in _jsonl(rd / "metrics.jsonl"):
        if isinstance(r.get("eval"), dict):
            for k, v in r["eval"].items():
                if _finite(v) and not k.endswith(("_std", "_se")) and k not in measures.NOT_METRICS:
                    out.setdefault(k, ([], []))
                    out[k][0].append(r["step"])
                    out[k][1].append(v)
    return {k: v for k, v in out.items() if len(v[0]) >= 2}


def _put(run: Run, name: str, value, reason: str) -> None:
    if value is None or not _finite(float(value)):
        run.values[name] = None
        run.missing[name] = reason if value is None else f"non-finite value ({value})"
    else:
        run.values[name] = float(value)


def _settings_from_configs(cfgs: list[dict]) -> list[dict]:
    keys = sorted({k for c in cfgs for k in c} - NOT_SETTING)
    varying = [k for k in keys if len({json.dumps(c.get(k), sort_keys=True) for c in cfgs}) > 1]
    out = [{k: c.get(k) for k in varying} for c in cfgs]
    if {"lr_d", "lr_g"} <= set(varying) and all(s["lr_d"] == s["lr_g"] for s in out):
        for s in out:   # the sweep's `lr` grid key: one rate for both networks
            s["lr"] = s.pop("lr_d")
            del s["lr_g"]
    return out


def _train_study(kind: str, sources: list[str], dirs: list[Path], evaluate=None, notes=None) -> Study:
    pairs = [_train_run(d, evaluate) for d in dirs]
    settings = _settings_from_configs([c for c, _ in pairs])
    runs = []
    for s, (_, r) in zip(settings, pairs):
        r.setting = s
        runs.append(r)
    return Study(kind=kind, sources=sources, runs=runs, x_label="step",
                 collapse_rule=f"collapsed: the evaluated `pairwise` diversity (mean RMS distance between generated "
                               f"samples within batches of 64) is below {measures.COLLAPSE_PAIRWISE}; not judged "
                               f"for a run without it. A collapsed run keeps its values (they are measurements) and "
                               f"is counted",
                 notes=list(notes or []))


def _sweep_dirs(folder: Path) -> tuple[list[Path], list[str]]:
    notes = []
    listing = folder / "sweep.json"
    if listing.is_file():
        doc = _json(listing)
        dirs = []
        for r in doc.get("runs", []):
            d = Path(r.get("run_dir", ""))
            if not (d / "config.json").is_file() and (folder / r.get("name", "")).is_dir():
                d = folder / r["name"]   # the sweep folder was moved: its runs are where their names say
            if (d / "config.json").is_file():
                dirs.append(d)
            else:
                notes.append(f"{r.get('name')}: listed in sweep.json, no config.json (never started); not counted")
        return dirs, notes
    return sorted(p for p in folder.iterdir() if (p / "config.json").is_file()), notes


# ============================================================================ ring study
def _ring_study(folder: Path) -> Study:
    doc = _json(folder / "run.json")
    for k in ("rows", "metrics", "history"):
        if k not in doc:
            raise ReportError(f"{folder / 'run.json'} has no {k!r}: not a ring study's run.json")
    rows, metrics, history, meta = doc["rows"], doc["metrics"], doc["history"], doc.get("meta", {})
    curves = doc.get("curves", {})
    n_eval = meta.get("eval_samples")
    epochs = list(range(1, len(history.get("loss_d", [])) + 1))
    runs = []
    for i, row in enumerate(rows):
        diverged = bool(metrics.get("diverged", [False] * len(rows))[i])
        run = Run(setting={"setting": row["setting"]}, seed=row["seed"], path=f"{folder}#row{i}",
                  state="diverged" if diverged else "finished")
        why = "diverged (NaN/Inf loss; the row was stopped)" if diverged else None
        ld = [e[i] for e in history.get("loss_d", [])]
        lg = [e[i] for e in history.get("loss_g", [])]
        ok = [j for j in range(len(ld)) if _finite(ld[j]) and _finite(lg[j])]
        for name, fn in (("loss_gap", measures.loss_gap), ("loss_gap_var", measures.loss_gap_var)):
            v = fn(epochs, ld, lg) if why is None and ld else None
            _put(run, name, v, why or ("no logged losses" if not ld else "too few logged epochs"))
            run.evaluation[name] = {"samples": sum(1 for e in epochs if e >= max(epochs, default=0) / 2),
                                    "samples_are": "epochs in the last half (each the epoch's mean loss)"}
        run.curves["loss_gap"] = ([epochs[j] for j in ok], [abs(ld[j] - lg[j]) for j in ok])
        for k in ("lr_d", "lr_g"):
            run.curves[k] = (epochs, [e[i] for e in history.get(k, [])])
        for name, vals in history.get("knobs", {}).items():
            ys = [e[i] for e in vals]
            if len(set(ys)) > 1 or any(y != 0 for y in ys):
                run.curves[f"knob:{name}"] = (epochs, ys)
        for name, key in (("modes_covered", "modes"), ("hq_ratio", "hq")):
            if curves.get(key):
                run.curves[f"eval:{name}"] = (list(curves.get("epochs", [])), [c[i] for c in curves[key]])
        for name in RING_METRICS:
            if name in metrics:
                v = metrics[name][i]
                _put(run, name, None if why else float(v), why or "not recorded")
                run.evaluation[name] = {"samples": n_eval, "samples_are": "generated samples per seed"}
        mc = run.values.get("modes_covered")
        run.collapsed = None if mc is None else mc <= measures.COLLAPSE_MODES
        runs.append(run)
    for e in doc.get("events", []):
        r = e.get("row")
        if isinstance(r, int) and 0 <= r < len(runs):
            name = str(e.get("event", "event"))
            runs[r].events[name] = runs[r].events.get(name, 0) + 1
    notes = []
    if meta:
        notes.append(f"ring study: {meta.get('size', '?')}; form {meta.get('form', '?')}; {meta.get('dataset', '?')}; "
                     f"{n_eval} evaluation samples per seed; loss curves are per-epoch means")
    return Study(kind="ring", sources=[str(folder)], runs=runs, x_label="epoch",
                 collapse_rule=f"collapsed: at most {measures.COLLAPSE_MODES} mode covered (modes_covered <= "
                               f"{measures.COLLAPSE_MODES}); a collapsed run keeps its values and is counted",
                 notes=notes, meta=meta)


# ============================================================================ entry
def load(paths: Sequence[str | Path], evaluate=None) -> Study:
    """The study behind ``paths``: one sweep, ring study or run folder, or several run (or sweep) folders."""
    if not paths:
        raise ReportError("give a sweep folder, a ring study folder or run folders")
    folders = [Path(p) for p in paths]
    for f in folders:
        if not f.exists():
            raise ReportError(f"{f} does not exist")
        if not f.is_dir():
            raise ReportError(f"{f} is not a folder (give a sweep, ring study or run folder)")
    if len(folders) == 1 and (folders[0] / "run.json").is_file() and not (folders[0] / "config.json").is_file():
        study = _ring_study(folders[0])
    else:
        dirs: list[Path] = []
        notes: list[str] = []
        for f in folders:
            if (f / "run.json").is_file() and not (f / "config.json").is_file():
                raise ReportError(f"{f} is a ring study folder: report it on its own")
            if (f / "config.json").is_file():
                dirs.append(f)
            else:
                found, n = _sweep_dirs(f)
                dirs += found
                notes += n
        kind = "sweep" if len(folders) == 1 and not (folders[0] / "config.json").is_file() else "runs"
        seen = set()
        dirs = [d for d in dirs if not (d.resolve() in seen or seen.add(d.resolve()))]
        if not dirs:
            raise ReportError(f"no runs in {', '.join(map(str, folders))}: no sub-folder holds a config.json "
                              f"(a sweep's, a run's) and there is no run.json (a ring study's)")
        study = _train_study(kind, [str(f) for f in folders], dirs, evaluate, notes)
    if not study.runs:
        raise ReportError(f"no runs in {', '.join(map(str, folders))}")
    _check_seeds(study)
    return study


def _check_seeds(study: Study) -> None:
    seen: dict[tuple[str, str], str] = {}
    for r in study.runs:
        if r.seed is None:
            raise ReportError(f"{r.path}: no seed in its config.json; runs are paired by seed")
        k = (r.key, json.dumps(r.seed))
        if k in seen:
            raise ReportError(f"two runs of setting {r.key} have seed {r.seed}: {seen[k]} and {r.path}; "
                              f"runs are paired by seed, give one")
        seen[k] = r.path
