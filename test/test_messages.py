"""ROS-free message contents (node and replay share them): image fields on real ``rosbags`` messages, camera and
odometry frames (camera_info per image_geometry), the command gate, compressed formats and a PerceptionResult
turned into per-topic contents with known numbers."""

import math
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from uni_encoder_core.bags.writer import typestore
from uni_encoder_core.inference.pipeline import PerceptionResult
from uni_encoder_core.labels import PALETTE
from uni_encoder_core.messages.frames import (
    CameraInfoError,
    CameraIntrinsics,
    camera_in_base,
    camera_matrix,
    odometry_in_base,
)
from uni_encoder_core.messages.images import (
    ImageError,
    encode_compressed,
    encode_image,
    image_to_numpy,
    image_to_rgb8,
    stream_header,
)
from uni_encoder_core.messages.outputs import CameraInfoFields, Header, OutputMessages, StampedImage
from uni_encoder_core.messages.steering import Command, CommandGate

TYPES = typestore().types
HEADER = Header(12, 500_000_000, "camera_optical")


def _rosbags_image(fields):
    return TYPES["sensor_msgs/msg/Image"](
        header=TYPES["std_msgs/msg/Header"](stamp=TYPES["builtin_interfaces/msg/Time"](sec=1, nanosec=0),
                                            frame_id="cam"),
        height=fields.height, width=fields.width, encoding=fields.encoding, is_bigendian=fields.is_bigendian,
        step=fields.step, data=fields.data)


# ----------------------------------------------------------------------------- images


def test_rosbags_images_decode_like_rclpy_ones():
    flow = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3) - 4.5
    fields = encode_image(flow, "32FC3")
    assert (fields.height, fields.width, fields.step, fields.is_bigendian) == (2, 3, 36, 0)
    assert fields.data.dtype == np.uint8 and fields.data.tobytes() == flow.astype("<f4").tobytes()
    np.testing.assert_array_equal(image_to_numpy(_rosbags_image(fields)), flow)
    bgr = np.array([[[1, 2, 3], [4, 5, 6]]], np.uint8)
    np.testing.assert_array_equal(image_to_rgb8(_rosbags_image(encode_image(bgr, "bgr8"))), bgr[:, :, ::-1])
    with pytest.raises(ImageError, match="does not fit encoding 'mono8'"):
        encode_image(bgr, "mono8")


def test_rosbags_compressed_png_round_trip():
    rgb = np.arange(8 * 10 * 3, dtype=np.uint8).reshape(8, 10, 3)
    fields = encode_compressed(rgb, "png")
    msg = TYPES["sensor_msgs/msg/CompressedImage"](header=TYPES["std_msgs/msg/Header"](
        stamp=TYPES["builtin_interfaces/msg/Time"](sec=0, nanosec=0), frame_id=""), format=fields.format,
        data=fields.data)
    np.testing.assert_array_equal(image_to_rgb8(msg), rgb)
    with pytest.raises(ImageError, match="unsupported compressed format 'gif'"):
        encode_compressed(rgb, "gif")


# ----------------------------------------------------------------------------- frames and limiter


def test_camera_matrix_scales_camera_info_to_the_image_size():
    info = SimpleNamespace(k=[1000.0, 0, 960, 0, 1000.0, 540, 0, 0, 1], width=1920, height=1080)  # fields read
    np.testing.assert_allclose(camera_matrix(270, 480, info, [0.0] * 4), [[250, 0, 240], [0, 250, 135], [0, 0, 1]])


def test_pitched_camera_and_odometry_in_base():
    T = camera_in_base([0.5, 0.0, 1.2], [0.0, 0.2, 0.0])  # body pitched 0.2 rad down (REP 103: + pitch = nose down)
    np.testing.assert_allclose(T[:3, 2], [math.cos(0.2), 0.0, -math.sin(0.2)], atol=1e-12)  # optical z
    np.testing.assert_allclose(T[:3, 0], [0.0, -1.0, 0.0], atol=1e-12)  # optical x = right = base -y
    still = odometry_in_base(np.eye(4), T)
    np.testing.assert_allclose(still, np.eye(4), atol=1e-12)
    right = np.eye(4)
    right[:3, 3] = [3.0, 0.0, 0.0]  # camera moved 3 m to its right
    np.testing.assert_allclose(odometry_in_base(right, T)[:3, 3], [0.0, -3.0, 0.0], atol=1e-12)


