"""The node's public interface: its parameters (names, defaults, descriptions), QoS profiles and output topics.

``config/perception.yaml`` documents every parameter; the demo, the tests and replay derive their topic lists from
:data:`OUTPUT_TOPICS`.
"""

from __future__ import annotations

from typing import Any

from ackermann_msgs.msg import AckermannDriveStamped
from nav_msgs.msg import Odometry
from rclpy.qos import QoSHistoryPolicy, QoSProfile, qos_profile_sensor_data, qos_profile_system_default
from sensor_msgs.msg import CameraInfo, Image

from uni_encoder_core.config import NodeConfig, PipelineConfig, field_defaults

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
