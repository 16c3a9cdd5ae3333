"""Model outputs for the evaluation tables: one encoder pass per frame, then depth, segmentation and steering.

Frames enter as the inference pipeline feeds them (``uni_encoder_core.inference.pipeline.preprocess``: bottom rows
cropped, resized to the model's size, RGB in [0, 1]). Depth stays at the network size (each protocol resizes it to
its ground truth). Segmentation is post-processed at the ground truth's size, each table column with its own
OneFormer task as in the paper: ``panoptic`` for PQ, ``instance`` for AP, ``semantic`` for mIoU (with the
model config's inference thresholds).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from uni_encoder_core.config import SegmentationConfig
from uni_encoder_core.inference.pipeline import preprocess
from uni_encoder_core.models.segmentation import to_instance, to_panoptic, to_semantic
from uni_encoder_core.models.unified import MultiTaskModel, UniEncoder

SEGMENTATION_TASKS = ("panoptic", "instance", "semantic")


@dataclass
class Instances:
    """Predicted thing instances of one image: ``masks`` NxHxW bool, ``labels`` N train ids, ``scores`` N."""

    masks: np.ndarray
    labels: np.ndarray
    scores: np.ndarray


@dataclass
class FramePrediction:
    """One frame's outputs: ``depth`` hxw (network size, camera units); ``image`` the 1x3xhxw input and
    ``features`` the encoder's multi-scale features (1xC_kxh_kxw_k each, coarsest last: the steering head's input;
    the student's pose and motion decoders take them, the teacher's separate encoders the images); with
    segmentation, ``semantic`` and ``panoptic`` HxW maps and ``instances`` at the requested label size."""

    depth: np.ndarray
    image: torch.Tensor
    features: list[torch.Tensor]
    semantic: np.ndarray | None = None
    panoptic: np.ndarray | None = None
    instances: Instances | None = None


def rgb_input(rgb: np.ndarray, model: UniEncoder, crop_bottom: float) -> torch.Tensor:
    """HxWx3 uint8 RGB -> 1x3xhxw float in [0, 1] at the model's size, exactly as the inference pipeline shapes it."""
    image, _ = preprocess(rgb, crop_bottom, (model.cfg.height, model.cfg.width))
    return torch.from_numpy(image).permute(2, 0, 1)[None].float().div_(255.0)


def sample_input(image: torch.Tensor, model: UniEncoder) -> torch.Tensor:
    """A data set's 3xhxw image in [0, 1] -> 1x3xhxw; ``ValueError`` unless it already has the model's size."""
    size = (model.cfg.height, model.cfg.width)
    if tuple(image.shape[-2:]) != size:
        raise ValueError(f"sample image is {tuple(image.shape[-2:])}, the model takes {size}: build the data set "
                         f"at the model's size")
    return image.reshape(1, 3, *size).float()


def _instances(prediction, size: tuple[int, int], seg: SegmentationConfig) -> Instances:
    found = to_instance(prediction.class_logits.float(), prediction.mask_logits.float(), size, seg.object_threshold,
                        seg.overlap_threshold)
    id_map = found.id_map[0].cpu().numpy()
    count = len(found.classes[0])
    masks = np.stack([id_map == k + 1 for k in range(count)]) if count else np.zeros((0, *size), bool)
    return Instances(masks, found.classes[0].cpu().numpy(), found.scores[0].float().cpu().numpy())


@torch.no_grad()
def predict_frame(model: UniEncoder, x: torch.Tensor, label_size: tuple[int, int] | None = None) -> FramePrediction:
    """Run the encoder once on ``x`` (1x3xhxw on the model's device); segment at ``label_size`` (H, W) when given."""
    feats = model.encode(x)
    _, depth = model.predict_depth(feats)
    out = FramePrediction(depth=depth[0, 0].float().cpu().numpy().astype(np.float64), image=x, features=feats)
    if label_size is not None:
        preds = model.predict_segmentation(feats, list(SEGMENTATION_TASKS))
        pan, sem, seg = preds["panoptic"], preds["semantic"], model.cfg.segmentation
        out.panoptic = to_panoptic(pan.class_logits.float(), pan.mask_logits.float(), label_size,
                                   seg.object_threshold, seg.overlap_threshold)[0].cpu().numpy()
        out.semantic = to_semantic(sem.class_logits.float(), sem.mask_logits.float(), label_size)[0].cpu().numpy()
        out.instances = _instances(preds["instance"], label_size, seg)
    return out


@dataclass
class PairPrediction:
    """Ego-motion and moving pixels between a frame and the one before: ``relative_pose`` 4x4 float64 (this
    camera in the previous camera's frame, ``T_prev_cur``, depth units) and ``motion_mask`` hxw probabilities of
    independent motion in this frame (network size)."""

    relative_pose: np.ndarray
    motion_mask: np.ndarray


@torch.no_grad()
def predict_pair(model: MultiTaskModel, previous: FramePrediction, current: FramePrediction) -> PairPrediction:
    """The pose and motion-mask decoders on two consecutive frames' features, as the inference pipeline runs them
    (source = previous frame, target = current frame), each frame as the model's heads take it
    (``model.pair_input``: features for the unified model, images for the teacher)."""
    src, tgt = (model.pair_input(f.image, f.features) for f in (previous, current))
    T, axis_angle, translation = model.predict_pose(src, tgt)
    _, mask = model.predict_motion(src, tgt, axis_angle, translation)
    return PairPrediction(T[0].double().cpu().numpy(), mask[0, 0].float().cpu().numpy().astype(np.float64))


class WindowStream:
    """The steering head over a stream of frames: keeps the coarsest features of the last ``window`` frames.

    :meth:`push` adds a frame and returns the head's curvature (1/m) once ``window`` frames are buffered (the
    window ending at this frame), else None; :meth:`clear` starts over (a new chunk or recording).
    """

    def __init__(self, model: UniEncoder):
        self.model, self.window = model, model.cfg.steering.window
        self.frames: list[torch.Tensor] = []

    def clear(self) -> None:
        """Forget the buffered frames."""
        self.frames = []

    @torch.no_grad()
    def push(self, coarsest: torch.Tensor) -> float | None:
        """Add one frame's coarsest features (1xCxhxw); the curvature of the window ending here, or None."""
        self.frames = [*self.frames[-(self.window - 1):], coarsest] if self.window > 1 else [coarsest]
        if len(self.frames) < self.window:
            return None
        return float(self.model.predict_steering(torch.stack(self.frames, dim=1)).float()[0])
