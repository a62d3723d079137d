"""What every dataset shares: the error and warning types, content keys, the cache folder, in-memory sets."""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Iterable

import torch
from torch import Tensor
from torch.utils.data import Dataset

from gcann.errors import GcannError

__all__ = ["DataError", "DataWarning", "TensorSet", "cache_root", "content_key", "file_stamps",
           "check_resolution", "check_choice", "warn_skipped"]


class DataError(GcannError, ValueError):
    """The data asked for is missing or unusable; the message says what to put where, in one line."""


class DataWarning(UserWarning):
    """Files were skipped while a dataset was indexed or built (the dataset still has usable samples)."""


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The cache folder: ``cache_dir``, else ``$GCANN_CACHE``, else ``~/.cache/gcann``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("GCANN_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "gcann"


def file_stamps(files: Iterable[Path], base: Path) -> list[tuple[str, int, int]]:
    """``(path relative to base, size, mtime in ns)`` of each file: what a content key is made of."""
    out = []
    for f in files:
        st = f.stat()
        out.append((f.relative_to(base).as_posix(), st.st_size, st.st_mtime_ns))
    return out


def content_key(name: str, resolution: int, payload: Any) -> str:
    """``"<name>-<resolution>-<12 hex digits>"``: a short key of everything ``payload`` holds (JSON-able)."""
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return f"{name}-{resolution}-{hashlib.sha256(blob).hexdigest()[:12]}"


def check_resolution(name: str, resolution: Any, lo: int, hi: int) -> int:
    if isinstance(resolution, bool) or not isinstance(resolution, int) or not lo <= resolution <= hi:
        raise DataError(f"resolution {resolution!r} is not usable for {name}: give an integer side between "
                        f"{lo} and {hi}")
    return resolution


def check_choice(name: str, option: str, value: Any, choices: Iterable[Any]) -> Any:
    choices = tuple(choices)
    if value not in choices:
        raise DataError(f"{name}: {option}={value!r} is not one of {', '.join(map(repr, choices))}")
    return value


def warn_skipped(name: str, skipped: list[tuple[str, str]], total: int, where: Path) -> None:
    """One warning line for the files a build skipped (``skipped``: ``(path, reason)`` pairs)."""
    if skipped:
        path, reason = skipped[0]
        warnings.warn(f"{name}: skipped {len(skipped)} unreadable file(s) of {total} under {where} "
                      f"(first: {path}: {reason})", DataWarning, stacklevel=3)


class TensorSet(Dataset):
    """An in-memory dataset: ``.data`` holds every sample, ``(N, *sample_shape)`` float32.

    ``labels`` (class labels, where the source has them), ``sources`` (the file or
    pose each sample came from) and ``skipped`` (how many source files were
    unusable) describe the set.
    """

    def __init__(self, data: Tensor, *, name: str, kind: str, key: str, labels: Tensor | None = None,
                 sources: list[str] | None = None, skipped_files: list[tuple[str, str]] | None = None) -> None:
        if data.dtype != torch.float32:
            raise TypeError(f"dataset tensors are float32, got {data.dtype}")
        self.data = data
        self.name, self.kind, self.key = name, kind, key
        self.sample_shape = tuple(data.shape[1:])
        self.labels = labels
        self.sources = sources
        self.skipped_files = list(skipped_files or [])
        self.skipped = len(self.skipped_files)

    def __len__(self) -> int:
        return self.data.shape[0]

    def __getitem__(self, i: int) -> Tensor:
        return self.data[i]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {len(self)} × {self.sample_shape}, key={self.key!r})"
