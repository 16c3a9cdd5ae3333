"""Read rosbag2 recordings (MCAP or SQLite3 storage) without ROS, through ``rosbags``.

:class:`BagReader` opens a bag directory (``metadata.yaml`` + storage files) or a bare ``.mcap`` / ``.db3`` file
and yields one topic's messages in header-stamp order, deserialized with the ROS 2 standard types plus
``ackermann_msgs`` (registered from their definitions, as the bag writer does). A message that cannot be used is
never fatal: it is recorded in :attr:`BagReader.rejected` (topic, index in the topic, stamp when known, reason) and
skipped. Reasons: a truncated or undecodable serialization, and a header stamp that is not after the previous
accepted one on that topic (out of order or repeated). Images decode with
:func:`uni_encoder_core.messages.images.image_to_rgb8` (every camera encoding the node accepts, any row padding,
jpeg/png ``CompressedImage``); :func:`decode_steering` reads ``std_msgs/Float32``/``Float64`` curvature or
``ackermann_msgs/AckermannDriveStamped``; :func:`usable_camera_info` checks a ``sensor_msgs/CameraInfo``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rosbags.rosbag2 import Reader
from rosbags.serde import SerdeError

from uni_encoder_core.bags.writer import typestore
from uni_encoder_core.errors import UserError
from uni_encoder_core.messages.frames import CameraInfoError, CameraIntrinsics

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
CURVATURE_TYPES = ("std_msgs/msg/Float32", "std_msgs/msg/Float64")
ACKERMANN_TYPE = "ackermann_msgs/msg/AckermannDriveStamped"
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"


class BagError(UserError, ValueError):
    """A bag cannot be read, or lacks a topic of a usable type; the text names the bag, the problem and the fix."""


@dataclass(frozen=True)
class Rejected:
    """A message that was skipped: its ``topic``, ``index`` (0-based, in recording order on that topic), header
    ``stamp`` (s, None when unknown), the ``reason`` and its ``kind``: ``unreadable`` (the content cannot be
    decoded or used) or ``dropped`` (readable, but out of place: its stamp, its image size)."""

    topic: str
    index: int
    stamp: float | None
    reason: str
    kind: str = "unreadable"


@dataclass(frozen=True)
class BagMessage:
    """One deserialized message: ``topic``, ``msgtype`` (e.g. ``sensor_msgs/msg/Image``), ``index`` in the topic,
    ``stamp_ns`` (the header stamp, or the recording time for messages without a header) and ``msg``."""

    topic: str
    msgtype: str
    index: int
    stamp_ns: int
    msg: Any

    @property
    def stamp(self) -> float:
        """The stamp in seconds."""
        return self.stamp_ns * 1e-9


class BagReader:
    """Context manager over one rosbag2 recording; ``messages(topic)`` yields that topic in stamp order.

    Raises :class:`BagError` naming ``path`` when it is missing or is not a readable rosbag2 recording.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.store = typestore()
        self.rejected: list[Rejected] = []
        if not self.path.exists():
            raise BagError(f"{self.path}: no such bag; give a rosbag2 directory or its .mcap / .db3 file")
        try:
            self._reader = Reader(self.path)
            self._reader.open()
        except Exception as exc:  # rosbags raises its own errors, sqlite3/yaml/mcap ones and KeyErrors
            raise BagError(f"{self.path}: not a readable rosbag2 bag ({type(exc).__name__}: {exc}); give a rosbag2 "
                           "directory (metadata.yaml + storage files) or an intact .mcap / .db3 file") from None
        self.topics: dict[str, str] = {c.topic: c.msgtype for c in self._reader.connections}

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._reader.close()

    def count(self, topic: str) -> int:
        """Messages recorded on ``topic`` (0 when absent)."""
        return sum(c.msgcount for c in self._reader.connections if c.topic == topic)

    def require(self, topic: str, msgtypes: tuple[str, ...]) -> str:
        """The type of ``topic``; raises :class:`BagError` when it is absent or of none of ``msgtypes``."""
        if topic not in self.topics:
            listing = ", ".join(f"{t} ({m})" for t, m in sorted(self.topics.items())) or "none"
            raise BagError(f"{self.path}: no topic '{topic}'; choose one of: {listing}")
        if self.topics[topic] not in msgtypes:
            raise BagError(f"{self.path}: topic '{topic}' has type {self.topics[topic]}, expected one of "
                           f"{', '.join(msgtypes)}; check the topic option")
        return self.topics[topic]

    def messages(self, topic: str) -> Iterator[BagMessage]:
        """``topic``'s decodable messages whose stamps increase strictly, in recording order; others rejected."""
        connections = [c for c in self._reader.connections if c.topic == topic]
        last: int | None = None  # ns
        try:
            for index, (conn, log_ns, raw) in enumerate(self._reader.messages(connections=connections)):
                try:
                    msg = self.store.deserialize_cdr(raw, conn.msgtype)
                except (SerdeError, KeyError) as exc:
                    self.rejected.append(Rejected(topic, index, None, f"undecodable {conn.msgtype} "
                                                                      f"({len(raw)} bytes): {exc}"))
                    continue
                header = getattr(msg, "header", None)
                stamp = header.stamp.sec * 1_000_000_000 + header.stamp.nanosec if header is not None else log_ns
                if last is not None and stamp <= last:
                    self.rejected.append(Rejected(topic, index, stamp * 1e-9, f"stamp {stamp * 1e-9:.6f} s is not "
                                                  f"after the previous one ({last * 1e-9:.6f} s)", "dropped"))
                    continue
                last = stamp
                yield BagMessage(topic, conn.msgtype, index, stamp, msg)
        except BagError:
            raise
        except Exception as exc:  # a storage file cut short while iterating
            raise BagError(f"{self.path}: storage unreadable while reading '{topic}' "
                           f"({type(exc).__name__}: {exc}); the recording is damaged") from None


