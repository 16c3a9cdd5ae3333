"""Typed samples shared by every data source (synthetic world, Cityscapes, KITTI, lane-keeping).

Images are float32 in [0, 1], channels first; ``K`` is in pixels of the sample's own resolution. Ground
truth a source does not have is ``None``. ``collate`` stacks a list of samples into a batch of the same
type with a leading batch dimension (use it as the DataLoader's ``collate_fn``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TypeVar

import torch

S = TypeVar("S")


@dataclass
class TripletSample:
    """A target frame and its neighbours for the self-supervised tasks (depth, pose, scene flow, motion).

    ``images``: Sx3xHxW, ordered as ``offsets`` (frame offsets relative to the target, e.g. (-1, 0, 1)).
    Ground truth for the target frame: ``depth`` 1xHxW (m, 0 = unknown), ``T_target_to_source`` Sx4x4
    (``X_s = T @ X_t``; identity at the target), ``scene_flow`` Sx3xHxW (object motion from the target to
    each source frame in the target camera, m), ``motion_mask`` 1xHxW (1 = moving object).
    """

    images: torch.Tensor
    K: torch.Tensor
    offsets: tuple[int, ...] = (-1, 0, 1)
    depth: torch.Tensor | None = None
    T_target_to_source: torch.Tensor | None = None
    scene_flow: torch.Tensor | None = None
    motion_mask: torch.Tensor | None = None

    @property
    def target(self) -> torch.Tensor:
        """The target image (3xHxW, or Bx3xHxW in a batch)."""
        return self.images[..., self.offsets.index(0), :, :, :]


@dataclass
class DepthEvalSample:
    """A frame for depth evaluation: ``images`` Sx3xhxw at the network size, ordered as ``offsets`` (the target
    at 0, e.g. (-2, 0) for Cityscapes' ManyDepth protocol), ``K`` 3x3 for that size, and ``gt_depth`` 1xHxW (m,
    0 = unknown) at the ground truth's own full resolution, as ``uni_encoder_core.eval.depth`` takes it
    (Cityscapes: the whole 1024x2048 frame; KITTI: the projected lidar at the camera's resolution). Frames of
    different sizes do not batch: evaluate with batches of one."""

    images: torch.Tensor
    K: torch.Tensor
    gt_depth: torch.Tensor
    offsets: tuple[int, ...] = (0,)

    @property
    def target(self) -> torch.Tensor:
        """The target image (3xhxw, or Bx3xhxw in a batch)."""
        return self.images[..., self.offsets.index(0), :, :, :]


@dataclass
class SegmentationSample:
    """A labelled frame: ``image`` 3xHxW; ``semantic`` HxW (Cityscapes train ids, 255 = void);
    ``instance`` HxW (0 = none); ``panoptic`` HxW (train_id*1000 + instance for things, train_id*1000 for stuff)."""

    image: torch.Tensor
    semantic: torch.Tensor
    instance: torch.Tensor | None = None
    panoptic: torch.Tensor | None = None


@dataclass
class SteeringWindow:
    """The last ``T`` frames (``images`` Tx3xHxW, oldest first) and the driven path's ``curvature`` per frame
    (T, 1/m, + = left); the label of the window is the curvature at its newest frame. ``stamps``: T seconds."""

    images: torch.Tensor
    curvature: torch.Tensor
    stamps: torch.Tensor

    @property
    def target(self) -> torch.Tensor:
        """Curvature at the newest frame (1/m): a scalar, or B in a batch."""
        return self.curvature[..., -1]


def collate(samples: list[S]) -> S:
    """Stack samples of one type into a batch: tensors gain a leading batch dimension, ``None`` stays ``None``.

    Raises ``ValueError`` when the samples mix types, mix present and missing ground truth, or differ in
    non-tensor fields (e.g. frame offsets).
    """
    if not samples:
        raise ValueError("collate: empty list of samples")
    cls = type(samples[0])
    if any(type(s) is not cls for s in samples):
        raise ValueError(f"collate: mixed sample types {sorted({type(s).__name__ for s in samples})}")
    out = {}
    for f in dataclasses.fields(cls):
        values = [getattr(s, f.name) for s in samples]
        if all(v is None for v in values):
            out[f.name] = None
        elif any(v is None for v in values):
            raise ValueError(f"collate: field '{f.name}' is missing in some samples of the batch")
        elif isinstance(values[0], torch.Tensor):
            out[f.name] = torch.stack(values)
        elif all(v == values[0] for v in values):
            out[f.name] = values[0]
        else:
            raise ValueError(f"collate: field '{f.name}' differs between samples: {values}")
    return cls(**out)
