"""Camera and odometry frames (REP 103/105): intrinsics for an image size, the camera extrinsic, odometry in base.

Conventions: the camera optical frame is x right, y down, z forward; the camera body frame and ``base_link`` are
x forward, y left, z up; ``odom`` is the first ``base_link`` of the sequence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

OPTICAL_IN_BODY = np.array([[0.0, 0, 1], [-1, 0, 0], [0, -1, 0]])  # REP 103: optical (x right, y down, z fwd)


class CameraInfoError(ValueError):
    """A camera_info that cannot describe the camera's images; the text names the problem."""


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics of the images a camera publishes: ``K`` 3x3 (pixels) for images of ``height`` x ``width``."""

    K: np.ndarray
    height: int
    width: int

    @staticmethod
    def from_camera_info(info: Any) -> CameraIntrinsics:
        """Intrinsics of the published images from a camera_info (image_geometry's conventions).

        ``k`` is the full-resolution sensor's (``width`` x ``height``); a region of interest (``roi``, all zero:
        the full image) shifts the principal point by its offset, then binning (``binning_x``/``binning_y``, 0 or 1:
        none) divides focal lengths, principal point and size. Raises :class:`CameraInfoError` for a K that is not
        a calibrated pinhole matrix (all zero = uncalibrated, non-finite, fx or fy <= 0, last row not [0, 0, 1]),
        an empty size or a region of interest outside the sensor.
        """
        K = np.asarray(info.k, np.float64).reshape(3, 3)
        width, height = int(info.width), int(info.height)
        if not K.any():
            raise CameraInfoError("K is all zero (uncalibrated camera)")
        if not np.isfinite(K).all():
            raise CameraInfoError(f"K has non-finite values {K.reshape(-1).tolist()}")
        if K[0, 0] <= 0 or K[1, 1] <= 0:
            raise CameraInfoError(f"K must have fx, fy > 0, got fx {K[0, 0]}, fy {K[1, 1]}")
        if not np.allclose(K[2], [0.0, 0.0, 1.0], atol=1e-9):
            raise CameraInfoError(f"K's last row must be [0, 0, 1], got {K[2].tolist()}")
        if width <= 0 or height <= 0:
            raise CameraInfoError(f"empty image size {width}x{height}")
        roi = getattr(info, "roi", None)
        x0, y0, roi_w, roi_h = (0, 0, 0, 0) if roi is None else (
            int(roi.x_offset), int(roi.y_offset), int(roi.width), int(roi.height))
        if roi_w or roi_h or x0 or y0:
            if roi_w <= 0 or roi_h <= 0 or x0 + roi_w > width or y0 + roi_h > height:
                raise CameraInfoError(f"region of interest {roi_w}x{roi_h}+{x0}+{y0} is outside the {width}x{height}"
                                      " sensor")
            K = K.copy()
            K[0, 2] -= x0
            K[1, 2] -= y0
            width, height = roi_w, roi_h
        bx, by = max(int(getattr(info, "binning_x", 0)), 1), max(int(getattr(info, "binning_y", 0)), 1)
        K = np.diag([1.0 / bx, 1.0 / by, 1.0]) @ K
        return CameraIntrinsics(K, height // by, width // bx)

    def scaled(self, height: int, width: int) -> np.ndarray:
        """K for an image of ``height`` x ``width`` (the published image resized: focal lengths and principal point
        scale with the size)."""
        return np.diag([width / self.width, height / self.height, 1.0]) @ self.K

    def aspect_mismatch(self, height: int, width: int, tolerance: float = 0.01) -> str | None:
        """Why an image of ``height`` x ``width`` cannot be a plain resize of these images (aspect ratios differ by
        more than ``tolerance``, relative), or None."""
        ratio = (width / height) / (self.width / self.height)
        if abs(ratio - 1.0) <= tolerance:
            return None
        return (f"image {width}x{height} and camera_info {self.width}x{self.height} differ in aspect ratio: "
                "K scaled anisotropically")


def camera_matrix(height: int, width: int, info: Any | None, normalised: list[float]) -> np.ndarray:
    """K (3x3 pixels) for an image of ``height`` x ``width``.

    From ``info`` (a camera_info message, see :meth:`CameraIntrinsics.from_camera_info`; raises
    :class:`CameraInfoError`) scaled to that size when given, else from the normalised ``[fx/W, fy/H, cx/W, cy/H]``.
    """
    if info is not None:
        return CameraIntrinsics.from_camera_info(info).scaled(height, width)
    fx, fy, cx, cy = normalised
    return np.array([[fx * width, 0, cx * width], [0, fy * height, cy * height], [0, 0, 1]])


def camera_in_base(xyz: list[float], rpy: list[float]) -> np.ndarray:
    """4x4 pose of the camera optical frame in base_link from the camera body position (m) and roll/pitch/yaw (rad)."""
    T = np.eye(4)
    T[:3, :3] = Rotation.from_euler("xyz", rpy).as_matrix() @ OPTICAL_IN_BODY
    T[:3, 3] = xyz
    return T


def odometry_in_base(pose_optical: np.ndarray, T_base_cam: np.ndarray) -> np.ndarray:
    """Camera-optical odometry (4x4, camera in the first camera's frame) -> base_link in odom (= first base_link)."""
    return T_base_cam @ pose_optical @ np.linalg.inv(T_base_cam)