@dataclass(frozen=True)
class SteeringSample:
    """One recorded steering label: ``curvature`` (1/m, + = left); ``steering_angle`` (rad) and ``speed`` (m/s)
    when the message carries them (Ackermann), else None."""

    curvature: float
    steering_angle: float | None = None
    speed: float | None = None


def decode_steering(message: BagMessage, wheelbase: float | None) -> SteeringSample:
    """The label of a curvature (``Float32``/``Float64``, 1/m) or Ackermann message.

    Ackermann: ``curvature = tan(steering_angle) / wheelbase`` (the inverse of ``atan(wheelbase * curvature)``).
    Raises ``ValueError`` for a non-finite value, an angle of +-90 degrees or more, or an Ackermann message
    without a positive ``wheelbase``.
    """
    if message.msgtype == ACKERMANN_TYPE:
        if wheelbase is None or not wheelbase > 0:
            raise ValueError(f"Ackermann steering on '{message.topic}' needs a positive wheelbase, got {wheelbase}")
        angle, speed = float(message.msg.drive.steering_angle), float(message.msg.drive.speed)
        if not (math.isfinite(angle) and abs(angle) < math.pi / 2 and math.isfinite(speed)):
            raise ValueError(f"steering angle {angle} rad / speed {speed} m/s is not usable")
        return SteeringSample(math.tan(angle) / wheelbase, angle, speed)
    value = float(message.msg.data)
    if not math.isfinite(value):
        raise ValueError(f"curvature {value} is not finite")
    return SteeringSample(value)


def usable_camera_info(msg: Any) -> Any | None:
    """``msg`` when it is a usable ``CameraInfo``, else None (the node's rule:
    :meth:`~uni_encoder_core.messages.frames.CameraIntrinsics.from_camera_info`)."""
    try:
        CameraIntrinsics.from_camera_info(msg)
    except CameraInfoError:
        return None
    return msg
