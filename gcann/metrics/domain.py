"""Domain feature metrics: a small classifier trained on the run's own labelled data stands in for Inception.

Inception runs at about 4 images/s on a 2-core CPU, so FID/KID at 10,000 samples per run do not fit a CPU
budget. For labelled 28×28 sets (MNIST-5k, Fashion-MNIST) the project trains a small CNN classifier
(:class:`DomainNet`) on the data itself and uses its penultimate features (:data:`FEATURE_DIM` wide):

* ``fd_domain``: the Fréchet distance between the Gaussian fits of the generated and the real images' domain
  features (the FID formula on *another network's* features: it is **not** FID and not comparable with it);
  ``fd_domain_se``: its sampling standard error, the std over :data:`FD_BOOTSTRAP` bootstrap redraws (with
  replacement) of the generated features;
* ``kid_domain``: the unbiased MMD² with the cubic polynomial kernel ``(x·y / d + 1)³`` (KID's estimator) on
  the domain features, the mean over random subsets; ``kid_domain_se``: the std over subsets × √(subset size / generated samples);
* ``domain_accuracy``: the classifier's accuracy on the held-out part of the data (a seeded
  :data:`HOLDOUT` share that it never trained on), so a reader can judge the features.

The classifier is trained once per data set (content key) and cached with its accuracy and the real features,
under ``options["domain_dir"]`` or the cache folder (``$GCANN_CACHE/metrics``); ``options["domain_steps"]``
sets its training steps (default :data:`CLF_STEPS`).
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from .fid import fid_from_features, mmd2_over_subsets, mmd2_unbiased, poly_kernel
from .registry import EvalContext, MetricError, MetricUnavailable, register_metric, write_cache

__all__ = ["DomainNet", "FEATURE_DIM", "domain_classifier", "frechet_from_features", "kid_unbiased",
           "mmd2_unbiased", "poly_kernel"]

FEATURE_DIM = 128        # width of the penultimate (feature) layer
HOLDOUT = 0.1            # share of the labelled data held out to measure the classifier's accuracy
CLF_SEED = 0             # seed of the split, the initialisation and the batches
CLF_STEPS = 1500         # classifier training steps (batch CLF_BATCH): a few epochs of MNIST-5k, 3 of Fashion-MNIST
CLF_BATCH = 128
FD_BOOTSTRAP = 20        # bootstrap redraws of the generated features for fd_domain_se
KID_SUBSETS = 50
KID_SUBSET_SIZE = 500
DEFAULT_SAMPLES = 1000   # generated images when num_samples is not set
DEFAULT_REAL = 10_000    # real images (a seeded subset) for the real statistics
_VERSION = 1


class DomainNet(nn.Module):
    """Two stride-2 convolutions, then a :data:`FEATURE_DIM`-wide feature layer and a linear class head."""

    def __init__(self, channels: int, classes: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(32, 64, 3, 2, 1), nn.BatchNorm2d(64), nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool2d(7), nn.Flatten(), nn.Linear(64 * 49, FEATURE_DIM), nn.ReLU())
        self.head = nn.Linear(FEATURE_DIM, classes)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


# ---------------------------------------------------------------------------- the statistics (tested against truth)
def frechet_from_features(a: Tensor | np.ndarray, b: Tensor | np.ndarray) -> float:
    """Fréchet distance ``‖μa − μb‖² + tr(Σa + Σb − 2 (Σa Σb)^½)`` of the Gaussian fits of two ``(N, D)`` sets
    (the trace of the square root from the eigenvalues of ``Σa Σb``, as TTUR/torch-fidelity compute it)."""
    return fid_from_features(torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64))


def kid_unbiased(gen: Tensor, real: Tensor, *, subsets: int = KID_SUBSETS, subset_size: int = KID_SUBSET_SIZE,
                 seed: int = 0) -> tuple[float, float]:
    """Mean over ``subsets`` random subsets (``min(subset_size, n_gen, n_real)`` each, without replacement within
    a subset) of :func:`mmd2_unbiased`, and the sampling standard error of that mean as an estimate from the
    ``n_gen`` generated samples: ``std(ddof=1) over subsets × √(size / n_gen)``. The subsets overlap, so their
    spread divided by √subsets would measure only the averaging's noise (3–5× too small, checked against
    independent generated sets in the tests); one subset's estimate varies as 1/size, the whole set's as
    1/n_gen."""
    size = min(subset_size, len(gen), len(real))
    if size < 2:
        raise MetricError(f"kid_domain needs at least 2 samples per set, got {len(gen)} and {len(real)}")
    if subsets < 2:
        raise MetricError(f"kid_domain needs at least 2 subsets for its standard error, got {subsets}")
    vals = mmd2_over_subsets(gen, real, subsets=subsets, size=size, rng=np.random.default_rng(seed))
    return float(vals.mean()), float(vals.std(ddof=1) * math.sqrt(size / len(gen)))


def fd_bootstrap_se(gen: Tensor, real: Tensor, draws: int = FD_BOOTSTRAP, seed: int = 0) -> float:
    """The std (ddof = 1) of :func:`frechet_from_features` over ``draws`` bootstrap redraws of ``gen``."""
    rng = np.random.default_rng(seed)
    vals = [frechet_from_features(gen[rng.integers(0, len(gen), len(gen))], real) for _ in range(draws)]
    return float(np.std(vals, ddof=1))


# ---------------------------------------------------------------------------- the classifier (trained once, cached)
def _labelled(ctx: EvalContext) -> tuple[Tensor, Tensor]:
    ds = ctx.options.get("dataset")
    labels = getattr(ds, "labels", None)
    data = getattr(ds, "data", None) if ds is not None else None
    if labels is None or data is None:
        raise MetricUnavailable("the domain feature network is trained on labelled image data (MNIST-5k, "
                                "Fashion-MNIST); this data set has no labels")
    return data.float(), torch.as_tensor(labels).long()


def _cache_path(ctx: EvalContext, steps: int) -> Path | None:
    """Where the data set's classifier is cached; ``None`` (no cache) for data without a ``dataset_key``."""
    if ctx.dataset_key is None:
        return None
    key = ctx.dataset_key
    folder = ctx.options.get("domain_dir")
    if folder is None:
        from gcann.data.base import cache_root

        folder = cache_root(ctx.options.get("cache_dir")) / "metrics"
    return Path(folder) / f"domain-{key}-{steps}steps-v{_VERSION}.pt"


