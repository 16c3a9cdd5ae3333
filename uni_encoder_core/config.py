"""Typed configuration: dataclasses for every part of the product, loaded from YAML.

Every setting a user can change lives in one of these dataclasses (a training stage's recipe is checked
further by ``uni_encoder_core.train.recipe``). ``load_config`` reads a YAML
file into a dataclass and rejects unknown keys, wrong types and sizes out of bounds with a message
that names the file, the dotted key and the expected type or range; ``save_config`` writes one back
(atomically) so that a round trip gives an equal object.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from uni_encoder_core.atomic_io import atomic_writer
from uni_encoder_core.config_bounds import check_config
from uni_encoder_core.errors import ConfigError

T = TypeVar("T")


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


# --------------------------------------------------------------------------- inference


def described(default: Any = dataclasses.MISSING, description: str = "", **kwargs: Any) -> Any:
    """A dataclass field carrying a user-facing ``description`` (units first), e.g. for a ROS parameter."""
    return field(default=default, metadata={"description": description}, **kwargs)


@dataclass
class PipelineConfig:
    """Per-frame inference pipeline settings (shared by the ROS node and the CLI).

    Each field is also a parameter of the ROS node, with the field's default and description.
    """

    checkpoint: str = described("", "model checkpoint file (.pt) loaded at configure")
    device: str = described("cpu", "torch device: cpu, cuda, cuda:1, ...")
    precision: Literal["fp32", "fp16", "bf16"] = described(
        "fp32", "fp32, fp16 or bf16 (CUDA: weights converted once at configure; CPU: autocast)"
    )
    execution: Literal["torch", "onnxruntime"] = described(
        "torch", "torch (PyTorch) or onnxruntime (the exported graphs, sessions built at configure; fp32 only)"
    )
    cuda_graphs: bool = described(
        False, "capture the per-frame pass in a CUDA graph at configure and replay it (eager, with a warning, "
        "when capture is impossible)"
    )
    channels_last: bool = described(False, "channels-last memory format for the weights and the input")
    segmentation_tasks: list[str] = described(
        description="OneFormer tasks to run: any of panoptic, semantic, instance",
        default_factory=lambda: ["panoptic"],
    )
    crop_bottom: float = described(
        0.0, "fraction of image rows removed at the bottom before inference (Cityscapes: 0.25)"
    )
    metric_scale: bool = described(
        False, "scale depth/odometry/flow to metres from a ground-plane fit and camera_height"
    )
    camera_height: float = described(1.5, "m above the ground, for metric scale")
    max_ground_tilt: float = described(
        30.0, "deg; a ground-plane fit tilted further from the camera's vertical gives no scale"
    )
    max_frame_gap: float = described(0.5, "s; a larger gap between stamps restarts the temporal window")
    wheelbase: float = described(2.7, "m; steering angle = atan(wheelbase * curvature)")
    warmup_frames: int = described(2, "random frames run through the model when it is loaded (kernels, allocator)")


@dataclass
class NodeConfig:
    """The perception node's own settings (input, output frames, steering command); each is a node parameter.

    Rosbag replay reads the same settings, so that it builds the messages the node would publish.
    """

    input: str = described(
        "raw", "raw: sensor_msgs/Image on 'image'; compressed: CompressedImage on 'image/compressed'"
    )
    max_input_age: float = described(
        0.5, "s; older input gives no steering; without a valid command for this long the watchdog commands a stop"
    )
    max_future_stamp: float = described(0.2, "s; frames stamped further ahead of the node's clock are rejected")
    max_input_pixels: int = described(
        3840 * 2160, "pixels; larger images (raw or compressed) are rejected before decoding"
    )
    max_steering_angle: float = described(0.5, "rad; commanded angle clamped to +-this")
    max_steering_rate: float = described(
        0.5, "rad/s; commanded angle change limited by this times the time since the last command sent "
        "(at most max_input_age)"
    )
    speed: float = described(
        2.0, "m/s commanded with every steering command; negative: visual-odometry speed (needs metric)"
    )
    publish_tf: bool = described(False, "also broadcast odom -> base_link on /tf")
    autostart: bool = described(True, "configure and activate at start-up (no lifecycle manager needed)")
    intrinsics: list[float] = described(description="fx/W, fy/H, cx/W, cy/H used until camera_info arrives",
                                        default_factory=lambda: [0.58, 1.92, 0.5, 0.5])
    camera_xyz: list[float] = described(description="m; camera position in base_link",
                                        default_factory=lambda: [0.0, 0.0, 1.5])
    camera_rpy: list[float] = described(description="rad; camera body (x forward) orientation in base_link",
                                        default_factory=lambda: [0.0, 0.0, 0.0])
    odom_frame: str = described("odom", "frame of the odometry")
    base_frame: str = described("base_link", "vehicle frame (odometry child, steering commands)")
    diagnostics_period: float = described(1.0, "s between /diagnostics messages")


def load_node_parameters(path: str | os.PathLike, node: str = "perception_node") -> tuple[PipelineConfig, NodeConfig]:
    """The pipeline and node settings of a ROS 2 parameter file (``config/perception.yaml``).

    Reads the ``ros__parameters`` of the block named ``node`` (or ``/node``), else of the ``/**`` wildcard block.
    Raises :class:`ConfigError` naming the file for unreadable YAML, no such block, or an unknown parameter or
    wrong type (naming the key).
    """
    raw = read_yaml(path)
    block = next((raw[k] for k in (node, f"/{node}", "/**") if isinstance(raw, dict) and k in raw), None)
    if not isinstance(block, dict) or not isinstance(block.get("ros__parameters"), dict):
        raise ConfigError(f"{path}: no '{node}:' or '/**:' block with 'ros__parameters:'; give the node's "
                          "parameter file (config/perception.yaml)")
    params = block["ros__parameters"]
    pipeline_keys = {f.name for f in dataclasses.fields(PipelineConfig)}
    node_params = {k: v for k, v in params.items() if k not in pipeline_keys}
    pipeline = from_dict(PipelineConfig, {k: v for k, v in params.items() if k in pipeline_keys}, str(path))
    return pipeline, from_dict(NodeConfig, node_params, str(path))


def field_defaults(cls: type) -> dict[str, tuple[Any, str]]:
    """``name -> (default, description)`` for every field of dataclass ``cls`` (fields made with :func:`described`).

    Raises :class:`ConfigError` for a field without a description.
    """
    out = {}
    for f in dataclasses.fields(cls):
        if not f.metadata.get("description"):
            raise ConfigError(f"{cls.__name__}.{f.name} has no description")
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        out[f.name] = (default, f.metadata["description"])
    return out


# --------------------------------------------------------------------------- YAML

MAX_CONFIG_BYTES = 1 << 20
"""A configuration is a few kilobytes; a larger file is the wrong file (and is not parsed)."""


def load_config(path: str | os.PathLike, cls: type[T]) -> T:
    """Read ``path`` (YAML, UTF-8) into an instance of dataclass ``cls`` and check its sizes (``check_config``).

    Missing keys take their defaults. Raises :class:`ConfigError` naming the file and the fix for: a missing or
    unreadable file, a file over :data:`MAX_CONFIG_BYTES`, text that is not UTF-8 or not YAML, nesting too deep
    to parse, an unknown key, a wrong type (key and expected type named), a non-finite number or a size out of
    bounds.
    """
    return from_dict(cls, read_yaml(path), source=str(path))


def read_yaml(path: str | os.PathLike) -> Any:
    """The parsed content of the YAML file ``path`` (an empty file gives ``{}``); raises :class:`ConfigError`."""
    path = Path(path)
    try:
        if path.is_file() and path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: {path.stat().st_size:,d} bytes is not a configuration file "
                              f"(those are a few KB, at most {MAX_CONFIG_BYTES:,d}); check the path")
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found; check the path") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a YAML file; give the .yaml file inside it") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror}); check its permissions") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                          "save it as UTF-8 YAML") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a configuration; check the file's structure") from None
    return {} if raw is None else raw


def from_dict(cls: type[T], raw: Any, source: str = "<dict>", prefix: str = "") -> T:
    """Build dataclass ``cls`` from a plain mapping, checking every key, type and (at the top) the bounds.

    Raises :class:`ConfigError` naming ``source`` and the dotted key.
    """
    where = prefix.rstrip(".") or "<top level>"
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: {where} must be a mapping of keys to values, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(str(k) for k in raw if k not in known)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key '{prefix}{unknown[0][:60]}' in {cls.__name__} "
            f"(known keys: {', '.join(sorted(known))})"
        )
    values = {name: _coerce(hints[name], raw[name], source, f"{prefix}{name}") for name in raw}
    try:
        config = cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: {where}: {exc}") from None
    if not prefix:
        check_config(config, source)
    return config


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _show(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters (a message stays one readable line)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _coerce(tp: Any, value: Any, source: str, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, source, key + ".")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, source, key)
            except ConfigError:
                continue
        raise ConfigError(f"{source}: key '{key}' expects {_type_name(tp)}, got {_show(value)}")
    if origin is Literal:
        if not any(type(value) is type(a) and value == a for a in args):
            raise ConfigError(f"{source}: key '{key}' expects one of {list(args)}, got {_show(value)}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{source}: key '{key}' expects a list, got {type(value).__name__}")
        return [_coerce(args[0], v, source, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is float and type(value) in (int, float):
        if not math.isfinite(value):
            raise ConfigError(f"{source}: key '{key}' expects a finite number, got {value}")
        return float(value)
    if tp in (int, float, str, bool) and type(value) is tp:
        return value
    raise ConfigError(
        f"{source}: key '{key}' expects {_type_name(tp)}, got {type(value).__name__} ({_show(value)})"
    )


def to_dict(config: Any) -> dict[str, Any]:
    """Plain-data view of a config dataclass (what ``save_config`` writes)."""
    return dataclasses.asdict(config)


def save_config(config: Any, path: str | os.PathLike) -> None:
    """Write ``config`` as YAML; the file is replaced atomically (temp file, fsync, rename)."""
    with atomic_writer(path, "w") as fh:
        yaml.safe_dump(to_dict(config), fh, sort_keys=False)
