"""A tiny KITTI raw drive in the official layout (calibration, both cameras, lidar scans), shared by the tests that
read KITTI."""

import cv2
import numpy as np

DATE, DRIVE = "2011_09_26", "2011_09_26_drive_0001_sync"
H, W = 16, 32
P2 = [[20.0, 0.0, 15.5, 4.0], [0.0, 22.0, 7.5, 0.0], [0.0, 0.0, 1.0, 0.01]]
P3 = [[30.0, 0.0, 15.5, -8.0], [0.0, 22.0, 7.5, 0.0], [0.0, 0.0, 1.0, 0.01]]
R_RECT = [[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]  # 90 degrees about the optical axis
R_VELO = [[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]]  # velodyne x forward, y left, z up -> camera
T_VELO = [0.1, -0.2, 0.3]


def flat(rows):
    return " ".join(f"{v:.6e}" for v in np.asarray(rows, np.float64).ravel())


def make_kitti(root, frames=range(4)):
    date = root / DATE
    date.mkdir(parents=True)
    (date / "calib_cam_to_cam.txt").write_text(
        "calib_time: 09-Jan-2012 13:57:47\ncorner_dist: 9.950000e-02\n"
        f"S_rect_02: {W} {H}\nR_rect_00: {flat(R_RECT)}\nP_rect_02: {flat(P2)}\n"
        f"S_rect_03: {W} {H}\nP_rect_03: {flat(P3)}\n")
    (date / "calib_velo_to_cam.txt").write_text(
        f"calib_time: 15-Mar-2012 11:37:16\nR: {flat(R_VELO)}\nT: {flat(T_VELO)}\n")
    for cam in ("image_02", "image_03"):
        (date / DRIVE / cam / "data").mkdir(parents=True)
        for f in frames:
            rgb = np.full((H, W, 3), (f * 10 + (cam == "image_03"), 80, 160), np.uint8)
            assert cv2.imwrite(str(date / DRIVE / cam / "data" / f"{f:010d}.png"), rgb[..., ::-1])
    (date / DRIVE / "velodyne_points" / "data").mkdir(parents=True)
    points = np.array([
        [10.0, 1.0, 0.5, 0.3],  # lands on row 8, column 14 (worked out in the test below)
        [20.0, 1.5, 0.9, 0.3],  # u = 14.61, v = 9.01 at depth 20.31: same pixel, the nearer point wins
        [-5.0, 0.0, 0.0, 0.3],  # behind the lidar: dropped
        [1.0, 50.0, 0.0, 0.3],  # far outside the image: dropped
    ], np.float32)
    for f in frames:
        points.tofile(date / DRIVE / "velodyne_points" / "data" / f"{f:010d}.bin")
    return root
