"""The voxeliser against analytic solids, axis conventions, mesh folders, corrupt meshes, the voxel cache."""
from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import torch

from tests.support.data_fixtures import garbage, mesh_tree
from gcann.data import DataError, DataWarning, build_dataset
from gcann.data import voxel as voxel_mod
from gcann.data.voxel import grid_margin, normalize_to_grid, voxelize, voxelize_mesh

trimesh = pytest.importorskip("trimesh")


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg and msg
    return msg


def _cube_corners(r: int) -> np.ndarray:
    i = np.arange(r, dtype=np.float64)
    return np.stack(np.meshgrid(i, i, i, indexing="ij"), -1)  # lower corner of voxel (i, j, k)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return (a & b).sum() / (a | b).sum()


# ---------------------------------------------------------------------- the voxeliser vs analytic solids
@pytest.mark.parametrize("r, centre, radius", [(32, (16.13, 15.79, 16.07), 13.2), (32, (11.4, 20.2, 14.9), 6.3),
                                               (16, (8.3, 7.6, 8.1), 5.5)])
def test_sphere_against_analytic_occupancy(r, centre, radius):
    """Occupied voxels are exactly those the ball meets, up to the mesh's polygonal approximation."""
    c = np.array(centre)
    mesh = trimesh.creation.icosphere(subdivisions=4, radius=radius).apply_translation(c)
    got = voxelize(mesh.vertices, mesh.faces, r)
    lo = _cube_corners(r)
    meets = np.linalg.norm(np.clip(c, lo, lo + 1) - c, axis=-1) <= radius      # cube ∩ ball ≠ ∅
    centre_in = np.linalg.norm(lo + 0.5 - c, axis=-1) <= radius - 0.05          # centre inside the polyhedron
    assert not (got & ~meets).any()            # never a voxel the solid does not reach
    assert not (centre_in & ~got).any()        # every voxel centred inside the solid is filled
    assert _iou(got, meets) > 0.95             # what is missing: voxels the surface only grazes ...
    fine = voxelize(mesh.vertices, mesh.faces, r, step=0.1)
    assert not (fine & ~meets).any() and _iou(fine, meets) > 0.985   # ... which finer sampling finds


def test_box_against_analytic_occupancy():
    r = 32
    lo_b, hi_b = np.array([3.3, 10.6, 7.2]), np.array([27.4, 19.1, 12.8])
    box = trimesh.creation.box(bounds=[lo_b, hi_b])
    got = voxelize(box.vertices, box.faces, r)
    lo = _cube_corners(r)
    want = np.all((lo < hi_b) & (lo + 1 > lo_b), axis=-1)
    assert np.array_equal(got, want)
    assert got.sum() == (27 - 3 + 1) * (19 - 10 + 1) * (12 - 7 + 1)


def test_normalisation_fills_the_grid_keeps_aspect_and_axes():
    """An L: a 4×2×1 slab along x with a 1×1×1 block on top (+y) of its +x end, moved and scaled at random."""
    parts = [((0, 0, 0), (4, 2, 1)), ((3, 2, 0), (4, 3, 1))]
    mesh = trimesh.util.concatenate([trimesh.creation.box(bounds=p) for p in parts])
    mesh.apply_translation((-7.0, 3.0, 100.0)).apply_scale(0.37)
    for r in (32, 64):
        m = grid_margin(r)
        g = voxelize_mesh(mesh.vertices, mesh.faces, r)
        # the documented map from shape units: bounding-box centre (2, 1.5, 0.5) to r/2, longest side (4) to r - 2m
        scale = (r - 2 * m) * (1 - 1e-9) / 4
        lo = _cube_corners(r)
        want = np.zeros_like(g)
        for p_lo, p_hi in parts:
            b_lo = (np.array(p_lo) - (2, 1.5, 0.5)) * scale + r / 2
            b_hi = (np.array(p_hi) - (2, 1.5, 0.5)) * scale + r / 2
            want |= np.all((lo <= b_hi) & (lo + 1 > b_lo), axis=-1)   # half-open voxels meeting the closed box
        assert np.array_equal(g, want)
        occ = np.argwhere(g)
        assert occ[:, 0].min() == m and occ[:, 0].max() == r - m - 1    # x spans exactly r - 2m voxels
        top = occ[occ[:, 1] == occ[:, 1].max()]                        # the top layer (+y): the block, at +x
        assert top[:, 0].min() > 0.7 * r and g[:, occ[:, 1].max()].any()


