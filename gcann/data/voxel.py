"""Voxel occupancy grids from triangle meshes, and the cached voxel sets built from folders of meshes.

The voxeliser
-------------
Every shape is normalised on its own: the centre of its bounding box goes to
the grid centre and its longest side is scaled to ``R - 2m`` voxels, with the
margin ``m = max(1, R // 32)`` voxels on each side (1 voxel at 32³, 2 at 64³); the
aspect ratio is kept. In grid units voxel ``(i, j, k)`` is the cube
``[i, i+1) × [j, j+1) × [k, k+1)``, and axis ``i`` is the mesh's x, ``j`` its y
(up, for y-up meshes such as OBJ/glTF characters), ``k`` its z.

A voxel is occupied when the surface passes through it or when it lies inside
the surface: the surface is sampled densely (every triangle on a barycentric
lattice no coarser than half a voxel), the voxels holding a sample are marked,
and the enclosed voxels are filled (``scipy.ndimage.binary_fill_holes``: every
empty voxel not connected to the grid's border through empty face-neighbours).
Occupied voxels therefore always meet the mesh's solid (the tests check this
against analytic spheres and boxes). Watertightness is not required: an opening
narrower than a voxel is closed by the marked surface voxels; a shape with a
larger opening keeps its surface shell only, and closed inner cavities are filled.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from gcann.data.base import (DataError, DataWarning, TensorSet, cache_root, check_resolution, content_key,
                             file_stamps, warn_skipped)
from gcann.fileio import atomic_write

__all__ = ["MESH_EXTENSIONS", "VOXELIZER_VERSION", "normalize_to_grid", "voxelize", "voxelize_mesh",
           "load_mesh", "cached_voxels", "build_meshes", "build_bicar3d", "build_random_meshes"]

#: file name endings a mesh folder is searched for (case-insensitive)
MESH_EXTENSIONS = (".obj", ".ply", ".off", ".stl", ".glb", ".gltf")
#: part of every voxel cache key: bump it whenever the voxeliser's output changes
VOXELIZER_VERSION = 1
#: finest lattice spacing of the surface samples, in voxels
SAMPLE_STEP = 0.5


def grid_margin(resolution: int) -> int:
    """Empty voxels kept on each side of a normalised shape: ``R // 32``, at least 1."""
    return max(1, resolution // 32)


def normalize_to_grid(vertices: np.ndarray, resolution: int, margin: float | None = None) -> np.ndarray:
    """Vertices moved and scaled (uniformly) into grid units: bounding-box centre at ``R/2``, longest side
    ``R - 2·margin``."""
    margin = grid_margin(resolution) if margin is None else margin
    v = np.asarray(vertices, dtype=np.float64)
    lo, hi = v.min(0), v.max(0)
    extent = float((hi - lo).max())
    if not np.isfinite(extent) or extent <= 0:
        raise ValueError("the shape has no extent (all vertices coincide, or some are not finite)")
    # a hair under the full span, so that the far faces do not land exactly on a voxel boundary
    scale = (resolution - 2 * margin) * (1 - 1e-9) / extent
    return (v - (lo + hi) / 2) * scale + resolution / 2


def _surface_samples(triangles: np.ndarray, step: float = SAMPLE_STEP) -> np.ndarray:
    """Points on every triangle ``(T, 3, 3)``: a barycentric lattice with spacing at most ``step`` along edges."""
    edges = np.linalg.norm(triangles[:, [1, 2, 0]] - triangles, axis=-1).max(1)
    n = np.maximum(np.ceil(edges / step), 1).astype(np.int64)
    out = [triangles.reshape(-1, 3)]
    for k in np.unique(n[n > 1]):
        i, j = np.meshgrid(np.arange(k + 1), np.arange(k + 1), indexing="ij")
        keep = i + j <= k
        a, b = i[keep] / k, j[keep] / k
        w = np.stack([1 - a - b, a, b], 1)
        sel = triangles[n == k]
        chunk = max(1, 2_000_000 // len(w))  # bounded memory for many large triangles
        for lo in range(0, len(sel), chunk):
            out.append(np.einsum("pk,tkd->tpd", w, sel[lo:lo + chunk]).reshape(-1, 3))
    return np.concatenate(out)


def voxelize(vertices: np.ndarray, faces: np.ndarray, resolution: int, step: float = SAMPLE_STEP) -> np.ndarray:
    """Occupancy ``(R, R, R)`` bool of the mesh whose vertices are already in grid units (see module doc).

    ``step`` is the surface sample spacing in voxels: a voxel the surface only
    grazes (cuts a corner off) can fall between samples and stay empty; a finer
    step finds more of them at a higher cost.
    """
    from scipy import ndimage

    tris = np.asarray(vertices, dtype=np.float64)[np.asarray(faces, dtype=np.int64)]
    grid = np.zeros((resolution,) * 3, dtype=bool)
    if len(tris):
        idx = np.floor(_surface_samples(tris, step)).astype(np.int64)
        idx = idx[np.all((idx >= 0) & (idx < resolution), axis=1)]
        grid[idx[:, 0], idx[:, 1], idx[:, 2]] = True
    return ndimage.binary_fill_holes(grid)


def voxelize_mesh(vertices: np.ndarray, faces: np.ndarray, resolution: int) -> np.ndarray:
    """Normalise (centre, longest side to fill the grid less the margin) and voxelise: ``(R, R, R)`` bool."""
    return voxelize(normalize_to_grid(vertices, resolution), faces, resolution)


def load_mesh(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(vertices, faces)`` of a mesh file (scenes are flattened with their transforms); ValueError if unusable."""
    import trimesh

    try:
        mesh = trimesh.load(str(path), force="mesh", skip_materials=True, process=False)
    except Exception as e:  # noqa: BLE001 -- any loader failure makes the file unusable
        raise ValueError((str(e).splitlines() or [type(e).__name__])[0] or type(e).__name__) from None
    if not isinstance(mesh, trimesh.Trimesh):
        raise ValueError("no triangle mesh in the file")
    v, f = np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int64)
    if len(f) == 0 or len(v) == 0:
        raise ValueError("no triangles")
    if not np.isfinite(v).all():
        raise ValueError("non-finite vertex coordinates")
    return v, f


# ---------------------------------------------------------------------- cached sets
def _pack(grids: np.ndarray) -> np.ndarray:
    return np.packbits(grids.reshape(len(grids), -1), axis=1)


def cached_voxels(name: str, key: str, resolution: int, cache_dir: Any,
                  build: Callable[[], tuple[np.ndarray, list[str], list[tuple[str, str]]]]) -> TensorSet:
    """The voxel set ``key`` from the cache, or ``build()`` it (grids, sources, skipped) and cache it."""
    path = cache_root(cache_dir) / "voxels" / f"{key}.npz"
    n_vox = resolution ** 3
    try:
        with np.load(path, allow_pickle=False) as z:
            bits, sources = z["bits"], [str(s) for s in z["sources"]]
            skipped = [(str(a), str(b)) for a, b in z["skipped"].reshape(-1, 2)]
            if bits.shape != (len(sources), (n_vox + 7) // 8):
                raise ValueError("cache shape does not match")
        grids = np.unpackbits(bits, axis=1, count=n_vox).reshape(-1, *(resolution,) * 3)
    except (FileNotFoundError, NotADirectoryError):
        grids = None
    except (OSError, ValueError, KeyError, EOFError) as e:
        warnings.warn(f"voxel cache {path} is unreadable ({e}); rebuilding it", DataWarning, stacklevel=3)
        grids = None
    if grids is None:
        grids, sources, skipped = build()
        skipped_arr = np.array(skipped, dtype=str).reshape(-1, 2)
        try:
            atomic_write(path, lambda p: np.savez_compressed(p, bits=_pack(grids), sources=np.array(sources, dtype=str),
                                                             skipped=skipped_arr))
        except OSError as e:
            warnings.warn(f"cannot write the voxel cache {path}: {e.strerror or e}; the set is rebuilt next time",
                          DataWarning, stacklevel=3)
    data = torch.from_numpy(np.ascontiguousarray(grids, dtype=np.uint8)).float().unsqueeze(1)
    return TensorSet(data, name=name, kind="voxel", key=key, sources=sources, skipped_files=skipped)


def _find_meshes(root: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        out.extend(Path(dirpath) / f for f in filenames
                   if not f.startswith(".") and f.lower().endswith(MESH_EXTENSIONS))
    return sorted(out)


def _mesh_set(name: str, root: Path, resolution: int, cache_dir: Any, max_meshes: int | None,
              hint: str) -> TensorSet:
    if not root.is_dir():
        raise DataError(f"{name} root {root} does not exist: {hint}")
    files = _find_meshes(root)
    if not files:
        raise DataError(f"{name} root {root} holds no mesh files ({', '.join(MESH_EXTENSIONS)}): {hint}")
    if max_meshes is not None:
        if isinstance(max_meshes, bool) or not isinstance(max_meshes, int) or max_meshes < 1:
            raise DataError(f"{name}: max_meshes={max_meshes!r} is not a positive integer")
        files = files[:max_meshes]
    stamps = file_stamps(files, root)
    key = content_key(name, resolution, [VOXELIZER_VERSION, SAMPLE_STEP, grid_margin(resolution), stamps])

    def build() -> tuple[np.ndarray, list[str], list[tuple[str, str]]]:
        grids, sources, skipped = [], [], []
        for f, (rel, _, _) in zip(files, stamps):
            try:
                v, fc = load_mesh(f)
                grid = voxelize_mesh(v, fc, resolution)
            except ValueError as e:
                skipped.append((rel, str(e)))
                continue
            grids.append(grid)
            sources.append(rel)
        if not grids:
            raise DataError(f"{name} root {root} has {len(files)} mesh file(s) but none is usable "
                            f"(first: {files[0]}: {skipped[0][1]}); {hint}")
        return np.stack(grids), sources, skipped

    ds = cached_voxels(name, key, resolution, cache_dir, build)
    ds.skipped_files = [(str(root / r), why) for r, why in ds.skipped_files]
    warn_skipped(name, ds.skipped_files, len(files), root)
    return ds


def _voxel_resolution(name: str, resolution: int | None, default: int) -> int:
    return check_resolution(name, default if resolution is None else resolution, 8, 128)


def build_meshes(root: str | os.PathLike[str] | None = None, *, resolution: int | None = None,
                 cache_dir: Any = None, max_meshes: int | None = None) -> TensorSet:
    """Every mesh under ``root`` (recursive: .obj .ply .off .stl .glb .gltf), normalised and voxelised; cached."""
    resolution = _voxel_resolution("meshes", resolution, 64)
    hint = f"put mesh files ({', '.join(MESH_EXTENSIONS)}) in it or in its subfolders"
    if root is None:
        raise DataError(f"the meshes dataset needs a root folder: pass the folder of your meshes ({hint})")
    return _mesh_set("meshes", Path(root).expanduser(), resolution, cache_dir, max_meshes, hint)


def build_bicar3d(root: str | os.PathLike[str] | None = None, *, resolution: int | None = None,
                  cache_dir: Any = None, max_meshes: int | None = None) -> TensorSet:
    """3DBiCar's character meshes from a local root (every mesh file under it), voxelised at 64³ by default."""
    resolution = _voxel_resolution("bicar3d", resolution, 64)
    hint = ("put the 3DBiCar character meshes (one .obj per character, any folder tree; textures are ignored) "
            "under it, or train on the stand-in dataset 'biped'")
    if root is None:
        raise DataError(f"3DBiCar is not shipped with gcann: pass the folder that holds its meshes ({hint})")
    return _mesh_set("bicar3d", Path(root).expanduser(), resolution, cache_dir, max_meshes, hint)


def build_random_meshes(root: str | os.PathLike[str] | None = None, *, resolution: int | None = None,
                        cache_dir: Any = None, max_meshes: int | None = None) -> TensorSet:
    """pybullet_data's 1000 random meshes (``random_urdfs/*/*.obj``), voxelised at 32³ by default; cached."""
    resolution = _voxel_resolution("random-meshes", resolution, 32)
    if root is None:
        root = Path(_pybullet_data_path()) / "random_urdfs"
    hint = "pass pybullet_data's random_urdfs folder (or any folder of .obj meshes)"
    return _mesh_set("random-meshes", Path(root).expanduser(), resolution, cache_dir, max_meshes, hint)


def _pybullet_data_path() -> str:
    try:
        import pybullet_data
    except ImportError:
        raise DataError("pybullet_data (shipped with pybullet) is not installed: pip install pybullet") from None
    return pybullet_data.getDataPath()
