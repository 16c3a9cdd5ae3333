"""ROS-free message contents (node and replay share them): image fields on real ``rosbags`` messages, camera and
odometry frames, the steering limiter and a PerceptionResult turned into per-topic contents with known numbers."""

import math
from types import SimpleNamespace

import numpy as np
import pytest

from uni_encoder_core.bags.writer import typestore
from uni_encoder_core.inference.pipeline import PerceptionResult
from uni_encoder_core.labels import PALETTE
from uni_encoder_core.messages.frames import camera_in_base, camera_matrix, odometry_in_base
from uni_encoder_core.messages.images import (
    ImageError,
    encode_compressed,
    encode_image,
    image_to_numpy,
    image_to_rgb8,
)
from uni_encoder_core.messages.outputs import CameraInfoFields, Header, OutputMessages, StampedImage
from uni_encoder_core.messages.steering import SteeringLimiter

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


def test_limiter_rate_follows_the_stamp_difference():
    lim = SteeringLimiter(max_angle=0.3, max_rate=1.0)
    assert lim.update(-2.0, 0.0) == -0.3
    assert lim.update(0.3, 0.25) == pytest.approx(-0.05)
    assert lim.update(0.3, 0.25) == pytest.approx(-0.05)  # same stamp: no change allowed
    assert lim.update(0.0, 1.0) == pytest.approx(0.0)


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
    out = OutputMessages(camera_in_base([0, 0, 1.5], [0, 0, 0]), SteeringLimiter(0.5, 0.5), 2.0)
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
    out = OutputMessages(camera_in_base([1.2, 0.0, 1.5], [0, 0, 0]), SteeringLimiter(0.5, 0.5), -1.0)
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
    assert (drive.header.frame_id, drive.steering_angle, drive.speed) == ("base_link", 0.5, pytest.approx(10.0))
    assert drive.steering_angle_velocity == 0.5
    stop = out.stop(Header(20, 0, ""))
    assert (stop.header, stop.steering_angle, stop.speed, stop.acceleration) == (Header(20, 0, "base_link"),
                                                                                0.5, 0.0, 0.0)
    restart = out.odometry(_result(30.0, np.eye(4)), HEADER)  # a new window: odometry and its covariance restart
    assert restart.pose_covariance == [0.0] * 36
