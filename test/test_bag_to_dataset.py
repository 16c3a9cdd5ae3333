"""``uni-encoder dataset from-bag`` on recordings written by the test: bgr8 with padded rows and a 20 Hz curvature
topic (MCAP), jpeg with 20 Hz Ackermann steering (SQLite3); labels interpolated onto the image stamps (known
numbers), RGB in the file, the report of unreadable / dropped / unmatched messages, and the file read back through
the lane-keeping loader."""

import json
import re

import h5py
import numpy as np
import pytest
from bag_fixtures import ackermann, curvature, image, jpeg, serialized, write_bag

from uni_encoder_core.cli import main
from uni_encoder_core.data.lane_keeping import LaneKeepingDataset, read_labels

H, W = 32, 64
T0 = 50 * 10**9
MS = 1_000_000
WHEELBASE = 2.8


def picture(j):
    """A smooth HxWx3 RGB image, distinct per j, with a dominant red channel (channel order is visible)."""
    y, x = np.mgrid[0:H, 0:W]
    return np.stack([180 + 2 * j + x // 4, 40 + y, 20 + 0 * x], axis=-1).astype(np.uint8)


def k_samples():
    return np.float32(0.001 * np.arange(14) ** 2).astype(np.float64)  # as Float32 stores them


@pytest.fixture(scope="module")
def bgr_bag(tmp_path_factory):
    msgs = [("/curv", "std_msgs/msg/Float32", T0 + 50 * MS * i, curvature(float(0.001 * i**2), "std_msgs/msg/Float32"))
            for i in range(14)]  # 20 Hz, 0 .. 650 ms
    for j in range(8):  # images at 12.5 ms past every 100 ms
        stamp = T0 + 100 * MS * j + 12_500_000
        msg = image(stamp, picture(j), "bgr8", pad=7)
        if j == 3:
            msg = serialized(msg, "sensor_msgs/msg/Image")[:300]  # truncated
        elif j == 5:
            msg.encoding = "yuv422"
        elif j == 6:
            msg = image(stamp, picture(j)[:16], "bgr8")  # another size
        msgs.append(("/camera/image_raw", "sensor_msgs/msg/Image", stamp, msg))
        if j == 1:  # a late duplicate of an earlier frame
            msgs.append(("/camera/image_raw", "sensor_msgs/msg/Image", stamp + MS, image(stamp - MS, picture(j))))
    return write_bag(tmp_path_factory.mktemp("bags") / "bgr", "mcap", sorted(msgs, key=lambda m: m[2]))


@pytest.fixture(scope="module")
def converted(bgr_bag, tmp_path_factory):
    out = tmp_path_factory.mktemp("h5") / "drive.h5"
    assert main(["dataset", "from-bag", "--bag", str(bgr_bag), "--image-topic", "/camera/image_raw",
                 "--curvature-topic", "/curv", "--out", str(out)]) == 0
    return out


def test_bgr8_padded_rows_become_rgb_with_interpolated_curvature(converted):
    with h5py.File(converted) as fh:
        images, k, stamps = fh["images"][:], fh["curvature"][:], fh["timestamps"][:]
        assert fh.attrs["format"] == "uni-encoder lane-keeping" and fh.attrs["version"] == 1
        assert fh["curvature"].attrs["unit"] == "1/m" and "steering_angle" not in fh
    kept = [0, 1, 2, 4]
    assert images.shape == (4, H, W, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, np.stack([picture(j) for j in kept]))
    np.testing.assert_allclose(stamps, [T0 * 1e-9 + 0.1 * j + 0.0125 for j in kept], rtol=0, atol=1e-9)
    ks = k_samples()  # image j lies a quarter of the way from sample 2j to sample 2j + 1
    np.testing.assert_allclose(k, [0.75 * ks[2 * j] + 0.25 * ks[2 * j + 1] for j in kept], rtol=1e-12)
    np.testing.assert_allclose(k[:2], [0.00025, 0.00525], rtol=1e-6)  # 0.001 * (0.25 * 1), (0.75 * 4 + 0.25 * 9)


def test_report_lists_unreadable_dropped_and_unmatched(converted):
    report = json.loads(converted.with_suffix(".report.json").read_text())
    assert (report["images"], report["written"]) == (9, 4)
    unreadable = {r["index"]: r["reason"] for r in report["unreadable"]}
    assert sorted(unreadable) == [4, 6]  # recording order: the late duplicate is message 2
    assert "undecodable sensor_msgs/msg/Image (300 bytes)" in unreadable[4]
    assert "unsupported encoding 'yuv422'" in unreadable[6]
    dropped = {r["index"]: r["reason"] for r in report["dropped"]}
    assert sorted(dropped) == [2, 7]
    assert "is not after the previous one" in dropped[2] and "image size 64x16 differs" in dropped[7]
    assert [(r["index"], r["reason"]) for r in report["unmatched"]] == [(8, "no steering sample within 0.05 s")]


def test_the_file_reads_back_through_the_lane_keeping_loader(converted):
    k, stamps = read_labels(converted)
    assert len(k) == len(stamps) == 4
    data = LaneKeepingDataset([converted], (H, W), folds=[0], num_folds=1, window=2)
    assert len(data) == 3
    window = data[1]
    assert tuple(window.images.shape) == (2, 3, H, W)
    np.testing.assert_allclose(window.images[0].permute(1, 2, 0).numpy() * 255, picture(1), atol=1e-3)
    np.testing.assert_allclose(window.curvature.numpy(), k[1:3], rtol=1e-6)


def test_jpeg_with_ackermann_steering_from_sqlite3(tmp_path, capsys):
    angles = np.float32(0.02 * np.arange(14) - 0.1).astype(np.float64)
    speeds = np.float32(5 + 0.1 * np.arange(14)).astype(np.float64)
    msgs = [("/drive", "ackermann_msgs/msg/AckermannDriveStamped", T0 + 50 * MS * i,
             ackermann(T0 + 50 * MS * i, float(angles[i]), float(speeds[i]))) for i in range(14)]
    msgs += [("/cam/compressed", "sensor_msgs/msg/CompressedImage", T0 + 100 * MS * j + 25 * MS,
              jpeg(T0 + 100 * MS * j + 25 * MS, picture(j))) for j in range(6)]
    bag = write_bag(tmp_path / "jpeg", "sqlite3", sorted(msgs, key=lambda m: m[2]))
    out = tmp_path / "jpeg.h5"
    args = ["dataset", "from-bag", "--bag", str(bag), "--image-topic", "/cam/compressed", "--steering-topic",
            "/drive", "--out", str(out)]
    assert main(args) == 2
    assert "an Ackermann steering topic needs a positive wheelbase (m, --wheelbase)" in capsys.readouterr().err
    assert main([*args, "--wheelbase", str(WHEELBASE)]) == 0
    assert main([*args, "--wheelbase", str(WHEELBASE)]) == 2  # the file exists
    assert f"{out}: exists already; choose another --out or replace it with --overwrite" in capsys.readouterr().err
    assert main([*args, "--wheelbase", str(WHEELBASE), "--overwrite"]) == 0
    with h5py.File(out) as fh:
        images, k, angle, speed = (fh[n][:] for n in ("images", "curvature", "steering_angle", "speed"))
        assert fh.attrs["wheelbase"] == WHEELBASE and fh["steering_angle"].attrs["unit"] == "rad"
    expected = [(angles[2 * j] + angles[2 * j + 1]) / 2 for j in range(6)]  # halfway between two samples
    np.testing.assert_allclose(angle, expected, rtol=1e-12)
    np.testing.assert_allclose(k, np.tan(expected) / WHEELBASE, rtol=1e-12)
    np.testing.assert_allclose(speed, [(speeds[2 * j] + speeds[2 * j + 1]) / 2 for j in range(6)], rtol=1e-12)
    assert np.abs(images.astype(int) - np.stack([picture(j) for j in range(6)])).mean() < 2  # RGB, not BGR
    read_labels(out)


def test_no_pairable_image_writes_nothing(tmp_path, capsys):
    msgs = [("/curv", "std_msgs/msg/Float64", T0, curvature(0.01)),
            ("/cam", "sensor_msgs/msg/Image", T0 + 10**9, image(T0 + 10**9, picture(0)))]
    bag = write_bag(tmp_path / "far", "mcap", msgs)
    assert main(["dataset", "from-bag", "--bag", str(bag), "--image-topic", "/cam", "--curvature-topic", "/curv",
                 "--out", str(tmp_path / "x.h5")]) == 2
    assert re.search(r"far: no image on '/cam' could be paired .* nothing written", capsys.readouterr().err)
    assert list(tmp_path.glob("*.h5")) == [] and list(tmp_path.glob(".*")) == []
