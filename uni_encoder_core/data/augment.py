"""Training augmentations that keep the geometry of a sample consistent.

Horizontal flip (pixel centres at integer coordinates, as everywhere in the product): pixel ``u`` moves to
``W - 1 - u`` and the camera frame is mirrored by ``M = diag(-1, 1, 1)``, so

- intrinsics: ``K' = [[-1, 0, W - 1], [0, 1, 0], [0, 0, 1]] K M`` (``fx`` kept, ``cx' = W - 1 - cx``, skew negated);
- poses ``T`` (4x4, ``X_s = T X_t``): ``T' = diag(-1, 1, 1, 1) T diag(-1, 1, 1, 1)`` (conjugation);
- scene flow (3D vectors in the camera frame) and 2D flow: mirrored maps with the x component negated;
- steering: curvature (and a steering angle) change sign, + = left becomes + = right.

Colour jitter draws one set of factors per sample and applies it to every frame, so the photometric loss still
compares like with like (monodepth2's practice). The lane-keeping shadow is one random dark polygon laid over
every frame of a window. Randomness comes from ``torch`` (an optional ``generator``; DataLoader workers seed
the global one per worker).
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import torch
import torchvision.transforms.v2.functional as TF

from uni_encoder_core.config import AugmentConfig
from uni_encoder_core.data.samples import SegmentationSample, SteeringWindow, TripletSample

SHADOW_DARKENING = (0.3, 0.7)  # the shadowed pixels keep this fraction of their brightness (uniform draw)
SHADOW_VERTICES = (3, 6)  # vertices drawn for the polygon (its convex hull is the shadow)


def _uniform(low: float, high: float, generator: torch.Generator | None) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def _chance(p: float, generator: torch.Generator | None) -> bool:
    return float(torch.rand((), generator=generator)) < p


def flip_intrinsics(K: torch.Tensor, width: int) -> torch.Tensor:
    """Intrinsics ``...x3x3`` of a ``width``-pixel-wide image -> those of its mirror image."""
    image = K.new_tensor([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    camera = K.new_tensor([-1.0, 1.0, 1.0]).diag()
    return image @ K @ camera


def flip_pose(T: torch.Tensor) -> torch.Tensor:
    """Rigid transforms ``...x4x4`` between camera frames -> the same motion seen in the mirrored frames."""
    M = T.new_tensor([-1.0, 1.0, 1.0, 1.0]).diag()
    return M @ T @ M


def flip_vectors(field: torch.Tensor) -> torch.Tensor:
    """A map of camera-frame or image vectors ``...xCxHxW`` (x first: scene flow, optical flow) mirrored."""
    out = field.flip(-1).clone()
    out[..., 0, :, :] = -out[..., 0, :, :]
    return out


def _flip_maybe(x: torch.Tensor | None) -> torch.Tensor | None:
    return None if x is None else x.flip(-1)


def flip_triplet(sample: TripletSample) -> TripletSample:
    """A triplet mirrored left-right: images, intrinsics, depth, poses, scene flow and motion mask together."""
    return dataclasses.replace(
        sample,
        images=sample.images.flip(-1),
        K=flip_intrinsics(sample.K, sample.images.shape[-1]),
        depth=_flip_maybe(sample.depth),
        T_target_to_source=None if sample.T_target_to_source is None else flip_pose(sample.T_target_to_source),
        scene_flow=None if sample.scene_flow is None else flip_vectors(sample.scene_flow),
        motion_mask=_flip_maybe(sample.motion_mask),
    )


def flip_segmentation(sample: SegmentationSample) -> SegmentationSample:
    """A labelled frame mirrored left-right (image and every label map)."""
    return SegmentationSample(
        image=sample.image.flip(-1),
        semantic=sample.semantic.flip(-1),
        instance=_flip_maybe(sample.instance),
        panoptic=_flip_maybe(sample.panoptic),
    )


def flip_steering(window: SteeringWindow) -> SteeringWindow:
    """A steering window mirrored left-right: frames flipped, curvature negated (a left bend becomes a right one)."""
    return dataclasses.replace(window, images=window.images.flip(-1), curvature=-window.curvature)


def colour_jitter(images: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """Frames ``...x3xHxW`` in [0, 1] with one random brightness, contrast, saturation and hue change for all.

    Factors are drawn from ``[max(0, 1 - x), 1 + x]`` for ``x`` = ``cfg.brightness``/``contrast``/``saturation``
    and the hue shift from ``[-cfg.hue, cfg.hue]`` (fraction of a turn, at most 0.5); they are applied in that
    order (torchvision's colour functions; contrast and saturation act on each frame's own grey level).
    """
    if not 0.0 <= cfg.hue <= 0.5:
        raise ValueError(f"augment.hue must be in [0, 0.5], got {cfg.hue}")
    out = TF.adjust_brightness(images, _uniform(max(0.0, 1 - cfg.brightness), 1 + cfg.brightness, generator))
    out = TF.adjust_contrast(out, _uniform(max(0.0, 1 - cfg.contrast), 1 + cfg.contrast, generator))
    out = TF.adjust_saturation(out, _uniform(max(0.0, 1 - cfg.saturation), 1 + cfg.saturation, generator))
    return TF.adjust_hue(out, _uniform(-cfg.hue, cfg.hue, generator)).clamp_(0.0, 1.0)


def random_shadow(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Frames ``...x3xHxW`` in [0, 1] under one random dark polygon (the lane-keeping protocol's shadow).

    The polygon is the convex hull of 3 to 6 points drawn uniformly over ``[-0.2 W, 1.2 W] x [0, H]`` (so
    shadows often reach past the image sides); pixels inside keep a fraction in ``SHADOW_DARKENING`` of their
    value. Every frame gets the same shadow.
    """
    H, W = images.shape[-2:]
    n = int(torch.randint(SHADOW_VERTICES[0], SHADOW_VERTICES[1] + 1, (), generator=generator))
    points = torch.rand(n, 2, generator=generator).numpy() * [1.4 * W, H] - [0.2 * W, 0.0]
    hull = cv2.convexHull(np.round(points).astype(np.int32))
    mask = np.zeros((H, W), np.uint8)
    cv2.fillPoly(mask, [hull], 1)
    keep = _uniform(*SHADOW_DARKENING, generator)
    scale = torch.from_numpy(1.0 - (1.0 - keep) * mask.astype(np.float32)).to(images.dtype)
    return images * scale


