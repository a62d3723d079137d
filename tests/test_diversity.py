"""The diversity loss penalises alike samples, stays bounded and matches a naive reference."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gcann.controller import GCANNConfig
from gcann.diversity import (
    diversity_loss,
    diversity_term,
    mean_pairwise_distance,
    pairwise_distances,
    paper_diversity_loss,
)

METRICS = ("l2", "cosine")
PROPERTY = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def batches(draw: st.DrawFn) -> torch.Tensor:
    b = draw(st.integers(2, 8))
    d = draw(st.integers(1, 16))
    values = draw(st.lists(st.floats(-100, 100), min_size=b * d, max_size=b * d))
    x = torch.tensor(values, dtype=torch.float64).reshape(b, d)
    if draw(st.booleans()):  # duplicate some rows
        x[1] = x[0]
    return x


def naive_distance(a: torch.Tensor, b: torch.Tensor, metric: str) -> float:
    a, b = a.flatten().tolist(), b.flatten().tolist()
    if metric == "l2":
        return math.sqrt(sum((u - v) ** 2 for u, v in zip(a, b)) / len(a))
    dot = sum(u * v for u, v in zip(a, b))
    na, nb = math.sqrt(sum(u * u for u in a)), math.sqrt(sum(v * v for v in b))
    return 1 - dot / (max(na, 1e-8) * max(nb, 1e-8))


@pytest.mark.parametrize("metric", METRICS)
def test_identical_samples_get_the_top_end(metric: str) -> None:
    x = torch.randn(1, 3, 8, 8).expand(6, 3, 8, 8)
    assert diversity_loss(x, metric=metric, bottomend=0.01, topend=5.0).item() == pytest.approx(5.0, abs=1e-4)


@pytest.mark.parametrize("metric", METRICS)
def test_spread_samples_get_a_smaller_penalty(metric: str) -> None:
    g = torch.Generator().manual_seed(0)
    collapsed = torch.randn(1, 64, generator=g) + 0.01 * torch.randn(16, 64, generator=g)
    spread = torch.randn(16, 64, generator=g)
    assert diversity_loss(spread, metric=metric) < diversity_loss(collapsed, metric=metric) < 3.0


@PROPERTY
@given(batches(), st.sampled_from(METRICS), st.floats(0.0, 1.0), st.floats(0.01, 10.0), st.floats(0.01, 10.0))
def test_bounds_hold(x: torch.Tensor, metric: str, bottom: float, width: float, scale: float) -> None:
    top = bottom + width
    loss = diversity_loss(x, metric=metric, bottomend=bottom, topend=top, scale=scale).item()
    assert bottom <= loss <= top


@PROPERTY
@given(batches(), st.sampled_from(METRICS))
def test_matches_a_naive_double_loop(x: torch.Tensor, metric: str) -> None:
    dist = pairwise_distances(x, metric)
    b = x.shape[0]
    ref = [[naive_distance(x[i], x[j], metric) for j in range(b)] for i in range(b)]
    scale = 1 + x.abs().max().item()  # Gram-matrix cancellation grows with the magnitude
    for i in range(b):
        for j in range(b):
            if i != j:
                assert dist[i, j].item() == pytest.approx(ref[i][j], abs=1e-5 * scale)
    mean_ref = sum(ref[i][j] for i in range(b) for j in range(b) if i != j) / (b * (b - 1))
    assert mean_pairwise_distance(x, metric).item() == pytest.approx(mean_ref, abs=1e-5 * scale)


@pytest.mark.parametrize("metric", METRICS)
def test_gradient_step_pushes_samples_apart(metric: str) -> None:
    g = torch.Generator().manual_seed(1)
    x = (torch.randn(1, 3, 16, 16, generator=g) + 0.05 * torch.randn(8, 3, 16, 16, generator=g)).requires_grad_()
    before = mean_pairwise_distance(x.detach(), metric)
    diversity_loss(x, metric=metric).backward()
    assert torch.isfinite(x.grad).all()
    after = mean_pairwise_distance(x.detach() - 0.1 * x.grad, metric)
    assert after > before


def test_gradient_is_finite_for_identical_samples() -> None:
    x = torch.ones(4, 10, requires_grad=True)
    diversity_loss(x).backward()
    assert torch.isfinite(x.grad).all()


def test_diversity_term_uses_the_config() -> None:
    x = torch.zeros(4, 5)
    config = GCANNConfig(diversity_weight=2.0, topend_diversity_loss=5.0, bottomend_diversity_loss=0.01)
    assert diversity_term(x, config).item() == pytest.approx(10.0, abs=1e-4)


def test_tanh_clamp_removes_the_rounding_above_topend() -> None:
    """For identical samples and a huge scale u = 1 exactly, and in float64 0.288 + (0.824 - 0.288)
    rounds to one unit above 0.824: only the clamp keeps the penalty at topend."""
    bottom, top = 0.288, 0.824
    assert bottom + (top - bottom) > top
    x = torch.zeros(4, 6, dtype=torch.float64)
    assert diversity_loss(x, bottomend=bottom, topend=top, scale=1e30).item() == top


def test_paper_scaling_matches_its_formula() -> None:
    """Two 1-D samples 0 and 0.5: d = 0.5 (RMS distance), u = 1 - tanh(0.5)."""
    x = torch.tensor([[0.0], [0.5]], dtype=torch.float64)
    u = 1 - math.tanh(0.5)
    for weight, bottom, top in ((1.0, 0.001, 3.0), (2.5, 0.01, 5.0), (0.0, 0.2, 1.0)):
        expected = bottom + u * weight / (1 - math.exp(-top))
        got = paper_diversity_loss(x, bottomend=bottom, topend=top, weight=weight).item()
        assert got == pytest.approx(expected, rel=1e-10)


def test_paper_scaling_is_clamped_at_topend() -> None:
    """Weight 10 on identical samples: the formula gives 0.001 + 10 / (1 - e^-3) ≈ 10.5 > topend = 3."""
    x = torch.ones(5, 8, dtype=torch.float64)
    assert 0.001 + 10 / (1 - math.exp(-3.0)) > 3.0
    assert paper_diversity_loss(x, bottomend=0.001, topend=3.0, weight=10.0).item() == 3.0


@PROPERTY
@given(batches(), st.sampled_from(METRICS), st.floats(0.0, 1.0), st.floats(0.01, 10.0), st.floats(0.0, 100.0),
       st.floats(0.01, 10.0))
def test_paper_bounds_hold(x: torch.Tensor, metric: str, bottom: float, width: float, weight: float,
                           scale: float) -> None:
    top = bottom + width
    loss = paper_diversity_loss(x, metric=metric, bottomend=bottom, topend=top, weight=weight, scale=scale).item()
    assert bottom <= loss <= top


@pytest.mark.parametrize("metric", METRICS)
def test_paper_scaling_penalises_alike_samples_and_pushes_them_apart(metric: str) -> None:
    g = torch.Generator().manual_seed(2)
    collapsed = torch.randn(1, 64, generator=g) + 0.01 * torch.randn(16, 64, generator=g)
    spread = torch.randn(16, 64, generator=g)
    assert paper_diversity_loss(spread, metric=metric) < paper_diversity_loss(collapsed, metric=metric)
    x = collapsed.clone().requires_grad_()
    paper_diversity_loss(x, metric=metric).backward()
    assert torch.isfinite(x.grad).all()
    before = mean_pairwise_distance(collapsed, metric)
    assert mean_pairwise_distance(collapsed - 0.1 * x.grad, metric) > before


def test_diversity_term_honours_the_scaling_switch() -> None:
    """Identical samples (u = 1 - tanh(1e-6), the distance floor): tanh mode gives weight·topend,
    paper mode bottomend + weight / (1 - e^-topend)."""
    x = torch.zeros(4, 5, dtype=torch.float64)
    kw = dict(diversity_weight=2.0, topend_diversity_loss=5.0, bottomend_diversity_loss=0.01)
    assert diversity_term(x, GCANNConfig(**kw)).item() == pytest.approx(10.0, abs=1e-5)
    paper = diversity_term(x, GCANNConfig(**kw, diversity_scaling="paper")).item()
    assert paper == pytest.approx(0.01 + 2.0 / (1 - math.exp(-5.0)), abs=1e-5)


def test_errors() -> None:
    with pytest.raises(ValueError, match="at least 2 samples"):
        pairwise_distances(torch.zeros(1, 4))
    with pytest.raises(ValueError, match="unknown diversity metric"):
        pairwise_distances(torch.zeros(3, 4), "manhattan")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="bottomend < topend"):
        diversity_loss(torch.zeros(3, 4), bottomend=1.0, topend=1.0)
    with pytest.raises(ValueError, match="scale must be > 0"):
        diversity_loss(torch.zeros(3, 4), scale=0.0)
    with pytest.raises(ValueError, match="weight must be"):
        paper_diversity_loss(torch.zeros(3, 4), weight=-1.0)
    with pytest.raises(ValueError, match="bottomend < topend"):
        paper_diversity_loss(torch.zeros(3, 4), bottomend=2.0, topend=1.0)
    with pytest.raises(ValueError, match="GCANNConfig.diversity_scaling "):
        GCANNConfig(diversity_scaling="sigmoid")
