"""DCGAN generator and discriminator for 64×64 images (Radford et al., 2016).

Transposed convolutions with BatchNorm and ReLU in the generator (Tanh
output in [-1, 1]); strided convolutions with BatchNorm and LeakyReLU(0.2) in
the discriminator, no BatchNorm on its first layer. Weights are drawn from
N(0, 0.02), BatchNorm scales from N(1, 0.02) with zero bias. The discriminator
returns logits (shape ``(B,)``) for use with ``BCEWithLogitsLoss``; apply a
sigmoid for probabilities.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["DCGANDiscriminator", "DCGANGenerator", "dcgan_weights_init"]


def dcgan_weights_init(module: nn.Module) -> None:
    """DCGAN initialisation; use as ``model.apply(dcgan_weights_init)``."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class DCGANGenerator(nn.Module):
    """``z`` of shape ``(B, nz)`` or ``(B, nz, 1, 1)`` → images ``(B, nc, 64, 64)`` in [-1, 1]."""

    def __init__(self, nz: int = 100, ngf: int = 64, nc: int = 3) -> None:
        super().__init__()
        self.nz = nz
        self.net = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),       # 1 -> 4
            nn.BatchNorm2d(ngf * 8),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),  # 4 -> 8
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),  # 8 -> 16
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),      # 16 -> 32
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),           # 32 -> 64
            nn.Tanh(),
        )
        self.apply(dcgan_weights_init)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z.reshape(z.shape[0], self.nz, 1, 1))

    def sample_latent(self, batch_size: int, generator: torch.Generator | None = None,
                      device: torch.device | str | None = None) -> Tensor:
        """Standard normal latent codes ``(batch_size, nz)``."""
        return torch.randn(batch_size, self.nz, generator=generator, device=device)


class DCGANDiscriminator(nn.Module):
    """Images ``(B, nc, 64, 64)`` → real/fake logits ``(B,)``."""

    def __init__(self, ndf: int = 64, nc: int = 3) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),                    # 64 -> 32
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),               # 32 -> 16
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),           # 16 -> 8
            nn.BatchNorm2d(ndf * 4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False),           # 8 -> 4
            nn.BatchNorm2d(ndf * 8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),                 # 4 -> 1
        )
        self.apply(dcgan_weights_init)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).reshape(-1)
