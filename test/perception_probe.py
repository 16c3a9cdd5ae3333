"""Test-side helpers for the perception node: start it as a separate process, talk to it over real DDS.

``start_node`` runs ``python -m uni_encoder_ros.node --ros-args --params-file config/perception.yaml -p ...``
(the same command line as ``perception_node``), logging to a file. ``Probe`` is an rclpy node in the test
process that publishes camera frames and records every output topic.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from tf2_msgs.msg import TFMessage

from uni_encoder_ros.interface import OUTPUT_TOPICS

ROOT = Path(__file__).resolve().parents[1]
OUTPUTS: dict[str, type] = OUTPUT_TOPICS | {"/tf": TFMessage, "/diagnostics": DiagnosticArray}


def stamp_of(msg: Any) -> int:
    """Header stamp in nanoseconds (TFMessage: its first transform; DiagnosticArray: its own header)."""
    header = msg.transforms[0].header if isinstance(msg, TFMessage) else msg.header
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


class Probe:
    """Publishes frames on ``image`` / ``image/compressed`` and records every output of the node."""

    def __init__(self, name: str = "perception_probe", target: str = "perception_node"):
        self.node = rclpy.create_node(name)
        self.target = target
        reliable = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)
        self.image = self.node.create_publisher(Image, "image", reliable)
        self.compressed = self.node.create_publisher(CompressedImage, "image/compressed", reliable)
        self.camera_info = self.node.create_publisher(CameraInfo, "camera_info", reliable)
        self.got: dict[str, list[Any]] = defaultdict(list)
        for topic, msg_type in OUTPUTS.items():
            self.node.create_subscription(msg_type, topic, lambda m, t=topic: self.got[t].append(m), reliable)

    def now_stamp(self):
        """The current time as a builtin_interfaces/Time."""
        return self.node.get_clock().now().to_msg()

    def spin_until(self, condition, timeout: float) -> bool:
        """Spin until ``condition()`` holds or ``timeout`` seconds pass; returns whether it held."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if condition():
                return True
            rclpy.spin_once(self.node, timeout_sec=0.05)
        return condition()

    def spin_for(self, seconds: float) -> None:
        """Spin for a fixed time."""
        self.spin_until(lambda: False, seconds)

    def stamps(self, topic: str) -> list[int]:
        """Stamps (ns) of everything received on ``topic``."""
        return [stamp_of(m) for m in self.got[topic]]

    def diagnostics(self) -> dict[str, str]:
        """Key/values and level of the newest /diagnostics status of the perception node."""
        msg = [m for m in self.got["/diagnostics"] if m.status[0].name == f"{self.target}: perception"][-1]
        status = msg.status[0]
        return {"level": ord(status.level), "message": status.message, **{kv.key: kv.value for kv in status.values}}

    def fresh_diagnostics(self, timeout: float = 10.0) -> dict[str, str]:
        """Wait for the next /diagnostics message and return it."""
        def count():
            return sum(m.status[0].name == f"{self.target}: perception" for m in self.got["/diagnostics"])

        n = count()
        assert self.spin_until(lambda: count() > n, timeout), f"no /diagnostics from {self.target}"
        return self.diagnostics()

    def close(self) -> None:
        """Destroy the probe node."""
        self.node.destroy_node()


def camera_image(rows: np.ndarray, stamp, encoding: str = "rgb8", pad: int = 0, frame_id: str = "camera_optical"):
    """sensor_msgs/Image from an HxWx3 RGB array in ``encoding`` (rgb8/bgr8), with ``pad`` bytes after each row."""
    pixels = rows if encoding == "rgb8" else rows[:, :, ::-1]
    data = np.concatenate([pixels.reshape(rows.shape[0], -1), np.full((rows.shape[0], pad), 7, np.uint8)], axis=1)
    msg = Image(height=rows.shape[0], width=rows.shape[1], encoding=encoding, step=data.shape[1])
    msg.data = data.tobytes()
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    return msg
