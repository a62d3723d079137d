"""A small network with the Inception wrapper's interface, for the FID/KID/IS tests (the real one is slow on a CPU)."""
from __future__ import annotations

import torch
from torch import nn


class StandIn(nn.Module):
    """uint8 (N, 3, H, W) -> (features (N, 8), logits (N, 10)): the interface of the Inception wrapper."""

    has_head = True

    def __init__(self, dim: int = 8):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(3, dim, 3)
        self.head = nn.Linear(dim, 10)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.tanh(self.conv(x.float() / 128 - 1))
        return y.mean(dim=(2, 3)) + y.square().mean(dim=(2, 3))

    def forward(self, x):
        f = self.features(x)
        return f, self.head(f) * 3


class FeatureOnly(nn.Module):
    """What torchmetrics calls: the stand-in's features."""

    def __init__(self, net: StandIn):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net.features(x)
