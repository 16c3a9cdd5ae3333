"""Motion losses of ``L_ssup``: consistency ``L_c`` and sparsity ``L_m`` (Dynamo-Depth), on 3D flows Bx3xHxW."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _check(complete_flow: Tensor, rigid_flow: Tensor, motion_mask: Tensor) -> None:
    B, _, H, W = complete_flow.shape
    if complete_flow.shape != rigid_flow.shape or complete_flow.shape[1] != 3:
        raise ValueError(
            f"complete_flow and rigid_flow must be Bx3xHxW, got {tuple(complete_flow.shape)}, {tuple(rigid_flow.shape)}"
        )
    if motion_mask.shape != (B, 1, H, W):
        raise ValueError(f"motion_mask must have shape {(B, 1, H, W)}, got {tuple(motion_mask.shape)}")


def flow_discrepancy(complete_flow: Tensor, rigid_flow: Tensor) -> Tensor:
    """``F_D = ||F_C - F_R||_1`` per pixel, Bx1xHxW."""
    return (complete_flow - rigid_flow).abs().sum(1, keepdim=True)


def motion_consistency_loss(
    complete_flow: Tensor, rigid_flow: Tensor, motion_mask: Tensor, disp: Tensor, disparity_threshold: float = 0.03
) -> Tensor:
    """``L_c``: mean of ``(1 - M) |F_C - F_R|`` over pixels and xyz (``mean((1 - M) F_D) / 3``), i.e. the complete
    flow must agree with the rigid flow on static pixels.

    The mask is a fixed weight here (detached, it learns from the other terms); pixels whose sigmoid disparity
    ``disp`` Bx1xHxW is at most ``disparity_threshold`` (far away, sky: rotation dominates) are left out.
    """
    _check(complete_flow, rigid_flow, motion_mask)
    weight = (1.0 - motion_mask.detach()) * (disp.detach() > disparity_threshold).to(complete_flow.dtype)
    return (weight * flow_discrepancy(complete_flow, rigid_flow)).mean() / complete_flow.shape[1]


def motion_sparsity_loss(motion_mask: Tensor, complete_flow: Tensor, rigid_flow: Tensor) -> Tensor:
    """``L_m``: binary cross-entropy of the motion mask M (probabilities) towards 0 on low-discrepancy pixels.

    A pixel counts as static when its flow discrepancy ``F_D`` is below its image's mean ``F_D`` (Dynamo-Depth's
    rule); the discrepancy is a fixed selector (no gradient). Zero when no pixel qualifies.
    """
    _check(complete_flow, rigid_flow, motion_mask)
    discrepancy = flow_discrepancy(complete_flow, rigid_flow).detach()
    static = discrepancy < discrepancy.mean(dim=(1, 2, 3), keepdim=True)
    if not static.any():
        return motion_mask.sum() * 0.0
    # BCE with target 0 is -log(1 - M); log clamped at -100 as torch's BCE does, in float32 (autocast-safe). The clamp
    # acts on 1 - M before the log: clamping the log instead leaves 0 * inf = NaN gradients where M saturates at 1.
    return -torch.log((1.0 - motion_mask[static].float()).clamp_min(math.exp(-100.0))).mean()
