"""The unified multi-task model: one shared encoder pass per frame, six heads that take its features."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torch import nn

from uni_encoder_core.config import ModelConfig
from uni_encoder_core.geometry import invert_pose_vec, pose_vec_to_matrix
from uni_encoder_core.models.depth import DepthDecoder
from uni_encoder_core.models.encoder import SharedEncoder
from uni_encoder_core.models.motion import MotionMaskDecoder, SceneFlowDecoder
from uni_encoder_core.models.pose import MultiScalePoseDecoder
from uni_encoder_core.models.segmentation import SegmentationHead, SegmentationPrediction
from uni_encoder_core.models.steering import SteeringHead


@dataclass
class TrainOutputs:
    """Everything the losses need from one training batch; flow/pose dicts are keyed by source frame offset.

    ``disparities`` (4 sigmoid maps, finest first) and ``depth`` (``Bx1xHxW``) belong to the target frame
    (offset 0); ``poses[o]`` is ``T_t->s`` ``Bx4x4``; ``complete_flow[o]`` is ``Bx3xHxW`` target -> source in
    the target camera frame, ``motion_mask[o]`` ``Bx1xHxW``; ``segmentation`` is the segmentation head's
    training prediction for the labelled images (None without them).
    """

    disparities: list[torch.Tensor]
    depth: torch.Tensor
    poses: dict[int, torch.Tensor] = field(default_factory=dict)
    axis_angles: dict[int, torch.Tensor] = field(default_factory=dict)
    translations: dict[int, torch.Tensor] = field(default_factory=dict)
    complete_flow: dict[int, torch.Tensor] = field(default_factory=dict)
    motion_mask: dict[int, torch.Tensor] = field(default_factory=dict)
    segmentation: SegmentationPrediction | None = None


def check_train_inputs(
    frames: dict[int, torch.Tensor], labelled: torch.Tensor | None, seg_tasks: list[str] | None,
    seg_text_ids: torch.Tensor | None,
) -> None:
    """Reject inconsistent ``forward_train`` arguments with a message naming the problem."""
    if 0 not in frames:
        raise ValueError(f"frames must contain the target frame (offset 0), got offsets {sorted(frames)}")
    if labelled is not None and (seg_tasks is None or seg_text_ids is None or len(seg_tasks) != len(labelled)):
        raise ValueError("labelled images need one segmentation task each (seg_tasks) and their seg_text_ids")


def stack_batches(per_frame: list) -> torch.Tensor | list[torch.Tensor]:
    """What a head takes for several frames (image batches, or lists of feature maps) -> one batch, in order."""
    if isinstance(per_frame[0], torch.Tensor):
        return torch.cat(per_frame)
    return [torch.cat(maps) for maps in zip(*per_frame)]


class MultiTaskModel(nn.Module):
    """Shared behaviour of the unified model and the teacher: trainable parts, parameter counts, normalisation,
    the encoder pass and the per-frame depth and segmentation heads (``encoder``, ``depth``, ``segmentation``)."""

    parts: tuple[str, ...] = ()

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.frozen: set[str] = set()
        self.register_buffer("mean", torch.tensor(IMAGENET_DEFAULT_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_DEFAULT_STD).view(1, 3, 1, 1), persistent=False)

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """RGB ``Bx3xHxW`` in [0, 1] -> ImageNet-normalised."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be Bx3xHxW, got {tuple(images.shape)}")
        return (images - self.mean) / self.std

    def encode(self, images: torch.Tensor) -> list[torch.Tensor]:
        """RGB ``Bx3xHxW`` in [0, 1] -> 4 feature maps (strides 4..32) of ``encoder``; one pass per frame."""
        return self.encoder(self.normalise(images))

    def predict_depth(self, feats: list[torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Features -> (4 sigmoid disparities finest first, depth ``Bx1xHxW`` in camera units)."""
        return self.depth(feats)

    def predict_segmentation(self, feats: list[torch.Tensor], tasks: list[str]) -> dict[str, SegmentationPrediction]:
        """Features -> ``{task: SegmentationPrediction}`` for the requested tasks."""
        return self.segmentation(feats, tasks)

    def set_trainable(self, parts: list[str]) -> None:
        """Train only ``parts`` (names in ``self.parts``); the others get ``requires_grad=False`` and eval mode."""
        unknown = sorted(set(parts) - set(self.parts))
        if unknown:
            raise ValueError(f"unknown model parts {unknown}; known: {list(self.parts)}")
        self.frozen = set(self.parts) - set(parts)
        for name in self.parts:
            getattr(self, name).requires_grad_(name not in self.frozen)
        self.train(self.training)

    def train(self, mode: bool = True) -> MultiTaskModel:
        """Like ``nn.Module.train`` but frozen parts stay in eval mode (batch-norm statistics do not move)."""
        super().train(mode)
        for name in self.frozen:
            getattr(self, name).eval()
        return self

    def predict_pairs(self, per_frame: dict, outputs: TrainOutputs, motion: bool) -> None:
        """Pose (and, with ``motion``, complete flow and motion mask) of every source offset against offset 0,
        written into ``outputs``. ``per_frame`` holds what this model's pose and motion heads take for a frame:
        cached features (a list of maps) for the unified model, images for the teacher.

        All source offsets go through each head in one batched call, so batch-norm statistics are taken over the
        pairs of every offset together. The pose head sees every pair in temporal order (monodepth2): the earlier
        frame in the source slot, so a source before the target gives ``T_t->s`` directly and a source after it
        gives ``T_s->t``, which is inverted (:func:`invert_pose_vec`). The motion heads see (source, target) with
        ``T_t->s``.
        """
        sources = [o for o in sorted(per_frame) if o != 0]
        if not sources:
            return
        n = len(sources)
        earlier = stack_batches([per_frame[min(o, 0)] for o in sources])
        later = stack_batches([per_frame[max(o, 0)] for o in sources])
        _, axis_angles, translations = self.predict_pose(earlier, later)
        for o, axis_angle, translation in zip(sources, axis_angles.chunk(n), translations.chunk(n)):
            if o > 0:
                axis_angle, translation = invert_pose_vec(axis_angle, translation)
            outputs.poses[o] = pose_vec_to_matrix(axis_angle, translation)
            outputs.axis_angles[o], outputs.translations[o] = axis_angle, translation
        if motion:
            flow, mask = self.predict_motion(
                stack_batches([per_frame[o] for o in sources]), stack_batches([per_frame[0]] * n),
                torch.cat([outputs.axis_angles[o] for o in sources]),
                torch.cat([outputs.translations[o] for o in sources]),
            )
            for o, flow_o, mask_o in zip(sources, flow.chunk(n), mask.chunk(n)):
                outputs.complete_flow[o], outputs.motion_mask[o] = flow_o, mask_o

    def parameter_counts(self) -> dict[str, int]:
        """Number of parameters per part."""
        return {name: sum(p.numel() for p in getattr(self, name).parameters()) for name in self.parts}


class UniEncoder(MultiTaskModel):
    """Shared encoder + depth, pose, scene-flow, motion-mask, segmentation and steering heads."""

    parts = ("encoder", "depth", "pose", "scene_flow", "motion_mask", "segmentation", "steering")

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.encoder = SharedEncoder(cfg.encoder)
        channels = self.encoder.channels
        pair = [2 * c for c in channels]
        self.depth = DepthDecoder(channels, cfg.depth)
        self.pose = MultiScalePoseDecoder(channels, cfg.pose)
        self.scene_flow = SceneFlowDecoder(pair, cfg.motion)
        self.motion_mask = MotionMaskDecoder(pair, cfg.motion)
        self.segmentation = SegmentationHead(channels, cfg.segmentation)
        self.steering = SteeringHead(channels[-1], cfg.steering)

    def pair_input(self, image: torch.Tensor, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        """What the pose and motion heads take for one frame: its encoder features (the image is not needed)."""
        return feats

    def encode_many(self, images: list[torch.Tensor]) -> list[list[torch.Tensor]]:
        """Several same-sized image batches in one encoder pass -> their feature lists, in order."""
        feats = [f.split([b.shape[0] for b in images]) for f in self.encode(torch.cat(images))]
        return [[f[i] for f in feats] for i in range(len(images))]

    def predict_pose(
        self, feats_src: list[torch.Tensor], feats_tgt: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Source and target features -> (``T_t->s`` Bx4x4, axis_angle Bx3, translation Bx3)."""
        return self.pose(feats_src, feats_tgt)

    def predict_motion(
        self, feats_src: list[torch.Tensor], feats_tgt: list[torch.Tensor], axis_angle: torch.Tensor,
        translation: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Features of both frames and ego-motion -> (complete flow ``Bx3xHxW``, motion mask ``Bx1xHxW``)."""
        pair = [torch.cat([s, t], dim=1) for s, t in zip(feats_src, feats_tgt)]
        return self.scene_flow(pair, axis_angle, translation), self.motion_mask(pair, axis_angle, translation)

    def predict_steering(self, window: torch.Tensor) -> torch.Tensor:
        """Coarsest features of the last T frames ``BxTxCxhxw`` (oldest first) -> curvature ``B`` (1/m, + = left)."""
        return self.steering(window)

    def forward_train(
        self, frames: dict[int, torch.Tensor], labelled: torch.Tensor | None = None,
        seg_tasks: list[str] | None = None, seg_text_ids: torch.Tensor | None = None, motion: bool = True,
    ) -> TrainOutputs:
        """One training pass.

        ``frames``: offset -> RGB ``Bx3xHxW`` in [0, 1] (0 = target, others = sources); ``labelled``: ``Nx3xHxW``
        images for the segmentation head, with one task per image (``seg_tasks``) and their text-query ids
        ``seg_text_ids`` (``N x num_text x text_context_length``). Images of one size share one batched encoder
        pass.
        """
        check_train_inputs(frames, labelled, seg_tasks, seg_text_ids)
        offsets = sorted(frames)
        batch = [frames[o] for o in offsets]
        together = labelled is not None and labelled.shape[-2:] == frames[0].shape[-2:]
        per_image = self.encode_many(batch + [labelled] if together else batch)
        by_offset = dict(zip(offsets, per_image))
        disparities, depth = self.predict_depth(by_offset[0])
        outputs = TrainOutputs(disparities=disparities, depth=depth)
        self.predict_pairs(by_offset, outputs, motion)
        if labelled is not None:
            seg_feats = per_image[-1] if together else self.encode(labelled)
            outputs.segmentation = self.segmentation.forward_train(seg_feats, seg_tasks, seg_text_ids)
        return outputs
