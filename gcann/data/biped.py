"""The biped stand-in for 3DBiCar: pybullet_data's DeepMimic humanoid posed by its motion-capture clips.

``humanoid/humanoid.urdf`` is the DeepMimic humanoid (y up): a chain of links
whose collision shapes are spheres (root, chest, neck, wrists), capsules (arms,
legs) and boxes (feet), joined by spherical joints (chest, neck, hips, ankles,
shoulders) and revolute ones (knees, elbows). Each frame of a clip
``data/motions/humanoid3d_<clip>.txt`` holds 44 numbers: the frame's duration,
the root position (3) and orientation (a quaternion w, x, y, z), then per joint
in the order of :data:`MOTION_JOINTS` a quaternion (spherical) or an angle
(revolute). Forward kinematics (:func:`link_frames`) places every link; the
shapes are meshed with trimesh at their world poses, the whole figure is turned
about the vertical axis by each yaw angle, and the result is voxelised like any
mesh (:mod:`gcann.data.voxel`). The tests check the link frames against
pybullet's own forward kinematics.
"""
from __future__ import annotations

import hashlib
import json
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from gcann.data.base import DataError, TensorSet, check_resolution, content_key
from gcann.data.voxel import (SAMPLE_STEP, VOXELIZER_VERSION, _pybullet_data_path, cached_voxels, grid_margin,
                              voxelize_mesh)

__all__ = ["MOTION_JOINTS", "Humanoid", "load_humanoid", "load_clip", "biped_poses", "build_biped"]

#: the joints a DeepMimic motion frame sets, in the frame's order (after duration, root position and orientation)
MOTION_JOINTS = ("chest", "neck", "right_hip", "right_knee", "right_ankle", "right_shoulder", "right_elbow",
                 "left_hip", "left_knee", "left_ankle", "left_shoulder", "left_elbow")
#: bumped when the posing or meshing changes (part of the cache key)
BIPED_VERSION = 1


