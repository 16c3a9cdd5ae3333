"""A :class:`PerceptionResult` as plain message contents: what the node publishes and replay writes, per topic.

Every image output reuses the input header (stamp and frame id): depth 32FC1 (NaN = invalid) with its camera_info,
semantic mono8 (train ids) and its rgb8 colouring, instance 16UC1, panoptic 32SC1, scene flow 32FC3 and the
motion mask mono8 (0/255). Odometry is ``odom`` -> ``base_link`` through the camera extrinsic, with a covariance
that grows with the distance travelled; steering commands and stop commands are what the :class:`CommandGate` lets
through.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.spatial.transform import Rotation

from uni_encoder_core.labels import PALETTE
from uni_encoder_core.messages.frames import odometry_in_base
from uni_encoder_core.messages.images import ImageFields, encode_image
from uni_encoder_core.messages.steering import Command, CommandGate

if TYPE_CHECKING:  # the pipeline module loads torch; message building needs none of it
    from uni_encoder_core.inference.pipeline import PerceptionResult

STEP_FLOOR_VAR = np.array([1e-4] * 3 + [1e-6] * 3)  # (1 cm)^2, (1 mrad)^2 per frame-to-frame motion
UNKNOWN_VAR = 1e6  # twist variance at the start of a window (no motion measured yet)


@dataclass(frozen=True)
class Header:
    """``std_msgs/Header``: stamp (``sec`` + ``nanosec``) and ``frame_id``."""

    sec: int
    nanosec: int
    frame_id: str

    def with_frame(self, frame_id: str) -> Header:
        """The same stamp in another frame."""
        return Header(self.sec, self.nanosec, frame_id)


@dataclass
class StampedImage:
    """An image output: header and contents."""

    header: Header
    image: ImageFields


@dataclass
class CameraInfoFields:
    """``sensor_msgs/CameraInfo`` of an output image: ``k`` 3x3 and ``r`` 3x3 row-major, ``p`` 3x4 row-major."""

    header: Header
    height: int
    width: int
    k: list[float]
    r: list[float]
    p: list[float]
    distortion_model: str = ""
    d: list[float] = field(default_factory=list)


@dataclass
class OdometryFields:
    """``nav_msgs/Odometry``: pose of ``child_frame_id`` in ``header.frame_id`` and its twist, 6x6 covariances.

    ``position`` m, ``orientation`` quaternion x, y, z, w; ``twist`` m/s then rad/s (x, y, z each), in the child
    frame; covariances row-major 36 values.
    """

    header: Header
    child_frame_id: str
    position: list[float]
    orientation: list[float]
    pose_covariance: list[float]
    twist: list[float]
    twist_covariance: list[float]


@dataclass
class DriveFields:
    """``ackermann_msgs/AckermannDriveStamped``: angle rad (+ left), angle velocity rad/s, speed m/s, accel m/s^2.

    ``reason`` (not part of the message) says why a command is a stop command; empty for a steering command.
    """

    header: Header
    steering_angle: float
    steering_angle_velocity: float
    speed: float
    acceleration: float = 0.0
    reason: str = ""


@dataclass
class OutputMessages:
    """Turns successive :class:`PerceptionResult` of one camera into message contents.

    ``T_base_cam`` (4x4) is the camera optical frame in ``base_frame``; ``speed`` (m/s) is sent with every steering
    command, a negative value sending the visual-odometry speed instead. Holds the state that spans frames: the
    odometry covariance, the previous stamp, the speed estimate and the command gate.
    """

    T_base_cam: np.ndarray
    gate: CommandGate
    speed: float
    odom_frame: str = "odom"
    base_frame: str = "base_link"
    pose_var: np.ndarray = field(default_factory=lambda: np.zeros(6))
    prev_stamp: float = 0.0
    speed_estimate: float = 0.0

    def images(self, result: PerceptionResult, header: Header, camera: Any | None = None,
               colour: bool = True) -> dict[str, StampedImage | CameraInfoFields]:
        """Image outputs and the depth camera_info by relative topic name, in publication order.

        ``camera`` is the camera_info the intrinsics came from (its distortion is copied), if any; ``colour``
        adds ``segmentation/semantic_color`` (PALETTE of the train ids).
        """
        out: dict[str, StampedImage | CameraInfoFields] = {
            "depth": StampedImage(header, encode_image(result.depth, "32FC1")),
            "depth/camera_info": self.camera_info(header, result.K, *result.depth.shape, camera),
        }
        if result.semantic is not None:
            out["segmentation/semantic"] = StampedImage(header, encode_image(result.semantic, "mono8"))
            if colour:
                colours = encode_image(PALETTE[result.semantic], "rgb8")
                out["segmentation/semantic_color"] = StampedImage(header, colours)
        if result.instance is not None:
            out["segmentation/instance"] = StampedImage(header, encode_image(result.instance, "16UC1"))
        if result.panoptic is not None:
            out["segmentation/panoptic"] = StampedImage(header, encode_image(result.panoptic, "32SC1"))
        if result.scene_flow is not None:
            out["scene_flow"] = StampedImage(header, encode_image(result.scene_flow, "32FC3"))
            mask = result.motion_mask.view(np.uint8) * 255  # bool -> 0/255 without a temporary
            out["motion_mask"] = StampedImage(header, encode_image(mask, "mono8"))
        return out

    @staticmethod
    def camera_info(header: Header, K: np.ndarray, height: int, width: int, camera: Any | None) -> CameraInfoFields:
        """CameraInfo of an output image (same pixels as the input); distortion from ``camera`` when given."""
        info = CameraInfoFields(header, height, width, K.reshape(-1).tolist(), np.eye(3).reshape(-1).tolist(),
                                np.hstack([K, np.zeros((3, 1))]).reshape(-1).tolist())
        if camera is not None:
            info.distortion_model, info.d = camera.distortion_model, list(camera.d)
        return info

    def odometry(self, result: PerceptionResult, header: Header) -> OdometryFields:
        """``odom`` -> ``base_link`` with a drift-growing covariance; updates the speed estimate.

        Each frame-to-frame motion is given a 1-sigma error of 10 % of itself plus a floor (1 cm, 1 mrad);
        the pose covariance accumulates these (random walk) and restarts with the odometry.
        """
        if result.relative_pose is None:
            if np.array_equal(result.pose, np.eye(4)):
                self.pose_var = np.zeros(6)
            twist, twist_var = np.zeros(6), np.full(6, UNKNOWN_VAR)
        else:
            rel = odometry_in_base(result.relative_pose, self.T_base_cam)
            dt = max(result.stamp - self.prev_stamp, 1e-3)
            motion = np.concatenate([rel[:3, 3], Rotation.from_matrix(rel[:3, :3]).as_rotvec()])
            step_var = (0.1 * np.abs(motion)) ** 2 + STEP_FLOOR_VAR
            self.pose_var = self.pose_var + step_var
            twist, twist_var = motion / dt, step_var / dt**2
        self.prev_stamp = result.stamp
        self.speed_estimate = float(np.linalg.norm(twist[:3]))
        T = odometry_in_base(result.pose, self.T_base_cam)
        return OdometryFields(
            header.with_frame(self.odom_frame), self.base_frame, [float(v) for v in T[:3, 3]],
            [float(v) for v in Rotation.from_matrix(T[:3, :3]).as_quat()], np.diag(self.pose_var).reshape(-1).tolist(),
            [float(v) for v in twist], np.diag(twist_var).reshape(-1).tolist(),
        )

    def steering(self, result: PerceptionResult, header: Header, now: float | None = None) -> DriveFields | None:
        """The gated Ackermann command for a result with a ``steering_angle``, in ``base_frame``.

        ``now`` (s) is the gate's clock (default: the result's stamp). A non-finite angle or speed gives a stop
        command with its ``reason``, or None while stop commands are rate-bounded (see :class:`CommandGate`).
        """
        speed = self.speed if self.speed >= 0 else self.speed_estimate
        command = self.gate.steer(result.steering_angle, speed, result.stamp if now is None else now)
        return None if command is None else self._drive(header, command)

    def stop(self, header: Header, reason: str, now: float) -> DriveFields | None:
        """Stop command (speed 0 as quickly as possible, the last angle held) for ``reason``, or None when the gate
        sent one less than its ``stop_period`` before ``now`` (s, the gate's clock)."""
        command = self.gate.stop(now, reason)
        return None if command is None else self._drive(header, command)

    def _drive(self, header: Header, command: Command) -> DriveFields:
        velocity = 0.0 if command.stop else self.gate.max_rate
        return DriveFields(header.with_frame(self.base_frame), command.angle, velocity, command.speed, 0.0,
                           command.reason)