def _features(net: DomainNet, x: Tensor, batch: int = 500) -> Tensor:
    with torch.no_grad():
        return torch.cat([net.features(x[i:i + batch].float()) for i in range(0, len(x), batch)]).double()


def train_classifier(x: Tensor, y: Tensor, *, steps: int = CLF_STEPS, seed: int = CLF_SEED) -> tuple[DomainNet, dict]:
    """Train :class:`DomainNet` on a seeded ``1 − HOLDOUT`` share of ``(x, y)``; ``info`` has its held-out accuracy."""
    t0 = time.perf_counter()
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(x), generator=g)
    n_test = max(1, int(round(HOLDOUT * len(x))))
    test, train = perm[:n_test], perm[n_test:]
    classes = int(y.max()) + 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = DomainNet(x.shape[1], classes)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        net.train()
        for _ in range(steps):
            idx = train[torch.randint(len(train), (CLF_BATCH,), generator=g)]
            loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net(x[test[i:i + 500]]).argmax(1) for i in range(0, n_test, 500)])
    acc = float((pred == y[test]).float().mean())
    info = {"accuracy": acc, "n_train": len(train), "n_test": n_test, "classes": classes, "steps": steps,
            "batch": CLF_BATCH, "seed": seed, "feature_dim": FEATURE_DIM,
            "seconds": round(time.perf_counter() - t0, 2)}
    return net, info


def domain_classifier(ctx: EvalContext) -> tuple[DomainNet, dict]:
    """The data set's classifier: from the cache when present, else trained now (and cached when the data
    has a ``dataset_key``)."""
    if "domain_net" in ctx.cache:
        return ctx.cache["domain_net"]
    x, y = _labelled(ctx)
    steps = int(ctx.option("domain_steps", CLF_STEPS))
    path = _cache_path(ctx, steps)
    net = None
    if path is not None and path.is_file():
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            net = DomainNet(x.shape[1], int(state["info"]["classes"]))
            net.load_state_dict(state["weights"])
            info = state["info"]
        except Exception:  # noqa: BLE001 - any unreadable cache file (unpickling, shapes, keys): train again
            net = None
    if net is None:
        net, info = train_classifier(x, y, steps=steps)
        if path is not None:
            write_cache(path, lambda tmp: torch.save({"weights": net.state_dict(), "info": info}, tmp))
            write_cache(path.with_suffix(".json"),
                        lambda tmp: Path(tmp).write_text(json.dumps({"dataset": ctx.dataset_key, **info}) + "\n"))
    net.eval()
    ctx.cache["domain_net"] = (net, info)
    return net, info


def _real_features(ctx: EvalContext, net: DomainNet) -> Tensor:
    if "domain_real" not in ctx.cache:
        n = min(ctx.num_reals(), int(ctx.option("num_real", DEFAULT_REAL)))
        ctx.cache["domain_real"] = _features(net, ctx.real(n, seed=int(ctx.option("real_seed", 0))))
    return ctx.cache["domain_real"]


def _gen_features(ctx: EvalContext, net: DomainNet) -> Tensor:
    if "domain_gen" not in ctx.cache:
        ctx.cache["domain_gen"] = _features(net, ctx.generated(int(ctx.num_samples or DEFAULT_SAMPLES)))
    return ctx.cache["domain_gen"]


@register_metric("fd_domain", kinds=("image",), min_samples=FEATURE_DIM)
def _fd_domain(ctx: EvalContext) -> dict[str, float]:
    """Fréchet distance on the domain classifier's features (not FID) and its bootstrap standard error."""
    net, info = domain_classifier(ctx)
    g, r = _gen_features(ctx, net), _real_features(ctx, net)
    return {"fd_domain": frechet_from_features(g, r), "fd_domain_se": fd_bootstrap_se(g, r),
            "domain_accuracy": float(info["accuracy"])}


@register_metric("kid_domain", kinds=("image",), min_samples=2)
def _kid_domain(ctx: EvalContext) -> dict[str, float]:
    """Unbiased polynomial-kernel MMD² on the domain classifier's features (KID's estimator; not KID)."""
    net, info = domain_classifier(ctx)
    mean, se = kid_unbiased(_gen_features(ctx, net), _real_features(ctx, net),
                            subsets=int(ctx.option("kid_subsets", KID_SUBSETS)),
                            subset_size=int(ctx.option("kid_subset_size", KID_SUBSET_SIZE)))
    return {"kid_domain": mean, "kid_domain_se": se, "domain_accuracy": float(info["accuracy"])}