def augment_triplet(sample: TripletSample, cfg: AugmentConfig, generator: torch.Generator | None = None
                    ) -> TripletSample:
    """Random flip (``flip_probability``) and colour jitter (``jitter_probability``) of a triplet."""
    if _chance(cfg.flip_probability, generator):
        sample = flip_triplet(sample)
    if _chance(cfg.jitter_probability, generator):
        sample = dataclasses.replace(sample, images=colour_jitter(sample.images, cfg, generator))
    return sample


def augment_segmentation(sample: SegmentationSample, cfg: AugmentConfig, generator: torch.Generator | None = None
                         ) -> SegmentationSample:
    """Random flip and colour jitter of a labelled frame."""
    if _chance(cfg.flip_probability, generator):
        sample = flip_segmentation(sample)
    if _chance(cfg.jitter_probability, generator):
        sample = dataclasses.replace(sample, image=colour_jitter(sample.image, cfg, generator))
    return sample


def augment_steering(window: SteeringWindow, cfg: AugmentConfig, generator: torch.Generator | None = None
                     ) -> SteeringWindow:
    """Random flip (curvature sign with it), colour jitter and shadow (``shadow_probability``) of a window."""
    if _chance(cfg.flip_probability, generator):
        window = flip_steering(window)
    images = window.images
    if _chance(cfg.jitter_probability, generator):
        images = colour_jitter(images, cfg, generator)
    if _chance(cfg.shadow_probability, generator):
        images = random_shadow(images, generator)
    return dataclasses.replace(window, images=images)
