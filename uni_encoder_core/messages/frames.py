"""Camera and odometry frames (REP 103/105): intrinsics for an image size, the camera extrinsic, odometry in base.

Conventions: the camera optical frame is x right, y down, z forward; the camera body frame and ``base_link`` are
x forward, y left, z up; ``odom`` is the first ``base_link`` of the sequence.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

OPTICAL_IN_BODY = np.array([[0.0, 0, 1], [-1, 0, 0], [0, -1, 0]])  # REP 103: optical (x right, y down, z fwd)


def camera_matrix(height: int, width: int, info: Any | None, normalised: list[float]) -> np.ndarray:
    """K (3x3 pixels) for an image of ``height`` x ``width``.

    From ``info`` (a camera_info message: ``k`` row-major 3x3, ``width``, ``height``) scaled to that size when
    given, else from the normalised ``[fx/W, fy/H, cx/W, cy/H]``.
    """
    if info is not None:
        K = np.array(info.k, np.float64).reshape(3, 3)
        return np.diag([width / info.width, height / info.height, 1.0]) @ K
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
