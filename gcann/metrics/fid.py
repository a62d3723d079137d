"""FID, KID and the Inception Score from Inception features, and real-data statistics cached per dataset.

FID's statistics are torch-fidelity's: ``fid_features_to_statistics`` and
``fid_statistics_to_metric`` (TTUR's formula, the trace of the matrix square
root from the eigenvalues of ``Σ₁Σ₂``). KID is the project's one MMD estimator,
:func:`mmd2_over_subsets` (the unbiased MMD² with the cubic polynomial kernel
over random subsets, in float64), which ``kid_domain`` uses too; ``kid`` draws
its subsets as torch-fidelity does (``RandomState(2020)``) and is tested
against its ``kid_features_to_metric``. The Inception Score follows
torch-fidelity's convention (shuffle with ``RandomState(2020)``, 10 splits,
softmax of the bias-free logits) and is tested against its
``isc_features_to_metric``.

Sample counts: FID estimates a ``d × d`` covariance (d = 2048 for Inception),
which is singular with fewer than ``d`` samples; the Fréchet distance is then
biased upward by an amount that depends on the sample count, so FID refuses
fewer than ``d`` samples per set (:class:`MetricError`). KID is unbiased at
any size: its subsets hold ``min(1000, n_gen, n_real)`` samples.
"""
from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .inception import (
    FEATURE_DIM,
    fid_weights_path,
    inception_features,
    is_weights_path,
    load_inception,
    to_uint8,
    weights_digest,
)
from .registry import EvalContext, MetricError, register_metric, write_cache

__all__ = ["DEFAULT_IMAGE_SAMPLES", "DEFAULT_REAL_SAMPLES", "FIDStats", "fid_from_features", "fid_statistics",
           "frechet_distance", "generated_features", "inception_score", "kid_from_features", "mmd2_over_subsets",
           "mmd2_unbiased", "poly_kernel", "real_features"]

DEFAULT_IMAGE_SAMPLES = 10_000   # generated images per FID/KID/IS when the caller sets no count
DEFAULT_REAL_SAMPLES = 50_000    # real images per statistics: all of them, up to this many
_CACHE_VERSION = 1


@dataclass
class FIDStats:
    """Mean and covariance (float64) of ``n`` feature vectors."""

    mu: np.ndarray
    sigma: np.ndarray
    n: int


def _features_2d(f: Tensor | np.ndarray, what: str) -> Tensor:
    f = torch.as_tensor(f)
    if f.dim() != 2:
        raise MetricError(f"{what} must be a (N, D) matrix of features, got shape {tuple(f.shape)}")
    if not torch.isfinite(f).all():
        raise MetricError(f"{what} hold NaN or Inf")
    return f.double().cpu()


def fid_statistics(features: Tensor | np.ndarray, *, what: str = "features") -> FIDStats:
    """Mean and covariance of ``(N, D)`` features; refuses ``N < D`` (singular covariance)."""
    from torch_fidelity.metric_fid import fid_features_to_statistics

    f = _features_2d(features, what)
    n, d = f.shape
    if n < d:
        raise MetricError(f"FID needs at least {d} samples per set for a full-rank {d}x{d} covariance, "
                          f"{what} has {n} (below that FID is biased upward; use KID for small sets)")
    st = fid_features_to_statistics(f)
    return FIDStats(np.asarray(st["mu"], dtype=np.float64).reshape(d),
                    np.asarray(st["sigma"], dtype=np.float64).reshape(d, d), n)  # np.cov of one feature is 0-d


def frechet_distance(a: FIDStats, b: FIDStats) -> float:
    """The Fréchet distance between the Gaussians of two statistics (torch-fidelity's computation)."""
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_statistics_to_metric

    if a.mu.shape != b.mu.shape or a.sigma.shape != b.sigma.shape:
        raise MetricError(f"statistics of different feature sizes: {a.mu.shape} and {b.mu.shape}")
    value = fid_statistics_to_metric({"mu": a.mu, "sigma": a.sigma}, {"mu": b.mu, "sigma": b.sigma},
                                     verbose=False)[KEY_METRIC_FID]
    if not np.isfinite(value):
        raise MetricError(f"the Fréchet distance came out {value}")
    return float(value)


def fid_from_features(f1: Tensor | np.ndarray, f2: Tensor | np.ndarray) -> float:
    """FID between two ``(N, D)`` feature sets."""
    return frechet_distance(fid_statistics(f1, what="the first set"), fid_statistics(f2, what="the second set"))


