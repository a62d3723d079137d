"""LSUN scene categories from their LMDB export, decoded lazily with DCGAN's preprocessing.

LSUN's release (``fyu/lsun``'s ``download.py``, unzipped) gives one LMDB database per
category and split, a folder ``{category}_{split}_lmdb/`` holding ``data.mdb`` and
``lock.mdb``; each record is an image id (the key) and its encoded image (WebP in
the release; any format PIL reads is accepted). torchvision's ``datasets.LSUN``,
which the (α_D, α_G)-GAN authors used for LSUN Classroom, reads the same layout.

The database is opened read-only, without a lock file (a shared, read-only copy
works), once per process. The
index lists the keys once and checks every record (``verify="header"``: the
image header parses; ``"full"``: the image decodes; ``"none"``: the record is not
empty); records that fail are skipped with one warning, and the verdicts are cached
by the database file's size and modification time. Images are ``Resize(R)`` +
``CenterCrop(R)`` + ``Normalize(0.5, 0.5)`` (:func:`gcann.data.images.preprocess`);
the authors trained at 112×112.
"""
from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path
from typing import Any

from torch import Tensor
from torch.utils.data import Dataset

from gcann.data.base import DataError, DataWarning, cache_root, content_key, warn_skipped
from gcann.data.images import PREPROCESS_VERSION, _options, check_decodable, preprocess
from gcann.fileio import atomic_write_text

__all__ = ["LMDBImageSet", "build_lsun", "LSUN_SPLITS"]

LSUN_SPLITS = ("train", "val")


def _lmdb():
    try:
        import lmdb
    except ImportError:  # pragma: no cover -- a dependency of the project
        raise DataError("reading LSUN needs the lmdb package: pip install lmdb") from None
    return lmdb


# database folder -> its read-only handle: the lmdb package allows one per process, and a forked DataLoader worker
# inherits its parent's (read-only and lock-free, as torchvision's LSUN reader uses it); spawned workers open anew
_ENVS: dict[str, Any] = {}


def _open(path: Path):
    """This process's read-only handle on the LMDB database in folder ``path`` (no lock file, no read-ahead)."""
    lmdb = _lmdb()
    where = str(Path(path).resolve())
    if where in _ENVS:
        return _ENVS[where]
    try:
        env = _ENVS[where] = lmdb.open(where, readonly=True, lock=False, readahead=False, meminit=False,
                                       max_readers=64)
        return env
    except lmdb.Error as e:
        raise DataError(f"cannot open the LMDB database {path} ({str(e).splitlines()[0]}): it should be the "
                        f"folder that holds data.mdb, as LSUN's export unzips it") from None


class LMDBImageSet(Dataset):
    """Images stored as encoded records of an LMDB database, decoded in ``__getitem__``.

    ``keys`` are the usable records (in the database's key order), ``skipped_files`` the ``(key, reason)``
    of those the index rejected, ``skipped`` their count.
    """

    kind = "image"

    def __init__(self, path: Path, keys: list[bytes], *, name: str, key: str, resolution: int, channels: int,
                 skipped: list[tuple[str, str]] | None = None) -> None:
        self.path, self.keys = path, keys
        self.name, self.key = name, key
        self.resolution, self.channels = resolution, channels
        self.sample_shape = (channels, resolution, resolution)
        self.skipped_files = list(skipped or [])
        self.skipped = len(self.skipped_files)

    def __len__(self) -> int:
        return len(self.keys)

    def _txn(self):
        return _open(self.path).begin(write=False)

    def __getitem__(self, i: int) -> Tensor:
        from PIL import Image

        key = self.keys[i]
        with self._txn() as txn:
            buf = txn.get(key)
        if buf is None:
            raise DataError(f"record {key.decode(errors='replace')!r} is no longer in {self.path}: the database "
                            f"changed after it was indexed; build the dataset again")
        try:
            with Image.open(io.BytesIO(buf)) as img:
                return preprocess(img, self.resolution, self.channels)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise DataError(f"cannot decode record {key.decode(errors='replace')!r} of {self.path} ({reason}); "
                            f"build the dataset with verify='full' to skip such records at index time") from None

    def __repr__(self) -> str:
        return f"LMDBImageSet({self.name!r}, {len(self)} × {self.sample_shape}, key={self.key!r})"


