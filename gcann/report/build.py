"""From a :class:`~gcann.report.load.Study` to the report: groups over seeds, paired comparisons, the claims.

The report (``report.json``) is ``{"groups": [...], "comparisons": [...], "claims": [...], ...}``:

* a **group** is one setting (a sweep's grid point, a ring setting) with its seeds as replicates:
  ``{"setting", "n_seeds", "seeds", "failures", "runs", "metrics": {NAME: {"per_seed", "mean", "std",
  "ci95", "interval", "n", "missing", "direction", "evaluation"}}}``; a run without a value (diverged,
  unfinished, unavailable) is in ``per_seed`` as ``null`` with its reason in ``missing``, and counted in
  ``failures``; ``mean``, ``std`` and ``ci95`` are over the ``n`` seeds that have a value;
* a **comparison** pairs a group with its baseline seed by seed: ``{"setting", "baseline", "metric",
  "diff_mean", "ci95", "p_value", "test", "verdict", ...}`` (:func:`gcann.report.stats.paired`);
* a **claim** is one of the GCANN paper's claims with the comparisons of the metrics that stand for it.

Groups are sorted by setting and seeds by value, so the order in which runs are found or listed does not
change the report.
"""
from __future__ import annotations

import json
from typing import Any, Sequence

from . import measures, stats
from .claims import claims_section
from .load import ReportError, Run, Study

__all__ = ["build", "choose_metrics", "parse_baseline"]


def _seed_sort(s):
    return (0, s, "") if isinstance(s, (int, float)) else (1, 0, str(s))


def choose_metrics(study: Study, names: str | Sequence[str] | None) -> list[str]:
    """The metrics to report: all available (``None``), else the named ones; ``loss_gap`` is always one."""
    available = study.metrics
    if names is None:
        return available
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if not names:
        raise ReportError(f"--metrics is empty; available: {', '.join(available)}")
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ReportError(f"unknown metric(s) {', '.join(unknown)} for this report; available: "
                          f"{', '.join(available)}")
    chosen = ["loss_gap"] + [n for n in names if n != "loss_gap"]
    return list(dict.fromkeys(chosen))


