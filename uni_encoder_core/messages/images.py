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


def _check_size(height: int, width: int, max_pixels: int = MAX_PIXELS) -> None:
    if height <= 0 or width <= 0:
        raise ImageError(f"empty image ({height}x{width})")
    if height > MAX_SIDE or width > MAX_SIDE or height * width > MAX_PIXELS:
        raise ImageError(f"absurd dimensions {height}x{width} (limit {MAX_SIDE} per side, {MAX_PIXELS} pixels)")
    if height * width > max_pixels:
        raise ImageError(f"{height}x{width} = {height * width} pixels exceeds max_input_pixels {max_pixels}")


def _not_camera(encoding: str) -> ImageError:
    return ImageError(f"encoding '{encoding}' is not a camera image (expected one of {', '.join(COLOUR_ENCODINGS)})")


def image_to_numpy(msg: Any, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """View an image message as an array: HxW for one channel, HxWxC otherwise, native byte order.

    The result shares memory with ``msg.data`` (no copy) unless the data is in the other byte order. The header's
    dimensions are checked (at most ``max_pixels``) before the buffer is touched.
    """
    layout = ENCODINGS.get(msg.encoding)
    if layout is None:
        raise ImageError(f"unsupported encoding '{msg.encoding}' (supported: {', '.join(ENCODINGS)})")
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    _check_size(height, width, max_pixels)
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
    raise _not_camera(encoding)


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


@dataclass(frozen=True)
class CompressedFormat:
    """A ``CompressedImage.format`` as image_transport writes it: ``"<encoding>; <codec> compressed <target>"``
    (``rgb8; jpeg compressed bgr8``, ``mono8; png compressed ``) or a bare codec (``jpeg``, ``png``).

    ``encoding`` is the original image's (None for a bare codec); ``bgr`` says whether the decoded colour channels
    are blue-green-red: true for a bare codec (a standard file) and for a ``compressed bgr`` target, false otherwise
    (image_transport's compressed subscriber converts only for ``compressed bgr``).
    """

    codec: str
    encoding: str | None
    bgr: bool

    @staticmethod
    def parse(text: str) -> CompressedFormat:
        """Parse a format string; :class:`ImageError` for compressedDepth, other codecs or non-camera encodings."""
        if "compresseddepth" in text.lower():
            raise ImageError(f"format '{text}' is compressedDepth (a depth image transport), not a camera image")
        encoding, _, rest = text.partition(";") if ";" in text else (None, "", text)
        words = rest.lower().split()
        codec = {"jpg": "jpeg"}.get(words[0], words[0]) if words else ""
        if codec not in ("jpeg", "png"):
            raise ImageError(f"unsupported compressed format '{text}' (jpeg or png)")
        if encoding is None:
            return CompressedFormat(codec, None, True)
        encoding = encoding.strip()
        if encoding not in COLOUR_ENCODINGS:
            raise _not_camera(encoding)
        return CompressedFormat(codec, encoding, "compressed bgr" in " ".join(words))


def compressed_to_rgb8(msg: Any, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode a jpeg/png compressed image message (``format``, ``data``) to HxWx3 uint8 RGB.

    The stream's header (size, bit depth) is checked before decoding: at most ``max_pixels`` pixels, 8 bits per
    sample (16-bit streams are rejected like raw 16-bit images). The channel order follows the format string (see
    :class:`CompressedFormat`); EXIF orientation is ignored, as image_transport does. Raises :class:`ImageError`.
    """
    fmt = CompressedFormat.parse(msg.format)
    if len(msg.data) == 0:
        raise ImageError("compressed image has no data")
    data = np.frombuffer(msg.data, np.uint8)
    header = stream_header(data)
    if header is None:
        raise ImageError(f"{len(msg.data)} bytes are not a jpeg or png stream")
    height, width, bits = header
    _check_size(height, width, max_pixels)
    if bits != 8:
        raise ImageError(f"{bits}-bit {fmt.codec} stream: camera images are 8-bit (16-bit raw images are rejected too)")
    decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if decoded is None:
        raise ImageError(f"could not decode {len(msg.data)} bytes as {msg.format}")
    if decoded.shape[:2] != (height, width) or decoded.dtype != np.uint8:
        raise ImageError(f"decoded {decoded.shape} {decoded.dtype} does not match the stream header {height}x{width}")
    if decoded.ndim == 2:
        return np.repeat(decoded[:, :, None], 3, axis=2)
    if decoded.shape[2] not in (3, 4):
        raise ImageError(f"decoded image has {decoded.shape[2]} channels (expected 1, 3 or 4)")
    return decoded[:, :, 2::-1] if fmt.bgr else decoded[:, :, :3]


def stream_header(data: np.ndarray) -> tuple[int, int, int] | None:
    """(height, width, bits per sample) claimed by a png or jpeg stream (flat uint8), read before decoding.

    JPEG: the first start-of-frame segment, wherever it is (EXIF and other application segments of any size come
    first). None if the data is neither format or the header is cut short.
    """
    if bytes(data[:8]) == b"\x89PNG\r\n\x1a\n":
        if len(data) < 25 or bytes(data[12:16]) != b"IHDR":
            return None
        head = bytes(data[16:25])
        return int.from_bytes(head[4:8], "big"), int.from_bytes(head[0:4], "big"), head[8]
    if bytes(data[:2]) != b"\xff\xd8":
        return None
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = int(data[i + 1])
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # stand-alone markers
            i += 2
            continue
        length = int(data[i + 2]) << 8 | int(data[i + 3])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
            if i + 10 > n:
                return None
            seg = bytes(data[i + 4 : i + 10])
            return int.from_bytes(seg[1:3], "big"), int.from_bytes(seg[3:5], "big"), seg[0]
        if marker in (0xD9, 0xDA) or length < 2:  # end of image or scan data before any frame header
            return None
        i += 2 + length
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


def image_to_rgb8(msg: Any, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Any supported camera message (raw, or compressed: it has ``format``) -> HxWx3 uint8 RGB.

    Raw and compressed follow the same rules: 8-bit colour or mono encodings only, at most ``max_pixels`` pixels
    (checked in the header, before any allocation). Raises :class:`ImageError` with the reason.
    """
    if hasattr(msg, "format"):
        return compressed_to_rgb8(msg, max_pixels)
    if msg.encoding not in COLOUR_ENCODINGS:
        raise _not_camera(msg.encoding) if msg.encoding in ENCODINGS else ImageError(
            f"unsupported encoding '{msg.encoding}' (supported: {', '.join(ENCODINGS)})")
    return to_rgb8(image_to_numpy(msg, max_pixels), msg.encoding)
