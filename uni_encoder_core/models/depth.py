"""TransDSSL-style depth decoder: pixel-wise skip attention, sigmoid disparity at four scales."""

from __future__ import annotations

import torch
from torch import nn

from uni_encoder_core.config import DepthConfig
from uni_encoder_core.geometry import disparity_to_depth
from uni_encoder_core.models.layers import Conv3x3, ConvELU, ResidualConvUnit, upsample2x


class SkipAttention(nn.Module):
    """Pixel-wise skip attention: a per-pixel softmax over (decoder, skip) weights their sum, added residually.

    The skip features pass a residual conv unit and a 1x1 convolution to the decoder's width first.
    """

    def __init__(self, skip_channels: int, channels: int):
        super().__init__()
        self.skip = nn.Sequential(ResidualConvUnit(skip_channels), nn.Conv2d(skip_channels, channels, 1))
        self.attention = nn.Conv2d(2 * channels, 2, 1)

    def forward(self, decoder: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """``decoder`` BxCxhxw, ``skip`` Bx(skip_channels)xhxw -> BxCxhxw."""
        skip = self.skip(skip)
        weights = torch.softmax(self.attention(torch.cat([decoder, skip], dim=1)), dim=1)
        return decoder + weights[:, :1] * decoder + weights[:, 1:] * skip


class DepthDecoder(nn.Module):
    """Encoder maps at strides 4..32 -> sigmoid disparities at strides 1, 2, 4, 8 (finest first) and depth.

    Widths ``cfg.channels`` are per decoder stage at strides 1, 2, 4, 8, 16. Each stage: ConvELU, x2
    upsampling, skip attention with the encoder map of that stride (strides 4, 8, 16), ConvELU; stages at
    strides 1..8 emit a disparity through a 3x3 convolution and a sigmoid.
    """

    def __init__(self, in_channels: list[int], cfg: DepthConfig):
        super().__init__()
        if len(in_channels) != 4 or len(cfg.channels) != 5:
            raise ValueError("DepthDecoder needs 4 encoder maps and 5 decoder widths (strides 1..16)")
        self.cfg = cfg
        widths = cfg.channels
        skips = {2: in_channels[0], 3: in_channels[1], 4: in_channels[2]}  # stage index -> skip channels
        self.reduce = nn.ModuleList()
        self.attend = nn.ModuleDict()
        self.fuse = nn.ModuleList()
        previous = in_channels[3]
        for i in range(4, -1, -1):
            self.reduce.append(ConvELU(previous, widths[i]))
            if i in skips:
                self.attend[str(i)] = SkipAttention(skips[i], widths[i])
            self.fuse.append(ConvELU(widths[i], widths[i]))
            previous = widths[i]
        self.disp = nn.ModuleList(Conv3x3(widths[i], 1) for i in range(4))

    def forward(self, features: list[torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Features (strides 4..32) -> (4 disparities ``Bx1xhxw`` in (0, 1), finest first; depth ``Bx1xHxW``)."""
        x = features[3]
        disparities: list[torch.Tensor] = []
        for stage, i in enumerate(range(4, -1, -1)):
            x = upsample2x(self.reduce[stage](x))
            if str(i) in self.attend:
                x = self.attend[str(i)](x, features[i - 2])
            x = self.fuse[stage](x)
            if i < 4:
                disparities.insert(0, torch.sigmoid(self.disp[i](x)))
        depth = disparity_to_depth(disparities[0], self.cfg.min_depth, self.cfg.max_depth)
        return disparities, depth
