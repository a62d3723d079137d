"""Training data: real loaders for local roots and embedded sets that ship inside packages.

Nothing is downloaded. ``build_dataset(name, root, resolution=..., cache_dir=...,
**options)`` returns a ``torch.utils.data.Dataset`` of float32 samples (images
``(C, H, W)`` in [-1, 1], voxels ``(1, R, R, R)`` in {0, 1}) with the
attributes ``kind``, ``sample_shape``, ``name`` and ``key`` (content-derived);
in-memory sets also hold ``.data``, the whole set as one tensor. Each loader
reports a missing root, an empty folder or unreadable files with
:class:`DataError` (one line naming what is wrong and what to put where).
docs/data.md describes every dataset, its layout, the cache and the
corrupt-file policy.
"""
from __future__ import annotations

import inspect
import os
from typing import Any, Callable

from gcann.data.base import DataError, DataWarning, TensorSet, cache_root
from gcann.data.biped import build_biped
from gcann.data.digits import build_fashion_mnist, build_mnist5k, read_idx
from gcann.data.images import ImageFolderSet, build_celeba, build_images
from gcann.data.lsun import LMDBImageSet, build_lsun
from gcann.data.voxel import build_bicar3d, build_meshes, build_random_meshes, voxelize_mesh

__all__ = ["DATASETS", "DataError", "DataWarning", "ImageFolderSet", "LMDBImageSet", "TensorSet", "build_dataset", "cache_root",
           "dataset_key", "read_idx", "voxelize_mesh"]

#: dataset name -> builder ``fn(root, *, resolution, cache_dir, **options)``
DATASETS: dict[str, Callable[..., Any]] = {
    "celeba": build_celeba,
    "images": build_images,
    "lsun": build_lsun,
    "fashion-mnist": build_fashion_mnist,
    "mnist5k": build_mnist5k,
    "bicar3d": build_bicar3d,
    "meshes": build_meshes,
    "biped": build_biped,
    "random-meshes": build_random_meshes,
}


def build_dataset(name: str, root: str | os.PathLike[str] | None = None, *, resolution: int | None = None,
                  cache_dir: str | os.PathLike[str] | None = None, **options: Any):
    """The dataset ``name`` read from ``root`` (None: the dataset's shipped default, where it has one)."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    builder = DATASETS[name]
    params = inspect.signature(builder).parameters
    unknown = [k for k in options if k not in params or k in ("root", "resolution", "cache_dir")]
    if unknown:
        takes = [p for p in params if p not in ("root", "resolution", "cache_dir")]
        raise DataError(f"dataset {name!r} takes no option {', '.join(map(repr, unknown))}; "
                        f"its options: {', '.join(takes) or 'none'}")
    return builder(root, resolution=resolution, cache_dir=cache_dir, **options)


def dataset_key(ds: Any) -> str:
    """The content-derived key of a dataset (what caches and metrics file results under)."""
    return ds.key
