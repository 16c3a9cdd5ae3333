"""Motion-mask metrics: pixel precision, recall and F1 of the "independently moving" class.

Counts (true positives, false positives, false negatives) are summed over a data set before the ratios are
taken, so large and small images weigh by their pixels. A ratio whose denominator is zero is 0.0 (the
convention of scikit-learn and torchmetrics), e.g. precision when nothing was predicted as moving.
"""

from __future__ import annotations

import numpy as np
import torch

from uni_encoder_core.eval.arrays import to_numpy


def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


class MotionMaskMetric:
    """Accumulates pixel counts of predicted vs. ground-truth motion masks."""

    def __init__(self, threshold: float = 0.5):
        self.threshold = threshold
        self.tp = self.fp = self.fn = 0

    def update(self, pred: np.ndarray | torch.Tensor, gt: np.ndarray | torch.Tensor,
               valid: np.ndarray | torch.Tensor | None = None) -> None:
        """Add masks of equal shape: ``pred`` bool or probabilities in ``[0, 1]`` (moving when > threshold),
        ``gt`` bool; ``valid`` (bool, optional) limits the counted pixels."""
        pred, gt = to_numpy(pred), to_numpy(gt, bool)
        if pred.shape != gt.shape:
            raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in shape")
        if pred.dtype != bool:
            pred = pred.astype(np.float64)
            if not np.all((pred >= 0) & (pred <= 1)):
                raise ValueError("motion-mask probabilities must lie in [0, 1] (NaN is not allowed)")
            pred = pred > self.threshold
        if valid is not None:
            valid = to_numpy(valid, bool)
            if valid.shape != gt.shape:
                raise ValueError(f"valid mask {valid.shape} must have the ground truth's shape {gt.shape}")
            pred, gt = pred[valid], gt[valid]
        self.tp += int(np.sum(pred & gt))
        self.fp += int(np.sum(pred & ~gt))
        self.fn += int(np.sum(~pred & gt))

    def compute(self) -> dict[str, float]:
        """``{"precision", "recall", "f1"}`` from the summed counts."""
        precision = _ratio(self.tp, self.tp + self.fp)
        recall = _ratio(self.tp, self.tp + self.fn)
        return {"precision": precision, "recall": recall, "f1": _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)}
