"""The metric registry: metrics looked up by name, one evaluation context they all read.

A metric is a function ``fn(ctx: EvalContext) -> dict[str, float]`` registered
under a name with :func:`register_metric`; :func:`compute_metrics` runs a list
of them and merges their results. The trainer's periodic evaluation and
``gcann eval`` both call :func:`compute_metrics`, so a metric is written once.

Bad input (wrong kind, too few samples, NaN in samples) raises
:class:`MetricError` with one line saying why. A metric that cannot be computed
*here* (its weights file is absent, every generated shape is empty) raises
:class:`MetricUnavailable`; :func:`compute_metrics` records it as
``{name: None, name + "_unavailable": reason}``, never as a number.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import Tensor

from gcann.errors import GcannError
from gcann.fileio import atomic_write

__all__ = ["EvalContext", "METRICS", "MetricError", "MetricUnavailable", "MetricWarning", "check_metric_names",
           "check_metrics", "compute_metrics", "register_metric", "write_cache"]


class MetricError(GcannError, ValueError):
    """A metric cannot be computed on this input; the message says why in one line."""


class MetricUnavailable(MetricError):
    """A metric cannot be computed here (e.g. its weights file is absent); the message says why and where."""


@dataclass
class EvalContext:
    """What a metric may look at.

    ``sample(n)`` draws ``n`` generated samples in the data's own range: images
    ``(n, C, H, W)`` in [-1, 1], voxels ``(n, 1, R, R, R)`` in [0, 1]. Real
    samples come from ``reals`` (a tensor in the same layout and range) or, when
    that is ``None``, from ``options["dataset"]`` (an object with ``len`` and
    ``__getitem__`` returning one sample). ``dataset_key`` names the real data
    for caches (content-derived, e.g. a hash of the dataset's files and
    resolution); ``None`` disables caching. ``options`` holds per-metric
    settings (see docs/metrics.md), e.g. ``{"fid_weights": path, "num_real": 10000}``.
    """

    sample: Callable[[int], Tensor]
    kind: str                                   # "image" or "voxel"
    reals: Tensor | None = None
    dataset_key: str | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    num_samples: int | None = None              # how many generated samples a metric draws (None: its default)
    options: dict = field(default_factory=dict)  # per-metric options, e.g. {"fid_weights": path}
    cache: dict = field(default_factory=dict, repr=False)  # shared by the metrics of one compute_metrics call

    def option(self, name: str, default: Any = None) -> Any:
        value = self.options.get(name)
        return default if value is None else value

    def generated(self, n: int) -> Tensor:
        """``n`` generated samples on the CPU (float32), drawn once per context and shared by its metrics."""
        have = self.cache.get("generated")
        if have is None or len(have) < n:
            batch = int(self.option("batch_size", 64))
            parts = [] if have is None else [have]
            drawn = 0 if have is None else len(have)
            with torch.no_grad():
                while drawn < n:
                    x = self.sample(min(batch, n - drawn)).detach().float().cpu()
                    if not torch.isfinite(x).all():
                        raise MetricError(f"generated samples hold NaN or Inf (batch starting at sample {drawn})")
                    parts.append(x)
                    drawn += len(x)
            have = torch.cat(parts)
            self.cache["generated"] = have
        return have[:n]

    def num_reals(self) -> int:
        if self.reals is not None:
            return len(self.reals)
        ds = self.options.get("dataset")
        if ds is None:
            raise MetricError("this metric needs real samples: pass reals or options['dataset']")
        return len(ds)

    def real(self, n: int, seed: int = 0) -> Tensor:
        """``n`` real samples (float32, CPU): all of them in order when ``n`` is their count, else a seeded subset."""
        total = self.num_reals()
        if n > total:
            raise MetricError(f"asked for {n} real samples but the data holds {total}")
        idx = torch.arange(total) if n == total else torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:n].sort().values
        if self.reals is not None:
            x = self.reals[idx].float().cpu()
        else:
            ds = self.options["dataset"]
            x = torch.stack([torch.as_tensor(ds[int(i)]).float() for i in idx])
        if not torch.isfinite(x).all():
            raise MetricError("real samples hold NaN or Inf")
        return x


MetricFn = Callable[[EvalContext], dict]


@dataclass(frozen=True)
class MetricSpec:
    fn: MetricFn
    kinds: tuple[str, ...]          # the sample kinds it applies to
    min_samples: int = 2            # fewest generated samples it accepts


#: name -> metric; filled by :func:`register_metric`.
METRICS: dict[str, MetricSpec] = {}


def register_metric(name: str, kinds: tuple[str, ...] = ("image", "voxel"),
                    min_samples: int = 2) -> Callable[[MetricFn], MetricFn]:
    """Decorator: make ``fn`` available as metric ``name`` for samples of the given ``kinds``."""

    def deco(fn: MetricFn) -> MetricFn:
        if name in METRICS:
            raise ValueError(f"metric {name!r} is registered twice")
        METRICS[name] = MetricSpec(fn, tuple(kinds), min_samples)
        return fn

    return deco


def check_metric_names(names: list[str] | tuple[str, ...]) -> None:
    """Raise :class:`MetricError` now for names that are not registered (what :func:`check_metrics` checks
    first; alone where the samples' kind is not known yet)."""
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise MetricError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(sorted(METRICS)) or 'none'}")


def check_metrics(names: list[str] | tuple[str, ...], kind: str, num_samples: int | None = None) -> None:
    """Raise :class:`MetricError` now for unknown names, a wrong sample kind or too few samples.

    The trainer can call this before its first step so that a bad metric list
    fails at once, not at the first evaluation.
    """
    check_metric_names(names)
    for n in names:
        spec = METRICS[n]
        if kind not in spec.kinds:
            raise MetricError(f"metric {n!r} is for {' or '.join(spec.kinds)} samples, not {kind}")
        if num_samples is not None and num_samples < spec.min_samples:
            raise MetricError(f"metric {n!r} needs at least {spec.min_samples} generated samples, "
                              f"got num_samples={num_samples}")


def compute_metrics(names: list[str] | tuple[str, ...], ctx: EvalContext) -> dict[str, Any]:
    """Run the named metrics on ``ctx``; their results merged into one flat dict.

    Values are floats; a metric that is unavailable here gives ``None`` and a
    ``<name>_unavailable`` entry with the reason.
    """
    check_metrics(names, ctx.kind, ctx.num_samples)
    out: dict[str, Any] = {}
    for n in names:
        try:
            result = METRICS[n].fn(ctx)
        except MetricUnavailable as e:
            out[n] = None
            out[f"{n}_unavailable"] = str(e)
            continue
        for key, value in result.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise MetricError(f"metric {n!r} gave {key} = {value}")
        out.update(result)
    return out


class MetricWarning(UserWarning):
    """Something a metric could not do that does not change its value (a cache it could not write)."""


def write_cache(path: Any, write: Callable[[Any], Any]) -> None:
    """Write a metric's cache file atomically (``write(tmp)``); a folder that cannot be written (read-only,
    another user's) costs the cache, not the metric: a :class:`MetricWarning` says so and the value stands."""
    import warnings

    try:
        atomic_write(path, write)   # it makes the parent folders
    except OSError as e:
        warnings.warn(f"cannot write the metrics cache {path}: {e.strerror or e}; the value is computed again "
                      f"next time", MetricWarning, stacklevel=2)
