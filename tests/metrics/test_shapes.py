"""3D metrics against brute-force loops: surfaces, distance fields, Chamfer, COV, MMD, 1-NNA, IoU diversity."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gcann.metrics import EvalContext, MetricError, compute_metrics
from gcann.metrics.diversity import iou_distances
from gcann.metrics.shapes3d import (
    _separable_field,
    chamfer_distance,
    chamfer_matrices,
    coverage_mmd,
    distance_field,
    one_nn_accuracy,
    pairwise_chamfer,
    surface_mask,
    surface_points,
)

PROPERTY = settings(max_examples=30, deadline=None, derandomize=True, database=None)


def blobs(n: int, r: int, seed: int) -> torch.Tensor:
    """Random balls and boxes in an r³ grid, (n, 1, r, r, r) in {0, 1}."""
    g = torch.Generator().manual_seed(seed)
    ax = torch.arange(r) + 0.5
    x, y, z = torch.meshgrid(ax, ax, ax, indexing="ij")
    out = torch.zeros(n, 1, r, r, r)
    for k in range(n):
        c = torch.rand(3, generator=g) * r * 0.5 + r * 0.25
        s = float(torch.rand((), generator=g)) * r * 0.25 + 1.5
        if k % 2:
            out[k, 0] = ((x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2 <= s * s).float()
        else:
            out[k, 0] = (((x - c[0]).abs() <= s) & ((y - c[1]).abs() <= s / 2) & ((z - c[2]).abs() <= s)).float()
    return out


def cd_loop(a: np.ndarray, b: np.ndarray) -> float:
    """Chamfer distance by explicit loops over points."""
    ab = np.mean([min(float(((p - q) ** 2).sum()) for q in b) for p in a])
    ba = np.mean([min(float(((p - q) ** 2).sum()) for p in a) for q in b])
    return ab + ba


def test_surface_is_occupied_cells_with_an_empty_neighbour():
    vox = (torch.rand(3, 1, 6, 6, 6, generator=torch.Generator().manual_seed(0)) > 0.4)
    surf = surface_mask(vox[:, 0])
    occ = vox[:, 0].numpy()
    for n, i, j, k in itertools.product(range(3), range(6), range(6), range(6)):
        nb = [(i + 1, j, k), (i - 1, j, k), (i, j + 1, k), (i, j - 1, k), (i, j, k + 1), (i, j, k - 1)]
        empty_nb = any(not (0 <= a < 6 and 0 <= b < 6 and 0 <= c < 6) or not occ[n, a, b, c] for a, b, c in nb)
        assert bool(surf[n, i, j, k]) == bool(occ[n, i, j, k] and empty_nb)
    solid = torch.ones(1, 5, 5, 5, dtype=torch.bool)
    assert int(surface_mask(solid).sum()) == 5 ** 3 - 3 ** 3


def test_surface_points_cover_every_surface_voxel_evenly():
    vox = blobs(4, 10, 1)
    idx = surface_points(vox, 2048)
    surf = surface_mask(vox[:, 0] > 0.5)
    for k in range(4):
        cells = {tuple(c) for c in surf[k].nonzero().tolist()}
        pts = [tuple(p) for p in idx[k].tolist()]
        assert set(pts) <= cells
        if len(cells) <= 2048:
            counts = np.array([pts.count(c) for c in cells])
            assert counts.min() >= 2048 // len(cells) and counts.max() <= -(-2048 // len(cells))
    with pytest.raises(MetricError, match="1 of 2 shapes are empty"):
        surface_points(torch.cat([vox[:1], torch.zeros(1, 1, 10, 10, 10)]))
    with pytest.raises(MetricError, match=r"values must be in \[0, 1\]"):
        surface_points(vox * 2)
    with pytest.raises(MetricError, match="NaN"):
        surface_points(torch.full((1, 1, 4, 4, 4), float("nan")))
    with pytest.raises(MetricError, match="shape"):
        surface_points(torch.zeros(2, 4, 4, 5))


@PROPERTY
@given(st.integers(2, 9), st.floats(0.01, 0.5), st.integers(0, 1000))
def test_distance_fields_are_exact(r, density, seed):
    m = torch.rand(2, r, r, r, generator=torch.Generator().manual_seed(seed)) < density
    m[0, 0, 0, 0] = True
    pts = [np.argwhere(x.numpy()) for x in m]
    grid = np.stack(np.meshgrid(*[np.arange(r)] * 3, indexing="ij"), -1).reshape(-1, 3)
    for f in (distance_field(m), _separable_field(m)):                 # CPU (scipy) and GPU (separable) forms
        for k in range(2):
            if len(pts[k]) == 0:
                assert torch.isinf(f[k]).all()
                continue
            brute = ((grid[:, None, :] - pts[k][None]) ** 2).sum(-1).min(1).reshape(r, r, r)
            assert np.array_equal(f[k].numpy(), brute.astype(np.float32))


def test_chamfer_forms_equal_a_loop():
    r = 10
    vox = blobs(7, r, 2)
    idx = surface_points(vox, 60, seed=3)
    pts = (idx.double() + 0.5) / r
    gen, ref = idx[:3], idx[3:]
    m = chamfer_matrices(gen, ref, r, self_distances=True)
    loop = lambda a, b: torch.tensor([[cd_loop(x.numpy(), y.numpy()) for y in b] for x in a])  # noqa: E731
    want_gr = loop(pts[:3], pts[3:])
    assert torch.allclose(m["gr"], want_gr, rtol=1e-5, atol=0)
    assert torch.allclose(m["gg"], loop(pts[:3], pts[:3]), rtol=1e-5, atol=1e-12)
    assert torch.allclose(m["rr"], loop(pts[3:], pts[3:]), rtol=1e-5, atol=1e-12)
    assert torch.allclose(pairwise_chamfer(pts[:3], pts[3:]), want_gr, rtol=1e-9)
    assert torch.allclose(chamfer_distance(pts[:3], pts[3:6]), want_gr.diagonal(), rtol=1e-9)
    assert float(chamfer_distance(pts[0], pts[0])) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(MetricError, match="integer cell indices"):
        chamfer_matrices(pts[:3], None, r)


def cov_mmd_loop(d: np.ndarray) -> tuple[float, float, float]:
    ng, nr = d.shape
    matched = set()
    for i in range(ng):
        best = min(range(nr), key=lambda j: (d[i, j], j))
        matched.add(best)
    mmd = np.mean([min(d[i, j] for i in range(ng)) for j in range(nr)])
    smp = np.mean([min(d[i, j] for j in range(nr)) for i in range(ng)])
    return len(matched) / nr, mmd, smp


def nna_loop(d_gr, d_gg, d_rr) -> float:
    ng, nr = d_gr.shape
    items = [("r", j) for j in range(nr)] + [("g", i) for i in range(ng)]

    def dist(a, b):
        (sa, ia), (sb, ib) = a, b
        if sa == "r" and sb == "r":
            return d_rr[ia, ib]
        if sa == "g" and sb == "g":
            return d_gg[ia, ib]
        return d_gr[ib, ia] if sa == "r" else d_gr[ia, ib]

    right = 0
    for u, a in enumerate(items):
        nearest = min((v for v in range(len(items)) if v != u), key=lambda v: (dist(a, items[v]), v))
        right += items[nearest][0] == a[0]
    return right / len(items)


@PROPERTY
@given(st.integers(1, 7), st.integers(1, 7), st.integers(0, 10_000))
def test_cov_mmd_1nna_equal_loops(ng, nr, seed):
    g = torch.Generator().manual_seed(seed)
    pg, pr = torch.rand(ng, 3, generator=g), torch.rand(nr, 3, generator=g)
    d = lambda a, b: torch.cdist(a, b).double()  # noqa: E731  (a metric, so 1-NNA is well posed)
    d_gr, d_gg, d_rr = d(pg, pr), d(pg, pg), d(pr, pr)
    cov, mmd, smp = cov_mmd_loop(d_gr.numpy())
    got = coverage_mmd(d_gr)
    assert got["cov"] == pytest.approx(cov) and got["mmd"] == pytest.approx(mmd) and got["chamfer"] == pytest.approx(smp)
    if ng + nr >= 3:
        assert one_nn_accuracy(d_gr, d_gg, d_rr) == pytest.approx(nna_loop(d_gr.numpy(), d_gg.numpy(), d_rr.numpy()))


def voxel_ctx(gen: torch.Tensor, real: torch.Tensor) -> EvalContext:
    it = iter([gen])
    return EvalContext(sample=lambda n: next(it)[:n], kind="voxel", reals=real, num_samples=len(gen),
                       options={"batch_size": len(gen)})


def test_registered_3d_metrics_judge_collapse_and_copies():
    real = blobs(12, 12, 5)
    copy = compute_metrics(["chamfer", "cov", "mmd", "1nna"], voxel_ctx(real.clone(), real))
    assert copy["chamfer"] == 0.0 and copy["mmd"] == 0.0 and copy["cov"] == 1.0
    assert copy["1nna"] == 0.0            # every sample's nearest is its twin in the other set (refs first)
    one = blobs(1, 12, 99)                # a collapsed generator: one shape, not a training one
    collapsed = compute_metrics(["chamfer", "cov", "mmd", "1nna"], voxel_ctx(one.repeat(12, 1, 1, 1, 1), real))
    assert collapsed["cov"] == pytest.approx(1 / 12)
    assert collapsed["1nna"] >= 0.9       # generated samples all find their copies
    assert collapsed["mmd"] > copy["mmd"]
    # values from the registered path equal the loop on the same clouds
    idx_g = surface_points(real, 2048, seed=1)
    idx_r = surface_points(real, 2048, seed=2)
    m = chamfer_matrices(idx_g, idx_r, 12)
    assert copy["cov"] == coverage_mmd(m["gr"])["cov"]


def test_empty_generated_shapes_make_the_3d_metrics_unavailable():
    real = blobs(4, 8, 6)
    gen = real.clone()
    gen[2] = 0
    out = compute_metrics(["chamfer", "mmd"], voxel_ctx(gen, real))
    assert out["chamfer"] is None and "1 of 4 shapes are empty" in out["chamfer_unavailable"]


def iou_loop(a: np.ndarray, b: np.ndarray) -> float:
    inter, union = np.logical_and(a, b).sum(), np.logical_or(a, b).sum()
    return 0.0 if union == 0 else 1 - inter / union


def test_iou_distances_equal_a_loop():
    occ = torch.rand(6, 5, 5, 5, generator=torch.Generator().manual_seed(7)) > 0.6
    occ[5] = False
    occ[4] = occ[3]
    d = iou_distances(occ)
    o = occ.numpy()
    for i, j in itertools.product(range(6), range(6)):
        assert float(d[i, j]) == pytest.approx(iou_loop(o[i], o[j]), abs=1e-12)
    gen = torch.cat([occ.float(), occ.float()])[:, None]
    ctx = EvalContext(sample=lambda n: gen[:n], kind="voxel", num_samples=12, options={"batch_size": 12})
    out = compute_metrics(["pairwise_iou", "pairwise"], ctx)
    dd = iou_distances(gen[:, 0] > 0.5)
    assert out["pairwise_iou"] == pytest.approx(float((dd.sum() - dd.diagonal().sum()) / (12 * 11)))
