"""Write synthetic frames as a rosbag2 (MCAP storage) with the ``rosbags`` library: no ROS install needed.

Topics (all stamped with the frame's stamp; images in ``camera_optical_frame``):

- ``/camera/image_raw`` sensor_msgs/Image rgb8, ``/camera/camera_info`` sensor_msgs/CameraInfo
- ``/ground_truth/odom`` nav_msgs/Odometry: ``odom`` -> ``base_link`` (REP 103: x forward, y left, z up, on the
  ground below the camera), twist in ``base_link`` (forward speed, yaw rate = speed * curvature)
- ``/ground_truth/curvature`` std_msgs/Float64 (1/m, + = left)
- ``/ground_truth/steering`` ackermann_msgs/AckermannDriveStamped (Ackermann angle for the wheelbase, speed)
- ``/ground_truth/depth`` 32FC1 (m, NaN = sky), ``/ground_truth/semantic`` mono8 (train ids),
  ``/ground_truth/instance`` 16UC1, ``/ground_truth/panoptic`` 32SC1, ``/ground_truth/motion_mask`` mono8
  (0/255), ``/ground_truth/scene_flow`` 32FC3 (m per frame, camera frame)
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from uni_encoder_core.data.synthetic import SyntheticFrame, WorldConfig
from uni_encoder_core.messages.images import encode_image

CAMERA_FRAME = "camera_optical_frame"
ACKERMANN_DRIVE = """float32 steering_angle
float32 steering_angle_velocity
float32 speed
float32 acceleration
float32 jerk
"""
ACKERMANN_DRIVE_STAMPED = """std_msgs/Header header
AckermannDrive drive
"""
IMAGE_TOPICS = {  # topic -> (frame field, encoding, numpy dtype)
    "/ground_truth/depth": ("depth", "32FC1", np.float32),
    "/ground_truth/semantic": ("semantic", "mono8", np.uint8),
    "/ground_truth/instance": ("instance", "16UC1", np.uint16),
    "/ground_truth/panoptic": ("panoptic", "32SC1", np.int32),
    "/ground_truth/motion_mask": ("motion_mask", "mono8", np.uint8),
    "/ground_truth/scene_flow": ("scene_flow", "32FC3", np.float32),
}


def typestore():
    """ROS 2 (Kilted) message types plus ackermann_msgs, registered from their definitions."""
    store = get_typestore(Stores.ROS2_KILTED)
    types = get_types_from_msg(ACKERMANN_DRIVE, "ackermann_msgs/msg/AckermannDrive")
    types.update(get_types_from_msg(ACKERMANN_DRIVE_STAMPED, "ackermann_msgs/msg/AckermannDriveStamped"))
    store.register(types)
    return store


def bag_directory(path: str | Path) -> Path:
    """The rosbag2 directory for ``path`` (a trailing ``.mcap`` names the directory without it)."""
    path = Path(path)
    return path.with_suffix("") if path.suffix == ".mcap" else path


class GroundTruthBagWriter:
    """Context manager writing one message per topic per frame; ``write(frame)`` in stamp order."""

    def __init__(self, path: str | Path, cfg: WorldConfig):
        self.path = bag_directory(path)
        if self.path.exists():
            raise FileExistsError(f"{self.path} exists already; rosbag2 bags are never overwritten")
        self.cfg = cfg
        self.store = typestore()
        self.types = self.store.types
        self._writer = Writer(self.path, version=8, storage_plugin=StoragePlugin.MCAP)
        self._topics = {
            "/camera/image_raw": "sensor_msgs/msg/Image",
            "/camera/camera_info": "sensor_msgs/msg/CameraInfo",
            "/ground_truth/odom": "nav_msgs/msg/Odometry",
            "/ground_truth/curvature": "std_msgs/msg/Float64",
            "/ground_truth/steering": "ackermann_msgs/msg/AckermannDriveStamped",
            **{topic: "sensor_msgs/msg/Image" for topic in IMAGE_TOPICS},
        }
        self._connections = {}

    def __enter__(self) -> GroundTruthBagWriter:
        self._writer.open()
        for topic, msgtype in self._topics.items():
            self._connections[topic] = self._writer.add_connection(topic, msgtype, typestore=self.store)
        return self

    def __exit__(self, *exc) -> None:
        self._writer.close()

    def _header(self, stamp_ns: int, frame_id: str):
        T = self.types
        time = T["builtin_interfaces/msg/Time"](sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000)
        return T["std_msgs/msg/Header"](stamp=time, frame_id=frame_id)

    def _image(self, header, array: np.ndarray, encoding: str):
        f = encode_image(array, encoding)
        return self.types["sensor_msgs/msg/Image"](header=header, height=f.height, width=f.width, encoding=encoding,
                                                   is_bigendian=f.is_bigendian, step=f.step, data=f.data)

    def _put(self, topic: str, msg, stamp_ns: int) -> None:
        conn = self._connections[topic]
        self._writer.write(conn, stamp_ns, self.store.serialize_cdr(msg, conn.msgtype))

    def write(self, frame: SyntheticFrame) -> None:
        """Write every topic of ``frame``."""
        T = self.types
        ns = round(frame.stamp * 1e9)
        cam = self._header(ns, CAMERA_FRAME)
        self._put("/camera/image_raw", self._image(cam, frame.rgb, "rgb8"), ns)
        K = frame.K
        P = np.concatenate([K, np.zeros((3, 1))], axis=1)
        roi = T["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
        info = T["sensor_msgs/msg/CameraInfo"](
            header=cam, height=frame.rgb.shape[0], width=frame.rgb.shape[1], distortion_model="plumb_bob",
            d=np.zeros(5), k=K.reshape(-1).astype(np.float64), r=np.eye(3).reshape(-1), p=P.reshape(-1),
            binning_x=0, binning_y=0, roi=roi)
        self._put("/camera/camera_info", info, ns)
        self._put("/ground_truth/odom", self._odometry(frame, ns), ns)
        self._put("/ground_truth/curvature", T["std_msgs/msg/Float64"](data=float(frame.curvature)), ns)
        drive = T["ackermann_msgs/msg/AckermannDrive"](
            steering_angle=float(frame.steering_angle), steering_angle_velocity=0.0, speed=float(self.cfg.speed),
            acceleration=0.0, jerk=0.0)
        self._put("/ground_truth/steering",
                  T["ackermann_msgs/msg/AckermannDriveStamped"](header=self._header(ns, "base_link"), drive=drive), ns)
        for topic, (field, encoding, dtype) in IMAGE_TOPICS.items():
            array = getattr(frame, field)
            if field == "depth":
                array = np.where(array > 0, array, np.nan)
            elif field == "motion_mask":
                array = array * 255
            self._put(topic, self._image(cam, array.astype(dtype), encoding), ns)

    def _odometry(self, frame: SyntheticFrame, ns: int):
        """Pose of ``base_link`` (on the ground below the camera) in ``odom`` (the world frame)."""
        T = self.types
        forward = frame.T_world_cam[:3, 2]
        yaw = math.atan2(forward[1], forward[0])
        x, y, _ = frame.T_world_cam[:3, 3]
        pose = T["geometry_msgs/msg/Pose"](
            position=T["geometry_msgs/msg/Point"](x=float(x), y=float(y), z=0.0),
            orientation=T["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=math.sin(yaw / 2), w=math.cos(yaw / 2)))
        vec = T["geometry_msgs/msg/Vector3"]
        twist = T["geometry_msgs/msg/Twist"](linear=vec(x=float(self.cfg.speed), y=0.0, z=0.0),
                                             angular=vec(x=0.0, y=0.0, z=float(self.cfg.speed * frame.curvature)))
        return T["nav_msgs/msg/Odometry"](
            header=self._header(ns, "odom"), child_frame_id="base_link",
            pose=T["geometry_msgs/msg/PoseWithCovariance"](pose=pose, covariance=np.zeros(36)),
            twist=T["geometry_msgs/msg/TwistWithCovariance"](twist=twist, covariance=np.zeros(36)))
