"""Depth errors (paper Table III) with monodepth2's evaluation conventions.

Per image: keep pixels whose ground truth is finite and inside ``(min_depth, max_depth)`` (plus an optional crop
mask); scale the prediction by ``median(gt) / median(pred)`` over those pixels (monocular evaluation); clamp it to
``[min_depth, max_depth]``; then

- ``abs_rel = mean(|gt - pred| / gt)``, ``sq_rel = mean((gt - pred)^2 / gt)``,
- ``rmse = sqrt(mean((gt - pred)^2))``, ``rmse_log = sqrt(mean((log gt - log pred)^2))``,
- ``a1, a2, a3 = mean(max(gt / pred, pred / gt) < 1.25, 1.25^2, 1.25^3)``.

A data set's result is the mean of the per-image metrics (:class:`DepthErrorAccumulator`).

Protocols:

- **KITTI Eigen** (:func:`eigen_depth_errors`): the predicted disparity is resized bilinearly to the ground-truth
  resolution and inverted; the Garg crop (:func:`garg_crop_mask`) restricts the valid pixels.
- **Cityscapes, ManyDepth protocol** (:func:`cityscapes_depth_errors`): ground-truth depth comes from the
  disparity PNG (:func:`cityscapes_gt_depth`, ``baseline * fx / disparity``); the ground truth keeps its top
  ``round(0.75 * H)`` rows (the network input had its bottom quarter, the ego car, cut away); the predicted
  disparity is resized bilinearly to that size and inverted; both are cropped to rows ``[256:]`` and columns
  ``[192:1856]`` (at 1024x2048, i.e. 768x2048 after the row cut), which leaves the central 512x1664 window.
  Multi-frame methods see the previous frame at offset -2; a single-frame depth network needs no other frame.

Bad input is refused with ``ValueError``: mismatched shapes, an image without any valid ground-truth pixel
(the metrics would be undefined), non-finite predictions on valid pixels, or a prediction whose median over the
valid pixels is not positive while median scaling is on (the scale ratio would be undefined).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from uni_encoder_core.eval.arrays import to_numpy

DEPTH_METRICS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")
MIN_DEPTH = 1e-3
MAX_DEPTH = 80.0
# Garg et al. crop as fractions of (height, height, width, width): rows [top, bottom), columns [left, right).
GARG_CROP = (0.40810811, 0.99189189, 0.03594771, 0.96405229)
# ManyDepth Cityscapes crop in pixels of the 768x2048 ground truth left after removing the bottom quarter.
CITYSCAPES_KEEP_ROWS = 0.75
CITYSCAPES_CROP_REFERENCE = (768, 2048)
CITYSCAPES_CROP = (256, 192, 1856)  # first row, first column, end column


def _squeeze_to_2d(name: str, x: np.ndarray) -> np.ndarray:
    while x.ndim > 2 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 2:
        raise ValueError(f"{name} must be a single HxW map (leading singleton axes allowed), got shape {x.shape}")
    return x


def compute_depth_errors(
    gt: np.ndarray | torch.Tensor,
    pred: np.ndarray | torch.Tensor,
    min_depth: float = MIN_DEPTH,
    max_depth: float = MAX_DEPTH,
    median_scaling: bool = True,
    mask: np.ndarray | torch.Tensor | None = None,
) -> dict[str, float]:
    """Depth errors of one image.

    ``gt`` and ``pred`` are depth maps of the same shape (camera units; ``pred`` already at the ground-truth
    resolution); ``mask`` (same shape, bool) further restricts the evaluated pixels, e.g. a crop.
    Returns the seven metrics of :data:`DEPTH_METRICS` as floats.
    """
    gt, pred = to_numpy(gt, np.float64), to_numpy(pred, np.float64)
    if gt.shape != pred.shape:
        raise ValueError(f"ground truth {gt.shape} and prediction {pred.shape} must have the same shape")
    valid = np.isfinite(gt) & (gt > min_depth) & (gt < max_depth)
    if mask is not None:
        mask = to_numpy(mask, bool)
        if mask.shape != gt.shape:
            raise ValueError(f"mask {mask.shape} must have the ground truth's shape {gt.shape}")
        valid &= mask
    if not valid.any():
        raise ValueError(f"no valid ground-truth pixel (finite and inside ({min_depth}, {max_depth}))")
    gt, pred = gt[valid], pred[valid]
    bad = int((~np.isfinite(pred)).sum())
    if bad:
        raise ValueError(f"prediction is not finite at {bad} of {pred.size} valid pixels")
    if median_scaling:
        pred_median = np.median(pred)
        if not pred_median > 0:
            raise ValueError(f"median scaling needs a positive median prediction, got {pred_median}")
        pred = pred * (np.median(gt) / pred_median)
    pred = np.clip(pred, min_depth, max_depth)

    thresh = np.maximum(gt / pred, pred / gt)
    errors = {
        "abs_rel": np.mean(np.abs(gt - pred) / gt),
        "sq_rel": np.mean((gt - pred) ** 2 / gt),
        "rmse": np.sqrt(np.mean((gt - pred) ** 2)),
        "rmse_log": np.sqrt(np.mean((np.log(gt) - np.log(pred)) ** 2)),
        "a1": np.mean(thresh < 1.25),
        "a2": np.mean(thresh < 1.25**2),
        "a3": np.mean(thresh < 1.25**3),
    }
    return {k: float(v) for k, v in errors.items()}


def garg_crop_mask(height: int, width: int) -> np.ndarray:
    """Boolean ``HxW`` mask of the Garg crop used for the KITTI Eigen split (monodepth2's fractions)."""
    top, bottom, left, right = (np.array(GARG_CROP) * [height, height, width, width]).astype(np.int32)
    mask = np.zeros((height, width), dtype=bool)
    mask[top:bottom, left:right] = True
    return mask


def resize_depth(depth: np.ndarray | torch.Tensor, height: int, width: int) -> np.ndarray:
    """Resize a predicted depth map to ``height x width`` the way monodepth2 does it.

    The disparity ``1 / depth`` is resized bilinearly (OpenCV) and inverted again.
    """
    disparity = 1.0 / _squeeze_to_2d("depth", to_numpy(depth, np.float64)).astype(np.float32)
    return 1.0 / cv2.resize(disparity, (width, height), interpolation=cv2.INTER_LINEAR).astype(np.float64)


def eigen_depth_errors(
    gt_depth: np.ndarray | torch.Tensor, pred_depth: np.ndarray | torch.Tensor, median_scaling: bool = True
) -> dict[str, float]:
    """KITTI Eigen errors: full-resolution ``gt_depth`` (0 = no lidar point), ``pred_depth`` at network size."""
    gt = _squeeze_to_2d("gt_depth", to_numpy(gt_depth, np.float64))
    height, width = gt.shape
    pred = resize_depth(pred_depth, height, width)
    return compute_depth_errors(gt, pred, median_scaling=median_scaling, mask=garg_crop_mask(height, width))


def cityscapes_gt_depth(disparity_png: np.ndarray, baseline: float, fx: float) -> np.ndarray:
    """Ground-truth depth (metres, ``HxW``) from a Cityscapes ``disparity/*.png`` (uint16) and its camera.

    Cityscapes stores ``disparity = (png - 1) / 256`` for ``png > 0``; 0 means invalid and becomes depth 0.
    ``baseline`` (m) and ``fx`` (pixels) come from the ``camera/*.json`` (``extrinsic.baseline``,
    ``intrinsic.fx``).
    """
    png = np.asarray(disparity_png)
    if png.ndim != 2 or not np.issubdtype(png.dtype, np.integer):
        raise ValueError(f"disparity PNG must be an integer HxW array, got {png.dtype} {png.shape}")
    disparity = (png.astype(np.float64) - 1.0) / 256.0
    depth = np.zeros(png.shape, dtype=np.float64)
    valid = disparity > 0
    depth[valid] = baseline * fx / disparity[valid]
    return depth


def cityscapes_eval_window(height: int, width: int) -> tuple[slice, slice]:
    """Rows and columns kept by the ManyDepth crop for ground truth of ``height x width`` (after the row cut).

    At 768x2048 this is exactly ``[256:, 192:1856]``; other sizes get the same fractions.
    """
    ref_h, ref_w = CITYSCAPES_CROP_REFERENCE
    top, left, right = CITYSCAPES_CROP
    return slice(height * top // ref_h, height), slice(width * left // ref_w, width * right // ref_w)


def cityscapes_depth_errors(
    gt_depth: np.ndarray | torch.Tensor, pred_depth: np.ndarray | torch.Tensor, median_scaling: bool = True
) -> dict[str, float]:
    """Cityscapes errors (ManyDepth protocol).

    ``gt_depth`` is the full-frame ground truth (e.g. 1024x2048 from :func:`cityscapes_gt_depth`);
    ``pred_depth`` is the network's depth for the image with its bottom quarter removed (e.g. 192x512).
    """
    gt = _squeeze_to_2d("gt_depth", to_numpy(gt_depth, np.float64))
    gt = gt[: int(round(gt.shape[0] * CITYSCAPES_KEEP_ROWS))]
    height, width = gt.shape
    pred = resize_depth(pred_depth, height, width)
    rows, cols = cityscapes_eval_window(height, width)
    return compute_depth_errors(gt[rows, cols], pred[rows, cols], median_scaling=median_scaling)


class DepthErrorAccumulator:
    """Mean of per-image depth errors over a data set (monodepth2 averages images, not pixels)."""

    def __init__(self) -> None:
        self._sums = dict.fromkeys(DEPTH_METRICS, 0.0)
        self.count = 0

    def add(self, errors: dict[str, float]) -> None:
        """Add one image's errors (a dict as returned by :func:`compute_depth_errors`)."""
        missing = set(DEPTH_METRICS) - set(errors)
        if missing:
            raise ValueError(f"depth errors lack {sorted(missing)}")
        for key in DEPTH_METRICS:
            self._sums[key] += float(errors[key])
        self.count += 1

    def compute(self) -> dict[str, float]:
        """Mean of every metric over the images added so far."""
        if self.count == 0:
            raise ValueError("no image was added; the mean depth errors are undefined")
        return {key: total / self.count for key, total in self._sums.items()}
