"""The distillation teacher: three encoders and five decoders (Dynamo-Depth layout plus segmentation)."""

from __future__ import annotations

import torch

from uni_encoder_core.config import ModelConfig
from uni_encoder_core.geometry import pose_vec_to_matrix
from uni_encoder_core.models.depth import DepthDecoder
from uni_encoder_core.models.encoder import SharedEncoder
from uni_encoder_core.models.motion import MotionMaskDecoder, SceneFlowDecoder
from uni_encoder_core.models.pose import PoseHead
from uni_encoder_core.models.segmentation import SegmentationHead
from uni_encoder_core.models.unified import MultiTaskModel, TrainOutputs, check_train_inputs


class Teacher(MultiTaskModel):
    """Swin encoder for depth + segmentation, a pair encoder (ResNet18) for pose, one for flow + mask.

    The pair encoders see the source and target images stacked on the channel axis (``Bx6xHxW``);
    pose comes from monodepth2's pose head on the pair's coarsest map. ``forward_train`` returns the same
    :class:`TrainOutputs` as the unified model, so the same losses train it and its complete flow and
    motion mask supervise the unified model (distillation).
    """

    parts = ("encoder", "pose_encoder", "motion_encoder", "depth", "pose", "scene_flow", "motion_mask", "segmentation")

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        for pair_cfg in (cfg.teacher_pose_encoder, cfg.teacher_motion_encoder):
            if pair_cfg.in_chans != 6:
                raise ValueError(f"teacher pair encoder {pair_cfg.backbone} needs in_chans 6, not {pair_cfg.in_chans}")
        self.encoder = SharedEncoder(cfg.encoder)
        self.pose_encoder = SharedEncoder(cfg.teacher_pose_encoder)
        self.motion_encoder = SharedEncoder(cfg.teacher_motion_encoder)
        self.depth = DepthDecoder(self.encoder.channels, cfg.depth)
        self.pose = PoseHead(self.pose_encoder.channels[-1], cfg.pose.head_channels, cfg.pose.output_scale)
        self.scene_flow = SceneFlowDecoder(self.motion_encoder.channels, cfg.motion)
        self.motion_mask = MotionMaskDecoder(self.motion_encoder.channels, cfg.motion)
        self.segmentation = SegmentationHead(self.encoder.channels, cfg.segmentation)

    def normalise_pair(self, images_src: torch.Tensor, images_tgt: torch.Tensor) -> torch.Tensor:
        """Two RGB ``Bx3xHxW`` images in [0, 1] -> the normalised pair stacked on the channel axis ``Bx6xHxW``."""
        return torch.cat([self.normalise(images_src), self.normalise(images_tgt)], dim=1)

    def pair_input(self, image: torch.Tensor, feats: list[torch.Tensor]) -> torch.Tensor:
        """What the pose and motion heads take for one frame: the RGB image (their own pair encoders read it)."""
        return image

    def predict_pose(
        self, images_src: torch.Tensor, images_tgt: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """RGB source and target images -> (``T_t->s`` Bx4x4, axis_angle Bx3, translation Bx3)."""
        feats = self.pose_encoder(self.normalise_pair(images_src, images_tgt))
        axis_angle, translation = self.pose(feats[-1])
        return pose_vec_to_matrix(axis_angle, translation), axis_angle, translation

    def predict_motion(
        self, images_src: torch.Tensor, images_tgt: torch.Tensor, axis_angle: torch.Tensor, translation: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """RGB source and target images, ego-motion -> (complete flow ``Bx3xHxW``, motion mask ``Bx1xHxW``)."""
        feats = self.motion_encoder(self.normalise_pair(images_src, images_tgt))
        return self.scene_flow(feats, axis_angle, translation), self.motion_mask(feats, axis_angle, translation)

    def forward_train(
        self, frames: dict[int, torch.Tensor], labelled: torch.Tensor | None = None,
        seg_tasks: list[str] | None = None, seg_text_ids: torch.Tensor | None = None, motion: bool = True,
    ) -> TrainOutputs:
        """Same inputs and outputs as :meth:`UniEncoder.forward_train`."""
        check_train_inputs(frames, labelled, seg_tasks, seg_text_ids)
        disparities, depth = self.predict_depth(self.encode(frames[0]))
        outputs = TrainOutputs(disparities=disparities, depth=depth)
        self.predict_pairs(frames, outputs, motion)
        if labelled is not None:
            outputs.segmentation = self.segmentation.forward_train(self.encode(labelled), seg_tasks, seg_text_ids)
        return outputs
