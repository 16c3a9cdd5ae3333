"""Settings of the per-frame runtime: the pipeline's (``PipelineConfig``) and the ROS node's own (``NodeConfig``).

Every field is declared once with its default and a user-facing description (:func:`described`); the node turns
each into a ROS parameter (:func:`field_defaults`) and rosbag replay reads the same settings from the node's
parameter file (:func:`load_node_parameters`).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Literal

from uni_encoder_core.config_yaml import from_dict, read_yaml
from uni_encoder_core.errors import ConfigError


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