def test_open_and_nearly_closed_meshes():
    r = 32
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=12.0).apply_translation((16.2, 16.1, 15.9))
    solid = voxelize(sphere.vertices, sphere.faces, r)
    # a hole smaller than a voxel: the surface voxels close it and the inside is filled
    small = sphere.copy()
    small.update_faces(np.arange(len(small.faces)) != 7)
    assert not small.is_watertight
    assert np.array_equal(voxelize(small.vertices, small.faces, r), solid)
    # a box without its top: the opening is wider than a voxel, so only the surface shell is kept
    box = trimesh.creation.box(bounds=[(4.5, 4.5, 4.5), (27.5, 27.5, 27.5)])
    keep = box.face_normals[:, 1] < 0.5
    open_box = trimesh.Trimesh(box.vertices, box.faces[keep])
    shell = voxelize(open_box.vertices, open_box.faces, r)
    assert not shell[10:20, 10:20, 10:20].any() and shell[4, 10:20, 10:20].all()


def test_degenerate_mesh_is_refused():
    with pytest.raises(ValueError):
        normalize_to_grid(np.ones((5, 3)), 32)
    with pytest.raises(ValueError):
        normalize_to_grid(np.array([[0, 0, 0], [1, np.nan, 0]]), 32)


# ---------------------------------------------------------------------- mesh folders and the cache
def test_mesh_folder_formats_corrupt_files_and_cache(tmp_path, monkeypatch):
    root = tmp_path / "meshes"
    rels = mesh_tree(root)
    garbage(root / "c" / "broken.obj")
    (root / "c" / "empty.stl").write_bytes(b"")
    with pytest.warns(DataWarning, match=r"skipped 2 unreadable file\(s\) of 7"):
        ds = build_dataset("meshes", root, resolution=16, cache_dir=tmp_path / "cache")
    assert ds.kind == "voxel" and ds.sample_shape == (1, 16, 16, 16) and ds.data.dtype == torch.float32
    assert ds.sources == rels and len(ds) == 5 and ds.skipped == 2
    assert sorted(os.path.basename(p) for p, _ in ds.skipped_files) == ["broken.obj", "empty.stl"]
    assert set(torch.unique(ds.data).tolist()) == {0.0, 1.0} and torch.equal(ds[1], ds.data[1])
    # each file against the voxeliser applied to the mesh trimesh loads from it
    for i, rel in enumerate(rels):
        m = trimesh.load(root / rel, force="mesh")
        assert np.array_equal(ds.data[i, 0].numpy().astype(bool), voxelize_mesh(m.vertices, m.faces, 16)), rel
    # the box 2 × 1 × 0.5 at 16³: x fills 16 - 2 (margin) voxels, y spans [4.5, 11.5] and z [6.25, 9.75] in
    # grid units, so 8 and 4 voxels are met
    box = np.argwhere(ds.data[rels.index("a/box.obj"), 0].numpy())
    assert (box.max(0) - box.min(0) + 1).tolist() == [14, 8, 4] and box.min(0).tolist() == [1, 4, 6]

    # a second build reads the cache: no file is voxelised again
    calls = []
    monkeypatch.setattr(voxel_mod, "voxelize_mesh", lambda *a: calls.append(a) or pytest.fail("re-voxelised"))
    with pytest.warns(DataWarning):
        again = build_dataset("meshes", root, resolution=16, cache_dir=tmp_path / "cache")
    assert not calls and torch.equal(again.data, ds.data) and again.key == ds.key and again.skipped == 2
    assert again.sources == ds.sources
    cached = list((tmp_path / "cache" / "voxels").iterdir())
    assert [p.name for p in cached] == [f"{ds.key}.npz"]        # one file, written atomically (no temporaries)
    monkeypatch.undo()
    monkeypatch.setenv("GCANN_CACHE", str(tmp_path / "default-cache"))

    # a changed file changes the key and rebuilds
    st = (root / "a" / "box.obj").stat()
    os.utime(root / "a" / "box.obj", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.warns(DataWarning):
        changed = build_dataset("meshes", root, resolution=16, cache_dir=tmp_path / "cache")
    assert changed.key != ds.key and torch.equal(changed.data, ds.data)
    # a damaged cache file is reported and rebuilt
    cached[0].write_bytes(b"not a zip")
    with pytest.warns(DataWarning, match="unreadable"):
        rebuilt = build_dataset("meshes", root, resolution=16, cache_dir=tmp_path / "cache",
                                max_meshes=None)
    assert rebuilt.key == changed.key
    with pytest.warns(DataWarning):
        build_dataset("meshes", root, resolution=16, cache_dir=tmp_path / "cache")
    assert build_dataset("meshes", root, resolution=16, cache_dir=tmp_path / "cache", max_meshes=2).sources \
        == rels[:2]


def test_cache_folder_from_the_environment(tmp_path, monkeypatch):
    root = tmp_path / "m"
    root.mkdir()
    trimesh.creation.box().export(root / "b.obj")
    monkeypatch.setenv("GCANN_CACHE", str(tmp_path / "env-cache"))
    ds = build_dataset("meshes", root, resolution=8)
    assert (tmp_path / "env-cache" / "voxels" / f"{ds.key}.npz").is_file()
    assert ds.data.sum() == 6 ** 3    # a cube fills the 8³ grid less one voxel of margin on each side


def test_bicar3d_layout(tmp_path):
    """3DBiCar-like tree: one folder per character with its .obj, .mtl and texture."""
    root = tmp_path / "3DBiCar"
    for i, h in enumerate((1.0, 1.5, 2.0)):
        d = root / f"{i:04d}"
        d.mkdir(parents=True)
        body = trimesh.creation.capsule(height=h, radius=0.3)
        head = trimesh.creation.icosphere(radius=0.35).apply_translation((0, 0, h / 2 + 0.5))
        trimesh.util.concatenate([body, head]).export(d / f"{i:04d}.obj")
        (d / "texture.png").write_bytes(b"\x89PNG")
    ds = build_dataset("bicar3d", root, resolution=32, cache_dir=tmp_path / "c")
    assert len(ds) == 3 and ds.sample_shape == (1, 32, 32, 32) and ds.name == "bicar3d"
    assert ds.key.startswith("bicar3d-32-") and ds.skipped == 0
    occ = np.argwhere(ds.data[0, 0].numpy())
    assert occ[:, 2].max() - occ[:, 2].min() + 1 == 30   # the long axis (z here) spans 32 - 2 voxels
    with pytest.raises(DataError) as e:
        build_dataset("bicar3d", root, resolution=33 * 4, cache_dir=tmp_path / "c")
    assert "resolution 132" in _one_line(e)


def test_random_meshes_subset(tmp_path):
    pytest.importorskip("pybullet_data")
    ds = build_dataset("random-meshes", resolution=16, cache_dir=tmp_path / "c", max_meshes=4)
    assert len(ds) == 4 and ds.sources == [f"{i:03d}/{i:03d}.obj" for i in range(4)]
    assert ds.data.shape == (4, 1, 16, 16, 16) and (ds.data.sum((1, 2, 3, 4)) > 0).all()


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize("name, what, expect", [
    ("bicar3d", "none", "3DBiCar is not shipped"),
    ("meshes", "none", "needs a root folder"),
    ("bicar3d", "missing", "does not exist"),
    ("meshes", "empty", "holds no mesh files"),
    ("bicar3d", "garbage", "has 2 mesh file(s) but none is usable"),
])
def test_mesh_errors_say_what_to_put_where(tmp_path, name, what, expect):
    root = {"none": None, "missing": tmp_path / "nope"}.get(what, tmp_path / "r")
    if what in ("empty", "garbage"):
        root.mkdir()
        (root / "readme.txt").write_text("x")
    if what == "garbage":
        garbage(root / "x.obj")
        garbage(root / "sub" / "y.ply", seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataError) as e:
            build_dataset(name, root, resolution=16, cache_dir=tmp_path / "c")
    msg = _one_line(e)
    assert expect in msg
    if root is not None:
        assert str(root) in msg
    if name == "bicar3d":
        assert "3DBiCar" in msg
    assert not (tmp_path / "c" / "voxels").exists() or not list((tmp_path / "c" / "voxels").iterdir())


@pytest.mark.parametrize("kwargs, expect", [
    (dict(resolution=4), "resolution 4"), (dict(resolution=256), "resolution 256"),
    (dict(max_meshes=0), "max_meshes=0"), (dict(channels=1), "takes no option 'channels'"),
])
def test_bad_options(tmp_path, kwargs, expect):
    root = tmp_path / "m"
    root.mkdir()
    trimesh.creation.box().export(root / "b.obj")
    with pytest.raises(DataError) as e:
        build_dataset("meshes", root, cache_dir=tmp_path / "c", **kwargs)
    assert expect in _one_line(e)


def test_prebuild_command(tmp_path, capsys):
    from gcann.data.__main__ import main

    root = tmp_path / "m"
    root.mkdir()
    trimesh.creation.box().export(root / "b.obj")
    trimesh.creation.icosphere().export(root / "s.ply")
    assert main(["meshes", "--root", str(root), "--resolution", "16", "--cache-dir", str(tmp_path / "c"),
                 "--option", "max_meshes=1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("meshes: 1 samples of shape (1, 16, 16, 16) (voxel), key meshes-16-")
    assert len(list((tmp_path / "c" / "voxels").iterdir())) == 1
    assert main(["bicar3d", "--cache-dir", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gcann.data: error: 3DBiCar is not shipped") and err.count("\n") == 1


def test_unwritable_cache_is_reported_and_the_set_still_built(tmp_path):
    root = tmp_path / "m"
    root.mkdir()
    trimesh.creation.box().export(root / "b.obj")
    blocker = tmp_path / "cache-is-a-file"
    blocker.write_text("x")
    with pytest.warns(DataWarning, match="cannot write the voxel cache"):
        ds = build_dataset("meshes", root, resolution=8, cache_dir=blocker)
    assert len(ds) == 1 and ds.data.sum() == 6 ** 3
