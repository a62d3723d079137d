"""The biped stand-in: forward kinematics against pybullet, voxels against the analytic posed primitives,
deterministic poses, yaw conventions, the cache, errors."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from gcann.data import DataError, build_dataset
from gcann.data import biped as biped_mod
from gcann.data import voxel as voxel_mod
from gcann.data.biped import MOTION_JOINTS, biped_poses, link_frames, load_clip, load_humanoid
from gcann.data.voxel import grid_margin

pybullet = pytest.importorskip("pybullet")
pybullet_data = pytest.importorskip("pybullet_data")
BASE = Path(pybullet_data.getDataPath())


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg and msg
    return msg


@pytest.fixture(scope="module")
def bullet():
    """A headless pybullet world with the humanoid; ``pose(frame)`` sets it to a motion frame."""
    cid = pybullet.connect(pybullet.DIRECT)
    body = pybullet.loadURDF(str(BASE / "humanoid" / "humanoid.urdf"), useFixedBase=True,
                             flags=pybullet.URDF_MAINTAIN_LINK_ORDER, physicsClientId=cid)
    n = pybullet.getNumJoints(body, physicsClientId=cid)
    info = [pybullet.getJointInfo(body, i, physicsClientId=cid) for i in range(n)]
    names = [j[1].decode() for j in info]

    def pose(frame):
        pybullet.resetBasePositionAndOrientation(body, frame[1:4], [*frame[5:8], frame[4]], physicsClientId=cid)
        pos = 8
        for name in MOTION_JOINTS:
            i = names.index(name)
            if info[i][2] == pybullet.JOINT_SPHERICAL:
                w, x, y, z = frame[pos:pos + 4]
                pybullet.resetJointStateMultiDof(body, i, [x, y, z, w], physicsClientId=cid)
                pos += 4
            else:
                pybullet.resetJointState(body, i, frame[pos], physicsClientId=cid)
                pos += 1

    def state(i):
        return pybullet.getLinkState(body, i, computeForwardKinematics=True, physicsClientId=cid)

    def matrix(q):
        return np.array(pybullet.getMatrixFromQuaternion(q)).reshape(3, 3)

    yield dict(body=body, cid=cid, n=n, names=[j[12].decode() for j in info], pose=pose, state=state,
               matrix=matrix)
    pybullet.disconnect(cid)


@pytest.mark.parametrize("clip, index", [("walk", 0), ("cartwheel", 80), ("backflip", 17), ("crawl", 150)])
def test_forward_kinematics_matches_pybullet(bullet, clip, index):
    model = load_humanoid(BASE / "humanoid" / "humanoid.urdf")
    frame = load_clip(BASE / "data" / "motions" / f"humanoid3d_{clip}.txt")[index]
    bullet["pose"](frame)
    ours = link_frames(model, frame)
    for i, link in enumerate(bullet["names"]):
        s = bullet["state"](i)
        np.testing.assert_allclose(ours[link][:3, 3], s[4], atol=1e-5)          # URDF link frame origin
        np.testing.assert_allclose(ours[link][:3, :3], bullet["matrix"](s[5]), atol=1e-5)


def _primitives(bullet, frame):
    """Each collision shape's kind, sizes and world pose, all read from pybullet (COM frame ∘ local frame)."""
    bullet["pose"](frame)
    out = []
    for i in range(bullet["n"]):
        s = bullet["state"](i)
        for shape in pybullet.getCollisionShapeData(bullet["body"], i, physicsClientId=bullet["cid"]):
            pos, orn = pybullet.multiplyTransforms(s[0], s[1], shape[5], shape[6])
            out.append((shape[2], shape[3], np.array(pos), bullet["matrix"](orn)))
    return out