def _check_record(buf: bytes, verify: str) -> str | None:
    """None when an encoded image passes the ``verify`` check, else the reason it fails."""
    return "empty record" if not buf else check_decodable(io.BytesIO(buf), verify)


def _index(path: Path, verify: str, cache_dir: Any) -> tuple[list[bytes], list[tuple[str, str]], list]:
    """The usable keys, the ``(key, reason)`` of the rejected ones and the database's stamp; cached by stamp."""
    st = (path / "data.mdb").stat()
    stamp = [str(path.resolve()), st.st_size, st.st_mtime_ns]
    cache = cache_root(cache_dir) / "index" / (content_key("lmdb", 0, [verify, stamp]) + ".json")
    try:
        saved = json.loads(cache.read_text())
        return [k.encode("latin-1") for k in saved["good"]], [tuple(b) for b in saved["bad"]], stamp
    except (OSError, ValueError, KeyError, TypeError):
        pass
    good, bad = [], []
    with _open(path).begin(write=False) as txn:
        for key, buf in txn.cursor():
            reason = _check_record(bytes(buf), verify)
            if reason is None:
                good.append(bytes(key))
            else:
                bad.append((bytes(key).decode(errors="replace"), reason))
    try:
        atomic_write_text(cache, json.dumps({"good": [k.decode("latin-1") for k in good], "bad": bad}))
    except OSError as e:
        warnings.warn(f"cannot write the LMDB index cache {cache}: {e.strerror or e}", DataWarning, stacklevel=3)
    return good, bad, stamp


def build_lsun(root: str | os.PathLike[str] | None = None, *, resolution: int | None = None, cache_dir: Any = None,
               category: str = "classroom", split: str = "train", channels: int = 3,
               verify: str = "header") -> LMDBImageSet:
    """An LSUN category from a local root: ``{root}/{category}_{split}_lmdb/`` (LSUN's export, unzipped), or the
    LMDB folder itself (it holds ``data.mdb``); 64×64 RGB unless ``resolution`` says otherwise."""
    resolution = _options("lsun", resolution, channels, verify)
    if split not in LSUN_SPLITS:
        raise DataError(f"lsun: split={split!r} is not one of {', '.join(map(repr, LSUN_SPLITS))}")
    if not category or not all(c.isalnum() or c == "_" for c in category):
        raise DataError(f"lsun: category {category!r} is not a name such as classroom, bedroom, church_outdoor")
    hint = (f"put LSUN's {category}_{split}_lmdb.zip, unzipped, under {root} (a folder {category}_{split}_lmdb/ "
            f"holding data.mdb), or pass that folder itself")
    if root is None:
        raise DataError(f"LSUN is not shipped with gcann: pass the folder that holds {category}_{split}_lmdb/ "
                        f"(from LSUN's download script, unzipped)")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"LSUN root {root} is not a folder: {hint}")
    path = next((p for p in (root / f"{category}_{split}_lmdb", root) if (p / "data.mdb").is_file()), None)
    if path is None:
        raise DataError(f"LSUN root {root} has no {category}_{split}_lmdb/data.mdb: {hint}")
    good, bad, stamp = _index(path, verify, cache_dir)
    if not good:
        first = f" (first: {bad[0][0]}: {bad[0][1]})" if bad else ""
        raise DataError(f"LMDB database {path} holds {len(bad)} record(s) and none is a readable image{first}")
    warn_skipped(f"lsun {category}_{split}", bad, len(good) + len(bad), path)
    name = f"lsun-{category}-{split}"
    key = content_key(name, resolution, [PREPROCESS_VERSION, channels, stamp[1:], len(good), verify])
    return LMDBImageSet(path, good, name=name, key=key, resolution=resolution, channels=channels, skipped=bad)
