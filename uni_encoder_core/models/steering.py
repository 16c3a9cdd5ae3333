"""Steering head: attentive pooling over the coarsest tokens of the last 16 frames -> path curvature."""

from __future__ import annotations

import math

import torch
from timm.layers import AttentionPoolLatent
from torch import nn

from uni_encoder_core.config import SteeringConfig


def ackermann_steering_angle(curvature: float, wheelbase: float) -> float:
    """Front-wheel steering angle (rad, + = left) of an Ackermann vehicle: ``atan(wheelbase * curvature)``."""
    return math.atan(wheelbase * curvature)


def spatial_embedding(height: int, width: int, dim: int, device: torch.device | None = None,
                      dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Fixed 2D sine-cosine position embedding ``(height*width) x dim`` (row half, column half; ``dim % 4 == 0``),
    computed in float32 and returned in ``dtype``."""
    quarter = dim // 4
    omega = 1.0 / (10000.0 ** (torch.arange(quarter, dtype=torch.float32, device=device) / quarter))
    rows = torch.arange(height, dtype=torch.float32, device=device)[:, None] * omega  # h x dim/4
    cols = torch.arange(width, dtype=torch.float32, device=device)[:, None] * omega  # w x dim/4
    row_emb = torch.cat([rows.sin(), rows.cos()], dim=1)[:, None, :].expand(height, width, 2 * quarter)
    col_emb = torch.cat([cols.sin(), cols.cos()], dim=1)[None, :, :].expand(height, width, 2 * quarter)
    return torch.cat([row_emb, col_emb], dim=2).reshape(height * width, 4 * quarter).to(dtype)


class SteeringHead(nn.Module):
    """Window ``BxTxCxhxw`` of the coarsest encoder maps (T = ``cfg.window`` frames, oldest first) -> curvature.

    Tokens are layer-normalised and projected to ``hidden_dim``, get a learned per-frame (temporal)
    embedding plus a fixed 2D sine-cosine spatial embedding; timm's ``AttentionPoolLatent`` (a learned
    query attending over all ``T*h*w`` tokens, then an MLP) pools them; a linear layer gives the path
    curvature in 1/m (+ = left).
    """

    def __init__(self, in_channels: int, cfg: SteeringConfig):
        super().__init__()
        if cfg.hidden_dim % 4 or cfg.hidden_dim % cfg.num_heads:
            raise ValueError("steering hidden_dim must be a multiple of 4 and of num_heads")
        self.window = cfg.window
        self.hidden_dim = cfg.hidden_dim
        self.tokens = nn.Sequential(nn.LayerNorm(in_channels), nn.Linear(in_channels, cfg.hidden_dim))
        self.temporal = nn.Parameter(torch.zeros(cfg.window, cfg.hidden_dim))
        nn.init.trunc_normal_(self.temporal, std=0.02)
        self.pool = AttentionPoolLatent(
            cfg.hidden_dim, num_heads=cfg.num_heads, mlp_ratio=cfg.mlp_ratio, norm_layer=nn.LayerNorm
        )
        self.curvature = nn.Linear(cfg.hidden_dim, 1)

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        """``BxTxCxhxw`` -> curvature ``B`` (1/m)."""
        if window.dim() != 5 or window.shape[1] != self.window:
            raise ValueError(f"steering input must be Bx{self.window}xCxhxw, got {tuple(window.shape)}")
        B, T, C, h, w = window.shape
        tokens = self.tokens(window.permute(0, 1, 3, 4, 2).reshape(B, T, h * w, C))
        # the embedding in the tokens' dtype: a half-precision model stays in half precision
        tokens = tokens + self.temporal[:, None, :] + spatial_embedding(h, w, self.hidden_dim, window.device,
                                                                         tokens.dtype)
        pooled = self.pool(tokens.reshape(B, T * h * w, self.hidden_dim))
        return self.curvature(pooled)[:, 0]
