"""FID, KID, IS and the Inception pipeline against torchmetrics, torch-fidelity, scipy and brute-force loops.

The full TF-Inception network is slow on a CPU, so the statistics are tested
on a small stand-in network (same interface: uint8 images in, features and
logits out); one test runs the real network on two images and compares it
with torch-fidelity's own network loaded with the same weights.
"""
from __future__ import annotations

import io
import json
import math
import warnings

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from gcann.metrics import EvalContext, MetricError, MetricUnavailable, compute_metrics
from gcann.metrics import fid as fidmod
from gcann.metrics.fid import fid_from_features, fid_statistics, inception_score, kid_from_features
from gcann.metrics.inception import (
    InceptionV3,
    _tf_graph_state,
    default_fid_weights,
    fid_weights_path,
    inception_features,
    is_weights_path,
    to_uint8,
)
from gcann.metrics.registry import METRICS
from tests.support.inception_stand_in import FeatureOnly, StandIn

WEIGHTS = default_fid_weights()
needs_weights = pytest.mark.skipif(not WEIGHTS.is_file(), reason=f"no FID weights at {WEIGHTS}")


def images(n: int, seed: int, size: int = 12) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)
    return base


# ---------------------------------------------------------------------------- #
# images in
# ---------------------------------------------------------------------------- #
def test_to_uint8_rounds_both_ranges_and_replicates_gray():
    x = torch.tensor([-1.0, -0.5, 0.0, 0.999, 1.0]).reshape(1, 1, 1, 5)
    out = to_uint8(x, (-1, 1))
    assert out.shape == (1, 3, 1, 5)
    assert out[0, :, 0].tolist() == [[0, 64, 128, 255, 255]] * 3      # round((x+1)*127.5)
    y = torch.tensor([0.0, 0.5, 1 / 255, 1.0]).reshape(1, 1, 1, 4).expand(1, 3, 1, 4)
    assert to_uint8(y, (0, 1))[0, 0, 0].tolist() == [0, 128, 1, 255]
    u = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    assert torch.equal(to_uint8(u), u)