def test_gate_rate_follows_the_elapsed_time_capped():
    gate = CommandGate(max_angle=0.3, max_rate=1.0, max_step_time=0.1)
    assert gate.steer(-2.0, 1.0, 0.0).angle == pytest.approx(-0.1)  # from 0 rad, at most 1 rad/s * 0.1 s
    assert gate.steer(-2.0, 1.0, 0.05).angle == pytest.approx(-0.15)
    assert gate.steer(0.3, 1.0, 0.05).angle == pytest.approx(-0.15)  # same time: no change allowed
    assert gate.steer(0.3, 1.0, 100.0).angle == pytest.approx(-0.05)  # a long gap counts only max_step_time
    assert gate.steer(0.0, 1.0, 100.5).angle == 0.0


# ----------------------------------------------------------------------------- PerceptionResult -> contents


def _result(stamp, pose, relative_pose=None, steering=None, maps=True):
    h, w = 2, 3
    K = np.array([[10.0, 0, 1.5], [0, 10.0, 1.0], [0, 0, 1]])
    extra = {}
    if maps:
        extra = dict(
            semantic=np.array([[0, 1, 2], [13, 255, 0]], np.uint8), instance=np.full((h, w), 7, np.uint16),
            panoptic=np.full((h, w), 13001, np.int32), scene_flow=np.ones((h, w, 3), np.float32),
            motion_mask=np.array([[True, False, False], [False, False, True]]),
        )
    return PerceptionResult(stamp=stamp, K=K, depth=np.full((h, w), 4.0, np.float32), metric=True, scale=1.0,
                            pose=pose, window_length=1, relative_pose=relative_pose, steering_angle=steering, **extra)


def _forward(metres):
    T = np.eye(4)
    T[:3, 3] = [0.0, 0.0, metres]
    return T


def test_images_reuse_the_input_header_in_publication_order():
    out = OutputMessages(camera_in_base([0, 0, 1.5], [0, 0, 0]), CommandGate(0.5, 0.5), 2.0)
    camera = SimpleNamespace(distortion_model="plumb_bob", d=[0.1, 0.0, 0.0, 0.0, 0.0])
    images = out.images(_result(1.0, np.eye(4)), HEADER, camera, colour=True)
    assert list(images) == ["depth", "depth/camera_info", "segmentation/semantic", "segmentation/semantic_color",
                            "segmentation/instance", "segmentation/panoptic", "scene_flow", "motion_mask"]
    encodings = {t: c.image.encoding for t, c in images.items() if isinstance(c, StampedImage)}
    assert encodings == {"depth": "32FC1", "segmentation/semantic": "mono8", "segmentation/semantic_color": "rgb8",
                         "segmentation/instance": "16UC1", "segmentation/panoptic": "32SC1", "scene_flow": "32FC3",
                         "motion_mask": "mono8"}
    assert all(c.header == HEADER for c in images.values())
    np.testing.assert_array_equal(images["motion_mask"].image.data, [255, 0, 0, 0, 0, 255])
    np.testing.assert_array_equal(images["segmentation/semantic_color"].image.data.reshape(2, 3, 3),
                                  PALETTE[[[0, 1, 2], [13, 255, 0]]])
    info = images["depth/camera_info"]
    assert isinstance(info, CameraInfoFields) and (info.height, info.width) == (2, 3)
    assert info.k == [10.0, 0, 1.5, 0, 10.0, 1.0, 0, 0, 1]
    assert info.p == [10.0, 0, 1.5, 0, 0, 10.0, 1.0, 0, 0, 0, 1, 0]
    assert (info.distortion_model, info.d) == ("plumb_bob", [0.1, 0.0, 0.0, 0.0, 0.0])
    only_depth = out.images(_result(1.0, np.eye(4), maps=False), HEADER, None, colour=False)
    assert list(only_depth) == ["depth", "depth/camera_info"] and only_depth["depth/camera_info"].d == []


