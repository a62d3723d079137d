"""3D metrics on voxel shapes: Chamfer distance, COV, MMD and 1-NNA on surface point clouds.

Point clouds
    A voxel grid ``(R, R, R)`` is occupied where its value is > 0.5; its surface
    voxels are the occupied ones with an empty 6-neighbour (outside the grid
    counts as empty). Its cloud holds ``num_points`` (2,048) voxel centres
    ``(i + 0.5) / R`` in the unit cube: every surface voxel ``⌊P/n⌋`` or ``⌈P/n⌉``
    times when there are ``n < P`` of them, else ``P`` of them drawn without
    replacement (seeded).

Chamfer distance (as Achlioptas et al. 2018 and PointFlow compute it)
    ``CD(X, Y) = mean_x min_y |x - y|² + mean_y min_x |x - y|²``.

Generated ``S_g`` against reference ``S_r`` shapes (PointFlow's ``lgan_mmd``,
``lgan_cov``, ``lgan_mmd_smp`` and ``1-NN-CD-acc``):

* ``mmd`` = mean over ``Y ∈ S_r`` of ``min_{X ∈ S_g} CD(X, Y)`` (fidelity);
* ``cov`` = fraction of ``S_r`` that is the nearest reference of some ``X ∈ S_g``;
* ``chamfer`` = mean over ``X ∈ S_g`` of ``min_{Y ∈ S_r} CD(X, Y)``: how far a
  generated shape is from the closest real one (Estal's GCANN paper: "Chamfer distance
  between generated and real models");
* ``1nna`` = leave-one-out 1-nearest-neighbour accuracy of telling ``S_g`` from
  ``S_r`` in ``S_g ∪ S_r`` (0.5 is ideal; a collapsed generator scores ~1).

Computation
    :func:`pairwise_chamfer` is the general batched form for any clouds
    (``torch.cdist``; on the GPU when the tensors are there). For clouds on a
    voxel grid :func:`chamfer_matrices` is exact and much faster: the squared
    distance from every grid cell to a cloud is that cloud's distance field
    (an exact Euclidean distance transform: scipy's on the CPU, a batched
    separable transform on the GPU), so
    ``mean_x min_y |x - y|²`` is the cloud-weight vector of X times the field of
    Y, and a whole matrix of Chamfer distances is one sparse-dense product.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import Tensor

from .diversity import BATCH, batch_slices, iou_distances
from .registry import EvalContext, MetricError, MetricUnavailable, register_metric

__all__ = ["NUM_POINTS", "binarize", "chamfer_distance", "chamfer_matrices", "coverage_mmd", "distance_field",
           "one_nn_accuracy", "pairwise_chamfer", "surface_mask", "surface_points"]

NUM_POINTS = 2048
_TOL = 1e-3
_FAR = 1e8  # "no point on this line yet" in the distance field; three of them still fit a float32


# ---------------------------------------------------------------------------- #
# grids and clouds
# ---------------------------------------------------------------------------- #
def binarize(voxels: Tensor, threshold: float = 0.5) -> Tensor:
    """Occupancy ``(N, R, R, R)`` (bool) of grids ``(N, 1, R, R, R)`` or ``(N, R, R, R)`` with values in [0, 1]."""
    v = torch.as_tensor(voxels)
    if v.dim() == 5 and v.shape[1] == 1:
        v = v[:, 0]
    if v.dim() != 4 or not (v.shape[1] == v.shape[2] == v.shape[3]):
        raise MetricError(f"voxels must have shape (N, 1, R, R, R) or (N, R, R, R), got {tuple(torch.as_tensor(voxels).shape)}")
    if v.dtype == torch.bool:
        return v
    v = v.float()
    if not torch.isfinite(v).all():
        raise MetricError("voxels hold NaN or Inf")
    if len(v) and (float(v.min()) < -_TOL or float(v.max()) > 1 + _TOL):
        raise MetricError(f"voxel values must be in [0, 1], got [{float(v.min()):.4g}, {float(v.max()):.4g}]")
    return v > threshold


def surface_mask(occupied: Tensor) -> Tensor:
    """Occupied cells with at least one empty 6-neighbour (cells outside the grid are empty)."""
    occ = occupied.bool()
    p = torch.nn.functional.pad(occ.float(), (1, 1, 1, 1, 1, 1)).bool()
    inner = (p[:, :-2, 1:-1, 1:-1] & p[:, 2:, 1:-1, 1:-1] & p[:, 1:-1, :-2, 1:-1] & p[:, 1:-1, 2:, 1:-1]
             & p[:, 1:-1, 1:-1, :-2] & p[:, 1:-1, 1:-1, 2:])
    return occ & ~inner


def surface_points(voxels: Tensor, num_points: int = NUM_POINTS, *, threshold: float = 0.5,
                   seed: int = 0) -> Tensor:
    """Integer voxel indices ``(N, num_points, 3)`` of each grid's surface cloud (see the module docstring).

    The points are ``(index + 0.5) / R`` in the unit cube. Raises
    :class:`MetricError` naming the empty grids, which have no surface.
    """
    surf = surface_mask(binarize(voxels, threshold))
    counts = surf.flatten(1).sum(dim=1)
    empty = (counts == 0).nonzero().flatten().tolist()
    if empty:
        raise MetricError(f"{len(empty)} of {len(surf)} shapes are empty (no voxel > {threshold}), "
                          f"e.g. shape {empty[0]}: they have no surface points")
    gen = torch.Generator().manual_seed(seed)
    out = torch.empty(len(surf), num_points, 3, dtype=torch.long)
    for k in range(len(surf)):
        cells = surf[k].nonzero()                              # (n, 3)
        n = len(cells)
        reps, rest = divmod(num_points, n)
        pick = torch.randperm(n, generator=gen)[:rest]
        out[k] = torch.cat([cells.repeat(reps, 1), cells[pick]])
    return out


def _resolution(*clouds: Tensor) -> None:
    for c in clouds:
        if c.dim() != 3 or c.shape[-1] != 3:
            raise MetricError(f"point clouds must have shape (N, P, 3), got {tuple(c.shape)}")


# ---------------------------------------------------------------------------- #
# Chamfer distance, general form
# ---------------------------------------------------------------------------- #
def chamfer_distance(x: Tensor, y: Tensor) -> Tensor:
    """``CD`` of paired clouds ``(B, P, 3)`` and ``(B, Q, 3)`` (or single clouds ``(P, 3)``): shape ``(B,)``."""
    single = x.dim() == 2
    if single:
        x, y = x[None], y[None]
    _resolution(x, y)
    d = torch.cdist(x, y).square()
    cd = d.min(dim=2).values.mean(dim=1) + d.min(dim=1).values.mean(dim=1)
    return cd[0] if single else cd


def pairwise_chamfer(a: Tensor, b: Tensor, *, budget: int = 1 << 25) -> Tensor:
    """``(N, M)`` Chamfer distances between every cloud of ``a (N, P, 3)`` and ``b (M, Q, 3)``.

    Pairs are batched so that one ``cdist`` holds about ``budget`` distances;
    runs where the tensors are (GPU when they are on it).
    """
    _resolution(a, b)
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        raise MetricError("point clouds hold NaN or Inf")
    n, p = a.shape[:2]
    m, q = b.shape[:2]
    out = torch.empty(n, m, dtype=torch.promote_types(a.dtype, b.dtype), device=a.device)
    cols = max(1, min(m, budget // (p * q)))
    for i in range(n):
        for j in range(0, m, cols):
            bj = b[j:j + cols]
            d = torch.cdist(a[i].expand(len(bj), p, 3), bj).square()
            out[i, j:j + cols] = d.min(dim=2).values.mean(dim=1) + d.min(dim=1).values.mean(dim=1)
    return out


# ---------------------------------------------------------------------------- #
# Chamfer distance of clouds on a grid: distance fields and one product
# ---------------------------------------------------------------------------- #
def distance_field(mask: Tensor) -> Tensor:
    """Squared distance (in cells) from every cell to the nearest marked cell, exact: ``(N, R, R, R)`` float32.

    On the CPU: scipy's exact Euclidean distance transform per grid. On a GPU:
    the separable form ``min_i f(i) + (x - i)²`` along each axis in turn
    (Felzenszwalb & Huttenlocher's decomposition, brute force per line, batched).
    A grid with no marked cell gets ``inf`` everywhere.
    """
    m = mask.bool()
    if m.device.type == "cpu":
        from scipy.ndimage import distance_transform_edt

        out = torch.empty(m.shape, dtype=torch.float32)
        for k, grid in enumerate(m.numpy()):
            if grid.any():
                d = distance_transform_edt(~grid)
                out[k] = torch.from_numpy((d * d).astype(np.float32))  # integers < 2**24: exact in float32
            else:
                out[k] = float("inf")
        return out
    return _separable_field(m)


def _separable_field(m: Tensor) -> Tensor:
    r = m.shape[-1]
    f = torch.where(m, 0.0, _FAR).float()
    ax = torch.arange(r, device=m.device, dtype=torch.float32)
    sq = (ax[:, None] - ax[None, :]).square()                       # (x, i)
    for dim in (3, 2, 1):
        f = f.movedim(dim, -1)
        f = (f.unsqueeze(-2) + sq).amin(dim=-1)                     # (..., x) = min_i f(..., i) + (x - i)²
        f = f.movedim(-1, dim)
    empty = ~m.flatten(1).any(dim=1)
    f[empty] = float("inf")
    return f


def _weights(idx: Tensor, r: int, device: torch.device) -> Tensor:
    """Cloud weights ``(N, R³)`` as a sparse CSR matrix: multiplicity / P of each cell."""
    n, p = idx.shape[:2]
    flat = (idx[..., 0] * r + idx[..., 1]) * r + idx[..., 2]          # (N, P)
    rows = torch.arange(n).repeat_interleave(p)
    w = torch.sparse_coo_tensor(torch.stack([rows, flat.flatten()]), torch.full((n * p,), 1.0 / p),
                                (n, r ** 3), check_invariants=True).coalesce()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return w.to_sparse_csr().to(device)


def _fields(idx: Tensor, r: int, device: torch.device, batch: int):
    """Distance fields ``(c, R³)`` of the clouds ``idx``, ``batch`` clouds at a time: yields ``(start, fields)``."""
    per = max(1, (1 << 25) // r ** 4)                                # transform this many grids at once
    for s in range(0, len(idx), batch):
        chunk = idx[s:s + batch].to(device)
        mask = torch.zeros(len(chunk), r, r, r, dtype=torch.bool, device=device)
        k = torch.arange(len(chunk), device=device)[:, None].expand(chunk.shape[:2])
        mask[k, chunk[..., 0], chunk[..., 1], chunk[..., 2]] = True
        f = torch.cat([distance_field(mask[t:t + per]) for t in range(0, len(mask), per)])
        yield s, f.reshape(len(chunk), -1)


def chamfer_matrices(gen: Tensor, ref: Tensor | None, resolution: int, *, self_distances: bool = False,
                     device: str | torch.device | None = None) -> dict[str, Tensor]:
    """Exact Chamfer matrices of integer clouds ``(N, P, 3)`` on an ``R³`` grid (see the module docstring).

    Returns ``{"gr": (Ng, Nr)}`` and, with ``self_distances`` (or ``ref=None``),
    ``"gg"`` and ``"rr"``; distances in unit-cube coordinates, float64 on the CPU.
    """
    r = int(resolution)
    sets = {"g": gen} if ref is None else {"g": gen, "r": ref}
    for c in sets.values():
        _resolution(c)
        if c.dtype not in (torch.int64, torch.int32) or (len(c) and (int(c.min()) < 0 or int(c.max()) >= r)):
            raise MetricError(f"grid clouds must hold integer cell indices in [0, {r})")
    device = torch.device(device) if device is not None else torch.device("cpu")
    w = {k: _weights(c, r, device) for k, c in sets.items()}
    wanted = {("g", "r"), ("r", "g")} if ref is not None else set()
    if self_distances or ref is None:
        wanted |= {(k, k) for k in sets}
    terms = {pair: torch.empty(len(sets[pair[0]]), len(sets[pair[1]]), dtype=torch.float64) for pair in wanted}
    batch = max(1, (1 << 28) // (4 * r ** 3))                        # ~256 MB of fields at a time
    for k, c in sets.items():                                        # field of k's clouds ...
        for s, f in _fields(c, r, device, batch):
            ft = f.T.contiguous()
            for (a, b) in wanted:
                if b == k:                                           # ... against every cloud of a
                    terms[(a, b)][:, s:s + len(f)] = torch.sparse.mm(w[a], ft).double().cpu()
    scale = 1.0 / r ** 2
    out = {}
    for a, b in {tuple(sorted(p)) for p in wanted}:
        key = "gr" if (a, b) == ("g", "r") else a + b
        out[key] = (terms[(a, b)] + terms[(b, a)].T) * scale
    return out


# ---------------------------------------------------------------------------- #
# COV, MMD, 1-NNA
# ---------------------------------------------------------------------------- #
def coverage_mmd(d_gr: Tensor) -> dict[str, float]:
    """``cov``, ``mmd`` and ``chamfer`` from the ``(N_gen, N_ref)`` distance matrix (PointFlow's definitions)."""
    if d_gr.dim() != 2 or 0 in d_gr.shape:
        raise MetricError(f"need a non-empty (N_gen, N_ref) distance matrix, got {tuple(d_gr.shape)}")
    nearest_ref = d_gr.argmin(dim=1)
    return {"cov": len(torch.unique(nearest_ref)) / d_gr.shape[1],
            "mmd": float(d_gr.min(dim=0).values.mean()),
            "chamfer": float(d_gr.min(dim=1).values.mean())}


def one_nn_accuracy(d_gr: Tensor, d_gg: Tensor, d_rr: Tensor) -> float:
    """Leave-one-out 1-NN accuracy of telling generated from reference samples (ties: the first index wins,
    references first, as PointFlow orders them)."""
    ng, nr = d_gr.shape
    if d_gg.shape != (ng, ng) or d_rr.shape != (nr, nr) or ng < 1 or nr < 1 or ng + nr < 3:
        raise MetricError(f"1-NNA needs matrices (Ng, Nr), (Ng, Ng), (Nr, Nr); got {tuple(d_gr.shape)}, "
                          f"{tuple(d_gg.shape)}, {tuple(d_rr.shape)}")
    full = torch.cat([torch.cat([d_rr, d_gr.T], 1), torch.cat([d_gr, d_gg], 1)], 0).clone()
    full.fill_diagonal_(float("inf"))
    label = torch.cat([torch.ones(nr, dtype=torch.bool), torch.zeros(ng, dtype=torch.bool)])
    pred = label[full.argmin(dim=1)]
    return float((pred == label).double().mean())


# ---------------------------------------------------------------------------- #
# registered metrics
# ---------------------------------------------------------------------------- #
DEFAULT_SHAPES = 1000


def _clouds(ctx: EvalContext, x: Tensor, what: str, seed: int) -> Tensor:
    try:
        return surface_points(x, int(ctx.option("num_points", NUM_POINTS)), seed=seed)
    except MetricError as e:
        if "empty" in str(e) and what == "generated":
            raise MetricUnavailable(f"generated {e}") from None
        raise MetricError(f"{what}: {e}") from None


def _matrices(ctx: EvalContext, self_distances: bool) -> dict[str, Tensor]:
    have = ctx.cache.get("shape_matrices")
    if have is not None and (not self_distances or "gg" in have):
        return have
    if ctx.kind != "voxel":
        raise MetricError(f"3D shape metrics are for voxels, not {ctx.kind}")
    n = min(int(ctx.num_samples or DEFAULT_SHAPES), ctx.num_reals())  # as many generated as reference shapes
    ref_vox = ctx.real(n, seed=int(ctx.option("real_seed", 0)))
    gen_vox = ctx.generated(n)
    if gen_vox.shape[1:] != ref_vox.shape[1:]:
        raise MetricError(f"generated shapes {tuple(gen_vox.shape[1:])} and real shapes "
                          f"{tuple(ref_vox.shape[1:])} differ")
    r = gen_vox.shape[-1]
    gen = _clouds(ctx, gen_vox, "generated", seed=1)
    ref = _clouds(ctx, ref_vox, "real", seed=2)
    out = chamfer_matrices(gen, ref, r, self_distances=self_distances, device=ctx.device)
    ctx.cache["shape_matrices"] = out
    return out


@register_metric("chamfer", kinds=("voxel",))
def _chamfer(ctx: EvalContext) -> dict[str, float]:
    """Mean over generated shapes of the Chamfer distance to the nearest real shape."""
    return {"chamfer": coverage_mmd(_matrices(ctx, False)["gr"])["chamfer"]}


@register_metric("cov", kinds=("voxel",))
def _cov(ctx: EvalContext) -> dict[str, float]:
    """Coverage (Chamfer): fraction of real shapes that are some generated shape's nearest."""
    return {"cov": coverage_mmd(_matrices(ctx, False)["gr"])["cov"]}


@register_metric("mmd", kinds=("voxel",))
def _mmd(ctx: EvalContext) -> dict[str, float]:
    """Minimum matching distance (Chamfer): mean over real shapes of the distance to the nearest generated."""
    return {"mmd": coverage_mmd(_matrices(ctx, False)["gr"])["mmd"]}


@register_metric("1nna", kinds=("voxel",), min_samples=2)
def _one_nna(ctx: EvalContext) -> dict[str, float]:
    """1-NN accuracy (Chamfer) between generated and real shapes; 0.5 is ideal."""
    m = _matrices(ctx, True)
    return {"1nna": one_nn_accuracy(m["gr"], m["gg"], m["rr"])}


def _mean_off_diagonal_in_batches(n: int, distances) -> float:
    """Mean over consecutive batches of 64 of the mean off-diagonal entry of ``distances(batch_slice)``."""
    vals = []
    for s in batch_slices(n, BATCH):
        d = distances(s)
        b = len(d)
        vals.append(float((d.sum() - d.diagonal().sum()) / (b * (b - 1))))
    return sum(vals) / len(vals)


@register_metric("pairwise_iou", kinds=("voxel",))
def _pairwise_iou(ctx: EvalContext) -> dict[str, float]:
    """Voxel diversity: mean pairwise IoU distance of the occupancy (> 0.5) within generated batches of 64."""
    occ = binarize(ctx.generated(int(ctx.num_samples or 512)))
    return {"pairwise_iou": _mean_off_diagonal_in_batches(len(occ), lambda s: iou_distances(occ[s]))}


@register_metric("pairwise_chamfer", kinds=("voxel",))
def _pairwise_chamfer(ctx: EvalContext) -> dict[str, float]:
    """Voxel diversity: mean Chamfer distance between generated shapes within batches of 64."""
    x = ctx.generated(int(ctx.num_samples or 512))
    clouds = _clouds(ctx, x, "generated", seed=1)
    return {"pairwise_chamfer": _mean_off_diagonal_in_batches(
        len(clouds), lambda s: chamfer_matrices(clouds[s], None, x.shape[-1], device=ctx.device)["gg"])}
