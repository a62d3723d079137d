"""Writing files so that a reader never sees half of one.

Every output of the package (CLI results, run-folder files, checkpoints) goes
through :func:`atomic_write`: the content is written to a temporary file in the
destination folder, flushed to disk, and renamed over the destination in one
step. A crash or a kill during the write leaves the previous file intact.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

__all__ = ["atomic_write", "atomic_write_text"]


def atomic_write(path: str | os.PathLike[str], write: Callable[[str], object]) -> Path:
    """Call ``write(tmp_path)`` to fill a temporary file, then move it to ``path``.

    Created files get the usual permissions (``0666`` less the umask), not the
    ``0600`` of :func:`tempfile.mkstemp`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the temporary name keeps the suffix: writers such as numpy.savez append one otherwise
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp.", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """:func:`atomic_write` of a UTF-8 string."""
    return atomic_write(path, lambda p: Path(p).write_text(text, encoding="utf-8"))
