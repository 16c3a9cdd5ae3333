"""Photometric reconstruction loss ``L_recon`` (monodepth2): SSIM + L1, minimum over source frames, auto-masking."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from kornia.metrics import ssim
from torch import Tensor


def reprojection_error(pred: Tensor, target: Tensor, ssim_weight: float = 0.85) -> Tensor:
    """Per-pixel error Bx1xHxW: ``a * (1 - SSIM) / 2 + (1 - a) * |pred - target|``, channel mean, images in [0, 1].

    SSIM uses a 3x3 window (kornia, reflect padding, C1 = 0.01^2, C2 = 0.03^2) as in monodepth2.
    """
    if pred.shape != target.shape or pred.dim() != 4:
        raise ValueError(f"pred and target must be BxCxHxW alike, got {tuple(pred.shape)}, {tuple(target.shape)}")
    l1 = (pred - target).abs().mean(1, keepdim=True)
    dssim = ((1.0 - ssim(pred, target, window_size=3, eps=0.0)) / 2.0).clamp(0.0, 1.0).mean(1, keepdim=True)
    return ssim_weight * dssim + (1.0 - ssim_weight) * l1


def reprojection_errors(images: Sequence[Tensor], target: Tensor, ssim_weight: float = 0.85) -> Tensor:
    """:func:`reprojection_error` of each image against ``target``, stacked as channels: BxNxHxW for N images."""
    return torch.cat([reprojection_error(image, target, ssim_weight) for image in images], dim=1)


def photometric_loss(
    target: Tensor,
    warped: Sequence[Tensor],
    identity_errors: Tensor | None = None,
    ssim_weight: float = 0.85,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor | None]:
    """``L_recon``: per-pixel minimum over the source frames of :func:`reprojection_error`, averaged.

    ``warped`` holds each source image synthesised in the target view (BxCxHxW). With ``identity_errors`` auto-masking
    is on: these are the errors of the un-warped source images, ``reprojection_errors(sources, target)`` BxNxHxW
    (they do not depend on the geometry, so a multi-scale loss computes them once). They join the minimum (plus 1e-5
    noise from ``generator`` to break ties), so pixels that do not change between frames (static camera, objects
    moving with it) do not pull the geometry. Returns (scalar loss, Bx1xHxW float mask of pixels where a warped
    image won, or None).
    """
    if len(warped) == 0:
        raise ValueError("photometric_loss needs at least one warped source image")
    errors = reprojection_errors(warped, target, ssim_weight)
    if identity_errors is None:
        return errors.min(1)[0].mean(), None
    if identity_errors.shape != errors.shape:
        want, got = tuple(errors.shape), tuple(identity_errors.shape)
        raise ValueError(f"identity_errors must be {want} (one channel per warped image), got {got}")
    noise = torch.randn(identity_errors.shape, generator=generator, device=errors.device, dtype=errors.dtype)
    combined = torch.cat([identity_errors + 1e-5 * noise, errors], dim=1)
    value, index = combined.min(1, keepdim=True)
    return value.mean(), (index >= identity_errors.shape[1]).to(target.dtype)
