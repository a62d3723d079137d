"""Image folders: CelebA's layouts, generic folders, DCGAN preprocessing against torchvision, corrupt files, errors."""
from __future__ import annotations

import os
import pickle
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from tests.support.data_fixtures import celeba_tree, garbage, truncated_jpeg, write_image
from gcann.data import DATASETS, DataError, DataWarning, build_dataset, dataset_key
from gcann.data import images as images_mod
from gcann.data.images import preprocess


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg and msg
    return msg


# ---------------------------------------------------------------------- preprocessing
@settings(max_examples=25, deadline=None)
@given(w=st.integers(8, 90), h=st.integers(8, 90), r=st.sampled_from([8, 28, 32, 64]), gray=st.booleans(),
       seed=st.integers(0, 10))
def test_preprocess_equals_torchvision_dcgan_transform(w, h, r, gray, seed):
    """Resize(R) + CenterCrop(R) + ToTensor + Normalize(0.5, 0.5) of the PyTorch DCGAN example."""
    from PIL import Image
    from torchvision import transforms as T

    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    c = 1 if gray else 3
    ref = T.Compose([T.Resize(r), T.CenterCrop(r), T.ToTensor(), T.Normalize((0.5,) * c, (0.5,) * c)])
    want = ref(img.convert("L" if gray else "RGB"))
    got = preprocess(img, r, c)
    assert got.dtype == torch.float32 and got.shape == (c, r, r)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)


# ---------------------------------------------------------------------- CelebA
@pytest.mark.parametrize("layout", ["plain", "torchvision", "folder"])
def test_celeba_layouts_read_the_same_images(tmp_path, layout):
    folder = celeba_tree(tmp_path / "root", layout)
    root = folder if layout == "folder" else tmp_path / "root"
    ds = build_dataset("celeba", root, cache_dir=tmp_path / "cache")
    assert len(ds) == 5 and ds.kind == "image" and ds.sample_shape == (3, 64, 64) and ds.name == "celeba"
    assert [f.name for f in ds.files] == [f"{i:06d}.jpg" for i in range(1, 6)]
    x = ds[2]
    assert x.dtype == torch.float32 and x.shape == (3, 64, 64) and -1 <= x.min() and x.max() <= 1
    # pixel values decoded independently: PIL decode, then the DCGAN transform
    from PIL import Image
    from torchvision import transforms as T

    ref = T.Compose([T.Resize(64), T.CenterCrop(64), T.ToTensor(), T.Normalize((0.5,) * 3, (0.5,) * 3)])
    torch.testing.assert_close(x, ref(Image.open(folder / "000003.jpg").convert("RGB")), atol=1e-6, rtol=0)
    # the key depends on the files (names, sizes, mtimes), not on the path they sit at
    import shutil

    shutil.copytree(folder, tmp_path / "copy" / "img_align_celeba")  # copy2 keeps mtimes
    assert build_dataset("celeba", tmp_path / "copy", cache_dir=tmp_path / "cache").key == ds.key
    assert dataset_key(ds) == ds.key and ds.key.startswith("celeba-64-")


