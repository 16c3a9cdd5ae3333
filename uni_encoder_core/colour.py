"""Colour images of maps for people: depth, semantic labels, captions and grids (``HxWx3`` uint8 RGB)."""

from __future__ import annotations

import cv2
import numpy as np

from uni_encoder_core.labels import PALETTE


def colour_depth(depth: np.ndarray) -> np.ndarray:
    """HxW metres (0 or non-finite = none) -> HxWx3 uint8 RGB: inverse depth with the magma colour map, none black.

    The colour scale is the 98th percentile of the inverse depth, so one map's near and far ends fill the range.
    """
    valid = np.isfinite(depth) & (depth > 0)
    inv = np.where(valid, 1.0 / np.maximum(np.where(valid, depth, 1.0), 1e-3), 0.0)
    scale = np.percentile(inv[valid], 98) if valid.any() else 1.0
    img = cv2.applyColorMap(np.clip(inv / scale * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_MAGMA)[..., ::-1]
    return np.where(valid[..., None], img, 0).astype(np.uint8)


def colour_semantic(semantic: np.ndarray) -> np.ndarray:
    """HxW train ids -> HxWx3 uint8 RGB with the Cityscapes palette (void black)."""
    return PALETTE[np.asarray(semantic).astype(np.int64).clip(0, 255)]


def colour_image(image: np.ndarray) -> np.ndarray:
    """An image as HxWx3 uint8: uint8 passes; floats in [0, 1] (3xHxW or HxWx3) are scaled; others are min-max
    normalised (e.g. whitened frames)."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[0] == 3 and image.shape[-1] != 3:
        image = image.transpose(1, 2, 0)
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    image = image.astype(np.float64)
    if image.min() < 0 or image.max() > 1:
        image = (image - image.min()) / max(float(image.max() - image.min()), 1e-9)
    return np.ascontiguousarray(np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8))


def caption(panel: np.ndarray, text: str) -> np.ndarray:
    """A copy of ``panel`` with ``text`` written in its top-left corner (white, small font)."""
    panel = np.ascontiguousarray(panel).copy()
    scale = 0.35 if panel.shape[0] < 160 else 0.45
    cv2.putText(panel, text, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(panel, text, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return panel


def fit(panel: np.ndarray, height: int, width: int) -> np.ndarray:
    """``panel`` resized (nearest neighbour: labels stay crisp) to ``height x width``."""
    if panel.shape[:2] == (height, width):
        return panel
    return cv2.resize(panel, (width, height), interpolation=cv2.INTER_NEAREST)


def grid(rows: list[list[np.ndarray]]) -> np.ndarray:
    """Panels in rows, every panel resized to the first one's size; short rows are padded with black."""
    height, width = rows[0][0].shape[:2]
    columns = max(len(r) for r in rows)
    blank = np.zeros((height, width, 3), np.uint8)
    lines = [np.concatenate([fit(p, height, width) for p in r] + [blank] * (columns - len(r)), axis=1) for r in rows]
    return np.concatenate(lines, axis=0)


def text_panel(lines: list[str], height: int, width: int) -> np.ndarray:
    """A black ``height x width`` panel holding ``lines`` of white text (e.g. intrinsics)."""
    panel = np.zeros((height, width, 3), np.uint8)
    step = max(12, min(18, height // max(len(lines), 1)))
    for i, line in enumerate(lines):
        cv2.putText(panel, line, (3, 12 + i * step), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
    return panel
