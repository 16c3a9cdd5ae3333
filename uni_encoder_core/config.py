"""Typed configuration of the model, the data, the losses and the training recipes (dataclasses).

Every such setting lives in one of these dataclasses (a training stage's recipe is checked further by
``uni_encoder_core.train.recipe``); the per-frame runtime's settings (pipeline and node) are in
``uni_encoder_core.inference.settings``. ``uni_encoder_core.config_yaml`` reads and writes them as YAML, with the
size bounds of ``uni_encoder_core.config_bounds``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# --------------------------------------------------------------------------- model


@dataclass
class EncoderConfig:
    """An image encoder: a timm backbone (``features_only``) giving 4 NCHW maps at strides 4, 8, 16, 32.

    ``embed_dim``/``depths``/``num_heads`` override the Swin backbone's sizes (the tiny test variant);
    ``in_chans`` is 6 for the teacher's pair encoders (source and target images stacked).
    """

    backbone: str = "swin_tiny_patch4_window7_224"
    pretrained: str | None = None  # local weights file; never downloaded
    in_chans: int = 3
    embed_dim: int | None = None
    depths: list[int] | None = None
    num_heads: list[int] | None = None


@dataclass
class DepthConfig:
    """TransDSSL-style depth decoder; depth = 1 / disparity in [1/max_depth, 1/min_depth].

    ``channels`` are the decoder widths at strides 1, 2, 4, 8, 16 (monodepth2's ``num_ch_dec``).
    """

    min_depth: float = 0.1
    max_depth: float = 100.0
    channels: list[int] = field(default_factory=lambda: [16, 32, 64, 128, 256])


@dataclass
class PoseConfig:
    """Multi-scale pose decoder (the paper's contribution); ``channels`` per scale, strides 4, 8, 16, 32."""

    channels: list[int] = field(default_factory=lambda: [64, 128, 256, 256])
    head_channels: int = 256
    output_scale: float = 0.01


@dataclass
class MotionConfig:
    """Scene-flow and motion-mask decoders (Dynamo-Depth style, non-linear refinement).

    ``channels`` are the refinement widths at strides 4, 8, 16, 32; the complete flow is
    ``flow_scale`` times the decoder output; ego-motion enters as ``ego_motion_scale * [t, axis-angle]``.
    """

    channels: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    flow_scale: float = 0.005
    ego_motion_scale: float = 100.0


@dataclass
class SegmentationConfig:
    """OneFormer segmentation head on the shared encoder's features (transformers' OneFormer modules).

    ``hidden_dim`` is the width of the pixel decoder, the transformer decoder and the text encoder
    (a multiple of 64: GroupNorm(32) groups, one text-attention head per 64 channels).
    ``num_queries`` includes the task token; in training the contrastive loss pairs them with
    ``num_queries - text_context_queries`` text queries plus ``text_context_queries`` learned ones.
    ``max_seq_len`` is the task-prompt length, ``text_context_length`` the text-query length (tokens).
    ``train_num_points``/``oversample_ratio``/``importance_sample_ratio``: the point-sampled mask loss.
    ``object_threshold``/``overlap_threshold``: panoptic and instance inference keep a query whose class probability
    exceeds ``object_threshold`` and whose segment keeps at least ``overlap_threshold`` of its own mask (OneFormer's
    Cityscapes inference uses 0.8 for both; a less confident, briefly trained model needs a lower class threshold).
    """

    num_classes: int = 19  # Cityscapes train ids
    hidden_dim: int = 256
    num_queries: int = 150
    decoder_layers: int = 10
    encoder_layers: int = 6  # deformable-attention layers in the pixel decoder
    encoder_feedforward_dim: int = 1024
    query_decoder_layers: int = 2
    num_heads: int = 8
    dim_feedforward: int = 2048
    dropout: float = 0.1
    text_context_length: int = 77
    max_seq_len: int = 77
    text_encoder_layers: int = 6
    text_context_queries: int = 16
    tasks: list[str] = field(default_factory=lambda: ["panoptic", "instance", "semantic"])
    train_num_points: int = 12544
    oversample_ratio: float = 3.0
    importance_sample_ratio: float = 0.75
    object_threshold: float = 0.8
    overlap_threshold: float = 0.8

    @property
    def num_text_queries(self) -> int:
        """Text queries per image in training: ``num_queries - text_context_queries``."""
        return self.num_queries - self.text_context_queries


@dataclass
class SteeringConfig:
    """Attentive pooler over the coarsest tokens of the last ``window`` frames -> curvature (1/m)."""

    window: int = 16
    hidden_dim: int = 256
    num_heads: int = 8
    mlp_ratio: float = 4.0


@dataclass
class ModelConfig:
    """The unified multi-task model; ``height``/``width`` is the network input size (multiples of 32)."""

    name: str = "swin_t"
    height: int = 192
    width: int = 512
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    depth: DepthConfig = field(default_factory=DepthConfig)
    pose: PoseConfig = field(default_factory=PoseConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    segmentation: SegmentationConfig = field(default_factory=SegmentationConfig)
    steering: SteeringConfig = field(default_factory=SteeringConfig)
    # teacher (distillation): encoders of the stacked source+target pair for pose and for flow + mask
    teacher_pose_encoder: EncoderConfig = field(default_factory=lambda: EncoderConfig("resnet18", in_chans=6))
    teacher_motion_encoder: EncoderConfig = field(default_factory=lambda: EncoderConfig("resnet18", in_chans=6))


# --------------------------------------------------------------------------- data


@dataclass
class AugmentConfig:
    """Training-split augmentations (``uni_encoder_core.data.augment``); all frames of a sample share one draw.

    ``flip_probability``: horizontal flip (intrinsics, pose, scene flow and steering sign mirrored with it);
    ``jitter_probability`` with ``brightness``/``contrast``/``saturation`` factors drawn from ``[1 - x, 1 + x]``
    and a ``hue`` shift from ``[-hue, hue]`` (turns); ``shadow_probability``: lane keeping only, a random dark
    polygon over the whole window.
    """

    enabled: bool = True
    flip_probability: float = 0.5
    jitter_probability: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.1
    shadow_probability: float = 0.5


@dataclass
class DataConfig:
    """Where training/evaluation data comes from and how it is shaped.

    ``kind`` names a data set in ``uni_encoder_core.data.registry`` (``synthetic`` = the synthetic world; each
    world seed in ``train_seeds`` / ``val_seeds`` is one drive of ``synthetic_frames`` frames, so the held-out
    drives are other streets). ``height``/``width`` are the network input size the samples are resized to.
    """

    kind: str = "synthetic"
    root: str = ""
    split_file: str | None = None  # KITTI: monodepth2-format split file
    height: int = 192
    width: int = 512
    crop_bottom: float = 0.25  # Cityscapes: fraction of rows removed at the bottom
    frame_offsets: list[int] = field(default_factory=lambda: [-1, 0, 1])
    num_workers: int = 0
    train_seeds: list[int] = field(default_factory=lambda: [0])
    val_seeds: list[int] = field(default_factory=lambda: [1000])
    synthetic_frames: int = 256
    # Real data sets (uni_encoder_core.data.cityscapes / kitti / lane_keeping). crop_bottom applies to cityscapes
    # and lane_keeping; KITTI images are resized whole (Eigen protocol). split_file may hold "{split}" (replaced
    # by train, val or test). Lane keeping: windows of `window` frames every `window_stride` frames; each
    # recording is cut into `num_folds` contiguous chunks, chunk `fold` is the val split, the others train.
    window: int = 16
    window_stride: int = 1
    num_folds: int = 10
    fold: int = 0
    standardize: bool = False  # lane_keeping: per-image whitening (the original protocol's CNNs)
    augment: AugmentConfig = field(default_factory=AugmentConfig)


# --------------------------------------------------------------------------- losses


@dataclass
class LossConfig:
    """Loss weights (paper eqs. 1-5); defaults are the paper's values."""

    # eq. 1: supervised segmentation (OneFormer set criterion)
    class_weight: float = 2.0
    mask_bce_weight: float = 5.0
    mask_dice_weight: float = 5.0
    contrastive_weight: float = 0.5
    contrastive_temperature: float = 0.07
    no_object_weight: float = 0.1
    # eq. 2: self-supervised. L_s weights (not in the paper) are Dynamo-Depth's: disparity 1e-3, complete
    # flow 1e-3, motion mask 0.1.
    ssim_weight: float = 0.85
    recon_weight: float = 1.0
    smoothness_weight: float = 1e-3  # edge-aware smoothness of the mean-normalised disparity
    flow_smoothness_weight: float = 1e-3
    mask_smoothness_weight: float = 0.1
    motion_consistency_weight: float = 5.0
    motion_sparsity_weight: float = 0.1
    above_ground_weight: float = 0.1
    automask: bool = True  # monodepth2 auto-masking (the first training stage)
    mask_disparity_threshold: float = 0.03  # L_c ignores pixels with sigmoid disparity below this (far/sky)
    ground_lower_fraction: float = 0.4  # L_g: RANSAC on this lowest fraction of the image rows
    ground_iterations: int = 100
    ground_threshold: float = 0.01  # RANSAC inlier band, relative to the median depth of those rows
    ground_margin: float = 0.05  # points count as below ground only past this fraction of the camera height
    # eq. 3: distillation
    distil_flow_weight: float = 0.1
    distil_mask_weight: float = 1e-3
    # eq. 4: total
    sup_weight: float = 1.0
    ssup_weight: float = 1.0
    distil_weight: float = 1.0
    # eq. 5: steering
    steering_lambda: float = 0.1


# --------------------------------------------------------------------------- training


@dataclass
class ScheduleConfig:
    """Learning rate over the run, as a factor of ``lr``.

    Linear warm-up from ``warmup_start_factor`` to 1 over the first ``warmup_steps`` steps, then either
    ``cosine``: half a cosine down to ``min_lr_factor`` at the last step, or ``step``: multiplied by ``gamma`` at
    every step in ``milestones``.
    """

    kind: Literal["cosine", "step"] = "cosine"
    warmup_steps: int = 1000
    warmup_start_factor: float = 0.01
    min_lr_factor: float = 0.01
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.1


@dataclass
class StageConfig:
    """One training stage.

    ``network``: ``student`` (the unified model) or ``teacher``; ``trainable``: the model parts that learn (the
    others are frozen: no gradient, eval mode, bit-identical after the stage); ``losses``: the loss groups of the
    total loss that this stage uses (``sup``, ``ssup``, ``distil``); ``init_from``: a checkpoint whose weights
    start the stage (the previous stage's ``final.pt``); ``teacher``: the teacher checkpoint that distillation
    reads (never written). Batch sizes are per process. ``precision`` applies on a GPU (autocast); a CPU run is
    always fp32. Periods (``*_every``) are in optimizer steps; ``keep_last`` step checkpoints are kept besides
    the best one (lowest held-out total loss). ``max_nonfinite`` non-finite steps in a row stop the run.
    ``data`` gives the frame triplets and, unless ``labelled_data`` is set, the labelled images too.
    """

    name: str = "student_stage1"
    network: Literal["student", "teacher"] = "student"
    model: str = "config/model/swin_t.yaml"
    out_dir: str = "runs/student_stage1"
    init_from: str | None = None
    teacher: str | None = None
    trainable: list[str] = field(default_factory=lambda: ["encoder", "depth", "pose", "segmentation"])
    losses: list[str] = field(default_factory=lambda: ["sup", "ssup"])
    steps: int = 60000
    batch_labelled: int = 3
    batch_triplets: int = 3
    optimizer: Literal["adamw", "adam"] = "adamw"
    lr: float = 1e-4
    weight_decay: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    precision: Literal["fp32", "bf16", "fp16"] = "bf16"
    grad_clip: float = 1.0
    max_nonfinite: int = 3
    log_every: int = 50
    image_every: int = 1000
    validate_every: int = 1000
    validation_batches: int = 20
    checkpoint_every: int = 1000
    keep_last: int = 3
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    labelled_data: DataConfig | None = None
    loss: LossConfig = field(default_factory=LossConfig)

    @property
    def labelled(self) -> DataConfig:
        """Where the labelled images come from: ``labelled_data``, else ``data``."""
        return self.labelled_data or self.data
