"""The node's public interface: its parameters (names, defaults, descriptions), QoS profiles and output topics.

``config/perception.yaml`` documents every parameter; the demo, the tests and replay derive their topic lists from
:data:`OUTPUT_TOPICS`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import yaml
from ackermann_msgs.msg import AckermannDriveStamped
from nav_msgs.msg import Odometry
from rclpy.qos import QoSHistoryPolicy, QoSProfile, qos_profile_sensor_data, qos_profile_system_default
from sensor_msgs.msg import CameraInfo, Image

from uni_encoder_core.inference.settings import NodeConfig, PipelineConfig, field_defaults

# name -> (default, description) of the parameters that are the node's own (the rest configure the pipeline).
NODE_PARAMETERS: dict[str, tuple[Any, str]] = field_defaults(NodeConfig)
# Every declared parameter: the pipeline's settings (PipelineConfig fields) and the node's own. These names are a
# public interface: config/perception.yaml documents each.
PARAMETERS: dict[str, tuple[Any, str]] = field_defaults(PipelineConfig) | NODE_PARAMETERS

# Publishers: the RMW's default reliability and durability, keep-last 5 (the system-default history of Fast DDS is
# keep-last 1, which loses a sample whenever a reader is a frame behind).
OUTPUT_QOS = QoSProfile(
    history=QoSHistoryPolicy.KEEP_LAST, depth=5, reliability=qos_profile_system_default.reliability,
    durability=qos_profile_system_default.durability,
)
# Subscriptions: sensor-data QoS (best effort, volatile), keep-last 1: the newest frame is all the node wants.
INPUT_QOS = QoSProfile(
    history=qos_profile_sensor_data.history, depth=1, reliability=qos_profile_sensor_data.reliability,
    durability=qos_profile_sensor_data.durability,
)
# Output topics (relative names) and their message types, in publication order; /tf is optional (``publish_tf``).
OUTPUT_TOPICS: dict[str, type] = {
    "depth": Image, "depth/camera_info": CameraInfo, "segmentation/semantic": Image,
    "segmentation/instance": Image, "segmentation/panoptic": Image, "segmentation/semantic_color": Image,
    "scene_flow": Image, "motion_mask": Image, "odom": Odometry, "steering": AckermannDriveStamped,
}

# Closed ranges of the numeric parameters; every value is checked (type and range) at start-up, at configure and
# when set at runtime. Integers are accepted for floating-point parameters.
RANGES: dict[str, tuple[float, float]] = {
    "max_input_age": (0.05, 60.0), "max_future_stamp": (0.0, 60.0), "max_input_pixels": (1, 64_000_000),
    "max_steering_angle": (0.001, 1.5), "max_steering_rate": (0.001, 10.0), "speed": (-1.0, 50.0),
    "diagnostics_period": (0.05, 60.0), "wheelbase": (0.1, 20.0), "crop_bottom": (0.0, 0.95),
    "camera_height": (0.01, 100.0), "max_ground_tilt": (0.0, 90.0), "max_frame_gap": (0.01, 3600.0),
    "warmup_frames": (0, 100),
}
CHOICES: dict[str, tuple[str, ...]] = {"input": ("raw", "compressed"), "precision": ("fp32", "fp16", "bf16"),
                                       "execution": ("torch", "onnxruntime")}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_parameter(name: str, value: Any) -> Any:
    """``value`` of the declared parameter ``name`` in its declared type, checked against :data:`RANGES` and
    :data:`CHOICES` (an int becomes a float where the default is a float; a sequence becomes a list).

    Raises ``ValueError`` naming the parameter, the value and the rule. Undeclared names pass unchanged.
    """
    if name not in PARAMETERS:
        return value
    default = PARAMETERS[name][0]
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}")
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    elif isinstance(default, float):
        if not _number(value) or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
        value = float(value)
    elif isinstance(default, str):
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string, got {value!r}")
        if name in CHOICES and value not in CHOICES[name]:
            raise ValueError(f"{name} must be one of {', '.join(CHOICES[name])}, got '{value}'")
    elif isinstance(default, list):
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) and not hasattr(value, "tolist"):
            raise ValueError(f"{name} must be a list, got {value!r}")
        value = list(value)
        if default and isinstance(default[0], float):
            if len(value) != len(default) or not all(_number(v) and math.isfinite(v) for v in value):
                raise ValueError(f"{name} must be {len(default)} finite numbers, got {value!r}")
            value = [float(v) for v in value]
        elif not all(isinstance(v, str) for v in value):
            raise ValueError(f"{name} must be a list of strings, got {value!r}")
    if name in RANGES:
        low, high = RANGES[name]
        if not low <= value <= high:
            raise ValueError(f"{name} must be in [{low}, {high}], got {value}")
    return value


def check_parameters(values: dict[str, Any]) -> dict[str, Any]:
    """:func:`check_parameter` on every value, then the rules between parameters (a negative ``speed``, the
    visual-odometry speed, needs ``metric_scale``). Returns the checked values; raises ``ValueError``."""
    checked = {name: check_parameter(name, value) for name, value in values.items()}
    if checked.get("speed", 0.0) < 0 and not checked.get("metric_scale", False):
        raise ValueError(f"speed {checked['speed']} < 0 (visual-odometry speed) needs metric_scale: true")
    return checked


def params_files(argv: Sequence[str]) -> list[str]:
    """The ``--params-file`` paths of a command line (after ``--ros-args``), in order."""
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--params-file"]


def check_params_files(paths: Sequence[str], node_name: str) -> str | None:
    """Why a value in one of the parameter files at ``paths`` (sections ``/**``, ``/*`` or the node's name) is
    invalid (see :func:`check_parameter`), or None.

    rcl merges parameter files keeping the type of a parameter's first value: a later ``max_input_age: abc`` over
    the shipped ``0.5`` would be dropped without a word; this check names it instead.
    """
    names = {"/**", "**", "/*", node_name, node_name.lstrip("/")}
    for path in paths:
        with open(path) as f:
            sections = yaml.safe_load(f) or {}
        for key, section in sections.items():
            if key not in names or not isinstance(section, dict):
                continue
            for name, value in (section.get("ros__parameters") or {}).items():
                try:
                    check_parameter(name, value)
                except ValueError as exc:
                    return f"{path}: {exc}"
    return None
