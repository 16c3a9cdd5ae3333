"""Edge-aware smoothness ``L_s`` (monodepth2) for inverse depth, complete 3D flow and motion mask."""

from __future__ import annotations

import torch.nn.functional as F
from kornia.losses import inverse_depth_smoothness_loss
from torch import Tensor


def edge_aware_smoothness(x: Tensor, image: Tensor) -> Tensor:
    """Mean of ``|dx| exp(-|dI/dx|) + |dy| exp(-|dI/dy|)`` for any BxCxhxw map ``x``.

    ``image`` (BxCxHxW, [0, 1]) is resized to ``x``'s size (area interpolation) when needed; image gradients are
    averaged over channels, map gradients are per channel.
    """
    if x.dim() != 4 or image.dim() != 4 or x.shape[0] != image.shape[0]:
        raise ValueError(f"x and image must be BxCxHxW with one batch size, got {tuple(x.shape)}, {tuple(image.shape)}")
    if image.shape[-2:] != x.shape[-2:]:
        image = F.interpolate(image, size=x.shape[-2:], mode="area")
    return inverse_depth_smoothness_loss(x, image.to(x.dtype))


def disparity_smoothness(disp: Tensor, image: Tensor) -> Tensor:
    """Edge-aware smoothness of the disparity Bx1xhxw divided by its per-image mean (scale invariant)."""
    mean = disp.mean(dim=(2, 3), keepdim=True)
    return edge_aware_smoothness(disp / (mean + 1e-7), image)
