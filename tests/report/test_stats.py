"""gcann.report.stats and gcann.report.measures against scipy and hand-computed values."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as sst

from gcann.report import measures, stats


def test_t_interval_by_hand_three_samples():
    # x = 1, 2, 6: mean 3, s² = (4 + 1 + 9) / 2 = 7, s.e. = √(7/3), t(0.975, 2) = 4.302652729749462
    s = stats.summary([1.0, 2.0, 6.0], "t")
    half = 4.302652729749462 * math.sqrt(7 / 3)
    assert s["n"] == 3 and s["interval"] == "t"
    assert s["mean"] == pytest.approx(3.0) and s["std"] == pytest.approx(math.sqrt(7))
    assert s["ci95"] == pytest.approx([3 - half, 3 + half], rel=1e-12)


def test_t_interval_matches_scipy():
    x = np.array([0.3, 1.7, 0.9, 2.2, 1.1, 0.4, 1.5])
    ref = sst.ttest_1samp(x, 0.0).confidence_interval(0.95)
    s = stats.summary(list(x))
    assert s["interval"] == "t"
    assert s["ci95"] == pytest.approx([ref.low, ref.high], rel=1e-12)
    assert s["std"] == pytest.approx(np.std(x, ddof=1))


def test_bootstrap_matches_scipy_and_auto_switches():
    rng = np.random.default_rng(3)
    x = rng.normal(1.0, 2.0, size=stats.BOOTSTRAP_MIN)
    ref = sst.bootstrap((x,), np.mean, confidence_level=0.95, n_resamples=stats.N_RESAMPLES, method="BCa",
                        rng=np.random.default_rng(stats.BOOTSTRAP_SEED)).confidence_interval
    auto = stats.summary(list(x))
    assert auto["interval"] == "bootstrap"
    assert auto["ci95"] == pytest.approx([ref.low, ref.high], rel=1e-12)
    assert stats.summary(list(x[:5]))["interval"] == "t"
    assert stats.summary(list(x[:5]), "bootstrap")["interval"] == "bootstrap"


def test_missing_and_degenerate_values():
    s = stats.summary([1.0, None, float("nan"), 3.0], "t")
    assert s["n"] == 2 and s["mean"] == 2.0
    assert stats.summary([5.0], "t") == {"n": 1, "mean": 5.0, "std": None, "ci95": None, "interval": "t"}
    assert stats.summary([2.0, 2.0, 2.0])["ci95"] == [2.0, 2.0]
    assert stats.summary([])["mean"] is None


def test_paired_wilcoxon_matches_scipy_and_pairs_by_seed():
    base = {0: 1.0, 1: 2.0, 2: 3.0, 3: 4.0, 4: 5.0, 5: 6.0, 6: 7.0, 7: 8.0}
    diffs = [-0.5, -0.2, -0.9, 0.1, -0.4, -0.7, -0.3, -0.6]
    group = {k: base[k] + d for k, d in zip(base, diffs)}
    shuffled = dict(reversed(list(group.items())))
    c = stats.paired(shuffled, base, "lower", "t")
    assert c["n_pairs"] == 8 and c["seeds"] == list(range(8))
    assert c["diff_mean"] == pytest.approx(np.mean(diffs))
    assert c["p_value"] == pytest.approx(sst.wilcoxon(diffs).pvalue)
    ref = sst.ttest_1samp(diffs, 0.0).confidence_interval(0.95)
    assert c["ci95"] == pytest.approx([ref.low, ref.high])
    assert c["p_value"] < 0.05 and c["verdict"] == "better"
    assert stats.paired(shuffled, base, "higher", "t")["verdict"] == "worse"
    assert stats.paired(shuffled, base, None, "t")["verdict"] == "inconclusive"


def test_too_few_pairs_gives_no_p_value():
    # Wilcoxon's smallest two-sided p is 2/2^n: 0.0625 at 5 pairs, 0.03125 at 6
    assert sst.wilcoxon([1, 2, 3, 4, 5]).pvalue == pytest.approx(0.0625)
    assert sst.wilcoxon([1, 2, 3, 4, 5, 6]).pvalue == pytest.approx(0.03125)
    assert stats.MIN_PAIRS == 6
    c = stats.paired({k: 10.0 + k for k in range(5)}, {k: 0.0 for k in range(5)}, "lower")
    assert c["p_value"] is None and c["verdict"] == "inconclusive" and "cannot reach" in c["note"]
    c = stats.paired({0: 1.0, 1: None}, {0: 2.0, 1: 3.0, 2: 1.0}, "lower")
    assert c["n_pairs"] == 1 and "(not paired): 1, 2" in c["note"]


def test_all_zero_differences():
    same = {k: float(k) for k in range(7)}
    c = stats.paired(same, dict(same), "lower")
    assert c["p_value"] == 1.0 and c["verdict"] == "inconclusive" and c["ci95"] == [0.0, 0.0]


def test_verdict_needs_both_test_and_interval():
    assert stats.verdict(-1.0, [-2.0, -0.5], 0.01, "lower") == "better"
    assert stats.verdict(-1.0, [-2.0, 0.5], 0.01, "lower") == "inconclusive"
    assert stats.verdict(-1.0, [-2.0, -0.5], 0.2, "lower") == "inconclusive"
    assert stats.verdict(1.0, [0.5, 2.0], 0.01, "lower") == "worse"


def test_loss_gap_by_hand():
    steps = [0, 1, 2, 3, 4, 5, 6, 7, 8]
    ld = [1.0] * 9
    lg = [0.0, 0.5, 0.9, 0.7, 0.6, 0.8, 0.4, 0.2, 0.3]
    # last half: steps >= 4 -> gaps 0.4, 0.2, 0.6, 0.8, 0.7: median 0.6
    assert measures.loss_gap(steps, ld, lg) == pytest.approx(0.6)
    assert measures.loss_gap(list(reversed(steps)), list(reversed(ld)), list(reversed(lg))) == pytest.approx(0.6)
    assert measures.loss_gap(steps, ld, lg[:-1] + [float("nan")]) is None
    gap = np.abs(np.array(ld) - np.array(lg))
    w = 4   # min(20, max(2, 9 // 2))
    want = np.median([np.var(gap[i - w + 1:i + 1], ddof=1) for i in range(4, 9)])
    assert measures.loss_gap_var(steps, ld, lg) == pytest.approx(want)
    assert measures.loss_gap_var([0], [1.0], [0.0]) is None
    assert measures.loss_gap_var([1, 2], [1.0, 1.0], [0.0, 0.5]) == pytest.approx(np.var([1.0, 0.5], ddof=1))


def test_cached_eval_in_a_folder_it_cannot_write_still_answers(tmp_path):
    """A run folder that cannot take eval.json (read-only, another user's; here a folder in its place, which
    stops root too): the evaluation is reported with a warning, not lost to an OSError."""
    from gcann.metrics.registry import MetricWarning

    (tmp_path / measures.EVAL_CACHE).mkdir()
    record = {"checkpoint": "c.pt", "step": 10, "num_samples": 500, "metrics": {"kid": 0.02}}
    with pytest.warns(MetricWarning, match="cannot write the metrics cache"):
        got = measures.cached_eval(tmp_path, final_step=10, evaluate=lambda run_dir: record)
    assert got["metrics"] == {"kid": 0.02}


def test_cached_eval_order_and_cache(tmp_path):
    calls = []

    def evaluate(run_dir):
        calls.append(run_dir)
        return {"checkpoint": "c.pt", "step": 10, "num_samples": 500, "metrics": {"kid": 0.02, "kid_std": 0.003}}

    assert measures.cached_eval(tmp_path) is None
    got = measures.cached_eval(tmp_path, final_step=10, evaluate=evaluate)
    assert got["metrics"]["kid"] == 0.02 and len(calls) == 1 and (tmp_path / measures.EVAL_CACHE).is_file()
    again = measures.cached_eval(tmp_path, final_step=10, evaluate=evaluate)
    assert again["source"] == measures.EVAL_CACHE and len(calls) == 1
    assert measures.sampling_error("kid", again["metrics"]) == {"se": 0.003, "se_how": measures.SE_HOW["kid"]}
    assert measures.sampling_error("fd_domain", {"fd_domain_se": 0.5, "fd_domain_std": 9.0})["se"] == 0.5
    # a cache of another step is stale; the trainer's own evaluation comes next
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"step": 20, "eval": {"pairwise": 0.3}}) + "\n")
    own = measures.cached_eval(tmp_path, final_step=20, num_samples=64)
    assert own["metrics"] == {"pairwise": 0.3} and own["num_samples"] == 64 and own["step"] == 20


def test_an_evaluator_does_not_take_a_record_computed_otherwise(tmp_path):
    calls = []

    def run(n, names):
        def fn(run_dir):
            calls.append((n, names))
            return {"step": 10, "num_samples": n, "metrics": {m: 0.1 for m in names}}
        return measures.Evaluator(fn, names, n)

    measures.cached_eval(tmp_path, final_step=10, evaluate=run(100, ("pairwise",)))
    assert len(calls) == 1
    measures.cached_eval(tmp_path, final_step=10, evaluate=run(100, ("pairwise",)))           # the same: cached
    assert len(calls) == 1
    got = measures.cached_eval(tmp_path, final_step=10, evaluate=run(200, ("pairwise",)))     # other sample count
    assert len(calls) == 2 and got["num_samples"] == 200
    got = measures.cached_eval(tmp_path, final_step=10, evaluate=run(200, ("fd_domain",)))    # another metric
    assert len(calls) == 3 and "fd_domain" in got["metrics"]
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"step": 10, "eval": {"pairwise": 0.3}}) + "\n")
    (tmp_path / measures.EVAL_CACHE).unlink()
    got = measures.cached_eval(tmp_path, final_step=10, num_samples=200, evaluate=run(200, ("kid_domain",)))
    assert len(calls) == 4 and "kid_domain" in got["metrics"]                  # the trainer's row lacks it
