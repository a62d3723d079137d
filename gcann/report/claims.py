"""The GCANN paper's claims made measurable (Estal, *Guided Convergence Adversarial Neural Networks*).

The paper claims, for DCG-GCANN against the DCGAN baseline, tighter convergence of the two losses,
higher visual quality (IS, FID), more diversity (images), and a lower Chamfer distance and more
diversity (3D); it gives no number. Each claim is stood for by the metrics of :data:`CLAIMS`; a report
gives, per claim and metric, every comparison it made of that metric (the measured effect with its
interval and the verdict), or says that the metric is not measured in it.
"""
from __future__ import annotations

from . import measures

__all__ = ["CLAIMS", "IS_NOTE", "claims_section"]

SOURCE = "Estal, Guided Convergence Adversarial Neural Networks (DCG-GCANN against the DCGAN baseline)"
IS_NOTE = ("IS needs the 1008-class Inception logits (torch-fidelity's weights-inception-2015-12-05-6726825d.pth), "
           "which no installed package ships: not measured unless `gcann eval --is-weights FILE` wrote it")

#: (claim, [metrics that stand for it], note)
CLAIMS = [
    ("tighter convergence of the two losses", ["loss_gap", "loss_gap_var"], None),
    ("higher visual quality (images): IS", ["is"], IS_NOTE),
    ("higher visual quality (images): FID or its stand-ins (KID; fd_domain, kid_domain)",
     ["fid", "kid", "fd_domain", "kid_domain"],
     "KID stands in where FID's sample count is out of reach; fd_domain and kid_domain are the same distances on "
     "the features of a small classifier trained on the same data (the CPU-size stand-in; not FID or KID)"),
    ("more diversity (images)", ["pairwise_inception", "pairwise"], None),
    ("lower Chamfer distance (3D)", ["chamfer"], None),
    ("more diversity (3D)", ["pairwise_chamfer", "pairwise_iou", "cov"], None),
]


def _summary(rows: list[dict]) -> str:
    if not rows:
        return "not measured in this report"
    counts = {v: sum(1 for r in rows if r["verdict"] == v) for v in ("better", "worse", "inconclusive")}
    return f"{counts['better']} better, {counts['worse']} worse, {counts['inconclusive']} inconclusive " \
           f"of {len(rows)} comparison(s)"


def is_gcann(setting: dict) -> bool:
    """Whether a setting runs the GCANN controller (a train run's ``controller``, a ring setting's ``+gcann``)."""
    if "controller" in setting:
        return setting["controller"] == "gcann"
    if "gcann" in str(setting.get("preset", "")):
        return True
    name = setting.get("setting")
    return isinstance(name, str) and "gcann" in name.split("+")[1:]


def claims_section(report: dict) -> list[dict]:
    """One entry per claim: its metrics, their definitions and directions, the comparisons, a count of verdicts.

    The comparisons are those of a GCANN setting against its baseline when any setting is identified as GCANN
    (:func:`is_gcann`), else every comparison of the metric (and the claim's note says so)."""
    gcann_only = any(is_gcann(c["setting"]) for c in report["comparisons"])
    out = []
    for claim, names, note in CLAIMS:
        metrics = []
        for name in names:
            measured = name in report["metrics"]
            rows = [{"setting": c["setting"], "baseline": c["baseline"], "n_pairs": c["n_pairs"],
                     "diff_mean": c["diff_mean"], "ci95": c["ci95"], "interval": c["interval"],
                     "p_value": c["p_value"], "verdict": c["verdict"]}
                    for c in report["comparisons"] if c["metric"] == name and (not gcann_only or is_gcann(c["setting"]))
                    ] if measured else []
            metrics.append({"metric": name, "definition": measures.DEFINITIONS.get(name),
                            "direction": measures.direction(name), "measured": measured, "comparisons": rows,
                            "summary": (_summary(rows) if measured and rows else
                                        "measured, no comparison (one setting)" if measured else
                                        "not measured in this report")})
        all_rows = [r for m in metrics for r in m["comparisons"]]
        if not gcann_only and all_rows:
            note = "; ".join(filter(None, [note, "no setting is identified as GCANN: every comparison is listed"]))
        out.append({"claim": claim, "source": SOURCE, "metrics": metrics, "note": note,
                    "summary": ("not measured in this report" if not any(m["measured"] for m in metrics) else
                                _summary(all_rows) if all_rows else "measured, no comparison (one setting)")})
    return out
