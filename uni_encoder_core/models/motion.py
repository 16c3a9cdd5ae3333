"""Scene-flow and motion-mask decoders (Dynamo-Depth style with the paper's non-linear refinement)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from uni_encoder_core.config import MotionConfig
from uni_encoder_core.models.layers import Conv3x3, ConvELU, upsample_to


class MotionRefinement(nn.Module):
    """Coarse-to-fine refinement of an ``out_channels`` field from ego-motion and pair features.

    ``F_5 = Conv1x1(s * [t, axis-angle])`` (ego-motion, detached, at 1x1); per level ``i`` from stride 32 to 4:
    ``a_i = Conv([U(F_{i+1}), f_i])``, ``F_i = U(F_{i+1}) + ConvELU([a_i, Conv(a_i)])``, where ``U`` is bilinear
    upsampling and ``ConvELU`` a 3x3 convolution with ELU followed by a 1x1 projection to ``out_channels``.
    Returns the raw field at full input resolution (``4 x`` the finest map).
    """

    def __init__(self, in_channels: list[int], cfg: MotionConfig, out_channels: int):
        super().__init__()
        if len(in_channels) != len(cfg.channels):
            raise ValueError(f"motion decoder: {len(in_channels)} feature maps but {len(cfg.channels)} widths")
        self.ego_motion_scale = cfg.ego_motion_scale
        self.ego = nn.Conv2d(6, out_channels, 1)
        self.mix = nn.ModuleList(Conv3x3(c_in + out_channels, c) for c_in, c in zip(in_channels, cfg.channels))
        self.refine = nn.ModuleList(Conv3x3(c, c) for c in cfg.channels)
        self.residual = nn.ModuleList(
            nn.Sequential(ConvELU(2 * c, c), nn.Conv2d(c, out_channels, 1)) for c in cfg.channels
        )

    def forward(self, features: list[Tensor], axis_angle: Tensor, translation: Tensor) -> Tensor:
        """Pair features (strides 4..32), ego-motion ``Bx3`` + ``Bx3`` -> field ``Bx(out)xHxW`` (H = 4 h_4)."""
        ego = torch.cat([translation, axis_angle], dim=1).detach()[:, :, None, None]
        field = self.ego(self.ego_motion_scale * ego)
        for i in range(len(features) - 1, -1, -1):
            up = upsample_to(field, features[i])
            a = self.mix[i](torch.cat([up, features[i]], dim=1))
            field = up + self.residual[i](torch.cat([a, self.refine[i](a)], dim=1))
        return nn.functional.interpolate(field, scale_factor=4.0, mode="bilinear", align_corners=False)


class SceneFlowDecoder(MotionRefinement):
    """Complete 3D scene flow ``F_C`` (target frame -> source frame, camera units per frame)."""

    def __init__(self, in_channels: list[int], cfg: MotionConfig):
        super().__init__(in_channels, cfg, out_channels=3)
        self.flow_scale = cfg.flow_scale

    def forward(self, features: list[Tensor], axis_angle: Tensor, translation: Tensor) -> Tensor:
        """Pair features, ego-motion -> complete flow ``Bx3xHxW`` (``flow_scale`` x the raw field)."""
        return self.flow_scale * super().forward(features, axis_angle, translation)


class MotionMaskDecoder(MotionRefinement):
    """Motion mask ``M`` in [0, 1] (1 = independently moving)."""

    def __init__(self, in_channels: list[int], cfg: MotionConfig):
        super().__init__(in_channels, cfg, out_channels=1)

    def forward(self, features: list[Tensor], axis_angle: Tensor, translation: Tensor) -> Tensor:
        """Pair features, ego-motion -> motion mask ``Bx1xHxW`` (sigmoid of the raw field)."""
        return torch.sigmoid(super().forward(features, axis_angle, translation))
