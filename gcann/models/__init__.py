"""Generator and discriminator networks: the DCGAN image family and the voxel 3D-GAN.

:func:`build_models` makes a ``(G, D)`` pair by architecture name; the trainer
and ``gcann sample`` use it, so a checkpoint's config rebuilds its networks.
"""
from __future__ import annotations

from torch import nn

from .dcgan import RESOLUTIONS, DCGANDiscriminator, DCGANGenerator, dcgan_weights_init, norm_layer
from .voxel import VOXEL_RESOLUTIONS, VoxelDiscriminator, VoxelGenerator

__all__ = [
    "ARCHITECTURES", "DCGANDiscriminator", "DCGANGenerator", "RESOLUTIONS", "VOXEL_RESOLUTIONS",
    "VoxelDiscriminator", "VoxelGenerator", "build_models", "dcgan_weights_init", "norm_layer",
]

#: architecture name -> (data kind, supported resolutions)
ARCHITECTURES = {"dcgan": ("image", tuple(sorted(RESOLUTIONS))), "voxel": ("voxel", tuple(sorted(VOXEL_RESOLUTIONS)))}


def build_models(arch: str, *, resolution: int, channels: int = 3, nz: int = 100, width_g: int = 64,
                 width_d: int = 64, norm_g: str = "batch", norm_d: str = "batch") -> tuple[nn.Module, nn.Module]:
    """The generator and discriminator of architecture ``arch`` ("dcgan" or "voxel")."""
    if arch == "dcgan":
        return (DCGANGenerator(nz, width_g, channels, resolution, norm_g),
                DCGANDiscriminator(width_d, channels, resolution, norm_d))
    if arch == "voxel":
        if channels != 1:
            raise ValueError(f"voxel grids have 1 channel, got channels={channels}")
        return VoxelGenerator(nz, width_g, resolution, norm_g), VoxelDiscriminator(width_d, resolution, norm_d)
    raise ValueError(f"unknown architecture {arch!r}; choose from {', '.join(ARCHITECTURES)}")
