"""Mode metrics of 2-D toy mixtures (the ring of 8 Gaussians and the 5×5 grid of
Welfert, Otstot, Kurri & Sankar (2023), (α_D, α_G)-GANs).

As the source's evaluation does it, on 25,000 generated samples:

* each sample is assigned to its nearest mode (Euclidean; ties go to the lower
  mode index);
* a sample is *high quality* when it lies within ``3σ`` of that mode
  (``|x - μ_k| <= 3 σ_k``, σ the mode's standard deviation);
* a mode is *covered* when it has at least one high-quality sample;
* ``success``: every mode covered; ``failure``: none;
* the mode histogram of the generated samples with add-one smoothing,
  ``p_gen(k) = (c_k + 1) / (N + K)``, against the true mode weights ``p_real``:
  ``kl = KL(p_real || p_gen)``, ``reverse_kl = KL(p_gen || p_real)`` (natural
  log), and the source's ``jsd`` and total variation ``tvd`` as well.

Everything is batched over leading dimensions: samples ``(..., N, 2)`` give
results of shape ``(...)``, one per seed of a batched study.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Literal

import torch
from torch import Tensor

from .registry import EvalContext, MetricError, register_metric

__all__ = ["TOY_EVAL_SAMPLES", "ToyModes", "evaluate_toy", "grid_modes", "ring_modes", "toy_mode_metrics"]

TOY_EVAL_SAMPLES = 25_000  # evaluation samples per seed, as the source


@dataclass(frozen=True)
class ToyModes:
    """A Gaussian mixture in 2-D: ``means (K, 2)``, per-mode standard deviations ``std (K,)``, ``weights (K,)``."""

    means: Tensor
    std: Tensor
    weights: Tensor

    def __post_init__(self):
        k = self.means.shape[0]
        if self.means.shape != (k, 2) or self.std.shape != (k,) or self.weights.shape != (k,) or k < 1:
            raise MetricError(f"modes need means (K, 2), std (K,), weights (K,); got {tuple(self.means.shape)}, "
                              f"{tuple(self.std.shape)}, {tuple(self.weights.shape)}")
        if not (self.std > 0).all() or not (self.weights > 0).all() or abs(float(self.weights.sum()) - 1) > 1e-9:
            raise MetricError("mode standard deviations must be > 0 and weights > 0, summing to 1")

    @property
    def k(self) -> int:
        return self.means.shape[0]

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` samples of the mixture ``(n, 2)`` (float64)."""
        idx = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        noise = torch.randn(n, 2, generator=generator, dtype=torch.float64)
        return self.means[idx] + self.std[idx, None] * noise


def ring_modes(k: int = 8, radius: float = 1.0, variance: float = 1e-4) -> ToyModes:
    """Seed 002's ring: means ``(cos 2πi/k, sin 2πi/k)``, i = 1..k, variance 1e-4, equal weights."""
    i = torch.arange(1, k + 1, dtype=torch.float64)
    means = radius * torch.stack([torch.cos(2 * math.pi * i / k), torch.sin(2 * math.pi * i / k)], dim=1)
    return ToyModes(means, torch.full((k,), math.sqrt(variance), dtype=torch.float64),
                    torch.full((k,), 1.0 / k, dtype=torch.float64))


def grid_modes(n: int = 5, spacing: float = 2.0, variance: float = 0.0025) -> ToyModes:
    """Seed 002's grid: means ``(-4 + 2i, -4 + 2j)`` (for n = 5), variance 0.0025, equal weights."""
    start = -spacing * (n - 1) / 2
    pts = [(start + spacing * i, start + spacing * j) for j in range(n) for i in range(n)]
    k = n * n
    return ToyModes(torch.tensor(pts, dtype=torch.float64), torch.full((k,), math.sqrt(variance), dtype=torch.float64),
                    torch.full((k,), 1.0 / k, dtype=torch.float64))


