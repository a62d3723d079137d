"""Seed 002's toy-mode metrics on hand-made sample sets and against a per-sample loop written as the source's."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gcann.metrics import EvalContext, MetricError, compute_metrics
from gcann.metrics.toy import TOY_EVAL_SAMPLES, ToyModes, evaluate_toy, grid_modes, ring_modes, toy_mode_metrics

RING = ring_modes()
SIGMA = 0.01


def source_loop(samples: np.ndarray, modes: ToyModes) -> dict:
    """The source's evaluation, sample by sample: nearest mode, 3σ, add-one histogram, KL both ways."""
    means, stds, probs = modes.means.numpy(), modes.std.numpy(), modes.weights.numpy()
    k = len(means)
    assigned = [[] for _ in range(k)]
    for s in samples:
        dists = [np.linalg.norm(s - m) for m in means]
        assigned[int(np.argmin(dists))].append(s)
    p_fake = (np.array([len(a) for a in assigned]) + 1) / (len(samples) + k)
    kl = float(np.sum(probs * np.log(probs / p_fake)))
    rkl = float(np.sum(p_fake * np.log(p_fake / probs)))
    hq = [sum(np.linalg.norm(s - means[j]) <= 3 * stds[j] for s in assigned[j]) for j in range(k)]
    return {"modes": sum(h >= 1 for h in hq), "hqs": sum(hq) / len(samples), "kl": kl, "rkl": rkl}


def test_ring_and_grid_are_the_sources():
    assert RING.k == 8 and torch.allclose(RING.std, torch.full((8,), SIGMA, dtype=torch.float64))
    assert torch.allclose(RING.means[0], torch.tensor([math.cos(math.pi / 4), math.sin(math.pi / 4)], dtype=torch.float64))
    assert torch.allclose(RING.means[7], torch.tensor([1.0, 0.0], dtype=torch.float64), atol=1e-12)  # i = 8
    grid = grid_modes()
    assert grid.k == 25 and torch.allclose(grid.std, torch.full((25,), 0.05, dtype=torch.float64))
    assert {tuple(m) for m in grid.means.tolist()} == {(-4.0 + 2 * i, -4.0 + 2 * j) for i in range(5) for j in range(5)}
    assert grid.means[1].tolist() == [-2.0, -4.0]   # i runs fastest, as the source lists them
    assert TOY_EVAL_SAMPLES == 25_000


def test_hand_made_sets():
    m = RING.means
    # every mode hit exactly at its mean: all covered, all high quality, histogram uniform
    exact = m.repeat(10, 1)
    r = toy_mode_metrics(exact, RING)
    assert int(r["modes_covered"]) == 8 and bool(r["success"]) and not bool(r["failure"])
    assert float(r["hq_ratio"]) == 1.0 and float(r["kl"]) == pytest.approx(0.0, abs=1e-15)
    # 3σ boundary: a sample at exactly 3σ counts, just beyond does not
    radial = m[0] / m[0].norm()
    x = torch.stack([m[0] + 3 * SIGMA * radial * (1 - 1e-9), m[0] + 3 * SIGMA * radial * (1 + 1e-6)])
    r = toy_mode_metrics(x, RING)
    assert float(r["hq_ratio"]) == 0.5 and int(r["modes_covered"]) == 1
    # collapse onto one mode: 1 mode, KL values from the smoothed histogram by hand
    n = 100
    r = toy_mode_metrics(m[2].repeat(n, 1), RING)
    p_gen = torch.full((8,), 1 / (n + 8), dtype=torch.float64)
    p_gen[2] = (n + 1) / (n + 8)
    assert int(r["modes_covered"]) == 1 and not bool(r["success"]) and not bool(r["failure"])
    assert float(r["kl"]) == pytest.approx(float((0.125 * (0.125 / p_gen).log()).sum()), rel=1e-12)
    assert float(r["reverse_kl"]) == pytest.approx(float((p_gen * (p_gen / 0.125).log()).sum()), rel=1e-12)
    # all samples at the centre: no high-quality sample, failure; ties go to the first mode
    r = toy_mode_metrics(torch.zeros(50, 2), RING)
    assert bool(r["failure"]) and float(r["hq_ratio"]) == 0.0 and int(r["counts"][0]) == 50


@settings(max_examples=20, deadline=None, derandomize=True, database=None)
@given(st.integers(0, 10_000), st.sampled_from(["ring", "grid"]), st.floats(0.5, 40.0))
def test_equal_to_the_source_loop(seed, which, spread):
    modes = RING if which == "ring" else grid_modes()
    g = torch.Generator().manual_seed(seed)
    x = modes.sample(300, g)
    x = x + torch.randn(x.shape, generator=g, dtype=torch.float64) * modes.std[0] * spread / 10
    keep = torch.rand(len(modes.means), generator=g) < 0.6          # drop some modes entirely
    x = x[keep[torch.cdist(x, modes.means).argmin(1)]] if keep.any() else x[:5]
    ours = toy_mode_metrics(x.float(), modes)
    ref = source_loop(x.float().double().numpy(), modes)
    assert int(ours["modes_covered"]) == ref["modes"]
    assert float(ours["hq_ratio"]) == pytest.approx(ref["hqs"], abs=1e-12)
    assert float(ours["kl"]) == pytest.approx(ref["kl"], rel=1e-9)
    assert float(ours["reverse_kl"]) == pytest.approx(ref["rkl"], rel=1e-9)


def test_batched_seeds_equal_one_at_a_time():
    g = torch.Generator().manual_seed(1)
    x = torch.stack([RING.sample(500, g), RING.means[3].repeat(500, 1), torch.randn(500, 2, generator=g, dtype=torch.float64)])
    x = x.reshape(3, 1, 500, 2).expand(3, 2, 500, 2)
    batched = toy_mode_metrics(x, RING)
    assert batched["kl"].shape == (3, 2) and batched["counts"].shape == (3, 2, 8)
    for s in range(3):
        alone = toy_mode_metrics(x[s, 0], RING)
        for key, v in alone.items():
            assert torch.equal(batched[key][s, 1], v), key


def test_nonfinite_samples_raise_or_are_flagged():
    x = RING.means.repeat(2, 1).clone()
    x[0, 0] = float("nan")
    with pytest.raises(MetricError, match="1 toy samples hold NaN"):
        toy_mode_metrics(x, RING)
    r = toy_mode_metrics(x, RING, nonfinite="flag")
    assert int(r["nonfinite"]) == 1 and int(r["counts"].sum()) == 15 and float(r["hq_ratio"]) == 15 / 16
    bad = torch.full((1, 4, 2), float("inf"))
    r = toy_mode_metrics(bad, RING, nonfinite="flag")
    assert bool(r["failure"][0]) and int(r["modes_covered"][0]) == 0
    for wrong in (torch.zeros(5, 3), torch.zeros(0, 2), torch.zeros(5, 2, dtype=torch.long)):
        with pytest.raises(MetricError):
            toy_mode_metrics(wrong, RING)


def test_evaluate_and_the_registered_metric_draw_25000_samples():
    seen = []

    def sample(n):
        seen.append(n)
        return RING.sample(n, torch.Generator().manual_seed(0))

    r = evaluate_toy(sample, RING)
    assert seen == [25_000] and bool(r["success"])
    ctx = EvalContext(sample=sample, kind="toy2d", options={"toy_modes": RING, "batch_size": 25_000})
    out = compute_metrics(["modes"], ctx)
    assert out["modes_covered"] == 8.0 and out["success"] == 1.0 and 0.98 < out["hq_ratio"] <= 1.0
