"""``sensor_msgs/Image`` and ``CompressedImage`` fields <-> numpy, without cv_bridge.

cv_bridge is built against a ROS distribution's OpenCV and is not installable from PyPI, so the product carries
its own conversions. They read duck-typed messages: anything with ``height``, ``width``, ``encoding``,
``is_bigendian``, ``step`` and ``data`` (an rclpy ``Image`` or a ``rosbags`` one), or ``format`` and ``data``
(compressed). Raw images become numpy views of the message buffer (zero-copy) whenever the data is in native
byte order; row padding (``step > width * pixel size``) is skipped with strides, not copied. Every malformed
message raises :class:`ImageError` naming the problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

MAX_SIDE = 16384  # pixels; larger claims are rejected before any buffer is touched
MAX_PIXELS = 64_000_000


class ImageError(ValueError):
    """A message cannot be converted; the text names the reason."""


@dataclass(frozen=True)
class Encoding:
    """Layout of one ``sensor_msgs/Image`` encoding: element type and channel count."""

    dtype: np.dtype
    channels: int


ENCODINGS: dict[str, Encoding] = {
    "rgb8": Encoding(np.dtype(np.uint8), 3),
    "bgr8": Encoding(np.dtype(np.uint8), 3),
    "rgba8": Encoding(np.dtype(np.uint8), 4),
    "bgra8": Encoding(np.dtype(np.uint8), 4),
    "mono8": Encoding(np.dtype(np.uint8), 1),
    "8UC1": Encoding(np.dtype(np.uint8), 1),
    "mono16": Encoding(np.dtype(np.uint16), 1),
    "16UC1": Encoding(np.dtype(np.uint16), 1),
    "32FC1": Encoding(np.dtype(np.float32), 1),
    "32FC3": Encoding(np.dtype(np.float32), 3),
    "32SC1": Encoding(np.dtype(np.int32), 1),
}
COLOUR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8")


@dataclass
class ImageFields:
    """Contents of a ``sensor_msgs/Image`` (little endian, no row padding); ``data`` is flat uint8."""

    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: np.ndarray


@dataclass
class CompressedFields:
    """Contents of a ``sensor_msgs/CompressedImage``: ``format`` (jpeg or png) and the flat uint8 stream."""

    format: str
    data: np.ndarray


def _check_size(height: int, width: int) -> None:
    if height <= 0 or width <= 0:
        raise ImageError(f"empty image ({height}x{width})")
    if height > MAX_SIDE or width > MAX_SIDE or height * width > MAX_PIXELS:
        raise ImageError(f"absurd dimensions {height}x{width} (limit {MAX_SIDE} per side, {MAX_PIXELS} pixels)")


def image_to_numpy(msg: Any) -> np.ndarray:
    """View an image message as an array: HxW for one channel, HxWxC otherwise, native byte order.

    The result shares memory with ``msg.data`` (no copy) unless the data is in the other byte order.
    """
    layout = ENCODINGS.get(msg.encoding)
    if layout is None:
        raise ImageError(f"unsupported encoding '{msg.encoding}' (supported: {', '.join(ENCODINGS)})")
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    _check_size(height, width)
    pixel_bytes = layout.dtype.itemsize * layout.channels
    if step < width * pixel_bytes:
        raise ImageError(f"step {step} is smaller than width {width} x {pixel_bytes} bytes per pixel")
    expected = step * height
    if len(msg.data) != expected:
        raise ImageError(f"data length {len(msg.data)} != step {step} x height {height} = {expected}")
    buffer = np.frombuffer(msg.data, np.uint8)
    dtype = layout.dtype.newbyteorder(">" if msg.is_bigendian else "<")
    shape: tuple[int, ...] = (height, width, layout.channels)
    strides: tuple[int, ...] = (step, pixel_bytes, layout.dtype.itemsize)
    if layout.channels == 1:
        shape, strides = shape[:2], strides[:2]
    view = np.ndarray(shape, dtype, buffer, 0, strides)
    return view if dtype.isnative else view.astype(layout.dtype)


def to_rgb8(pixels: np.ndarray, encoding: str) -> np.ndarray:
    """Colour image of any camera encoding -> HxWx3 uint8 RGB (a view where no conversion is needed)."""
    if encoding == "rgb8":
        return pixels
    if encoding == "bgr8":
        return pixels[:, :, ::-1]
    if encoding == "rgba8":
        return pixels[:, :, :3]
    if encoding == "bgra8":
        return pixels[:, :, 2::-1]
    if encoding == "mono8":
        return np.repeat(pixels[:, :, None], 3, axis=2)
    raise ImageError(f"encoding '{encoding}' is not a camera image (expected one of {', '.join(COLOUR_ENCODINGS)})")


def encode_image(data: np.ndarray, encoding: str) -> ImageFields:
    """Image contents (little endian, no padding) of an array matching ``encoding`` (HxW or HxWxC).

    Raises :class:`ImageError` for an unknown encoding or an array whose shape or dtype does not fit it.
    """
    layout = ENCODINGS.get(encoding)
    if layout is None:
        raise ImageError(f"unsupported encoding '{encoding}'")
    expected_ndim = 2 if layout.channels == 1 else 3
    if data.ndim != expected_ndim or (expected_ndim == 3 and data.shape[2] != layout.channels):
        raise ImageError(f"array of shape {data.shape} does not fit encoding '{encoding}' ({layout.channels} channels)")
    if data.dtype != layout.dtype:
        raise ImageError(f"array dtype {data.dtype} does not fit encoding '{encoding}' ({layout.dtype})")
    contiguous = np.ascontiguousarray(data, dtype=layout.dtype.newbyteorder("<"))
    step = data.shape[1] * layout.channels * layout.dtype.itemsize
    return ImageFields(data.shape[0], data.shape[1], encoding, 0, step, contiguous.view(np.uint8).reshape(-1))


def compressed_to_rgb8(msg: Any) -> np.ndarray:
    """Decode a jpeg/png compressed image message (``format``, ``data``) to HxWx3 uint8 RGB."""
    fmt = msg.format.lower()
    if not any(name in fmt for name in ("jpeg", "jpg", "png")):
        raise ImageError(f"unsupported compressed format '{msg.format}' (jpeg or png)")
    if len(msg.data) == 0:
        raise ImageError("compressed image has no data")
    claimed = compressed_size(bytes(msg.data[:65536]))
    if claimed is None:
        raise ImageError(f"{len(msg.data)} bytes are not a jpeg or png stream")
    _check_size(*claimed)
    decoded = cv2.imdecode(np.frombuffer(msg.data, np.uint8), cv2.IMREAD_COLOR)
    if decoded is None:
        raise ImageError(f"could not decode {len(msg.data)} bytes as {msg.format}")
    _check_size(*decoded.shape[:2])
    return decoded[:, :, ::-1]


def compressed_size(head: bytes) -> tuple[int, int] | None:
    """(height, width) claimed by a png or jpeg header, read before decoding; None if neither."""
    if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) >= 24:
        return int.from_bytes(head[20:24], "big"), int.from_bytes(head[16:20], "big")
    if head[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 9 <= len(head) and head[i] == 0xFF:
        marker = head[i + 1]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
            return int.from_bytes(head[i + 5 : i + 7], "big"), int.from_bytes(head[i + 7 : i + 9], "big")
        i += 2 + int.from_bytes(head[i + 2 : i + 4], "big")
    return None


def encode_compressed(rgb: np.ndarray, fmt: str = "jpeg", quality: int = 95) -> CompressedFields:
    """Encode HxWx3 uint8 RGB as jpeg (``quality`` 0-100) or png contents; other formats raise :class:`ImageError`."""
    if fmt not in ("jpeg", "png"):
        raise ImageError(f"unsupported compressed format '{fmt}' (jpeg or png)")
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if fmt == "jpeg" else []
    ok, encoded = cv2.imencode("." + ("jpg" if fmt == "jpeg" else "png"), np.ascontiguousarray(rgb[:, :, ::-1]), params)
    if not ok:
        raise ImageError(f"could not encode a {rgb.shape} image as {fmt}")
    return CompressedFields(fmt, encoded.reshape(-1))


def image_to_rgb8(msg: Any) -> np.ndarray:
    """Any supported camera message (raw, or compressed: it has ``format``) -> HxWx3 uint8 RGB.

    Raises :class:`ImageError` with the reason.
    """
    if hasattr(msg, "format"):
        return compressed_to_rgb8(msg)
    return to_rgb8(image_to_numpy(msg), msg.encoding)