def toy_mode_metrics(samples: Tensor, modes: ToyModes, *, threshold: float = 3.0,
                     nonfinite: Literal["raise", "flag"] = "raise") -> dict[str, Tensor]:
    """The mode metrics of ``samples (..., N, 2)``; each result has shape ``(...)``.

    Returns ``modes_covered`` (int64), ``hq_ratio``, ``kl``, ``reverse_kl``,
    ``jsd``, ``tvd`` (float64), ``success``, ``failure`` (bool), ``counts``
    ``(..., K)`` (samples per nearest mode) and ``nonfinite`` (samples holding
    NaN/Inf). With ``nonfinite="raise"`` such samples are an error; with
    ``"flag"`` they count in N but belong to no mode and are never high quality.
    """
    x = torch.as_tensor(samples)
    if x.dim() < 2 or x.shape[-1] != 2 or x.shape[-2] < 1:
        raise MetricError(f"toy samples must have shape (..., N, 2) with N >= 1, got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise MetricError(f"toy samples must be floating point, got {x.dtype}")
    x = x.detach().to(torch.float64)
    finite = torch.isfinite(x).all(dim=-1)                           # (..., N)
    if nonfinite == "raise":
        if not finite.all():
            raise MetricError(f"{int((~finite).sum())} toy samples hold NaN or Inf")
    elif nonfinite != "flag":
        raise MetricError(f"nonfinite must be 'raise' or 'flag', got {nonfinite!r}")
    means = modes.means.to(x.device, torch.float64)
    std = modes.std.to(x.device, torch.float64)
    p_real = modes.weights.to(x.device, torch.float64)
    k, n = modes.k, x.shape[-2]
    best = torch.full(x.shape[:-1], math.inf, dtype=torch.float64, device=x.device)
    nearest = torch.zeros(x.shape[:-1], dtype=torch.long, device=x.device)
    xf = torch.where(finite[..., None], x, torch.zeros_like(x))
    for j in range(k):                                               # running argmin: memory (..., N)
        d2 = (xf - means[j]).square().sum(dim=-1)
        closer = d2 < best
        best = torch.where(closer, d2, best)
        nearest = torch.where(closer, j, nearest)
    hq = finite & (best <= (threshold * std[nearest]).square())
    onehot = torch.nn.functional.one_hot(nearest, k) & finite[..., None]
    counts = onehot.sum(dim=-2)                                      # (..., K)
    hq_counts = (onehot & hq[..., None]).sum(dim=-2)
    covered = (hq_counts > 0).sum(dim=-1)
    p_gen = (counts.double() + 1) / (n + k)
    kl = (p_real * (p_real / p_gen).log()).sum(dim=-1)
    rkl = (p_gen * (p_gen / p_real).log()).sum(dim=-1)
    mix = (p_real + p_gen) / 2
    jsd = ((p_real * (p_real / mix).log()).sum(dim=-1) + (p_gen * (p_gen / mix).log()).sum(dim=-1)) / 2
    tvd = (p_real - p_gen).abs().sum(dim=-1) / 2
    return {"modes_covered": covered, "hq_ratio": hq.sum(dim=-1).double() / n, "kl": kl, "reverse_kl": rkl,
            "jsd": jsd, "tvd": tvd, "success": covered == k, "failure": covered == 0, "counts": counts,
            "nonfinite": (~finite).sum(dim=-1)}


def evaluate_toy(sample: Callable[[int], Tensor], modes: ToyModes, num_samples: int = TOY_EVAL_SAMPLES,
                 **kwargs) -> dict[str, Tensor]:
    """:func:`toy_mode_metrics` of ``sample(num_samples)`` (25,000 by default, as the source)."""
    with torch.no_grad():
        return toy_mode_metrics(sample(num_samples), modes, **kwargs)


@register_metric("modes", kinds=("toy2d",))
def _modes(ctx: EvalContext) -> dict[str, float]:
    """Seed 002's toy-mode metrics of 2-D samples; ``options["toy_modes"]`` is a :class:`ToyModes`."""
    modes = ctx.options.get("toy_modes")
    if not isinstance(modes, ToyModes):
        raise MetricError("the 'modes' metric needs options['toy_modes'] (ring_modes() or grid_modes())")
    out = toy_mode_metrics(ctx.generated(int(ctx.num_samples or TOY_EVAL_SAMPLES)), modes)
    return {key: float(v) for key, v in out.items() if key not in ("counts", "nonfinite")}
