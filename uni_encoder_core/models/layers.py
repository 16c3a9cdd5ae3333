"""Small convolution blocks shared by the decoders."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Conv3x3(nn.Sequential):
    """3x3 convolution with reflection padding (monodepth2's ``Conv3x3``); keeps the spatial size."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(nn.ReflectionPad2d(1), nn.Conv2d(in_channels, out_channels, 3))


class ConvELU(nn.Sequential):
    """``Conv3x3`` followed by ELU (monodepth2's ``ConvBlock``)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(Conv3x3(in_channels, out_channels), nn.ELU(inplace=True))


class ConvBN(nn.Sequential):
    """``kernel x kernel`` convolution (zero padding, no bias) followed by batch norm."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 3):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(out_channels)
        )


class ResidualConvUnit(nn.Module):
    """``x + Conv(ReLU(Conv(ReLU(x))))`` (the residual conv unit of DPT/TransDSSL decoders)."""

    def __init__(self, channels: int):
        super().__init__()
        conv = [nn.Conv2d(channels, channels, 3, padding=1) for _ in range(2)]
        self.body = nn.Sequential(nn.ReLU(), conv[0], nn.ReLU(), conv[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``BxCxHxW`` -> ``BxCxHxW``."""
        return x + self.body(x)


def upsample_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Bilinear resize of ``x`` to the spatial size of ``like``."""
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour x2 upsampling (monodepth2's ``upsample``)."""
    return F.interpolate(x, scale_factor=2.0, mode="nearest")
