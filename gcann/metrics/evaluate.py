"""``gcann eval``'s code path as a library: the registered metrics of a run's generator (its latest checkpoint).

:func:`prepare_eval` loads the generator and builds the :class:`~gcann.metrics.EvalContext` against the run's
data; :func:`evaluate_checkpoint` runs the metrics and returns the record that ``gcann eval --json`` prints
(and that ``gcann report --evaluate`` caches as the run folder's ``eval.json``).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import torch

from .registry import MetricError

__all__ = ["DEFAULT_METRICS", "evaluate_checkpoint", "eval_record", "parse_metric_names", "prepare_eval"]

DEFAULT_METRICS = {"image": "fid,kid,is,pairwise,pairwise_inception",
                   "voxel": "chamfer,cov,mmd,1nna,pairwise,pairwise_iou,pairwise_chamfer"}


def parse_metric_names(text: str | list[str] | tuple[str, ...]) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()] if isinstance(text, str) else list(text)
    if not names:
        raise MetricError("--metrics is empty")
    return names


def prepare_eval(source: str | Path, *, metrics: str | list[str] | None = None, num_samples: int | None = None,
                 num_real: int | None = None, fid_weights: str | None = None, is_weights: str | None = None,
                 data_root: str | None = None, ema: bool = True, seed: int = 0, batch_size: int = 64,
                 device: str = "cpu", options: dict[str, Any] | None = None):
    """``(names, ctx, G, info)``: the metric names (checked), the context, the generator and what it makes."""
    from gcann.train.checkpoint import load_generator
    from gcann.train.config import TrainConfig

    from .registry import EvalContext, check_metrics

    if not Path(source).exists():
        raise MetricError(f"{source} does not exist")
    G, info = load_generator(source, ema=ema, device=device)
    names = parse_metric_names(DEFAULT_METRICS[info["kind"]] if metrics is None else metrics)
    check_metrics(names, info["kind"], num_samples)
    ds = TrainConfig.from_dict(info["config"]).build_data(data_root)   # the data as the run trained on it
    gen = torch.Generator().manual_seed(seed)

    def sample(n: int) -> torch.Tensor:
        z = torch.randn(n, info["nz"], generator=gen).to(device)
        with torch.no_grad():
            return G(z)

    ctx = EvalContext(sample=sample, kind=info["kind"], reals=getattr(ds, "data", None),
                      dataset_key=getattr(ds, "key", None), device=torch.device(device), num_samples=num_samples,
                      options={"dataset": ds, "fid_weights": fid_weights, "is_weights": is_weights,
                               "num_real": num_real, "batch_size": batch_size, **(options or {})})
    info = {**info, "seed": seed, "num_samples": num_samples, "requested_ema": ema}
    return names, ctx, G, info


def eval_record(names: list[str], ctx, info: dict, t_start: float) -> dict:
    """Run ``names`` on ``ctx``; the record ``gcann eval --json`` prints."""
    from .registry import compute_metrics

    result = compute_metrics(names, ctx)
    return {"checkpoint": info.get("path"), "step": info["step"], "kind": info["kind"],
            "dataset": info["dataset"], "ema": info.get("ema", info["requested_ema"]), "seed": info["seed"],
            "num_samples": info["num_samples"], "metrics": result,
            "seconds": round(time.perf_counter() - t_start, 2)}


def evaluate_checkpoint(source: str | Path, *, progress: Callable[[int], None] | None = None, **kwargs) -> dict:
    """The metrics of ``source`` (a run folder's latest checkpoint, or a checkpoint file): ``gcann eval``'s
    record ``{"checkpoint", "step", "kind", "dataset", "ema", "seed", "num_samples", "metrics", "seconds"}``.
    ``kwargs`` are :func:`prepare_eval`'s."""
    t_start = time.perf_counter()
    names, ctx, _, info = prepare_eval(source, **kwargs)
    if progress is not None:
        ctx.options["progress"] = progress
    return eval_record(names, ctx, info, t_start)
