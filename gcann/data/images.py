"""Image folders (CelebA, the user's own images), decoded lazily with DCGAN's preprocessing.

Preprocessing is the PyTorch DCGAN example's ``Resize(R)`` + ``CenterCrop(R)`` +
``ToTensor()`` + ``Normalize(0.5, 0.5)``: the shorter side is resized to ``R``
(bilinear, antialiased as PIL does it), the centre ``R × R`` square is cut out,
and pixel values are mapped to [-1, 1]. Written with PIL directly (the result
equals torchvision's, which the tests check), so workers need no torchvision.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from gcann.data.base import (DataError, DataWarning, cache_root, check_choice, check_resolution, content_key,
                             file_stamps, warn_skipped)
from gcann.fileio import atomic_write_text

__all__ = ["ImageFolderSet", "IMAGE_EXTENSIONS", "build_celeba", "build_images", "preprocess"]

#: file name endings an image folder is searched for (case-insensitive)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
#: bumped when the preprocessing changes (it is part of every image key)
PREPROCESS_VERSION = "resize-shorter-bilinear+center-crop+[-1,1] v1"
VERIFY_MODES = ("header", "full", "none")


def preprocess(img: Any, resolution: int, channels: int) -> Tensor:
    """A PIL image -> ``(channels, R, R)`` float32 in [-1, 1] (Resize + CenterCrop + Normalize(0.5, 0.5))."""
    from PIL import Image

    img = img.convert("L" if channels == 1 else "RGB")
    w, h = img.size
    short, long = (w, h) if w <= h else (h, w)
    if short != resolution:  # torchvision leaves an image whose shorter side already fits untouched
        new_short, new_long = resolution, int(resolution * long / short)
        size = (new_short, new_long) if w <= h else (new_long, new_short)
        img = img.resize(size, Image.BILINEAR)
        w, h = img.size
    top = int(round((h - resolution) / 2.0))
    left = int(round((w - resolution) / 2.0))
    img = img.crop((left, top, left + resolution, top + resolution))
    x = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy())
    x = x.unsqueeze(0) if channels == 1 else x.permute(2, 0, 1)
    return x.float().div_(127.5).sub_(1.0).contiguous()


class ImageFolderSet(Dataset):
    """Images decoded in ``__getitem__`` (so DataLoader workers decode in parallel).

    ``files`` are the usable images (sorted), ``skipped_files`` the ``(path,
    reason)`` of those the index check rejected, ``skipped`` their count.
    """

    kind = "image"

    def __init__(self, files: list[Path], *, name: str, key: str, resolution: int, channels: int,
                 skipped_files: list[tuple[str, str]] | None = None) -> None:
        self.files = files
        self.name, self.key = name, key
        self.resolution, self.channels = resolution, channels
        self.sample_shape = (channels, resolution, resolution)
        self.skipped_files = list(skipped_files or [])
        self.skipped = len(self.skipped_files)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> Tensor:
        from PIL import Image

        path = self.files[i]
        try:
            with Image.open(path) as img:
                return preprocess(img, self.resolution, self.channels)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise DataError(f"cannot decode image {path} ({reason}): remove or replace the file, or build "
                            f"the dataset with verify='full' to skip such files at index time") from None

    def __repr__(self) -> str:
        return f"ImageFolderSet({self.name!r}, {len(self)} × {self.sample_shape}, key={self.key!r})"


# ---------------------------------------------------------------------- index
def _is_image(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def _list_images(folder: Path, recursive: bool) -> list[Path]:
    if not recursive:
        return sorted(p for p in folder.iterdir() if _is_image(p.name) and p.is_file())
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        out.extend(Path(dirpath) / f for f in filenames if _is_image(f))
    return sorted(out)


def check_decodable(src: Any, verify: str) -> str | None:
    """None when the image in ``src`` (a path or a binary file object) passes the ``verify`` check
    (``"header"``: the header parses; ``"full"``: the image decodes; ``"none"``: no check), else the reason."""
    from PIL import Image

    if verify == "none":
        return None
    try:
        with Image.open(src) as img:  # reads the header only
            if img.width < 1 or img.height < 1:
                return "zero-sized image"
            if verify == "full":
                img.load()
    except Exception as e:  # noqa: BLE001 -- any decoder failure makes the image unusable
        return (str(e).splitlines() or [type(e).__name__])[0]
    return None


def _check_image(path: Path, verify: str) -> str | None:
    """None when ``path`` passes the ``verify`` check, else the reason it fails."""
    try:
        if path.stat().st_size == 0:
            return "empty file"
    except OSError as e:
        return (str(e).splitlines() or [type(e).__name__])[0]
    return check_decodable(path, verify)


def _index(folder: Path, files: list[Path], verify: str, cache_dir: Any) -> tuple[list[Path], list[tuple[str, str]]]:
    """The usable files and the ``(path, reason)`` of the rejected ones; the verdicts are cached by listing."""
    stamps = file_stamps(files, folder)
    cache = cache_root(cache_dir) / "index" / (content_key("images", 0, [verify, stamps]) + ".json")
    try:
        bad = {k: v for k, v in json.loads(cache.read_text())["bad"]}
    except (OSError, ValueError, KeyError, TypeError):
        bad = {}
        for f, (rel, _, _) in zip(files, stamps):
            reason = _check_image(f, verify)
            if reason is not None:
                bad[rel] = reason
        try:
            atomic_write_text(cache, json.dumps({"bad": sorted(bad.items())}))
        except OSError as e:
            warnings.warn(f"cannot write the image index cache {cache}: {e.strerror or e}", DataWarning,
                          stacklevel=3)
    good = [f for f, (rel, _, _) in zip(files, stamps) if rel not in bad]
    return good, [(str(folder / rel), why) for rel, why in sorted(bad.items())]


def _folder_set(name: str, folder: Path, files: list[Path], resolution: int, channels: int, verify: str,
                cache_dir: Any, hint: str) -> ImageFolderSet:
    good, bad = _index(folder, files, verify, cache_dir)
    if not good:
        path, reason = bad[0]
        raise DataError(f"{name} folder {folder} has {len(files)} image file(s) but none is readable "
                        f"(first: {path}: {reason}); {hint}")
    warn_skipped(name, bad, len(files), folder)
    key = content_key(name, resolution, [PREPROCESS_VERSION, channels, file_stamps(good, folder)])
    return ImageFolderSet(good, name=name, key=key, resolution=resolution, channels=channels, skipped_files=bad)


def _options(name: str, resolution: int | None, channels: int, verify: str) -> int:
    resolution = check_resolution(name, 64 if resolution is None else resolution, 8, 1024)
    check_choice(name, "channels", channels, (1, 3))
    check_choice(name, "verify", verify, VERIFY_MODES)
    return resolution


# ---------------------------------------------------------------------- builders
_CELEBA_HINT = ("put the aligned JPEGs (img_align_celeba.zip, extracted) under {root}/img_align_celeba/ "
                "or pass the folder itself")


def build_celeba(root: str | os.PathLike[str] | None = None, *, resolution: int | None = None,
                 cache_dir: Any = None, channels: int = 3, verify: str = "header") -> ImageFolderSet:
    """CelebA's aligned faces from a local root (``img_align_celeba/*.jpg`` under it, torchvision's
    ``celeba/img_align_celeba/``, or the image folder itself); 64×64 RGB by default."""
    resolution = _options("celeba", resolution, channels, verify)
    if root is None:
        raise DataError("CelebA is not shipped with gcann: pass the folder that holds img_align_celeba/ "
                        "(img_align_celeba.zip from the CelebA site, extracted)")
    root = Path(root).expanduser()
    hint = _CELEBA_HINT.format(root=root)
    if not root.is_dir():
        raise DataError(f"CelebA root {root} is not a folder: {hint}")
    for folder in (root / "img_align_celeba", root / "celeba" / "img_align_celeba", root):
        if folder.is_dir():
            files = _list_images(folder, recursive=False)
            if files:
                return _folder_set("celeba", folder, files, resolution, channels, verify, cache_dir, hint)
            if folder != root:
                raise DataError(f"CelebA folder {folder} holds no images: extract img_align_celeba.zip so that "
                                f"the JPEGs lie directly in {folder}/")
    raise DataError(f"CelebA root {root} has no img_align_celeba/*.jpg: {hint}")


def build_images(root: str | os.PathLike[str] | None = None, *, resolution: int | None = None,
                 cache_dir: Any = None, channels: int = 3, verify: str = "header") -> ImageFolderSet:
    """Every image under ``root`` (recursive; .jpg .jpeg .png .bmp .gif .webp .tif .tiff), DCGAN preprocessing."""
    resolution = _options("images", resolution, channels, verify)
    hint = f"put image files ({', '.join(IMAGE_EXTENSIONS)}) in it or in its subfolders"
    if root is None:
        raise DataError(f"the images dataset needs a root folder: pass the folder of your images ({hint})")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist: create it and {hint}")
    files = _list_images(root, recursive=True)
    if not files:
        raise DataError(f"image folder {root} holds no image files: {hint}")
    return _folder_set("images", root, files, resolution, channels, verify, cache_dir, hint)