def _signed_distance(points, prims):
    """Distance from each point to the union of the primitives (negative inside)."""
    d = np.full(len(points), np.inf)
    for kind, dims, c, rot in prims:
        local = (points - c) @ rot                     # coordinates in the shape's frame
        if kind == pybullet.GEOM_SPHERE:
            sd = np.linalg.norm(local, axis=1) - dims[0]
        elif kind == pybullet.GEOM_CAPSULE:            # axis z, length between the cap centres, radius
            z = np.clip(local[:, 2], -dims[0] / 2, dims[0] / 2)
            sd = np.linalg.norm(local - np.stack([0 * z, 0 * z, z], 1), axis=1) - dims[1]
        else:
            q = np.abs(local) - np.array(dims[:3]) / 2
            sd = np.linalg.norm(np.maximum(q, 0), axis=1) + np.minimum(q.max(1), 0)
        d = np.minimum(d, sd)
    return d


def _bounds(prims):
    lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
    for kind, dims, c, rot in prims:
        if kind == pybullet.GEOM_SPHERE:
            pts, pad = c[None], dims[0]
        elif kind == pybullet.GEOM_CAPSULE:
            pts, pad = c + np.outer([-dims[0] / 2, dims[0] / 2], rot[:, 2]), dims[1]
        else:
            corners = np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).reshape(3, -1).T * np.array(dims[:3]) / 2
            pts, pad = c + corners @ rot.T, 0.0
        lo, hi = np.minimum(lo, pts.min(0) - pad), np.maximum(hi, pts.max(0) + pad)
    return lo, hi


def test_voxels_against_the_analytic_posed_primitives(bullet, tmp_path):
    """Every voxel centred inside the posed shapes is filled; every filled voxel meets (nearly) the shapes."""
    r = 32
    ds = build_dataset("biped", resolution=r, cache_dir=tmp_path, clips=["walk", "cartwheel"], frame_step=60,
                       yaws=1)
    assert ds.sources == ["walk:0:yaw0", "cartwheel:0:yaw0", "cartwheel:60:yaw0", "cartwheel:120:yaw0"]
    i = np.arange(r) + 0.5
    centres = np.stack(np.meshgrid(i, i, i, indexing="ij"), -1).reshape(-1, 3)
    for n, src in enumerate(ds.sources):
        clip, index, _ = src.split(":")
        prims = _primitives(bullet, load_clip(BASE / "data" / "motions" / f"humanoid3d_{clip}.txt")[int(index)])
        lo, hi = _bounds(prims)
        scale = (r - 2 * grid_margin(r)) / (hi - lo).max()   # grid voxels per metre, as documented
        world = (centres - r / 2) / scale + (lo + hi) / 2
        sd = _signed_distance(world, prims) * scale          # in voxels
        got = ds.data[n, 0].numpy().reshape(-1).astype(bool)
        assert not (got & (sd > np.sqrt(3) / 2 + 0.15)).any(), src      # a filled voxel reaches the solid
        assert not (~got & (sd < -0.15)).any(), src                    # a voxel centred inside is filled
        assert got.sum() > 1.3 * (sd <= 0).sum()                       # conservative: the surface voxels count


def test_poses_are_deterministic_and_as_documented(tmp_path):
    poses = biped_poses({"a": 10, "b": 5}, frame_step=3, max_poses=None, yaws=2)
    assert [(c, i) for c, i, _ in poses[::2]] == [("a", 0), ("a", 3), ("a", 6), ("a", 9), ("b", 0), ("b", 3)]
    assert [y for _, _, y in poses[:2]] == [0.0, np.pi]
    few = biped_poses({"a": 10, "b": 5}, frame_step=3, max_poses=4, yaws=1)
    assert [(c, i) for c, i, _ in few] == [("a", 0), ("a", 6), ("a", 9), ("b", 3)]  # positions 0, 5/3, 10/3, 5
    kw = dict(resolution=16, clips=["run", "kick"], frame_step=20, yaws=4)
    a = build_dataset("biped", cache_dir=tmp_path / "a", **kw)
    b = build_dataset("biped", cache_dir=tmp_path / "b", **kw)
    assert a.key == b.key and torch.equal(a.data, b.data) and a.sources == b.sources
    assert len(a) == (2 + 3) * 4 and a.sample_shape == (1, 16, 16, 16) and a.kind == "voxel"
    assert set(torch.unique(a.data).tolist()) == {0.0, 1.0}
    assert len({tuple(x.flatten().tolist()) for x in a.data}) == len(a)   # every pose and angle differs