# ---------------------------------------------------------------------- rotations
def quat_matrix(q: Sequence[float]) -> np.ndarray:
    """Rotation matrix of the quaternion ``(w, x, y, z)`` (normalised first)."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def rpy_matrix(rpy: Sequence[float]) -> np.ndarray:
    """URDF's fixed-axis roll, pitch, yaw: ``Rz(yaw) · Ry(pitch) · Rx(roll)``."""
    r, p, y = rpy
    cr, sr, cp, sp, cy, sy = np.cos(r), np.sin(r), np.cos(p), np.sin(p), np.cos(y), np.sin(y)
    return np.array([[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                     [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                     [-sp, cp * sr, cp * cr]])


def axis_angle_matrix(axis: Sequence[float], angle: float) -> np.ndarray:
    a = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def _transform(rot: np.ndarray, pos: Sequence[float]) -> np.ndarray:
    t = np.eye(4)
    t[:3, :3], t[:3, 3] = rot, pos
    return t


# ---------------------------------------------------------------------- the model
@dataclass(frozen=True)
class Shape:
    """A collision primitive of a link: ``kind`` sphere | capsule | box | cylinder, its sizes, its pose in the link."""

    link: str
    kind: str
    size: tuple[float, ...]          # sphere (r,), capsule/cylinder (length, r), box (x, y, z)
    origin: np.ndarray               # 4×4 pose in the link frame


@dataclass(frozen=True)
class Joint:
    name: str
    type: str                        # fixed | spherical | revolute | continuous
    parent: str
    child: str
    origin: np.ndarray               # 4×4 pose of the child frame in the parent frame at q = 0
    axis: tuple[float, float, float]


@dataclass(frozen=True)
class Humanoid:
    base: str
    joints: tuple[Joint, ...]        # parents before children
    shapes: tuple[Shape, ...]


def _origin(el: ET.Element | None) -> np.ndarray:
    if el is None:
        return np.eye(4)
    xyz = [float(v) for v in el.get("xyz", "0 0 0").split()]
    rpy = [float(v) for v in el.get("rpy", "0 0 0").split()]
    return _transform(rpy_matrix(rpy), xyz)


def load_humanoid(urdf: Path) -> Humanoid:
    """Links, joints and collision primitives of a URDF (primitive shapes only)."""
    try:  # pybullet_data's humanoid.urdf ends in a NUL byte, which XML parsers refuse
        robot = ET.fromstring(urdf.read_bytes().rstrip(b"\0 \t\r\n"))
    except (OSError, ET.ParseError) as e:
        raise DataError(f"cannot read the humanoid URDF {urdf} ({e}): reinstall pybullet") from None
    shapes = []
    for link in robot.iter("link"):
        for col in link.findall("collision"):
            geom = col.find("geometry")
            el = geom[0] if geom is not None and len(geom) else None
            if el is None:
                continue
            if el.tag == "sphere":
                size: tuple[float, ...] = (float(el.get("radius")),)
            elif el.tag in ("capsule", "cylinder"):
                size = (float(el.get("length")), float(el.get("radius")))
            elif el.tag == "box":
                size = tuple(float(v) for v in el.get("size").split())
            else:
                raise DataError(f"{urdf}: link {link.get('name')} has a {el.tag} collision shape; "
                                "the biped builder reads sphere, capsule, cylinder and box")
            shapes.append(Shape(link.get("name"), el.tag, size, _origin(col.find("origin"))))
    joints = []
    for j in robot.iter("joint"):
        axis = j.find("axis")
        joints.append(Joint(j.get("name"), j.get("type"), j.find("parent").get("link"), j.find("child").get("link"),
                            _origin(j.find("origin")),
                            tuple(float(v) for v in (axis.get("xyz").split() if axis is not None else (1, 0, 0)))))
    children = {j.child for j in joints}
    bases = [link.get("name") for link in robot.iter("link") if link.get("name") not in children]
    if len(bases) != 1:
        raise DataError(f"{urdf} has {len(bases)} root links; the biped builder needs one tree")
    order, placed = [], {bases[0]}
    while len(order) < len(joints):
        ready = [j for j in joints if j.parent in placed and j.child not in placed]
        if not ready:
            raise DataError(f"{urdf}: some joints do not hang from the root link {bases[0]}")
        for j in ready:
            order.append(j)
            placed.add(j.child)
    return Humanoid(bases[0], tuple(order), tuple(shapes))


def load_clip(path: Path) -> np.ndarray:
    """The frames of a DeepMimic motion file: ``(F, 44)``."""
    try:
        frames = np.asarray(json.loads(path.read_text())["Frames"], dtype=np.float64)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(f"cannot read motion clip {path} ({e}): reinstall pybullet") from None
    if frames.ndim != 2 or frames.shape[1] != 44 or not np.isfinite(frames).all():
        raise DataError(f"motion clip {path} does not hold finite 44-number DeepMimic frames")
    return frames


def link_frames(model: Humanoid, frame: Sequence[float]) -> dict[str, np.ndarray]:
    """World pose (4×4) of every link for one motion frame (forward kinematics)."""
    frame = np.asarray(frame, dtype=np.float64)
    poses = {model.base: _transform(quat_matrix(frame[4:8]), frame[1:4])}
    q, pos = {}, 8
    types = {j.name: j.type for j in model.joints}
    for name in MOTION_JOINTS:
        n = 4 if types[name] == "spherical" else 1
        q[name] = frame[pos:pos + n]
        pos += n
    for j in model.joints:
        if j.type == "spherical":
            motion = _transform(quat_matrix(q[j.name]), (0, 0, 0))
        elif j.type in ("revolute", "continuous"):
            motion = _transform(axis_angle_matrix(j.axis, q[j.name][0]), (0, 0, 0))
        else:
            motion = np.eye(4)
        poses[j.child] = poses[j.parent] @ j.origin @ motion
    return poses


def _shape_mesh(shape: Shape) -> tuple[np.ndarray, np.ndarray]:
    import trimesh

    if shape.kind == "sphere":
        m = trimesh.creation.icosphere(subdivisions=2, radius=shape.size[0])
    elif shape.kind == "capsule":
        m = trimesh.creation.capsule(height=shape.size[0], radius=shape.size[1], count=[16, 16])
    elif shape.kind == "cylinder":
        m = trimesh.creation.cylinder(radius=shape.size[1], height=shape.size[0], sections=16)
    else:
        m = trimesh.creation.box(extents=shape.size)
    return np.asarray(m.vertices), np.asarray(m.faces)


def posed_mesh(model: Humanoid, frame: Sequence[float], yaw: float = 0.0,
               meshes: list[tuple[np.ndarray, np.ndarray]] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One triangle soup of every collision shape at its world pose, turned by ``yaw`` about the y (up) axis."""
    meshes = meshes if meshes is not None else [_shape_mesh(s) for s in model.shapes]
    poses = link_frames(model, frame)
    turn = _transform(axis_angle_matrix((0, 1, 0), yaw), (0, 0, 0))
    verts, faces, n = [], [], 0
    for shape, (v, f) in zip(model.shapes, meshes):
        t = turn @ poses[shape.link] @ shape.origin
        verts.append(v @ t[:3, :3].T + t[:3, 3])
        faces.append(f + n)
        n += len(v)
    return np.concatenate(verts), np.concatenate(faces)


# ---------------------------------------------------------------------- the dataset
def _data_root(root: Any) -> Path:
    return Path(_pybullet_data_path()) if root is None else Path(root).expanduser()


def _clip_paths(base: Path, clips: Sequence[str] | None) -> list[Path]:
    folder = base / "data" / "motions"
    found = {p.name[len("humanoid3d_"):-len(".txt")]: p for p in sorted(folder.glob("humanoid3d_*.txt"))}
    if not found:
        raise DataError(f"biped root {base} has no data/motions/humanoid3d_*.txt: pass pybullet_data's folder "
                        "(or none), which holds the DeepMimic motion clips")
    if clips is None:
        return list(found.values())
    unknown = [c for c in clips if c not in found]
    if unknown or not clips:
        raise DataError(f"biped: unknown clip(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
                        f"known: {', '.join(found)}")
    return [found[c] for c in clips]


def biped_poses(clip_frames: dict[str, int], frame_step: int, max_poses: int | None,
                yaws: int) -> list[tuple[str, int, float]]:
    """The ``(clip, frame index, yaw in radians)`` of every sample, in order (no randomness).

    Every ``frame_step``-th frame of each clip; ``max_poses`` keeps that many of
    them, evenly spaced over the list; each pose is taken at ``yaws`` angles
    ``2πk / yaws``.
    """
    poses = [(c, i) for c, n in clip_frames.items() for i in range(0, n, frame_step)]
    if max_poses is not None and max_poses < len(poses):
        poses = [poses[i] for i in np.linspace(0, len(poses) - 1, max_poses).round().astype(int)]
    return [(c, i, 2 * np.pi * k / yaws) for c, i in poses for k in range(yaws)]


def _positive(name: str, value: Any, allow_none: bool = False) -> None:
    if allow_none and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DataError(f"biped: {name}={value!r} is not a positive integer")


def build_biped(root: str | os.PathLike[str] | None = None, *, resolution: int | None = None,
                cache_dir: Any = None, clips: Sequence[str] | None = None, frame_step: int = 4,
                max_poses: int | None = None, yaws: int = 8) -> TensorSet:
    """The DeepMimic humanoid posed by its motion clips at ``yaws`` angles, voxelised (32³ by default); cached.

    ``root``: a folder laid out like pybullet_data (``humanoid/humanoid.urdf``,
    ``data/motions/humanoid3d_*.txt``); default pybullet_data itself.
    """
    resolution = check_resolution("biped", 32 if resolution is None else resolution, 8, 128)
    _positive("frame_step", frame_step), _positive("max_poses", max_poses, True), _positive("yaws", yaws)
    base = _data_root(root)
    urdf = base / "humanoid" / "humanoid.urdf"
    if not urdf.is_file():
        raise DataError(f"biped root {base} has no humanoid/humanoid.urdf: pass pybullet_data's folder (or none)")
    paths = _clip_paths(base, None if clips is None else list(clips))
    digest = hashlib.sha256(urdf.read_bytes())
    for p in paths:
        digest.update(p.name.encode() + b"\0" + p.read_bytes())
    key = content_key("biped", resolution, [BIPED_VERSION, VOXELIZER_VERSION, SAMPLE_STEP, grid_margin(resolution),
                                            digest.hexdigest(), frame_step, max_poses, yaws])

    def build() -> tuple[np.ndarray, list[str], list[tuple[str, str]]]:
        model = load_humanoid(urdf)
        missing = [j for j in MOTION_JOINTS if j not in {jt.name for jt in model.joints}]
        if missing:
            raise DataError(f"{urdf} lacks the joint(s) {', '.join(missing)} that the motion clips set")
        frames = {p.name[len("humanoid3d_"):-len(".txt")]: load_clip(p) for p in paths}
        meshes = [_shape_mesh(s) for s in model.shapes]
        grids, sources = [], []
        for clip, i, yaw in biped_poses({c: len(f) for c, f in frames.items()}, frame_step, max_poses, yaws):
            v, f = posed_mesh(model, frames[clip][i], yaw, meshes)
            grids.append(voxelize_mesh(v, f, resolution))
            sources.append(f"{clip}:{i}:yaw{np.degrees(yaw):.0f}")
        return np.stack(grids), sources, []

    return cached_voxels("biped", key, resolution, cache_dir, build)
