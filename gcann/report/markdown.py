"""``report.md``: the report's tables, ending with one table per GCANN claim."""
from __future__ import annotations

import json

from .build import _label

__all__ = ["to_markdown"]


def _num(v, digits: int = 4) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return str(v)
    return f"{v:.{digits}g}"


def _cell(text) -> str:
    """Text for a table cell: a literal ``|`` escaped so that it does not end the cell."""
    return "–" if text is None else str(text).replace("|", "\\|")


def _ci(ci) -> str:
    return "–" if ci is None else f"[{_num(ci[0])}, {_num(ci[1])}]"


def _p(p) -> str:
    return "– (too few pairs)" if p is None else f"{p:.3g}"


def _failures(g: dict) -> str:
    f = g["failures"]
    parts = [f"{f['diverged']} diverged", f"{f['collapsed']} collapsed"]
    if f["unfinished"]:
        parts.append(f"{f['unfinished']} unfinished")
    if f["collapse_not_judged"]:
        parts.append(f"collapse not judged for {f['collapse_not_judged']}")
    return ", ".join(parts)


def to_markdown(report: dict, figures: list[str] = ()) -> str:
    m = report["method"]
    L = ["# gcann report", "",
         f"Source ({report['kind']}): {', '.join(report['sources'])}", ""]
    for n in report["notes"]:
        L.append(f"- {n}")
    L += ["", "## Method", "",
          f"- Intervals: {m['interval']}.",
          f"- Comparisons: {m['test']}.",
          f"- Baselines: {report['baseline']}.",
          f"- Missing values: {m['missing']}.",
          f"- Collapse rule: {m['collapse']}.",
          f"- Seed vs evaluation error: {m['seed_vs_evaluation']}.",
          "", "## Metrics", "", "| metric | better | definition |", "|---|---|---|"]
    for n in report["metrics"]:
        L.append(f"| {n} | {report['directions'][n] or 'no direction'} | {_cell(report['definitions'][n])} |")
    L += ["", "## Settings over seeds", ""]
    for g in report["groups"]:
        L += [f"### {_label(g['setting'])}", "",
              f"{g['n_seeds']} seed(s) ({', '.join(map(str, g['seeds']))}); failures: {_failures(g)}.", "",
              "| metric | n / seeds | mean | std (seeds) | 95 % CI | interval | evaluation | per seed |",
              "|---|---:|---:|---:|---|---|---|---|"]
        for name, s in g["metrics"].items():
            ev = s["evaluation"]
            samples = "/".join(map(str, ev["samples"])) if ev["samples"] else "?"
            evtext = f"{samples} {ev.get('samples_are', 'samples')}" if ev["samples"] else "sample count unknown"
            if ev.get("se_per_seed"):
                evtext += "; s.e. " + ", ".join(_num(v, 3) for v in ev["se_per_seed"].values())
            seeds = ", ".join(f"{k}: {_num(v) if v is not None else 'missing'}" for k, v in s["per_seed"].items())
            L.append(f"| {name} | {s['n']} / {g['n_seeds']} | {_num(s['mean'])} | {_num(s['std'])} | {_ci(s['ci95'])} | "
                     f"{s['interval']} | {evtext} | {seeds} |")
        missing = {(name, reason) for name, s in g["metrics"].items() for reason in s["missing"].values()}
        if missing:
            L += ["", "Missing: " + "; ".join(f"{name}: {reason}" for name, reason in sorted(missing)) + "."]
        L.append("")
    L += ["## Comparisons (paired by seed)", ""]
    if report["comparisons"]:
        L += ["| setting | baseline | metric | better | pairs | mean diff | 95 % CI | p (Wilcoxon) | verdict |",
              "|---|---|---|---|---:|---:|---|---|---|"]
        for c in report["comparisons"]:
            L.append(f"| {_label(c['setting'])} | {_label(c['baseline'])} | {c['metric']} | {c['direction'] or '–'} | "
                     f"{c['n_pairs']} | {_num(c['diff_mean'])} | {_ci(c['ci95'])} | {_p(c['p_value'])} | "
                     f"**{c['verdict']}** |")
        notes = sorted({c["note"] for c in report["comparisons"] if c["note"]})
        if notes:
            L += [""] + [f"- {n}" for n in notes]
    else:
        L.append("No comparison: " + report["baseline"] + ".")
    L += ["", "## Controller events per run", ""]
    names = sorted({e for g in report["groups"] for r in g["runs"] for e in r["events"]})
    if names:
        L += ["| setting | seed | state | " + " | ".join(names) + " |", "|---|---:|---|" + "---:|" * len(names)]
        for g in report["groups"]:
            for r in g["runs"]:
                L.append(f"| {_label(g['setting'])} | {r['seed']} | {r['state']} | "
                         + " | ".join(str(r["events"].get(e, 0)) for e in names) + " |")
    else:
        L.append("No controller event was recorded in any run.")
    if figures:
        L += ["", "## Curves (median over seeds, band min–max)", ""]
        L += [f"![{f}]({f})" for f in figures]
    L += ["", "## The GCANN claims", "",
          ("Estal, *Guided Convergence Adversarial Neural Networks*, claims for DCG-GCANN against the DCGAN baseline "
           "the following, without numbers. Each table gives the metric standing for the claim, its definition, the "
           "measured effect (mean paired difference, setting − baseline) with its 95 % interval, and the verdict."), ""]
    for cl in report["claims"]:
        L += [f"### Claim: {cl['claim']}", "", f"Summary: {cl['summary']}." + (f" {cl['note']}." if cl["note"] else ""), "",
              "| metric | definition | better | setting vs baseline | pairs | effect [95 % CI] | p | verdict |",
              "|---|---|---|---|---:|---|---|---|"]
        for mm in cl["metrics"]:
            if not mm["comparisons"]:
                L.append(f"| {mm['metric']} | {_cell(mm['definition'])} | {mm['direction'] or '–'} | "
                         f"{mm['summary']} | – | – | – | – |")
            for c in mm["comparisons"]:
                L.append(f"| {mm['metric']} | {_cell(mm['definition'])} | {mm['direction'] or '–'} | "
                         f"{_label(c['setting'])} vs {_label(c['baseline'])} | {c['n_pairs']} | "
                         f"{_num(c['diff_mean'])} {_ci(c['ci95'])} | {_p(c['p_value'])} | **{c['verdict']}** |")
        L.append("")
    return "\n".join(L)


def dumps(report: dict) -> str:
    return json.dumps(report, indent=1, allow_nan=False) + "\n"
