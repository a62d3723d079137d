"""Voxel 3D-GAN (Wu et al., 2016): transposed 3D convolutions to an occupancy grid.

At 64³ the generator maps ``z ∈ ℝ^200`` through 512 → 256 → 128 → 64 → 1
channels at 4³ → 8³ → 16³ → 32³ → 64³ (kernel 4, stride 2, BatchNorm + ReLU,
sigmoid output: occupancy in [0, 1]); at 32³ the first, widest stage is
dropped (256 → 128 → 64 → 1). The discriminator mirrors it with strided 3D
convolutions, BatchNorm (``norm_d``) and LeakyReLU(0.2), and returns logits
``(B,)``. Initialisation as in DCGAN.
"""

from __future__ import annotations

from torch import Tensor, nn

from .dcgan import dcgan_weights_init, norm_layer

__all__ = ["VOXEL_RESOLUTIONS", "VoxelDiscriminator", "VoxelGenerator"]

#: resolution -> number of stride-2 doublings after the 4³ base
VOXEL_RESOLUTIONS = {32: 3, 64: 4}


def _doublings(resolution: int) -> int:
    if resolution not in VOXEL_RESOLUTIONS:
        raise ValueError(f"voxel resolution must be one of {sorted(VOXEL_RESOLUTIONS)}, got {resolution!r}")
    return VOXEL_RESOLUTIONS[resolution]


class VoxelGenerator(nn.Module):
    """``z`` of shape ``(B, nz)`` → occupancy grids ``(B, 1, R, R, R)`` in [0, 1]."""

    def __init__(self, nz: int = 200, ngf: int = 64, resolution: int = 64, norm: str = "batch") -> None:
        super().__init__()
        if norm not in ("batch", "none"):
            raise ValueError(f"generator normalisation must be 'batch' or 'none', got {norm!r}")
        doublings = _doublings(resolution)
        self.nz, self.nc, self.resolution = nz, 1, resolution
        width = ngf * 2 ** (doublings - 1)
        layers: list[nn.Module] = [nn.ConvTranspose3d(nz, width, 4, 1, 0, bias=False),
                                   norm_layer(norm, width, 3), nn.ReLU(True)]
        for _ in range(doublings - 1):
            layers += [nn.ConvTranspose3d(width, width // 2, 4, 2, 1, bias=False),
                       norm_layer(norm, width // 2, 3), nn.ReLU(True)]
            width //= 2
        layers += [nn.ConvTranspose3d(width, 1, 4, 2, 1, bias=False), nn.Sigmoid()]
        self.net = nn.Sequential(*[m for m in layers if not isinstance(m, nn.Identity)])
        self.apply(dcgan_weights_init)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z.reshape(z.shape[0], self.nz, 1, 1, 1))


class VoxelDiscriminator(nn.Module):
    """Occupancy grids ``(B, 1, R, R, R)`` → real/fake logits ``(B,)``."""

    def __init__(self, ndf: int = 64, resolution: int = 64, norm: str = "batch") -> None:
        super().__init__()
        doublings = _doublings(resolution)
        self.nc, self.resolution = 1, resolution
        layers: list[nn.Module] = [nn.Conv3d(1, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
        width = ndf
        for _ in range(doublings - 1):
            layers += [nn.Conv3d(width, width * 2, 4, 2, 1, bias=False), norm_layer(norm, width * 2, 3),
                       nn.LeakyReLU(0.2, inplace=True)]
            width *= 2
        layers.append(nn.Conv3d(width, 1, 4, 1, 0, bias=False))
        self.net = nn.Sequential(*[m for m in layers if not isinstance(m, nn.Identity)])
        self.apply(dcgan_weights_init)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).reshape(-1)
