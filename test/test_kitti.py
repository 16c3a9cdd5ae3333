"""KITTI raw through an Eigen-format split file, on a tiny drive the test writes in the official layout."""

import numpy as np
import pytest
import torch
from kitti_fixture import DATE, DRIVE, H, W, make_kitti

from uni_encoder_core.config import DataConfig
from uni_encoder_core.data.frames import DataError
from uni_encoder_core.data.kitti import (
    KittiDepthEvalDataset,
    KittiTripletDataset,
    build_kitti,
    read_split_file,
    velodyne_depth,
)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_kitti(tmp_path_factory.mktemp("kitti"))


def split(tmp_path, *lines):
    path = tmp_path / "split.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_split_file_lines_parse_into_drive_frame_and_side(tmp_path):
    entries = read_split_file(split(tmp_path, f"{DATE}/{DRIVE} 1 l", "", f"{DATE}/{DRIVE} 0000000002 r"))
    assert [(e.folder, e.frame, e.side, e.date) for e in entries] == [(f"{DATE}/{DRIVE}", 1, "l", DATE),
                                                                     (f"{DATE}/{DRIVE}", 2, "r", DATE)]
    with pytest.raises(DataError, match=rf"split.txt:2: expected .* got '{DATE}/{DRIVE} 3 x'"):
        read_split_file(split(tmp_path, f"{DATE}/{DRIVE} 1 l", f"{DATE}/{DRIVE} 3 x"))


def test_velodyne_projection_of_a_known_point(root):
    # velodyne (10, 1, 0.5) -> camera R_VELO p + T = (-0.9, -0.7, 10.3) -> rectified R_RECT (-0.7, 0.9, 10.3)
    # -> P2: (20 * -0.7 + 15.5 * 10.3 + 4, 22 * 0.9 + 7.5 * 10.3, 10.3 + 0.01) = (149.65, 97.05, 10.31)
    # -> u = 14.515, v = 9.413 -> pixel (round - 1): column 14, row 8; depth 10.31
    points = np.fromfile(root / DATE / DRIVE / "velodyne_points" / "data" / f"{0:010d}.bin", np.float32)
    depth = velodyne_depth(points.reshape(-1, 4), root / DATE, "l")
    assert depth.shape == (H, W)
    assert depth[8, 14] == pytest.approx(10.31)
    assert np.count_nonzero(depth) == 1


def test_triplets_come_from_the_drive_with_the_side_camera_and_scaled_intrinsics(root, tmp_path):
    entries = read_split_file(split(tmp_path, f"{DATE}/{DRIVE} 1 l", f"{DATE}/{DRIVE} 2 r"))
    data = KittiTripletDataset(root, entries, size=(8, 16))
    left, right = data[0], data[1]
    assert [round(float(v) * 255) for v in left.images[:, 0].mean(dim=(-1, -2))] == [0, 10, 20]
    assert [round(float(v) * 255) for v in right.images[:, 0].mean(dim=(-1, -2))] == [11, 21, 31]
    # 16x32 -> 8x16 (s = 1/2): f' = f / 2, c' = (c + 0.5) / 2 - 0.5
    assert torch.allclose(left.K, torch.tensor([[10.0, 0.0, 7.5], [0.0, 11.0, 3.5], [0.0, 0.0, 1.0]]))
    assert right.K[0, 0] == pytest.approx(15.0)


def test_depth_evaluation_samples_carry_full_resolution_lidar_depth(root, tmp_path):
    data = KittiDepthEvalDataset(root, read_split_file(split(tmp_path, f"{DATE}/{DRIVE} 0 l")), size=(8, 16))
    sample = data[0]
    assert sample.offsets == (0,) and sample.images.shape == (1, 3, 8, 16)
    assert sample.gt_depth.shape == (1, H, W) and float(sample.gt_depth[0, 8, 14]) == pytest.approx(10.31)


def test_split_naming_absent_frames_fails_at_construction_naming_line_and_file(root, tmp_path):
    entries = read_split_file(split(tmp_path, f"{DATE}/{DRIVE} 1 l", f"{DATE}/{DRIVE} 3 l"))
    missing = root / DATE / DRIVE / "image_02" / "data" / f"{4:010d}.png"
    with pytest.raises(DataError, match=f"split.txt:2: frame 4 is absent: missing image {missing}"):
        KittiTripletDataset(root, entries)
    KittiDepthEvalDataset(root, entries)  # evaluation needs the target frame only


def test_builder_replaces_the_split_placeholder(root, tmp_path):
    (tmp_path / "train_files.txt").write_text(f"{DATE}/{DRIVE} 1 l\n{DATE}/{DRIVE} 2 l\n")
    cfg = DataConfig(kind="kitti", root=str(root), split_file=str(tmp_path / "{split}_files.txt"),
                     height=8, width=16)
    data = build_kitti(cfg, "triplets", "train")
    assert len(data) == 2 and data.augment is cfg.augment
    with pytest.raises(DataError, match="missing split file .*val_files.txt"):
        build_kitti(cfg, "triplets", "val")


def test_corrupt_scan_and_missing_calibration_name_the_file(root, tmp_path):
    broken = make_kitti(tmp_path / "broken", frames=range(1))
    scan = broken / DATE / DRIVE / "velodyne_points" / "data" / f"{0:010d}.bin"
    scan.write_bytes(scan.read_bytes()[:-3])
    data = KittiDepthEvalDataset(broken, read_split_file(split(tmp_path, f"{DATE}/{DRIVE} 0 l")))
    with pytest.raises(DataError, match=f"{scan}: .* not a whole number of 16-byte points"):
        data[0]
    (broken / DATE / "calib_velo_to_cam.txt").unlink()
    with pytest.raises(DataError, match=f"missing calibration file {broken / DATE / 'calib_velo_to_cam.txt'}"):
        velodyne_depth(np.zeros((1, 4), np.float32), broken / DATE, "l")
