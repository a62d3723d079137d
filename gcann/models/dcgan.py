"""DCGAN generators and discriminators (Radford et al., 2016) for 64×64, 32×32, 28×28 and 112×112 images.

Transposed convolutions with BatchNorm and ReLU in the generator (Tanh output
in [-1, 1]); strided convolutions with BatchNorm and LeakyReLU(0.2) in the
discriminator, no normalisation on its first layer. Weights are drawn from
N(0, 0.02), BatchNorm scales from N(1, 0.02) with zero bias. The discriminator
returns logits of shape ``(B,)``; apply a sigmoid for probabilities.

The family shares one construction: a 4×4 (28×28: 7×7) base grown by stride-2
transposed convolutions, the width halving at each doubling. At 64×64 with the
defaults it is exactly the network of the PyTorch DCGAN example
(``ngf·8 → ngf·4 → ngf·2 → ngf → nc``).

Normalisation is a choice for the discriminator (``norm_d``): ``"batch"``
(DCGAN), ``"layer"`` (GroupNorm with one group; use it with gradient penalties
such as WGAN-GP, whose per-sample gradient a batch statistic would mix) or
``"none"``. The generator takes ``"batch"`` or ``"none"``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["DCGANDiscriminator", "DCGANGenerator", "RESOLUTIONS", "dcgan_weights_init", "norm_layer"]

#: resolution -> (size of the first feature map, number of stride-2 doublings)
RESOLUTIONS = {64: (4, 4), 32: (4, 3), 28: (7, 2), 112: (7, 4)}   # 112: the (α_D, α_G)-GAN authors' LSUN networks


def dcgan_weights_init(module: nn.Module) -> None:
    """DCGAN initialisation; use as ``model.apply(dcgan_weights_init)``."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Conv3d, nn.ConvTranspose3d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def norm_layer(kind: str, channels: int, dims: int = 2) -> nn.Module:
    """``"batch"`` (BatchNorm{dims}d), ``"layer"`` (GroupNorm(1, C)) or ``"none"`` (identity)."""
    if kind == "batch":
        return nn.BatchNorm2d(channels) if dims == 2 else nn.BatchNorm3d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown normalisation {kind!r}; use 'batch', 'layer' or 'none'")


def _check_resolution(resolution: int) -> tuple[int, int]:
    if resolution not in RESOLUTIONS:
        raise ValueError(f"DCGAN resolution must be one of {sorted(RESOLUTIONS)}, got {resolution!r}")
    return RESOLUTIONS[resolution]


class DCGANGenerator(nn.Module):
    """``z`` of shape ``(B, nz)`` or ``(B, nz, 1, 1)`` → images ``(B, nc, R, R)`` in [-1, 1]."""

    def __init__(self, nz: int = 100, ngf: int = 64, nc: int = 3, resolution: int = 64, norm: str = "batch") -> None:
        super().__init__()
        if norm not in ("batch", "none"):
            raise ValueError(f"generator normalisation must be 'batch' or 'none', got {norm!r}")
        base, doublings = _check_resolution(resolution)
        self.nz, self.nc, self.resolution = nz, nc, resolution
        width = ngf * 2 ** (doublings - 1)
        layers: list[nn.Module] = [nn.ConvTranspose2d(nz, width, base, 1, 0, bias=False),
                                   norm_layer(norm, width), nn.ReLU(True)]
        for _ in range(doublings - 1):
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                       norm_layer(norm, width // 2), nn.ReLU(True)]
            width //= 2
        layers += [nn.ConvTranspose2d(width, nc, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*[m for m in layers if not isinstance(m, nn.Identity)])
        self.apply(dcgan_weights_init)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z.reshape(z.shape[0], self.nz, 1, 1))

    def sample_latent(self, batch_size: int, generator: torch.Generator | None = None,
                      device: torch.device | str | None = None) -> Tensor:
        """Standard normal latent codes ``(batch_size, nz)``."""
        return torch.randn(batch_size, self.nz, generator=generator, device=device)


class DCGANDiscriminator(nn.Module):
    """Images ``(B, nc, R, R)`` → real/fake logits ``(B,)``."""

    def __init__(self, ndf: int = 64, nc: int = 3, resolution: int = 64, norm: str = "batch") -> None:
        super().__init__()
        base, doublings = _check_resolution(resolution)
        self.nc, self.resolution = nc, resolution
        layers: list[nn.Module] = [nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
        width = ndf
        for _ in range(doublings - 1):
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False), norm_layer(norm, width * 2),
                       nn.LeakyReLU(0.2, inplace=True)]
            width *= 2
        layers.append(nn.Conv2d(width, 1, base, 1, 0, bias=False))
        self.net = nn.Sequential(*[m for m in layers if not isinstance(m, nn.Identity)])
        self.apply(dcgan_weights_init)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).reshape(-1)