def test_odometry_in_base_frame_with_growing_covariance_and_speed():
    out = OutputMessages(camera_in_base([1.2, 0.0, 1.5], [0, 0, 0]), CommandGate(0.5, 0.5), -1.0)
    first = out.odometry(_result(10.0, np.eye(4)), HEADER)
    assert (first.header.frame_id, first.child_frame_id) == ("odom", "base_link")
    assert (first.header.sec, first.header.nanosec) == (12, 500_000_000)
    np.testing.assert_allclose(first.position, 0.0, atol=1e-12)
    assert first.twist == [0.0] * 6 and np.diag(np.reshape(first.twist_covariance, (6, 6))).tolist() == [1e6] * 6
    assert first.pose_covariance == [0.0] * 36
    second = out.odometry(_result(10.1, _forward(1.0), relative_pose=_forward(1.0)), HEADER)  # 1 m in 0.1 s
    np.testing.assert_allclose(second.position, [1.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(second.orientation, [0, 0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(second.twist, [10.0, 0, 0, 0, 0, 0], atol=1e-9)
    np.testing.assert_allclose(np.diag(np.reshape(second.pose_covariance, (6, 6))),
                               [0.01 + 1e-4, 1e-4, 1e-4, 1e-6, 1e-6, 1e-6])
    np.testing.assert_allclose(np.diag(np.reshape(second.twist_covariance, (6, 6)))[0], (0.01 + 1e-4) / 0.01)
    assert out.speed_estimate == pytest.approx(10.0)
    drive = out.steering(_result(10.1, _forward(1.0), steering=0.9), HEADER)  # speed < 0: visual-odometry speed
    # the first command moves from straight ahead by at most max_rate * max_step_time = 0.5 * 0.5 rad
    assert (drive.header.frame_id, drive.steering_angle, drive.speed) == ("base_link", 0.25, pytest.approx(10.0))
    assert drive.steering_angle_velocity == 0.5 and drive.reason == ""
    stop = out.stop(Header(20, 0, ""), "input stale", now=20.0)
    assert (stop.header, stop.steering_angle, stop.speed, stop.acceleration, stop.steering_angle_velocity) == (
        Header(20, 0, "base_link"), 0.25, 0.0, 0.0, 0.0)
    assert stop.reason == "input stale" and out.stop(Header(20, 0, ""), "again", now=20.05) is None  # rate-bounded
    restart = out.odometry(_result(30.0, np.eye(4)), HEADER)  # a new window: odometry and its covariance restart
    assert restart.pose_covariance == [0.0] * 36


# ----------------------------------------------------------------------------- command gate


def test_gate_turns_non_finite_commands_into_counted_stops_at_a_bounded_rate():
    gate = CommandGate(max_angle=0.5, max_rate=1.0, max_step_time=0.5, stop_period=0.1)
    assert gate.steer(0.2, 2.0, 0.0) == Command(0.2, 2.0)
    stop = gate.steer(math.nan, 2.0, 0.05)
    assert stop.stop and stop.speed == 0.0 and stop.angle == 0.2 and "non-finite command (angle nan" in stop.reason
    assert gate.steer(0.1, math.inf, 0.1) is None  # a second stop within stop_period is not sent
    assert gate.steer(0.1, math.nan, 0.2).reason.endswith("speed nan)")
    assert gate.non_finite == 3
    assert gate.steer(-0.5, 2.0, 0.25).angle == pytest.approx(0.15)  # rate-limited from the stop (sent at 0.2 s)
    stops = [gate.stop(t / 1000, "stale") for t in range(300, 1300)]  # asked every ms for 1 s
    assert sum(s is not None for s in stops) == 10


@pytest.mark.parametrize("bad", [-0.5, 0.0, math.nan, math.inf, "0.5", True])
def test_gate_refuses_limits_that_are_not_finite_and_positive(bad):
    with pytest.raises(ValueError, match="max_angle must be a finite number > 0"):
        CommandGate(bad, 0.5)
    gate = CommandGate(0.5, 0.5)
    with pytest.raises(ValueError, match="max_rate must be a finite number > 0"):
        gate.set_limits(0.5, bad, 0.5)
    assert gate.max_rate == 0.5  # old limits kept


def test_gate_stop_holds_the_angle_within_new_limits():
    gate = CommandGate(max_angle=0.5, max_rate=10.0)
    gate.steer(0.5, 1.0, 0.0)
    gate.set_limits(0.2, 10.0, 0.5)
    assert gate.stop(1.0, "stale").angle == 0.2


def test_nan_steering_from_the_model_becomes_a_stop_command():
    out = OutputMessages(camera_in_base([0, 0, 1.5], [0, 0, 0]), CommandGate(0.5, 0.5), 2.0)
    drive = out.steering(_result(1.0, np.eye(4), steering=math.nan, maps=False), HEADER, now=1.0)
    assert (drive.speed, drive.steering_angle, drive.steering_angle_velocity) == (0.0, 0.0, 0.0)
    assert drive.reason.startswith("non-finite command") and out.gate.non_finite == 1


# ----------------------------------------------------------------------------- camera_info (image_geometry)


def _info(k=(1000.0, 0, 960, 0, 1000.0, 540, 0, 0, 1), width=1920, height=1080, roi=(0, 0, 0, 0), binning=(0, 0)):
    x, y, w, h = roi
    return SimpleNamespace(k=list(k), width=width, height=height, binning_x=binning[0], binning_y=binning[1],
                           roi=SimpleNamespace(x_offset=x, y_offset=y, width=w, height=h))


def test_camera_info_binning_and_roi_follow_image_geometry():
    binned = CameraIntrinsics.from_camera_info(_info(binning=(2, 2)))
    np.testing.assert_allclose(binned.K, [[500, 0, 480], [0, 500, 270], [0, 0, 1]])
    assert (binned.height, binned.width) == (540, 960)
    roi = CameraIntrinsics.from_camera_info(_info(roi=(320, 200, 640, 480)))  # a crop: focal length unchanged
    np.testing.assert_allclose(roi.K, [[1000, 0, 640], [0, 1000, 340], [0, 0, 1]])
    assert (roi.height, roi.width) == (480, 640)
    both = CameraIntrinsics.from_camera_info(_info(roi=(320, 200, 640, 480), binning=(2, 2)))
    np.testing.assert_allclose(both.K, [[500, 0, 320], [0, 500, 170], [0, 0, 1]])
    np.testing.assert_allclose(camera_matrix(240, 320, _info(roi=(320, 200, 640, 480), binning=(2, 2)), []),
                               [[500, 0, 320], [0, 500, 170], [0, 0, 1]])
    assert roi.aspect_mismatch(240, 320) is None
    assert "differ in aspect ratio" in roi.aspect_mismatch(480, 480)


@pytest.mark.parametrize(("change", "reason"), [
    ({"k": [0.0] * 9}, "all zero (uncalibrated camera)"),
    ({"k": [1000.0, 0, math.nan, 0, 1000.0, 540, 0, 0, 1]}, "non-finite"),
    ({"k": [-1000.0, 0, 960, 0, 1000.0, 540, 0, 0, 1]}, "fx, fy > 0"),
    ({"k": [1000.0, 0, 960, 0, 1000.0, 540, 0, 0, 0]}, "last row must be [0, 0, 1]"),
    ({"width": 0}, "empty image size"),
    ({"roi": (1800, 0, 640, 480)}, "outside the 1920x1080 sensor"),
])
def test_invalid_camera_info_is_rejected_with_the_reason(change, reason):
    with pytest.raises(CameraInfoError) as err:
        CameraIntrinsics.from_camera_info(_info(**change))
    assert reason in str(err.value)


# ----------------------------------------------------------------------------- compressed images


def _compressed(fmt, data):
    return SimpleNamespace(format=fmt, data=np.asarray(data, np.uint8))


RGB = np.stack([*np.meshgrid(np.arange(16) * 16, np.arange(12) * 20), np.full((12, 16), 90)], axis=-1).astype(np.uint8)


def test_compressed_format_strings_give_channel_order_as_image_transport():
    as_bgr = cv2.imencode(".png", RGB[:, :, ::-1])[1]  # a standard file of the scene (OpenCV writes BGR arrays)
    as_rgb = cv2.imencode(".png", RGB)[1]  # what a "compressed rgb8" publisher writes: the RGB array as is
    for fmt, data in [("png", as_bgr), ("bgr8; png compressed bgr8", as_bgr), ("rgb8; png compressed bgr8", as_bgr),
                      ("rgb8; png compressed rgb8", as_rgb), ("bgr8; png compressed rgb8", as_rgb)]:
        np.testing.assert_array_equal(image_to_rgb8(_compressed(fmt, data)), RGB, err_msg=fmt)
    gray = RGB[:, :, 0]
    np.testing.assert_array_equal(image_to_rgb8(_compressed("mono8; png compressed ", cv2.imencode(".png", gray)[1])),
                                  np.stack([gray] * 3, axis=-1))
    jpeg = cv2.imencode(".jpg", RGB, [cv2.IMWRITE_JPEG_QUALITY, 100])[1]
    assert np.abs(image_to_rgb8(_compressed("rgb8; jpeg compressed rgb8", jpeg)).astype(int) - RGB).mean() < 3


def test_16_bit_images_are_rejected_raw_and_compressed_alike():
    deep = (np.arange(12 * 16, dtype=np.uint16).reshape(12, 16) * 300).astype(np.uint16)
    png16 = cv2.imencode(".png", deep)[1]
    for fmt in ("mono16; png compressed ", "16UC1; png compressed "):
        with pytest.raises(ImageError, match="is not a camera image"):
            image_to_rgb8(_compressed(fmt, png16))
    with pytest.raises(ImageError, match="16-bit png stream: camera images are 8-bit"):
        image_to_rgb8(_compressed("png", png16))
    with pytest.raises(ImageError, match="encoding 'mono16' is not a camera image"):
        image_to_rgb8(_rosbags_image(encode_image(deep, "mono16")))
    with pytest.raises(ImageError, match="compressedDepth"):
        image_to_rgb8(_compressed("16UC1; compressedDepth png", png16))


def test_jpeg_with_large_exif_is_read_and_size_limits_apply_before_decoding():
    jpeg = cv2.imencode(".jpg", RGB)[1].tobytes()
    exif = b"\xff\xe1" + (65535).to_bytes(2, "big") + b"Exif\x00\x00" + bytes(65527)  # 64 KiB APP1 segment
    big = np.frombuffer(jpeg[:2] + exif + jpeg[2:], np.uint8)
    assert stream_header(big) == (12, 16, 8)
    assert image_to_rgb8(_compressed("jpeg", big)).shape == (12, 16, 3)
    with pytest.raises(ImageError, match="12x16 = 192 pixels exceeds max_input_pixels 100"):
        image_to_rgb8(_compressed("jpeg", big), max_pixels=100)
    with pytest.raises(ImageError, match="exceeds max_input_pixels 100"):
        image_to_rgb8(_rosbags_image(encode_image(RGB, "rgb8")), max_pixels=100)


def test_fuzzed_compressed_messages_raise_only_image_errors():
    rng = np.random.default_rng(1)
    seeds = [cv2.imencode(ext, RGB)[1] for ext in (".jpg", ".png")]
    formats = ["jpeg", "png", "rgb8; jpeg compressed bgr8", "mono16; png compressed ", "gif", "", ";", "bgr8;",
               "16UC1; compressedDepth", "rgb8; png compressed rgb8"]
    rejected = 0
    for i in range(300):
        data = seeds[i % 2].copy()
        kind = i % 4
        if kind == 0:
            data = data[: rng.integers(0, len(data))]  # truncated
        elif kind == 1:
            idx = rng.integers(0, len(data), 8)
            data[idx] = rng.integers(0, 256, 8)  # flipped bytes (header included)
        elif kind == 2:
            data = rng.integers(0, 256, rng.integers(0, 400)).astype(np.uint8)
        try:
            image_to_rgb8(_compressed(formats[rng.integers(len(formats))], data), max_pixels=10_000)
        except ImageError:
            rejected += 1
    assert 150 < rejected < 300
