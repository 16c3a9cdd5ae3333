"""The shared image encoder: a timm backbone giving four NCHW feature maps at strides 4, 8, 16, 32."""

from __future__ import annotations

import re
from pathlib import Path

import timm
import torch
from timm.layers import Format
from timm.models import adapt_input_conv
from torch import nn

from uni_encoder_core.config import EncoderConfig

STRIDES = (4, 8, 16, 32)


def _create_backbone(cfg: EncoderConfig) -> nn.Module:
    kwargs: dict = {"pretrained": False, "features_only": True, "in_chans": cfg.in_chans}
    if "swin" in cfg.backbone:
        kwargs["strict_img_size"] = False  # attention masks are built for each input size
    for name in ("embed_dim", "depths", "num_heads"):
        value = getattr(cfg, name)
        if value is not None:
            kwargs[name] = tuple(value) if isinstance(value, list) else value
    try:
        return timm.create_model(cfg.backbone, **kwargs)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"encoder backbone '{cfg.backbone}' cannot be built with {kwargs}: {exc}") from exc


class SharedEncoder(nn.Module):
    """timm backbone (``features_only``) -> 4 NCHW maps at strides 4, 8, 16, 32.

    Input: ``Bx(in_chans)xHxW`` already normalised, ``H`` and ``W`` multiples of 32. ``channels`` lists the
    maps' channels (``[96, 192, 384, 768]`` for Swin-T). Pretrained weights come from a local file only.
    """

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.backbone = _create_backbone(cfg)
        info = self.backbone.feature_info
        reductions = info.reduction()
        missing = [s for s in STRIDES if s not in reductions]
        if missing:
            raise ValueError(f"encoder backbone '{cfg.backbone}' has no feature maps at strides {missing}")
        self.levels = [reductions.index(s) for s in STRIDES]
        self.channels = [info.channels()[i] for i in self.levels]
        self.nhwc = getattr(self.backbone, "output_fmt", Format.NCHW) == Format.NHWC
        if cfg.pretrained:
            load_backbone_weights(self.backbone, cfg.pretrained)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Normalised images ``BxCxHxW`` -> ``[Bx c_i x H/s_i x W/s_i for s_i in 4, 8, 16, 32]``."""
        if x.dim() != 4 or x.shape[-2] % 32 or x.shape[-1] % 32:
            raise ValueError(f"encoder input must be BxCxHxW with H, W multiples of 32, got {tuple(x.shape)}")
        maps = self.backbone(x)
        maps = [maps[i] for i in self.levels]
        if self.nhwc:
            maps = [m.permute(0, 3, 1, 2).contiguous() for m in maps]
        return maps


def load_backbone_weights(backbone: nn.Module, path: str | Path) -> None:
    """Load a local timm state dict (full classification model or ``features_only``) into ``backbone``.

    Keys of the classifier head and final norm are ignored; every backbone key must be present. A first
    convolution with a different number of input channels is adapted (timm's ``adapt_input_conv``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained encoder weights not found: {path}")
    raw = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(raw, dict) and isinstance(raw.get(key), dict):
            raw = raw[key]
    own = backbone.state_dict()
    # timm's features_only wrappers flatten 'layers.0.x' into 'layers_0.x'
    renamed = {k if k in own else re.sub(r"^(\w+)\.(\d+)\.", r"\1_\2.", k): v for k, v in raw.items()}
    state = {k: v for k, v in renamed.items() if k in own}
    missing = sorted(set(own) - set(state))
    if missing:
        raise ValueError(f"{path}: pretrained weights lack {len(missing)} encoder keys, e.g. {missing[:5]}")
    for key, value in state.items():
        if value.shape != own[key].shape and value.dim() == 4 and own[key].dim() == 4:
            state[key] = adapt_input_conv(own[key].shape[1], value)
        if state[key].shape != own[key].shape:
            raise ValueError(f"{path}: '{key}' has shape {tuple(value.shape)}, encoder needs {tuple(own[key].shape)}")
    backbone.load_state_dict(state)
