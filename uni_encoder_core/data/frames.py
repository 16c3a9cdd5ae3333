"""Reading files of the real data sets and shaping frames for the network, with errors that name the file.

Every loader crops and resizes exactly as the inference pipeline does (``uni_encoder_core.inference.pipeline``):
the bottom ``crop_bottom`` fraction of rows is removed, the kept rows are resized to the network size with
OpenCV (area interpolation when shrinking), and intrinsics follow with pixel centres at integer coordinates:
cropping bottom rows leaves ``K`` unchanged, resizing by ``s`` maps ``u -> s (u + 0.5) - 0.5``, so
``fx' = s fx`` and ``cx' = s (cx + 0.5) - 0.5``. Label maps are resized by nearest neighbour on the same pixel
centres.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from uni_encoder_core.errors import UserError
from uni_encoder_core.inference.pipeline import crop_rows, model_intrinsics, preprocess


class DataError(UserError, ValueError):
    """A data set on disk is missing a file or folder, or holds one that cannot be read; the text names it."""


def require_dir(path: Path, what: str) -> Path:
    """``path`` if it is a directory; else :class:`DataError` naming it and what it should hold."""
    if not path.is_dir():
        raise DataError(f"{what}: folder {path} does not exist")
    return path


def _read(path: Path, flags: int) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"missing file {path}")
    image = cv2.imread(str(path), flags)
    if image is None:
        raise DataError(f"{path}: not a readable image (corrupt or truncated file)")
    return image


def read_rgb(path: Path) -> np.ndarray:
    """An 8-bit colour image file -> HxWx3 uint8 RGB. Raises :class:`DataError` naming a missing or corrupt file."""
    image = _read(path, cv2.IMREAD_COLOR)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_png16(path: Path) -> np.ndarray:
    """A single-channel 16-bit PNG -> HxW uint16. Raises :class:`DataError` for a missing, corrupt or wrong file."""
    image = _read(path, cv2.IMREAD_UNCHANGED)
    if image.ndim != 2 or image.dtype != np.uint16:
        raise DataError(f"{path}: expected a single-channel 16-bit PNG, got {image.dtype} {image.shape}")
    return image


def image_tensor(rgb: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 -> 3xHxW float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div_(255.0)


def shape_image(rgb: np.ndarray, crop_bottom: float, size: tuple[int, int]) -> np.ndarray:
    """HxWx3 uint8 -> the network input ``size`` (h, w): bottom ``crop_bottom`` of the rows removed, then resized."""
    return preprocess(rgb, crop_bottom, size)[0]


def shape_intrinsics(K: np.ndarray, image_hw: tuple[int, int], crop_bottom: float, size: tuple[int, int]) -> np.ndarray:
    """Intrinsics 3x3 of an ``image_hw`` image -> those of :func:`shape_image`'s output (float64)."""
    kept = image_hw[0] - crop_rows(image_hw[0], crop_bottom)
    return model_intrinsics(np.asarray(K, np.float64), (kept, image_hw[1]), size)


def shape_labels(labels: np.ndarray, crop_bottom: float, size: tuple[int, int]) -> np.ndarray:
    """HxW label map (any dtype) -> ``size``: cropped like :func:`shape_image`, nearest-neighbour resized.

    Output pixel ``(i, j)`` takes the input pixel whose area contains its centre:
    ``row = floor((i + 0.5) * kept / h)``, ``col = floor((j + 0.5) * W / w)``.
    """
    kept = labels.shape[0] - crop_rows(labels.shape[0], crop_bottom)
    rows = np.floor((np.arange(size[0]) + 0.5) * kept / size[0]).astype(np.int64)
    cols = np.floor((np.arange(size[1]) + 0.5) * labels.shape[1] / size[1]).astype(np.int64)
    return labels[rows[:, None], cols[None, :]]
