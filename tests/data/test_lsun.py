"""LSUN's LMDB export: a database the tests write (WebP, JPEG and PNG records, corrupt ones included)."""
from __future__ import annotations

import io

import lmdb
import numpy as np
import pytest
import torch
from PIL import Image

from gcann.data import DataError, DataWarning, build_dataset
from gcann.data.images import preprocess


def _encoded(i: int, fmt: str, size=(40, 30)) -> bytes:
    rng = np.random.default_rng(i)
    img = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    buf = io.BytesIO()
    img.save(buf, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    return buf.getvalue()


def _write_db(folder, records: dict[bytes, bytes]) -> None:
    folder.mkdir(parents=True)
    env = lmdb.open(str(folder), map_size=1 << 26)
    with env.begin(write=True) as txn:
        for k, v in records.items():
            txn.put(k, v)
    env.close()


@pytest.fixture
def lsun_root(tmp_path):
    good = {f"{i:040x}".encode(): _encoded(i, fmt) for i, fmt in enumerate(["WEBP", "JPEG", "PNG", "WEBP", "WEBP"])}
    bad = {b"f" * 40: b"", b"e" * 40: b"not an image at all", b"d" * 40: _encoded(9, "WEBP")[:30]}
    _write_db(tmp_path / "lsun" / "classroom_train_lmdb", {**good, **bad})
    return tmp_path / "lsun", good, bad


def test_records_decode_with_dcgan_preprocessing_and_corrupt_ones_are_skipped(lsun_root, tmp_path):
    root, good, bad = lsun_root
    with pytest.warns(DataWarning, match=r"skipped 3 unreadable file\(s\) of 8"):
        ds = build_dataset("lsun", root, resolution=24, cache_dir=tmp_path / "cache")
    assert len(ds) == 5 and ds.skipped == 3 and ds.sample_shape == (3, 24, 24)
    assert {r for _, r in ds.skipped_files} >= {"empty record"}
    for i, key in enumerate(sorted(good)):         # LMDB's key order
        with Image.open(io.BytesIO(good[key])) as img:
            want = preprocess(img, 24, 3)
        assert torch.equal(ds[i], want)
        assert -1 <= float(ds[i].min()) and float(ds[i].max()) <= 1
    # the LMDB folder itself is accepted as the root, and gives the same images and key
    with pytest.warns(DataWarning):
        same = build_dataset("lsun", root / "classroom_train_lmdb", resolution=24, cache_dir=tmp_path / "cache")
    assert same.key == ds.key and torch.equal(same[2], ds[2])
    # a DataLoader with workers: each process opens its own handle
    loader = torch.utils.data.DataLoader(ds, batch_size=5, num_workers=2)
    assert torch.equal(next(iter(loader)), torch.stack([ds[i] for i in range(5)]))


def test_the_index_is_cached_and_a_truncated_record_fails_at_load_unless_fully_verified(lsun_root, tmp_path,
                                                                                         monkeypatch):
    root, good, _ = lsun_root
    cache = tmp_path / "cache"
    with pytest.warns(DataWarning):
        build_dataset("lsun", root, resolution=16, cache_dir=cache)
    import gcann.data.lsun as lsun_mod

    monkeypatch.setattr(lsun_mod, "_check_record", lambda *a: pytest.fail("the index was not cached"))
    with pytest.warns(DataWarning):
        build_dataset("lsun", root, resolution=16, cache_dir=cache)
    monkeypatch.undo()
    # a record whose header parses but whose data is cut: 'header' keeps it and loading names it; 'full' skips it
    db = tmp_path / "cut" / "classroom_train_lmdb"
    whole = _encoded(3, "PNG", size=(64, 64))
    _write_db(db, {b"a": good[sorted(good)[0]], b"b": whole[: len(whole) // 2]})
    ds = build_dataset("lsun", db.parent, resolution=16, cache_dir=cache)
    assert len(ds) == 2
    with pytest.raises(DataError, match="cannot decode record 'b'"):
        ds[1]
    with pytest.warns(DataWarning, match="skipped 1"):
        assert len(build_dataset("lsun", db.parent, resolution=16, cache_dir=cache, verify="full")) == 1


@pytest.mark.parametrize("make,msg", [
    (lambda p: None, "is not a folder"),
    (lambda p: p.mkdir(), "has no classroom_train_lmdb/data.mdb"),
    (lambda p: _write_db(p / "classroom_train_lmdb", {b"x": b""}), "none is a readable image"),
])
def test_bad_roots_are_one_line_errors(tmp_path, make, msg):
    root = tmp_path / "root"
    make(root)
    with pytest.raises(DataError, match=msg) as e:
        build_dataset("lsun", root, cache_dir=tmp_path / "cache")
    assert "\n" not in str(e.value)
    with pytest.raises(DataError, match="not shipped"):
        build_dataset("lsun", None)
    with pytest.raises(DataError, match="split="):
        build_dataset("lsun", root, split="test")
