"""The node's output messages written to a rosbag2 (MCAP storage) with ``rosbags``: what replay records.

The contents come from :class:`uni_encoder_core.messages.outputs.OutputMessages` (shared with the ROS node); this
module fills ``rosbags`` message objects with them, as ``uni_encoder_ros.messages`` fills rclpy ones. Topics are
the node's output topics under the root namespace (``/depth``, ``/odom``, ``/steering``, ...), with the node's
message types; every message is recorded at its header stamp, so a bag written twice from the same input is the
same, byte for byte.
"""

from __future__ import annotations

from functools import singledispatchmethod
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer

from uni_encoder_core.bags.writer import typestore
from uni_encoder_core.messages.outputs import CameraInfoFields, DriveFields, Header, OdometryFields, StampedImage

# The node's output topics (relative names, publication order) and their ROS 2 message types.
OUTPUT_TYPES: dict[str, str] = {
    "depth": "sensor_msgs/msg/Image", "depth/camera_info": "sensor_msgs/msg/CameraInfo",
    "segmentation/semantic": "sensor_msgs/msg/Image", "segmentation/instance": "sensor_msgs/msg/Image",
    "segmentation/panoptic": "sensor_msgs/msg/Image", "segmentation/semantic_color": "sensor_msgs/msg/Image",
    "scene_flow": "sensor_msgs/msg/Image", "motion_mask": "sensor_msgs/msg/Image", "odom": "nav_msgs/msg/Odometry",
    "steering": "ackermann_msgs/msg/AckermannDriveStamped",
}


class OutputBagWriter:
    """Context manager: ``write(topic, content)`` records one output (a relative topic of :data:`OUTPUT_TYPES`).

    ``path`` is the bag directory to create; raises ``FileExistsError`` naming it when it exists.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f"{self.path} exists already; rosbag2 bags are never overwritten")
        self.store = typestore()
        self.T = self.store.types
        self._writer = Writer(self.path, version=8, storage_plugin=StoragePlugin.MCAP)
        self._connections: dict[str, Any] = {}
        self.counts: dict[str, int] = dict.fromkeys(OUTPUT_TYPES, 0)

    def __enter__(self) -> OutputBagWriter:
        self._writer.open()
        for topic, msgtype in OUTPUT_TYPES.items():
            self._connections[topic] = self._writer.add_connection(f"/{topic}", msgtype, typestore=self.store)
        return self

    def __exit__(self, *exc: object) -> None:
        self._writer.close()

    def write(self, topic: str, content: StampedImage | CameraInfoFields | OdometryFields | DriveFields) -> None:
        """Serialize ``content`` as ``topic``'s type and record it at its header stamp."""
        conn = self._connections[topic]
        stamp_ns = content.header.sec * 1_000_000_000 + content.header.nanosec
        self._writer.write(conn, stamp_ns, self.store.serialize_cdr(self.message(content), conn.msgtype))
        self.counts[topic] += 1

    def header(self, header: Header) -> Any:
        """``std_msgs/Header`` of a core header."""
        time = self.T["builtin_interfaces/msg/Time"](sec=header.sec, nanosec=header.nanosec)
        return self.T["std_msgs/msg/Header"](stamp=time, frame_id=header.frame_id)

    @singledispatchmethod
    def message(self, content: object) -> Any:
        """``rosbags`` message of one output's contents (raises TypeError for anything else)."""
        raise TypeError(f"no ROS message for {type(content).__name__}")

    @message.register
    def _(self, content: StampedImage) -> Any:
        f = content.image
        return self.T["sensor_msgs/msg/Image"](header=self.header(content.header), height=f.height, width=f.width,
                                               encoding=f.encoding, is_bigendian=f.is_bigendian, step=f.step,
                                               data=f.data)

    @message.register
    def _(self, content: CameraInfoFields) -> Any:
        T = self.T
        roi = T["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
        return T["sensor_msgs/msg/CameraInfo"](
            header=self.header(content.header), height=content.height, width=content.width,
            distortion_model=content.distortion_model, d=np.asarray(content.d, np.float64),
            k=np.asarray(content.k, np.float64), r=np.asarray(content.r, np.float64),
            p=np.asarray(content.p, np.float64), binning_x=0, binning_y=0, roi=roi)

    @message.register
    def _(self, content: OdometryFields) -> Any:
        T = self.T
        vec = T["geometry_msgs/msg/Vector3"]
        x, y, z = content.position
        qx, qy, qz, qw = content.orientation
        pose = T["geometry_msgs/msg/Pose"](position=T["geometry_msgs/msg/Point"](x=x, y=y, z=z),
                                           orientation=T["geometry_msgs/msg/Quaternion"](x=qx, y=qy, z=qz, w=qw))
        vx, vy, vz, wx, wy, wz = content.twist
        twist = T["geometry_msgs/msg/Twist"](linear=vec(x=vx, y=vy, z=vz), angular=vec(x=wx, y=wy, z=wz))
        return T["nav_msgs/msg/Odometry"](
            header=self.header(content.header), child_frame_id=content.child_frame_id,
            pose=T["geometry_msgs/msg/PoseWithCovariance"](
                pose=pose, covariance=np.asarray(content.pose_covariance, np.float64)),
            twist=T["geometry_msgs/msg/TwistWithCovariance"](
                twist=twist, covariance=np.asarray(content.twist_covariance, np.float64)))

    @message.register
    def _(self, content: DriveFields) -> Any:
        drive = self.T["ackermann_msgs/msg/AckermannDrive"](
            steering_angle=content.steering_angle, steering_angle_velocity=content.steering_angle_velocity,
            speed=content.speed, acceleration=content.acceleration, jerk=0.0)
        return self.T["ackermann_msgs/msg/AckermannDriveStamped"](header=self.header(content.header), drive=drive)