def test_yaw_turns_the_figure_about_the_vertical_axis(tmp_path):
    """Turning by θ about +y maps (x, z) to (x cos θ + z sin θ, −x sin θ + z cos θ): 180° flips i and k,
    90° sends voxel (i, j, k) to (k, j, R−1−i)."""
    ds = build_dataset("biped", resolution=32, cache_dir=tmp_path, clips=["walk"], frame_step=100, yaws=4)
    g = ds.data[:, 0].numpy().astype(bool)
    assert ds.sources == ["walk:0:yaw0", "walk:0:yaw90", "walk:0:yaw180", "walk:0:yaw270"]

    def agree(a, b):
        return (a & b).sum() / (a | b).sum()

    assert agree(g[2], g[0][::-1, :, ::-1]) > 0.99
    assert agree(g[1], np.transpose(g[0], (2, 1, 0))[:, :, ::-1]) > 0.99
    assert agree(g[3], np.transpose(g[0], (2, 1, 0))[::-1, :, :]) > 0.99
    assert agree(g[1], g[0]) < 0.7     # the turn matters: a walking figure is not round
    # upright: the figure's height runs along j (y, up), longest of the three spans for a standing pose
    occ = np.argwhere(g[0])
    spans = occ.max(0) - occ.min(0) + 1
    assert spans[1] == 32 - 2 * grid_margin(32) and spans[1] > spans[0] and spans[1] > spans[2]


def test_second_build_reads_the_cache(tmp_path, monkeypatch):
    kw = dict(resolution=16, clips=["jump"], frame_step=50, yaws=2, cache_dir=tmp_path)
    first = build_dataset("biped", **kw)
    monkeypatch.setattr(biped_mod, "voxelize_mesh", lambda *a: pytest.fail("voxelised again"))
    second = build_dataset("biped", **kw)
    assert torch.equal(first.data, second.data) and first.key == second.key
    monkeypatch.undo()
    assert build_dataset("biped", **{**kw, "yaws": 1}).key != first.key
    assert voxel_mod.VOXELIZER_VERSION >= 1


def test_biped_root_and_options_errors(tmp_path):
    with pytest.raises(DataError) as e:
        build_dataset("biped", tmp_path, cache_dir=tmp_path)
    assert "has no humanoid/humanoid.urdf" in _one_line(e) and str(tmp_path) in str(e.value)
    (tmp_path / "humanoid").mkdir()
    shutil.copy(BASE / "humanoid" / "humanoid.urdf", tmp_path / "humanoid")
    with pytest.raises(DataError) as e:
        build_dataset("biped", tmp_path, cache_dir=tmp_path)
    assert "no data/motions/humanoid3d_*.txt" in _one_line(e)
    (tmp_path / "data" / "motions").mkdir(parents=True)
    (tmp_path / "data" / "motions" / "humanoid3d_bad.txt").write_text("{not json")
    with pytest.raises(DataError) as e:
        build_dataset("biped", tmp_path, cache_dir=tmp_path, resolution=16)
    assert "cannot read motion clip" in _one_line(e)
    for kwargs, expect in [(dict(clips=["moonwalk"]), "unknown clip(s) 'moonwalk'"), (dict(clips=[]), "(none given)"),
                           (dict(frame_step=0), "frame_step=0"), (dict(yaws=1.5), "yaws=1.5"),
                           (dict(max_poses=-1), "max_poses=-1"), (dict(resolution=7), "resolution 7"),
                           (dict(pose_count=3), "takes no option 'pose_count'")]:
        with pytest.raises(DataError) as e:
            build_dataset("biped", cache_dir=tmp_path, **kwargs)
        assert expect in _one_line(e)