def poly_kernel(x: Tensor, y: Tensor) -> Tensor:
    """KID's kernel ``(x·y / d + 1)³`` between the rows of ``x`` and ``y``."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: Tensor, y: Tensor) -> float:
    """The unbiased MMD² estimate with :func:`poly_kernel` (diagonals of the within-set sums left out)."""
    x, y = x.double(), y.double()
    m, n = len(x), len(y)
    kxx, kyy, kxy = poly_kernel(x, x), poly_kernel(y, y), poly_kernel(x, y)
    return float((kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
                 + (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1)) - 2 * kxy.mean())


def mmd2_over_subsets(a: Tensor, b: Tensor, *, subsets: int, size: int,
                      rng: np.random.RandomState | np.random.Generator) -> np.ndarray:
    """:func:`mmd2_unbiased` of ``subsets`` pairs of random subsets of ``size`` rows, one of ``a`` then one of
    ``b`` per pair, each drawn without replacement by ``rng.choice``: the caller's generator decides the draws
    (KID's estimator; ``kid`` and ``kid_domain`` differ only in their draws and what they report)."""
    return np.array([mmd2_unbiased(a[torch.from_numpy(rng.choice(len(a), size, replace=False))],
                                   b[torch.from_numpy(rng.choice(len(b), size, replace=False))])
                     for _ in range(subsets)])


def kid_from_features(f1: Tensor | np.ndarray, f2: Tensor | np.ndarray, *, subsets: int = 100,
                      subset_size: int = 1000, seed: int = 2020) -> tuple[float, float]:
    """KID (mean, std over ``subsets`` random subsets of ``min(subset_size, n1, n2)`` samples), the subsets
    drawn as torch-fidelity's ``kid_features_to_metric`` draws them (``RandomState(seed)``; its std, ddof 0)."""
    a, b = _features_2d(f1, "the first set"), _features_2d(f2, "the second set")
    if a.shape[1] != b.shape[1]:
        raise MetricError(f"feature sets of different widths: {a.shape[1]} and {b.shape[1]}")
    size = min(subset_size, len(a), len(b))
    if size < 2:
        raise MetricError(f"KID needs at least 2 samples per set, got {len(a)} and {len(b)}")
    if subsets < 1:
        raise MetricError(f"KID needs at least 1 subset, got {subsets}")
    vals = mmd2_over_subsets(a, b, subsets=subsets, size=size, rng=np.random.RandomState(seed))
    return float(vals.mean()), float(vals.std())


def inception_score(logits: Tensor | np.ndarray, *, splits: int = 10, shuffle: bool = True,
                    seed: int = 2020) -> tuple[float, float]:
    """IS (mean, std over ``splits``) of ``(N, C)`` logits: ``exp E_x KL(p(y|x) || p(y))`` per split."""
    x = _features_2d(logits, "logits")
    n = len(x)
    if not 1 <= splits <= n:
        raise MetricError(f"IS needs 1 <= splits <= samples, got {splits} splits of {n} samples")
    if shuffle:
        x = x[torch.from_numpy(np.random.RandomState(seed).permutation(n))]
    log_p = x.log_softmax(dim=1)
    scores = []
    for i in range(splits):
        part = log_p[i * n // splits:(i + 1) * n // splits]
        log_marginal = part.exp().mean(dim=0).log()
        kl = (part.exp() * (part - log_marginal)).sum(dim=1).mean()
        scores.append(float(kl.exp()))
    return float(np.mean(scores)), float(np.std(scores))


# ---------------------------------------------------------------------------- #
# features of a run's samples and of its real data (cached)
# ---------------------------------------------------------------------------- #
def _image_count(ctx: EvalContext) -> int:
    return int(ctx.num_samples or DEFAULT_IMAGE_SAMPLES)


def _network(ctx: EvalContext):
    path = fid_weights_path(ctx.options.get("fid_weights"))
    return path, load_inception(path, ctx.device)


def generated_features(ctx: EvalContext) -> Tensor:
    """Inception pool features of the context's generated images (computed once per context)."""
    if "gen_features" not in ctx.cache:
        _, net = _network(ctx)
        images = to_uint8(ctx.generated(_image_count(ctx)), (-1, 1))
        ctx.cache["gen_features"] = inception_features(net, images, batch_size=int(ctx.option("batch_size", 64)),
                                                       device=ctx.device, progress=ctx.options.get("progress"))
    return ctx.cache["gen_features"]


def _cache_file(ctx: EvalContext, digest: str, n: int, seed: int) -> Path | None:
    if ctx.dataset_key is None or ctx.option("cache", True) is False:
        return None
    from gcann.data.base import cache_root

    key = json.dumps({"v": _CACHE_VERSION, "data": ctx.dataset_key, "weights": digest, "n": n, "seed": seed,
                      "resize": "tf1-bilinear-299"}, sort_keys=True)
    tag = hashlib.sha1(key.encode()).hexdigest()[:16]
    return cache_root(ctx.options.get("cache_dir")) / "metrics" / f"inception-{ctx.dataset_key}-{n}-{tag}.npz"


def real_features(ctx: EvalContext) -> Tensor:
    """Inception pool features of the real images: all of them up to ``num_real`` (default 50,000), cached.

    The cache file is keyed by the dataset's content key, the weights' SHA-1,
    the count and the subset seed; it holds the features (float32).
    """
    if "real_features" in ctx.cache:
        return ctx.cache["real_features"]
    path, net = _network(ctx)
    total = ctx.num_reals()
    n = min(total, int(ctx.option("num_real", DEFAULT_REAL_SAMPLES)))
    seed = int(ctx.option("real_seed", 0))
    file = _cache_file(ctx, weights_digest(path), n, seed)
    feats = None
    if file is not None and file.is_file():
        try:
            with np.load(file) as z:
                feats = torch.from_numpy(z["features"])
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            feats = None  # unreadable cache: recompute and replace it
        if feats is not None and (feats.dim() != 2 or len(feats) != n or not torch.isfinite(feats).all()):
            feats = None
    if feats is None:
        parts, batch = [], int(ctx.option("batch_size", 64))
        idx_all = ctx.real(n, seed=seed) if ctx.reals is not None else None
        for i in range(0, n, 1024):  # read real images a block at a time (dataset folders can be large)
            block = idx_all[i:i + 1024] if idx_all is not None else _real_block(ctx, n, seed, i, 1024)
            parts.append(inception_features(net, to_uint8(block, (-1, 1)), batch_size=batch, device=ctx.device,
                                            progress=ctx.options.get("progress")))
        feats = torch.cat(parts)
        if file is not None:
            write_cache(file, lambda tmp: np.savez(tmp, features=feats.numpy()))
    ctx.cache["real_features"] = feats
    return feats


def _real_block(ctx: EvalContext, n: int, seed: int, start: int, size: int) -> Tensor:
    total = ctx.num_reals()
    if "real_index" not in ctx.cache:
        idx = torch.arange(total) if n == total else \
            torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:n].sort().values
        ctx.cache["real_index"] = idx
    ds = ctx.options["dataset"]
    x = torch.stack([torch.as_tensor(ds[int(i)]).float() for i in ctx.cache["real_index"][start:start + size]])
    if not torch.isfinite(x).all():
        raise MetricError("real samples hold NaN or Inf")
    return x


def _need_images(ctx: EvalContext, name: str) -> None:
    if ctx.kind != "image":
        raise MetricError(f"metric {name!r} is for images, not {ctx.kind}")


# ---------------------------------------------------------------------------- #
# registered metrics
# ---------------------------------------------------------------------------- #
@register_metric("fid", kinds=("image",), min_samples=FEATURE_DIM)
def _fid(ctx: EvalContext) -> dict[str, float]:
    """FID between generated and real images (TF-Inception pool features)."""
    _need_images(ctx, "fid")
    g = generated_features(ctx)
    r = real_features(ctx)
    return {"fid": frechet_distance(fid_statistics(g, what="generated images"),
                                    fid_statistics(r, what="real images"))}


@register_metric("kid", kinds=("image",))
def _kid(ctx: EvalContext) -> dict[str, float]:
    """KID (×1, not ×1000) between generated and real images, and its std over subsets."""
    _need_images(ctx, "kid")
    mean, std = kid_from_features(generated_features(ctx), real_features(ctx),
                                  subsets=int(ctx.option("kid_subsets", 100)),
                                  subset_size=int(ctx.option("kid_subset_size", 1000)))
    return {"kid": mean, "kid_std": std}


@register_metric("is", kinds=("image",), min_samples=10)
def _is(ctx: EvalContext) -> dict[str, float]:
    """Inception Score of generated images; unavailable without weights holding the 1008-class head."""
    _need_images(ctx, "is")
    path = is_weights_path(ctx.options.get("is_weights"))
    net = load_inception(path, ctx.device)
    if not net.has_head:
        from .registry import MetricUnavailable

        raise MetricUnavailable(f"{path} has no 1008-class logits head; IS needs torch-fidelity's layout")
    images = to_uint8(ctx.generated(_image_count(ctx)), (-1, 1))
    _, logits = inception_features(net, images, batch_size=int(ctx.option("batch_size", 64)), logits=True,
                                   device=ctx.device, progress=ctx.options.get("progress"))
    mean, std = inception_score(logits, splits=int(ctx.option("is_splits", 10)))
    return {"is": mean, "is_std": std}


@register_metric("pairwise_inception", kinds=("image",))
def _pairwise_inception(ctx: EvalContext) -> dict[str, float]:
    """Feature-space diversity: mean pairwise RMS distance of Inception features within batches of 64."""
    from .diversity import mean_pairwise_in_batches

    _need_images(ctx, "pairwise_inception")
    return {"pairwise_inception": mean_pairwise_in_batches(generated_features(ctx), batch=64)}
