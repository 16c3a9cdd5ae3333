"""sensor_msgs/Image <-> numpy: every encoding, row padding, byte order, zero-copy, and clear rejections."""

import array
import struct
import zlib

import numpy as np
import pytest

pytest.importorskip("rclpy")
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

from uni_encoder_core.messages.images import (  # noqa: E402
    ENCODINGS,
    ImageError,
    image_to_numpy,
    image_to_rgb8,
    stream_header,
)
from uni_encoder_ros.messages import numpy_to_image, rgb8_to_compressed  # noqa: E402

RNG = np.random.default_rng(0)


def _random(encoding: str, height: int = 5, width: int = 7) -> np.ndarray:
    layout = ENCODINGS[encoding]
    shape = (height, width) if layout.channels == 1 else (height, width, layout.channels)
    if layout.dtype.kind == "f":
        return RNG.normal(size=shape).astype(layout.dtype)
    info = np.iinfo(layout.dtype)
    return RNG.integers(info.min, info.max, size=shape, endpoint=True, dtype=layout.dtype)


def _padded(pixels: np.ndarray, encoding: str, pad: int, big_endian: bool = False) -> Image:
    """A message with ``pad`` junk bytes after every row, in the requested byte order."""
    ordered = pixels.astype(pixels.dtype.newbyteorder(">" if big_endian else "<"))
    rows = ordered.reshape(pixels.shape[0], -1).view(np.uint8)
    junk = np.full((pixels.shape[0], pad), 0xAB, np.uint8)
    data = np.concatenate([rows, junk], axis=1)
    return Image(
        height=pixels.shape[0], width=pixels.shape[1], encoding=encoding, is_bigendian=int(big_endian),
        step=data.shape[1], data=array.array("B", data.tobytes()),
    )


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_round_trip_every_encoding_exact(encoding):
    pixels = _random(encoding)
    msg = numpy_to_image(pixels, encoding)
    assert msg.step == pixels.shape[1] * pixels.itemsize * ENCODINGS[encoding].channels
    assert len(msg.data) == msg.step * msg.height
    np.testing.assert_array_equal(image_to_numpy(msg), pixels)


@pytest.mark.parametrize("encoding", ["rgb8", "mono8", "16UC1", "32FC1", "32FC3", "32SC1"])
@pytest.mark.parametrize("big_endian", [False, True])
def test_row_padding_and_byte_order(encoding, big_endian):
    pixels = _random(encoding, 6, 9)
    msg = _padded(pixels, encoding, pad=13, big_endian=big_endian)
    out = image_to_numpy(msg)
    assert out.dtype == ENCODINGS[encoding].dtype and out.dtype.isnative
    np.testing.assert_array_equal(out, pixels)


def test_native_order_is_zero_copy():
    pixels = _random("32FC1", 4, 6)
    msg = _padded(pixels, "32FC1", pad=8)
    out = image_to_numpy(msg)
    assert np.shares_memory(out, np.frombuffer(msg.data, np.uint8))
    assert out.strides == (6 * 4 + 8, 4)


def test_colour_encodings_become_rgb():
    rgb = _random("rgb8")
    bgr, alpha = rgb[:, :, ::-1], np.full(rgb.shape[:2] + (1,), 200, np.uint8)
    cases = {
        "rgb8": rgb,
        "bgr8": bgr,
        "rgba8": np.concatenate([rgb, alpha], axis=2),
        "bgra8": np.concatenate([bgr, alpha], axis=2),
    }
    for encoding, pixels in cases.items():
        np.testing.assert_array_equal(image_to_rgb8(numpy_to_image(np.ascontiguousarray(pixels), encoding)), rgb)
    mono = _random("mono8")
    np.testing.assert_array_equal(image_to_rgb8(numpy_to_image(mono, "mono8")), np.stack([mono] * 3, axis=-1))
    with pytest.raises(ImageError, match="not a camera image"):
        image_to_rgb8(numpy_to_image(_random("32FC1"), "32FC1"))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"encoding": "yuv422_yuy2"}, "unsupported encoding 'yuv422_yuy2'"),
        ({"data": array.array("B", bytes(5 * 21 - 1))}, "data length 104 != step 21 x height 5 = 105"),
        ({"data": array.array("B", bytes(5 * 21 + 3))}, "data length 108 != step 21 x height 5 = 105"),
        ({"step": 20}, "step 20 is smaller than width 7 x 3 bytes per pixel"),
        ({"height": 100000, "width": 100000, "step": 300000}, "absurd dimensions 100000x100000"),
        ({"height": 0}, "empty image"),
    ],
)
def test_malformed_messages_are_rejected_with_the_reason(change, reason):
    msg = numpy_to_image(_random("rgb8"), "rgb8")
    for key, value in change.items():
        setattr(msg, key, value)
    with pytest.raises(ImageError) as err:
        image_to_rgb8(msg)
    assert reason in str(err.value)