@pytest.mark.parametrize("x, rng, msg", [
    (torch.zeros(2, 3, 4), (-1, 1), "shape"),
    (torch.zeros(2, 2, 4, 4), (-1, 1), "C = 1 or 3"),
    (torch.zeros(2, 3, 4, 4), None, "need their range"),
    (torch.zeros(2, 3, 4, 4), (0, 255), "must be (0, 1) or (-1, 1)"),
    (torch.full((2, 3, 4, 4), 1.5), (-1, 1), "declared in [-1, 1]"),
    (torch.full((2, 3, 4, 4), -0.5), (0, 1), "declared in [0, 1]"),
    (torch.full((2, 3, 4, 4), float("nan")), (0, 1), "NaN"),
    (torch.zeros(2, 3, 4, 4, dtype=torch.int32), None, "uint8 or floating"),
    (torch.zeros(2, 3, 4, 4, dtype=torch.uint8), (-1, 1), "uint8 images were declared"),
])
def test_to_uint8_rejects_bad_images(x, rng, msg):
    with pytest.raises(MetricError, match=msg.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        to_uint8(x, rng)


# ---------------------------------------------------------------------------- #
# statistics against torchmetrics and scipy
# ---------------------------------------------------------------------------- #
def scipy_fid(f1: np.ndarray, f2: np.ndarray) -> float:
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.atleast_2d(np.cov(f1, rowvar=False)), np.atleast_2d(np.cov(f2, rowvar=False))
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_fid_equals_torchmetrics_and_scipy_on_the_same_images():
    from torchmetrics.image.fid import FrechetInceptionDistance

    net = StandIn()
    real, fake = images(40, 1), images(30, 2)
    fake[:, 0] = fake[:, 0] // 2                         # a visibly different distribution
    with torch.no_grad():
        fr, ff = net.features(real), net.features(fake)
    ours = fid_from_features(ff, fr)
    tm = FrechetInceptionDistance(feature=FeatureOnly(net), reset_real_features=False)
    tm.update(real, real=True)
    tm.update(fake, real=False)
    ref = float(tm.compute())
    assert ours == pytest.approx(ref, rel=1e-3)
    assert ours == pytest.approx(scipy_fid(ff.double().numpy(), fr.double().numpy()), rel=1e-6)
    assert ours > 0.01


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(st.integers(5, 30), st.integers(1, 4), st.floats(-2, 2), st.floats(0.3, 3))
def test_fid_of_gaussian_samples_matches_scipy(n_extra, d, shift, scale):
    g = torch.Generator().manual_seed(n_extra * 7 + d)
    a = torch.randn(d + n_extra, d, generator=g, dtype=torch.float64)
    b = torch.randn(d + n_extra + 3, d, generator=g, dtype=torch.float64) * scale + shift
    assert fid_from_features(a, b) == pytest.approx(scipy_fid(a.numpy(), b.numpy()), rel=1e-6, abs=1e-9)
    assert fid_from_features(a, a) == pytest.approx(0.0, abs=1e-7)


def test_fid_refuses_fewer_samples_than_feature_dimensions():
    with pytest.raises(MetricError, match="at least 8 samples"):
        fid_statistics(torch.randn(7, 8))
    with pytest.raises(MetricError, match="NaN"):
        fid_statistics(torch.full((9, 8), float("nan")))


def kid_brute(f1: np.ndarray, f2: np.ndarray) -> float:
    """Unbiased MMD² with k(x, y) = (x·y / d + 1)³, written out as loops over pairs."""
    m, n, d = len(f1), len(f2), f1.shape[1]
    k = lambda x, y: (float(x @ y) / d + 1) ** 3  # noqa: E731
    xx = sum(k(f1[i], f1[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(f2[i], f2[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(f1[i], f2[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_kid_equals_torchmetrics_and_a_loop_when_the_subset_is_the_whole_set():
    from torchmetrics.image.kid import KernelInceptionDistance

    net = StandIn()
    real, fake = images(25, 3), images(25, 4) // 2
    with torch.no_grad():
        fr, ff = net.features(real).double(), net.features(fake).double()
    mean, std = kid_from_features(ff, fr, subsets=3, subset_size=25)
    assert std == pytest.approx(0.0, abs=1e-12)           # every subset is the whole set
    assert mean == pytest.approx(kid_brute(ff.numpy(), fr.numpy()), rel=1e-9)
    tm = KernelInceptionDistance(feature=FeatureOnly(net), subsets=1, subset_size=25)
    tm.update(real, real=True)
    tm.update(fake, real=False)
    assert mean == pytest.approx(float(tm.compute()[0]), rel=1e-3)


@settings(max_examples=25, deadline=None)
@given(n1=st.integers(2, 40), n2=st.integers(2, 40), d=st.integers(1, 12), subsets=st.integers(1, 6),
       subset_size=st.integers(2, 50), seed=st.integers(0, 2**31 - 1), shift=st.floats(-2, 2))
def test_kid_equals_torch_fidelity_on_the_same_features(n1, n2, d, subsets, subset_size, seed, shift):
    """The project's KID estimator against torch-fidelity's ``kid_features_to_metric`` (its own subset draws,
    kernel and MMD², in numpy): the same subsets, so the same mean and std up to summation order."""
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n1, d, generator=g, dtype=torch.float64)
    b = torch.randn(n2, d, generator=g, dtype=torch.float64) * 1.3 + shift
    mean, std = kid_from_features(a, b, subsets=subsets, subset_size=subset_size, seed=seed)
    ref = kid_features_to_metric(a, b, kid_subsets=subsets, kid_subset_size=min(subset_size, n1, n2), rng_seed=seed,
                                 verbose=False, kid_kernel="poly", kid_kernel_poly_degree=3,
                                 kid_kernel_poly_gamma=None, kid_kernel_poly_coef0=1)
    scale = max(1.0, abs(ref[KEY_METRIC_KID_MEAN]))
    assert mean == pytest.approx(ref[KEY_METRIC_KID_MEAN], rel=1e-9, abs=1e-12 * scale)
    assert std == pytest.approx(ref[KEY_METRIC_KID_STD], rel=1e-7, abs=1e-12 * scale)


def test_kid_subset_is_capped_by_the_smaller_set():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(12, 3, generator=g), torch.randn(30, 3, generator=g) + 1
    mean, _ = kid_from_features(a, b, subsets=50, subset_size=1000)
    assert mean > 0.1
    with pytest.raises(MetricError, match="at least 2"):
        kid_from_features(a[:1], b)


@pytest.mark.parametrize("splits", [1, 3, 10])
def test_inception_score_equals_torch_fidelity_on_the_same_logits(splits):
    from torch_fidelity.metric_isc import isc_features_to_metric

    net = StandIn()
    with torch.no_grad():
        _, logits = net(images(50, 5))
    ours = inception_score(logits, splits=splits)
    ref = isc_features_to_metric(logits, splits=splits, shuffle=True, rng_seed=2020)
    assert ours[0] == pytest.approx(ref["inception_score_mean"], rel=1e-9)
    assert ours[1] == pytest.approx(ref["inception_score_std"], rel=1e-6, abs=1e-12)


def test_inception_score_closed_forms_and_torchmetrics():
    from torchmetrics.image.inception import InceptionScore

    # one-hot predictions spread evenly over C classes: IS = C; identical predictions: IS = 1
    c = 5
    confident = torch.eye(c).repeat(4, 1) * 60.0
    assert inception_score(confident, splits=1)[0] == pytest.approx(c, rel=1e-6)
    assert inception_score(torch.zeros(20, c), splits=1)[0] == pytest.approx(1.0)
    net = StandIn()
    x = images(40, 6)
    with torch.no_grad():
        _, logits = net(x)

    class Logits(nn.Module):
        def forward(self, x):
            return net(x)[1]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tm = InceptionScore(feature=Logits(), splits=1)
        tm.update(x)
        ref = float(tm.compute()[0])
    assert inception_score(logits, splits=1)[0] == pytest.approx(ref, rel=1e-4)


# ---------------------------------------------------------------------------- #
# the network
# ---------------------------------------------------------------------------- #
@needs_weights
def test_network_equals_torch_fidelity_and_the_torchscript_on_the_same_weights():
    """Our fused channels-last network, torch-fidelity's network and the TorchScript file agree."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    state, has_head = _tf_graph_state(WEIGHTS)
    assert not has_head
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    lib = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=buf)
    ours = InceptionV3(state, has_head, fused=True)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (2, 3, 32, 32), generator=g, dtype=torch.uint8)
    with torch.inference_mode():
        ref = lib(x)[0]
        got = inception_features(ours, x)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            script = torch.jit.load(str(WEIGHTS), map_location="cpu").eval()
        resized = interpolate_bilinear_2d_like_tensorflow1x(x.float(), size=(299, 299), align_corners=False)
        direct = script((resized - 128) / 128)
    assert got.shape == (2, 2048)
    assert torch.allclose(got, ref, rtol=1e-4, atol=1e-4)
    assert torch.allclose(direct, ref, rtol=1e-4, atol=1e-4)
    assert float(ref.abs().max()) > 0.1


def test_weights_lookup_names_the_missing_path(tmp_path, monkeypatch):
    missing = tmp_path / "nope.pt"
    with pytest.raises(MetricUnavailable, match=str(missing)):
        fid_weights_path(missing)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("GCANN_IS_WEIGHTS", raising=False)
    with pytest.raises(MetricUnavailable, match="weights-inception-2015-12-05-6726825d.pth"):
        is_weights_path()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a network")
    with pytest.raises(MetricError, match="not an Inception-v3 weights file"):
        _tf_graph_state(bad)


# ---------------------------------------------------------------------------- #
# the registered metrics, as the trainer calls them
# ---------------------------------------------------------------------------- #
@pytest.fixture
def stand_in(tmp_path, monkeypatch):
    net = StandIn()
    weights = tmp_path / "stand-in.pt"
    weights.write_bytes(b"stand-in weights")
    monkeypatch.setattr(fidmod, "load_inception", lambda path, device="cpu": net)
    return net, weights


def make_ctx(tmp_path, weights, n_gen=40, reals=None, **options):
    g = torch.Generator().manual_seed(9)
    reals = torch.rand(60, 3, 12, 12, generator=torch.Generator().manual_seed(8)) * 2 - 1 if reals is None else reals
    return EvalContext(sample=lambda n: torch.rand(n, 3, 12, 12, generator=g) * 1.6 - 0.8, kind="image",
                       reals=reals, dataset_key="fixture-12", num_samples=n_gen,
                       options={"fid_weights": str(weights), "cache_dir": str(tmp_path / "cache"), **options})


def test_registered_fid_kid_equal_torchmetrics_on_the_generated_and_real_images(tmp_path, stand_in):
    from torchmetrics.image.fid import FrechetInceptionDistance

    net, weights = stand_in
    ctx = make_ctx(tmp_path, weights)
    fid = METRICS["fid"].fn(ctx)["fid"]
    kid = METRICS["kid"].fn(ctx)
    gen_u8 = to_uint8(ctx.generated(40), (-1, 1))
    real_u8 = to_uint8(ctx.reals, (-1, 1))
    tm = FrechetInceptionDistance(feature=FeatureOnly(net))
    tm.update(real_u8, real=True)
    tm.update(gen_u8, real=False)
    assert fid == pytest.approx(float(tm.compute()), rel=1e-3)
    with torch.no_grad():
        assert kid["kid"] == pytest.approx(kid_from_features(net.features(gen_u8), net.features(real_u8))[0],
                                           rel=1e-9)
    # the real features were cached under the dataset key and are read back on the next evaluation
    files = list((tmp_path / "cache" / "metrics").glob("inception-fixture-12-60-*.npz"))
    assert len(files) == 1
    with np.load(files[0]) as z:
        cached = torch.from_numpy(z["features"])
    with torch.no_grad():
        assert torch.allclose(cached, net.features(real_u8))
    ctx2 = make_ctx(tmp_path, weights, reals=torch.zeros(60, 3, 12, 12))   # same key, other content
    assert METRICS["fid"].fn(ctx2)["fid"] == pytest.approx(fid, rel=1e-9)   # proves the cache was used


def test_real_images_from_a_dataset_object_and_gray_replication(tmp_path, stand_in):
    net, weights = stand_in

    class Gray:
        def __init__(self):
            self.x = torch.rand(30, 1, 12, 12, generator=torch.Generator().manual_seed(3)) * 2 - 1

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            return self.x[i]

    ds = Gray()
    ctx = EvalContext(sample=lambda n: ds.x[:n].clone(), kind="image", reals=None, dataset_key=None,
                      num_samples=30, options={"fid_weights": str(weights), "dataset": ds})
    assert METRICS["fid"].fn(ctx)["fid"] == pytest.approx(0.0, abs=1e-6)
    with torch.no_grad():
        assert torch.allclose(fidmod.real_features(ctx), net.features(to_uint8(ds.x.expand(-1, 3, -1, -1), (-1, 1))))


def test_is_is_unavailable_without_its_weights_and_computed_with_them(tmp_path, stand_in, monkeypatch):
    net, weights = stand_in
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("GCANN_IS_WEIGHTS", raising=False)
    ctx = make_ctx(tmp_path, weights)
    out = compute_metrics(["is"], ctx)
    assert out["is"] is None and "weights-inception-2015-12-05-6726825d.pth" in out["is_unavailable"]
    assert str(tmp_path / "torch") in out["is_unavailable"]
    ctx = make_ctx(tmp_path, weights, is_weights=str(weights))
    got = compute_metrics(["is"], ctx)
    with torch.no_grad():
        _, logits = net(to_uint8(ctx.generated(40), (-1, 1)))
    assert got["is"] == pytest.approx(inception_score(logits)[0], rel=1e-9)


def test_pairwise_metrics_reuse_the_diversity_code(tmp_path, stand_in):
    from gcann.diversity import mean_pairwise_distance

    net, weights = stand_in
    ctx = make_ctx(tmp_path, weights, n_gen=128)
    out = compute_metrics(["pairwise", "pairwise_inception"], ctx)
    x = ctx.generated(128)
    want = (float(mean_pairwise_distance(x[:64])) + float(mean_pairwise_distance(x[64:]))) / 2
    assert out["pairwise"] == pytest.approx(want, rel=1e-5)
    with torch.no_grad():
        f = net.features(to_uint8(x, (-1, 1))).double()
    d = torch.cdist(f[:64], f[:64]) / math.sqrt(f.shape[1])
    first = float(d.sum() / (64 * 63))
    d2 = torch.cdist(f[64:], f[64:]) / math.sqrt(f.shape[1])
    assert out["pairwise_inception"] == pytest.approx((first + float(d2.sum() / (64 * 63))) / 2, rel=1e-5)


def test_bad_generated_samples_and_requests_are_one_line_errors(tmp_path, stand_in):
    _, weights = stand_in
    ctx = make_ctx(tmp_path, weights)
    ctx.sample = lambda n: torch.full((n, 3, 12, 12), float("nan"))
    with pytest.raises(MetricError, match="NaN"):
        compute_metrics(["kid"], ctx)
    ctx = make_ctx(tmp_path, weights)
    ctx.sample = lambda n: torch.full((n, 3, 12, 12), 3.0)
    with pytest.raises(MetricError, match=r"declared in \[-1, 1\]"):
        compute_metrics(["kid"], ctx)
    with pytest.raises(MetricError, match="unknown metric"):
        compute_metrics(["fidd"], make_ctx(tmp_path, weights))
    with pytest.raises(MetricError, match="at least 2048"):
        compute_metrics(["fid"], make_ctx(tmp_path, weights, n_gen=100))
    vctx = EvalContext(sample=lambda n: torch.zeros(n, 1, 4, 4, 4), kind="voxel", num_samples=10)
    with pytest.raises(MetricError, match="for image samples, not voxel"):
        compute_metrics(["kid"], vctx)
    assert json.dumps(compute_metrics(["pairwise"], make_ctx(tmp_path, weights)))  # JSON-able results
