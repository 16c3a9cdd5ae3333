"""Recordings written by the tests with ``rosbags`` (MCAP or SQLite3): camera images in several encodings,
camera_info, curvature and Ackermann steering, and hand-damaged messages."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer

from uni_encoder_core.bags.writer import typestore

STORE = typestore()
T = STORE.types
STORAGE = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}


def header(stamp_ns: int, frame_id: str = "camera_optical_frame"):
    time = T["builtin_interfaces/msg/Time"](sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000)
    return T["std_msgs/msg/Header"](stamp=time, frame_id=frame_id)


def image(stamp_ns: int, rgb: np.ndarray, encoding: str = "rgb8", pad: int = 0):
    """sensor_msgs/Image of HxWx3 RGB in ``encoding`` (rgb8 or bgr8) with ``pad`` junk bytes after every row."""
    pixels = rgb if encoding == "rgb8" else rgb[:, :, ::-1]
    h, w = rgb.shape[:2]
    rows = np.full((h, w * 3 + pad), 77, np.uint8)
    rows[:, : w * 3] = pixels.reshape(h, w * 3)
    return T["sensor_msgs/msg/Image"](header=header(stamp_ns), height=h, width=w, encoding=encoding,
                                      is_bigendian=0, step=w * 3 + pad, data=rows.reshape(-1))


def jpeg(stamp_ns: int, rgb: np.ndarray, quality: int = 100):
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return T["sensor_msgs/msg/CompressedImage"](header=header(stamp_ns), format="jpeg", data=data.reshape(-1))


def camera_info(stamp_ns: int, K: np.ndarray, h: int, w: int):
    roi = T["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    return T["sensor_msgs/msg/CameraInfo"](
        header=header(stamp_ns), height=h, width=w, distortion_model="plumb_bob", d=np.zeros(5),
        k=K.reshape(-1).astype(np.float64), r=np.eye(3).reshape(-1), p=np.hstack([K, np.zeros((3, 1))]).reshape(-1),
        binning_x=0, binning_y=0, roi=roi)


def curvature(value: float, msgtype: str = "std_msgs/msg/Float64"):
    return T[msgtype](data=value)


def ackermann(stamp_ns: int, angle: float, speed: float):
    drive = T["ackermann_msgs/msg/AckermannDrive"](steering_angle=angle, steering_angle_velocity=0.0, speed=speed,
                                                   acceleration=0.0, jerk=0.0)
    return T["ackermann_msgs/msg/AckermannDriveStamped"](header=header(stamp_ns, "base_link"), drive=drive)


def write_bag(path: Path, storage: str, messages: list[tuple[str, str, int, object]]) -> Path:
    """A rosbag2 directory at ``path`` holding ``(topic, msgtype, record time ns, message)`` in list order; a
    ``bytes`` message is written as is (a damaged serialization)."""
    writer = Writer(path, version=8, storage_plugin=STORAGE[storage])
    writer.open()
    connections = {}
    for topic, msgtype, stamp_ns, msg in messages:
        if topic not in connections:
            connections[topic] = writer.add_connection(topic, msgtype, typestore=STORE)
        raw = msg if isinstance(msg, bytes) else STORE.serialize_cdr(msg, msgtype)
        writer.write(connections[topic], stamp_ns, raw)
    writer.close()
    return path


def serialized(msg: object, msgtype: str) -> bytes:
    return bytes(STORE.serialize_cdr(msg, msgtype))