def test_celeba_key_is_layout_free_and_content_bound(tmp_path):
    folder = celeba_tree(tmp_path / "r", "plain")
    a = build_dataset("celeba", tmp_path / "r", cache_dir=tmp_path / "c")
    b = build_dataset("celeba", folder, cache_dir=tmp_path / "c")
    assert a.key == b.key
    assert build_dataset("celeba", folder, resolution=32, cache_dir=tmp_path / "c").key != a.key
    assert build_dataset("celeba", folder, channels=1, cache_dir=tmp_path / "c").key != a.key
    st = (folder / "000001.jpg").stat()
    os.utime(folder / "000001.jpg", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert build_dataset("celeba", folder, cache_dir=tmp_path / "c").key != a.key


def test_celeba_resolution_and_grayscale(tmp_path):
    celeba_tree(tmp_path, "plain", n=2)
    ds = build_dataset("celeba", tmp_path, resolution=32, channels=1, cache_dir=tmp_path / "c")
    assert ds.sample_shape == (1, 32, 32) and ds[1].shape == (1, 32, 32)


# ---------------------------------------------------------------------- generic folders
def test_images_recursive_mixed_formats(tmp_path):
    root = tmp_path / "mine"
    write_image(root / "a.png", 40, 30, 0, mode="RGBA")
    write_image(root / "sub" / "b.JPG", 50, 70, 1)
    write_image(root / "sub" / "deep" / "c.bmp", 33, 33, 2, mode="L")
    write_image(root / "sub" / "deep" / "d.gif", 20, 64, 3, mode="P")
    write_image(root / ".hidden" / "e.png", 20, 20, 4)        # hidden folders are not searched
    write_image(root / "._f.png", 20, 20, 5)                  # nor hidden files (macOS resource forks)
    (root / "notes.txt").write_text("not an image")
    ds = build_dataset("images", root, resolution=16, cache_dir=tmp_path / "c")
    assert [f.relative_to(root).as_posix() for f in ds.files] == ["a.png", "sub/b.JPG", "sub/deep/c.bmp",
                                                                   "sub/deep/d.gif"]
    batch = torch.stack([ds[i] for i in range(len(ds))])
    assert batch.shape == (4, 3, 16, 16) and batch.min() >= -1 and batch.max() <= 1
    # the grey image becomes three equal channels
    assert torch.equal(batch[2, 0], batch[2, 1]) and torch.equal(batch[2, 1], batch[2, 2])
    gray = build_dataset("images", root, resolution=16, channels=1, cache_dir=tmp_path / "c")
    assert gray[0].shape == (1, 16, 16)
    # a DataLoader with workers needs the dataset to pickle; it decodes lazily from paths
    clone = pickle.loads(pickle.dumps(ds))
    assert torch.equal(clone[3], ds[3])


def test_constant_image_maps_to_exact_values(tmp_path):
    from PIL import Image

    root = tmp_path / "c"
    root.mkdir()
    Image.new("RGB", (100, 60), (255, 0, 51)).save(root / "x.png")
    x = build_dataset("images", root, resolution=24, cache_dir=tmp_path / "cache")[0]
    want = torch.tensor([1.0, -1.0, 51 / 127.5 - 1]).view(3, 1, 1).expand(3, 24, 24)
    torch.testing.assert_close(x, want, atol=1e-6, rtol=0)


# ---------------------------------------------------------------------- corrupt files
def test_unreadable_files_are_skipped_at_index_time_and_reported(tmp_path):
    folder = celeba_tree(tmp_path, "plain", n=3)
    garbage(folder / "000004.jpg")
    (folder / "000005.jpg").write_bytes(b"")
    with pytest.warns(DataWarning, match=r"skipped 2 unreadable file\(s\) of 5"):
        ds = build_dataset("celeba", tmp_path, cache_dir=tmp_path / "c")
    assert len(ds) == 3 and ds.skipped == 2
    assert [os.path.basename(p) for p, _ in ds.skipped_files] == ["000004.jpg", "000005.jpg"]
    assert "empty file" in ds.skipped_files[1][1]


def test_truncated_jpeg_fails_at_load_naming_the_file_unless_fully_verified(tmp_path):
    folder = celeba_tree(tmp_path, "plain", n=2)
    truncated_jpeg(folder / "000003.jpg")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the header check passes: no warning
        ds = build_dataset("celeba", tmp_path, cache_dir=tmp_path / "c")
    assert len(ds) == 3
    with pytest.raises(DataError) as e:
        ds[2]
    assert "000003.jpg" in _one_line(e) and "verify='full'" in str(e.value)
    with pytest.warns(DataWarning, match="000003.jpg"):
        full = build_dataset("celeba", tmp_path, verify="full", cache_dir=tmp_path / "c")
    assert len(full) == 2 and full.skipped == 1


def test_index_verdicts_are_cached(tmp_path, monkeypatch):
    folder = celeba_tree(tmp_path, "plain", n=3)
    garbage(folder / "000009.jpg")
    with pytest.warns(DataWarning):
        first = build_dataset("celeba", tmp_path, cache_dir=tmp_path / "c")

    def boom(*a, **k):
        raise AssertionError("the index was checked again")

    monkeypatch.setattr(images_mod, "_check_image", boom)
    with pytest.warns(DataWarning):
        second = build_dataset("celeba", tmp_path, cache_dir=tmp_path / "c")
    assert second.key == first.key and second.skipped == 1 and len(second) == 3
    assert not list((tmp_path / "c").rglob(".*tmp*"))  # atomic writes leave no temporary files


def test_all_files_unreadable(tmp_path):
    garbage(tmp_path / "img" / "a.png")
    garbage(tmp_path / "img" / "b.jpg", seed=3)
    with pytest.raises(DataError) as e:
        build_dataset("images", tmp_path / "img", cache_dir=tmp_path / "c")
    msg = _one_line(e)
    assert "has 2 image file(s) but none is readable" in msg and "a.png" in msg


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize("case, expect", [
    ("celeba-none", "CelebA is not shipped"),
    ("celeba-missing", "is not a folder"),
    ("celeba-empty", "has no img_align_celeba/*.jpg"),
    ("celeba-empty-sub", "holds no images"),
    ("images-none", "needs a root folder"),
    ("images-missing", "does not exist"),
    ("images-empty", "holds no image files"),
])
def test_folder_errors_say_what_to_put_where(tmp_path, case, expect):
    name, what = case.split("-", 1)
    root = {"none": None, "missing": tmp_path / "nope"}.get(what, tmp_path / "r")
    if root is not None and what != "missing":
        root.mkdir()
        (root / "readme.txt").write_text("x")
        if what == "empty-sub":
            (root / "img_align_celeba").mkdir()
    with pytest.raises(DataError) as e:
        build_dataset(name, root, cache_dir=tmp_path / "c")
    msg = _one_line(e)
    assert expect in msg
    if root is not None:
        assert str(root) in msg
    if name == "celeba":
        assert "img_align_celeba" in msg


@pytest.mark.parametrize("kwargs, expect", [
    (dict(resolution=0), "resolution 0"),
    (dict(resolution=4096), "resolution 4096"),
    (dict(resolution=64.0), "resolution 64.0"),
    (dict(resolution=True), "resolution True"),
    (dict(channels=2), "channels=2"),
    (dict(verify="sometimes"), "verify='sometimes'"),
    (dict(colour="yes"), "takes no option 'colour'"),
])
def test_bad_options(tmp_path, kwargs, expect):
    celeba_tree(tmp_path, "plain", n=1)
    with pytest.raises(DataError) as e:
        build_dataset("celeba", tmp_path, cache_dir=tmp_path / "c", **kwargs)
    assert expect in _one_line(e)


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(DataError) as e:
        build_dataset("imagenet")
    msg = _one_line(e)
    assert "unknown dataset 'imagenet'" in msg and all(n in msg for n in DATASETS)
    assert {"celeba", "images", "fashion-mnist", "mnist5k", "bicar3d", "meshes", "biped",
            "random-meshes"} <= set(DATASETS)


def test_import_stays_light():
    import subprocess
    import sys

    code = ("import sys, gcann.data; bad = [m for m in ('trimesh', 'pybullet', 'torchvision', 'scipy.ndimage') "
            "if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
