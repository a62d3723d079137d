"""The domain feature metrics against independent truth: scipy's sqrtm, a double-loop MMD², the registry."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from gcann.metrics import METRICS, EvalContext, compute_metrics
from gcann.metrics import domain as D


def _fd_scipy(a: np.ndarray, b: np.ndarray) -> float:
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_frechet_matches_scipy_sqrtm_and_is_zero_on_identical_sets():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(300, 8))
    b = rng.normal(loc=0.3, scale=1.5, size=(250, 8)) @ rng.normal(size=(8, 8))
    assert D.frechet_from_features(a, b) == pytest.approx(_fd_scipy(a, b), rel=1e-6)
    assert abs(D.frechet_from_features(a, a)) < 1e-8


def test_mmd2_unbiased_matches_a_double_loop():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(7, 4)), rng.normal(loc=0.5, size=(9, 4))
    d = x.shape[1]

    def k(u, v):
        return (float(u @ v) / d + 1.0) ** 3

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    assert D.mmd2_unbiased(torch.tensor(x), torch.tensor(y)) == pytest.approx(xx + yy - 2 * xy, rel=1e-10)


def test_kid_unbiased_mean_and_standard_error_over_subsets():
    rng = np.random.default_rng(2)
    g, r = torch.tensor(rng.normal(size=(40, 5))), torch.tensor(rng.normal(size=(50, 5)))
    mean, se = D.kid_unbiased(g, r, subsets=6, subset_size=20, seed=3)
    pick = np.random.default_rng(3)
    vals = [D.mmd2_unbiased(g[pick.choice(40, 20, replace=False)], r[pick.choice(50, 20, replace=False)])
            for _ in range(6)]
    assert mean == pytest.approx(np.mean(vals))
    assert se == pytest.approx(np.std(vals, ddof=1) * math.sqrt(20 / 40))


def test_the_standard_errors_match_the_spread_over_independent_generated_sets():
    """The reported sampling errors of kid_domain and fd_domain against the truth they estimate: the spread
    of the metric over independent generated sets of the same size (the real set fixed)."""
    rng = np.random.default_rng(7)
    real = torch.tensor(rng.normal(size=(400, 4)))
    kids, fds, kid_se, fd_se = [], [], [], []
    for k in range(40):
        gen = torch.tensor(rng.normal(loc=0.3, size=(200, 4)))
        mean, se = D.kid_unbiased(gen, real, subsets=20, subset_size=100, seed=k)
        kids.append(mean)
        kid_se.append(se)
        fds.append(D.frechet_from_features(gen, real))
        fd_se.append(D.fd_bootstrap_se(gen, real, draws=20, seed=k))
    for reported, values in ((kid_se, kids), (fd_se, fds)):
        ratio = np.median(reported) / np.std(values, ddof=1)
        assert 0.6 < ratio < 1.6, ratio


class _Labelled:
    def __init__(self, data, labels):
        self.data, self.labels = data, labels

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        return self.data[i]


def test_registered_metrics_cache_the_classifier(tmp_path, monkeypatch):
    assert {"fd_domain", "kid_domain"} <= set(METRICS)
    monkeypatch.setattr(D, "CLF_STEPS", 15)
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(300) % 3
    data = (torch.rand(300, 1, 28, 28, generator=g) * 0.2 + labels.view(-1, 1, 1, 1) * 0.3 - 0.5).float()
    ds = _Labelled(data, labels)

    def ctx(sample):
        return EvalContext(sample=sample, kind="image", reals=data, dataset_key="toy", num_samples=150,
                           options={"dataset": ds, "domain_dir": str(tmp_path), "kid_subsets": 5,
                                    "kid_subset_size": 50})

    real_like = compute_metrics(["fd_domain", "kid_domain"], ctx(lambda n: data[torch.randint(300, (n,), generator=g)]))
    files = list(tmp_path.glob("domain-toy-*.pt"))
    assert len(files) == 1 and 0.0 <= real_like["domain_accuracy"] <= 1.0
    stamp = files[0].stat().st_mtime_ns
    noise = compute_metrics(["fd_domain", "kid_domain"], ctx(lambda n: torch.rand(n, 1, 28, 28, generator=g) * 2 - 1))
    assert files[0].stat().st_mtime_ns == stamp                       # trained once, then read from the cache
    assert noise["fd_domain"] > real_like["fd_domain"] and noise["kid_domain"] > real_like["kid_domain"]
    assert real_like["fd_domain_se"] > 0 and real_like["kid_domain_se"] > 0


def test_unlabelled_data_is_unavailable_not_a_number():
    data = torch.zeros(10, 1, 28, 28)
    ctx = EvalContext(sample=lambda n: torch.zeros(n, 1, 28, 28), kind="image", reals=data, num_samples=130,
                      options={"dataset": object()})
    out = compute_metrics(["fd_domain"], ctx)
    assert out["fd_domain"] is None and "labels" in out["fd_domain_unavailable"]
