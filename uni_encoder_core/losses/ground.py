"""Above-ground loss ``L_g`` (Dynamo-Depth): no point may lie below the ground plane fitted by RANSAC."""

from __future__ import annotations

import torch
from torch import Tensor

from uni_encoder_core.geometry import depth_to_disparity, disparity_to_depth, fit_ground_plane_to_depth, plane_depth

MAX_TILT_DEG = 30.0  # a road seen by an upright camera


def above_ground_loss(
    disp: Tensor,
    K: Tensor,
    min_depth: float,
    max_depth: float,
    lower_fraction: float = 0.4,
    iterations: int = 100,
    relative_threshold: float = 0.01,
    margin: float = 0.05,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Mean of ``max(0, disp_ground - disp)`` over the pixels whose ray meets the ground within ``max_depth``.

    ``disp`` is the sigmoid disparity Bx1xhxw (depth = 1 / (1/max_depth + (1/min_depth - 1/max_depth) disp)) and
    ``K`` Bx3x3 the intrinsics at that resolution. The ground plane is fitted (no gradient) to the lowest
    ``lower_fraction`` of the rows with :func:`fit_ground_plane_to_depth`; ``disp_ground`` is the disparity of that
    plane lowered by ``margin`` times the camera height, with the plane's depth clamped to ``min_depth`` so the target
    stays a reachable sigmoid disparity (each pixel costs at most 1). A pixel predicted farther than the ground along
    its ray (i.e. below the road) is pulled back up; pixels above the ground cost nothing. An item whose fitted plane
    tilts more than ``MAX_TILT_DEG`` from the camera's vertical axis (not upright) has no ground and costs nothing.
    """
    if disp.dim() != 4 or disp.shape[1] != 1:
        raise ValueError(f"disp must have shape Bx1xHxW, got {tuple(disp.shape)}")
    depth = disparity_to_depth(disp.detach(), min_depth, max_depth)
    normal, offset, upright = fit_ground_plane_to_depth(
        depth, K, lower_fraction, iterations, relative_threshold, max_tilt_deg=MAX_TILT_DEG, generator=generator
    )
    ground_depth = plane_depth(normal, offset * (1.0 + margin), K, disp.shape[2], disp.shape[3])
    meets_ground = (ground_depth < max_depth) & upright[:, None, None, None]
    ground_depth = torch.where(meets_ground, ground_depth.clamp_min(min_depth), torch.ones_like(ground_depth))
    ground_disp = depth_to_disparity(ground_depth, min_depth, max_depth)  # in [0, 1], the sigmoid's range
    below = (ground_disp - disp).clamp_min(0.0)
    return (below * meets_ground.to(disp.dtype)).mean()