def test_numpy_to_image_checks_shape_and_dtype():
    with pytest.raises(ImageError, match="does not fit encoding 'rgb8'"):
        numpy_to_image(np.zeros((4, 4), np.uint8), "rgb8")
    with pytest.raises(ImageError, match="dtype float64 does not fit encoding '32FC1'"):
        numpy_to_image(np.zeros((4, 4)), "32FC1")


def test_compressed_png_is_lossless_and_jpeg_close():
    rows, cols = np.mgrid[0:48, 0:64]
    rgb = np.stack([cols * 4, rows * 5, np.full_like(rows, 90)], axis=-1).astype(np.uint8)
    png = rgb8_to_compressed(rgb, "png")
    assert stream_header(np.frombuffer(png.data, np.uint8)) == (48, 64, 8)
    np.testing.assert_array_equal(image_to_rgb8(png), rgb)
    jpeg = rgb8_to_compressed(rgb, "jpeg", quality=95)
    assert stream_header(np.frombuffer(jpeg.data, np.uint8)) == (48, 64, 8)
    decoded = image_to_rgb8(jpeg)
    assert decoded.shape == rgb.shape
    assert np.abs(decoded.astype(int) - rgb).mean() < 3.0


def _png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk


def test_compressed_rejections():
    with pytest.raises(ImageError, match="absurd dimensions 100000x100000"):
        image_to_rgb8(CompressedImage(format="png", data=array.array("B", _png_header(100000, 100000))))
    with pytest.raises(ImageError, match="not a jpeg or png stream"):
        image_to_rgb8(CompressedImage(format="jpeg", data=array.array("B", b"not an image at all")))
    with pytest.raises(ImageError, match="unsupported compressed format 'tiff'"):
        image_to_rgb8(CompressedImage(format="tiff", data=array.array("B", b"II*\x00")))
    with pytest.raises(ImageError, match="could not decode"):
        image_to_rgb8(CompressedImage(format="png", data=array.array("B", _png_header(64, 48))))


def test_output_contents_become_rclpy_messages():
    from uni_encoder_core.messages.outputs import CameraInfoFields, DriveFields, Header, OdometryFields
    from uni_encoder_ros.messages import to_message, transform_message

    header = Header(3, 250, "odom")
    odom = OdometryFields(header, "base_link", [1.0, 2.0, 0.5], [0.0, 0.0, 0.6, 0.8], [0.1] * 36,
                          [4.0, 0, 0, 0, 0, 0.2], [0.2] * 36)
    msg = to_message(odom)
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id) == (3, 250, "odom")
    assert msg.child_frame_id == "base_link" and msg.pose.pose.position.y == 2.0 and msg.pose.pose.orientation.w == 0.8
    assert msg.twist.twist.linear.x == 4.0 and msg.twist.twist.angular.z == 0.2 and msg.pose.covariance[35] == 0.1
    tf = transform_message(odom).transforms[0]
    assert (tf.header.frame_id, tf.child_frame_id, tf.transform.translation.z, tf.transform.rotation.z) == (
        "odom", "base_link", 0.5, 0.6)
    drive = to_message(DriveFields(header.with_frame("base_link"), 0.25, 0.5, 2.0))
    assert (drive.header.frame_id, drive.drive.steering_angle, drive.drive.steering_angle_velocity,
            drive.drive.speed, drive.drive.acceleration) == ("base_link", 0.25, 0.5, 2.0, 0.0)
    info = to_message(CameraInfoFields(header, 2, 3, [1.0] * 9, [0.0] * 9, [2.0] * 12, "plumb_bob", [0.1]))
    assert list(info.k) == [1.0] * 9 and list(info.p) == [2.0] * 12 and list(info.d) == [0.1]
    with pytest.raises(TypeError, match="no ROS message for str"):
        to_message("depth")