def parse_baseline(items: Sequence[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ReportError(f"--baseline takes KEY=VALUE (a setting key and its value), got {item!r}")
        out[key.strip()] = value.strip()
    return out


def _matches(value: Any, text: str) -> bool:
    if str(value) == text or json.dumps(value) == text:
        return True
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = text
    if isinstance(value, (list, tuple)):
        return list(value) == parsed or "+".join(map(str, value)) == text or (not value and text == "none")
    if isinstance(parsed, (int, float)) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(parsed) == float(value)
    return parsed == value


def _plain(setting: dict) -> dict | None:
    """The setting a controller (or variant) is compared with by default: controller none, or the ring's plain objective."""
    if "controller" in setting and setting["controller"] != "none":
        return {**setting, "controller": "none"}
    name = setting.get("setting")
    if isinstance(name, str) and "+" in name and len(setting) == 1:
        return {"setting": name.split("+", 1)[0]}
    return None


def _baselines(groups: list[dict], want: dict[str, str]) -> tuple[dict[int, int], str]:
    """``{group index: baseline index}`` and a sentence saying how the baselines were chosen."""
    keys = list(dict.fromkeys(k for g in groups for k in g["setting"]))
    if want:
        bad = [k for k in want if k not in keys]
        if bad:
            raise ReportError(f"--baseline key {', '.join(bad)} is not a setting key of this report; keys: "
                              f"{', '.join(keys) or 'none (one setting)'}")
        hits = [i for i, g in enumerate(groups) if all(_matches(g["setting"].get(k), v) for k, v in want.items())]
        if len(hits) != 1:
            values = {k: sorted({json.dumps(g["setting"].get(k)) for g in groups}) for k in want}
            shown = "; ".join(f"{k}: {', '.join(v)}" for k, v in values.items())
            what = "no setting" if not hits else f"{len(hits)} settings"
            raise ReportError(f"--baseline {' '.join(f'{k}={v}' for k, v in want.items())} matches {what}; "
                              f"values: {shown}")
        b = hits[0]
        return {i: b for i in range(len(groups)) if i != b}, f"the baseline given: {_label(groups[b]['setting'])}"
    index = {json.dumps(g["setting"], sort_keys=True): i for i, g in enumerate(groups)}
    pairs = {}
    for i, g in enumerate(groups):
        p = _plain(g["setting"])
        j = None if p is None else index.get(json.dumps(p, sort_keys=True))
        if j is not None:
            pairs[i] = j
    if pairs:
        return pairs, ("by default each setting with a controller (or ring variant) against the same setting without "
                       "it (controller none; the ring's plain objective); pass --baseline KEY=VALUE for one baseline")
    if len(groups) < 2:
        return {}, "one setting: nothing to compare"
    return ({i: 0 for i in range(1, len(groups))},
            (f"no setting without a controller to pair with: the first setting, {_label(groups[0]['setting'])}, is "
             f"the baseline (pass --baseline KEY=VALUE to choose)"))


def _label(setting: dict) -> str:
    return ", ".join(f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in setting.items()) or "(all runs)"


def _group(runs: list[Run], metrics: list[str], interval: str) -> dict:
    runs = sorted(runs, key=lambda r: _seed_sort(r.seed))
    states = [r.state for r in runs]
    out = {"setting": runs[0].setting, "n_seeds": len(runs), "seeds": [r.seed for r in runs],
           "failures": {"diverged": states.count("diverged"),
                        "collapsed": sum(1 for r in runs if r.collapsed),
                        "collapse_not_judged": sum(1 for r in runs if r.collapsed is None),
                        "unfinished": sum(1 for s in states if s in ("running", "pending"))},
           "runs": [{"seed": r.seed, "path": r.path, "state": r.state, "collapsed": r.collapsed,
                     "events": dict(sorted(r.events.items())), **({"message": r.message} if r.message else {})}
                    for r in runs],
           "metrics": {}}
    for name in metrics:
        per_seed = {str(r.seed): r.values.get(name) for r in runs}
        missing = {str(r.seed): r.missing.get(name, "not measured for this run") for r in runs
                   if r.values.get(name) is None}
        s = stats.summary(list(per_seed.values()), interval)
        ev_samples = sorted({json.dumps(r.evaluation.get(name, {}).get("samples")) for r in runs} - {"null"})
        evaluation = {"samples": [json.loads(x) for x in ev_samples]}
        what = {r.evaluation.get(name, {}).get("samples_are") for r in runs} - {None}
        if what:
            evaluation["samples_are"] = min(what)
        se = {str(r.seed): r.evaluation[name]["se"] for r in runs if "se" in r.evaluation.get(name, {})}
        if se:
            evaluation["se_per_seed"] = se
            evaluation["se_mean"] = sum(se.values()) / len(se)
            how = {r.evaluation[name].get("se_how") for r in runs} - {None}
            if how:
                evaluation["se_how"] = min(how)
        out["metrics"][name] = {"per_seed": per_seed, "mean": s["mean"], "std": s["std"], "ci95": s["ci95"],
                                "interval": s["interval"], "n": s["n"], "missing": missing,
                                "direction": measures.direction(name), "evaluation": evaluation}
    acc = {str(r.seed): r.info["domain_accuracy"] for r in runs if "domain_accuracy" in r.info}
    if acc:
        out["domain_classifier_accuracy"] = acc
    return out


def build(study: Study, *, metrics: str | Sequence[str] | None = None, baseline: Sequence[str] | None = None,
          interval: str = "auto") -> dict:
    """The report of ``study`` as a JSON-ready dict (see the module's doc)."""
    if interval not in stats.INTERVALS:
        raise ReportError(f"--interval must be one of {', '.join(stats.INTERVALS)}, got {interval!r}")
    names = choose_metrics(study, metrics)
    want = parse_baseline(baseline)
    by_key: dict[str, list[Run]] = {}
    for r in study.runs:
        by_key.setdefault(r.key, []).append(r)
    groups = [_group(by_key[k], names, interval) for k in sorted(by_key)]
    pairs, how = _baselines(groups, want)
    comparisons = []
    for i in sorted(pairs):
        g, b = groups[i], groups[pairs[i]]
        for name in names:
            c = stats.paired(g["metrics"][name]["per_seed"], b["metrics"][name]["per_seed"],
                             measures.direction(name), interval)
            comparisons.append({"setting": g["setting"], "baseline": b["setting"], "metric": name,
                                "direction": measures.direction(name), "n_pairs": c["n_pairs"],
                                "diff_mean": c["diff_mean"], "diff_std": c["diff_std"], "ci95": c["ci95"],
                                "interval": c["interval"], "p_value": c["p_value"], "test": c["test"],
                                "verdict": c["verdict"], "note": c["note"]})
    report = {
        "kind": study.kind, "sources": study.sources, "metrics": names,
        "definitions": {n: measures.DEFINITIONS.get(n, "the value the run's evaluation recorded") for n in names},
        "directions": {n: measures.direction(n) for n in names},
        "baseline": how,
        "method": {
            "interval": (f"95 % interval of the mean over seeds: Student t (scipy.stats.t.interval, n − 1 degrees "
                         f"of freedom, standard error std/√n) below {stats.BOOTSTRAP_MIN} seeds, BCa bootstrap "
                         f"(scipy.stats.bootstrap, {stats.N_RESAMPLES} resamples, seed {stats.BOOTSTRAP_SEED}) "
                         f"from {stats.BOOTSTRAP_MIN} on" if interval == "auto" else
                         f"95 % interval of the mean over seeds: {interval} for every group"),
            "test": (f"paired by seed (group − baseline on the same seed); Wilcoxon signed-rank, two-sided; "
                     f"verdict better/worse when p < {stats.ALPHA} and the 95 % interval of the mean difference "
                     f"excludes 0, by the metric's direction; inconclusive otherwise and below {stats.MIN_PAIRS} pairs"),
            "missing": ("a diverged, unfinished or unevaluated run has no value: it is null in per_seed with its "
                        "reason in missing, counted in failures, and left out of mean, std, ci95 (n counts the "
                        "seeds with a value) and of the pairs"),
            "collapse": study.collapse_rule,
            "seed_vs_evaluation": ("std and ci95 are spread over seeds; the evaluation's own sampling error is "
                                   "apart, in each metric's evaluation: its sample count and, where the metric "
                                   "reports one (KID), its standard error per seed"),
        },
        "notes": study.notes,
        "groups": groups,
        "comparisons": comparisons,
    }
    report["claims"] = claims_section(report)
    return report
