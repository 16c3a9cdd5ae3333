"""The multi-scale pose decoder (the paper's contribution) and the monodepth2 pose head."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from uni_encoder_core.config import PoseConfig
from uni_encoder_core.geometry import pose_vec_to_matrix
from uni_encoder_core.models.layers import ConvBN


class ResidualBlock(nn.Module):
    """``out = ReLU(ConvBNReLU(ConvBN(f)) + Shortcut(f))``; the shortcut is a 1x1 ConvBN when widths differ."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.body = nn.Sequential(
            ConvBN(in_channels, out_channels), ConvBN(out_channels, out_channels), nn.ReLU(inplace=True)
        )
        self.shortcut = nn.Identity() if in_channels == out_channels else ConvBN(in_channels, out_channels, 1)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        """``Bx(in)xhxw`` -> ``Bx(out)xhxw``."""
        return torch.relu(self.body(f) + self.shortcut(f))


class PoseHead(nn.Module):
    """monodepth2's pose head: 1x1 squeeze, three convolutions, spatial mean, x``output_scale``.

    Features ``BxCxhxw`` -> (axis-angle ``Bx3`` in radians, translation ``Bx3``).
    """

    def __init__(self, in_channels: int, channels: int = 256, output_scale: float = 0.01):
        super().__init__()
        self.output_scale = output_scale
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, channels, 1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, 6, 1),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``BxCxhxw`` -> (axis_angle ``Bx3``, translation ``Bx3``)."""
        out = self.output_scale * self.net(x).mean(dim=(2, 3))
        return out[:, :3], out[:, 3:]


class MultiScalePoseDecoder(nn.Module):
    """Source and target features at strides 4..32 -> ``T_t->s``.

    Per scale the source and target maps are concatenated (192/384/768/1536 channels for Swin-T) together
    with the downsampled output of the finer scale and pass two :class:`ResidualBlock`s; the coarsest
    output feeds :class:`PoseHead`. Training feeds every pair in temporal order, the earlier frame as the
    source (``MultiTaskModel.predict_pairs`` inverts the result for a source after the target), as inference
    does (previous frame, current frame).
    """

    def __init__(self, in_channels: list[int], cfg: PoseConfig):
        super().__init__()
        if len(in_channels) != len(cfg.channels):
            raise ValueError(f"pose decoder: {len(in_channels)} encoder maps but {len(cfg.channels)} widths")
        self.scales = nn.ModuleList()
        previous = 0
        for c_in, c_out in zip(in_channels, cfg.channels):
            self.scales.append(nn.Sequential(ResidualBlock(2 * c_in + previous, c_out), ResidualBlock(c_out, c_out)))
            previous = c_out
        self.head = PoseHead(cfg.channels[-1], cfg.head_channels, cfg.output_scale)

    def forward(
        self, feats_src: list[torch.Tensor], feats_tgt: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Features of source and target frames -> (``T_t->s`` Bx4x4, axis_angle Bx3, translation Bx3)."""
        x = None
        for scale, f_s, f_t in zip(self.scales, feats_src, feats_tgt):
            inputs = [f_s, f_t] if x is None else [f_s, f_t, F.avg_pool2d(x, 2)]
            x = scale(torch.cat(inputs, dim=1))
        axis_angle, translation = self.head(x)
        return pose_vec_to_matrix(axis_angle, translation), axis_angle, translation
