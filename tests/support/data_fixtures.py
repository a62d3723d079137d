"""Generated data for the gcann.data tests: image folders, IDX files, meshes, corrupt files (all seeded)."""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np


def write_image(path: Path, w: int, h: int, seed: int, mode: str = "RGB") -> np.ndarray:
    """A random image saved at ``path`` (format from the extension); returns the pixels written."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shape = (h, w) if mode in ("L", "P") else (h, w, len(mode))
    a = rng.integers(0, 256, size=shape, dtype=np.uint8)
    img = Image.fromarray(a, mode="L" if mode == "P" else mode)
    if mode == "P":
        img = img.convert("P")
    img.save(path)
    return a


def celeba_tree(root: Path, layout: str, n: int = 5) -> Path:
    """``n`` 178×218 JPEGs in one of CelebA's layouts: "plain" (root/img_align_celeba/), "torchvision"
    (root/celeba/img_align_celeba/) or "folder" (root itself); returns the image folder."""
    folder = {"plain": root / "img_align_celeba", "torchvision": root / "celeba" / "img_align_celeba",
              "folder": root}[layout]
    for i in range(n):
        write_image(folder / f"{i + 1:06d}.jpg", 178, 218, seed=i)
    if layout != "folder":
        (root / "list_attr_celeba.txt").write_text("not an image\n")
    return folder


def truncated_jpeg(path: Path, seed: int = 99) -> None:
    """A JPEG whose header is intact but whose data stops half-way."""
    write_image(path, 64, 80, seed)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def garbage(path: Path, n: int = 300, seed: int = 7) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes())


def write_idx(path: Path, array: np.ndarray, gz: bool) -> None:
    """An IDX file written from the format's definition (big-endian dims after a 4-byte magic), ubyte data."""
    assert array.dtype == np.uint8
    raw = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)


def idx_root(root: Path, n_train: int = 12, n_test: int = 7, gz: bool = True, seed: int = 0,
             dotted: bool = False) -> dict[str, np.ndarray]:
    """The four Fashion-MNIST IDX files with random content; returns the arrays written."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        out[f"{prefix}-images"] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        out[f"{prefix}-labels"] = rng.integers(0, 10, n, dtype=np.uint8)
        sep = "." if dotted else "-"
        ext = ".gz" if gz else ""
        write_idx(root / f"{prefix}-images{sep}idx3-ubyte{ext}", out[f"{prefix}-images"], gz)
        write_idx(root / f"{prefix}-labels{sep}idx1-ubyte{ext}", out[f"{prefix}-labels"], gz)
    return out


def mesh_tree(root: Path) -> list[str]:
    """Meshes in nested folders, one per format, plus material/texture files; returns their relative paths."""
    import trimesh

    shapes = {
        "a/box.obj": trimesh.creation.box(extents=(2.0, 1.0, 0.5)),
        "a/b/sphere.ply": trimesh.creation.icosphere(subdivisions=3, radius=1.3),
        "c/cyl.stl": trimesh.creation.cylinder(radius=0.4, height=2.0, sections=24),
        "c/capsule.off": trimesh.creation.capsule(height=1.0, radius=0.5),
        "d/scene.glb": trimesh.Scene([trimesh.creation.box(extents=(1, 1, 1)),
                                      trimesh.creation.icosphere(radius=0.5).apply_translation((2, 0, 0))]),
    }
    for rel, m in shapes.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        m.export(p)
    (root / "a" / "box.mtl").write_text("newmtl none\n")
    write_image(root / "a" / "texture.png", 8, 8, 0)
    return sorted(shapes)
