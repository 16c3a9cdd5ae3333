"""Steering metrics (paper Table IV): plain and weighted MSE, tenfold cross-testing.

- ``mse = mean((y_hat - y)^2)``; the paper's Table IV reports it as training and test error.
- ``weighted_mse = sum(w_i (y_hat_i - y_i)^2) / sum(w_i)`` with ``w_i = exp(lambda |y_i|)``, the training
  objective (paper eq. 5); ``lambda`` is the loss configuration's ``steering_lambda``.
- Tenfold cross-testing (Lechner et al.): the samples of a recording, in time order, are cut into 10 contiguous
  chunks; fold ``k`` trains on the other nine and tests on chunk ``k``. Per-fold errors are summarised as
  mean ± standard deviation over the folds; the standard deviation is the population one (``ddof=0``, numpy's
  default) unless asked otherwise, the paper not saying which.

Values are in the label's units (curvature in 1/m, or radians for steering angles).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from uni_encoder_core.eval.arrays import to_numpy
from uni_encoder_core.losses.steering import weighted_steering_loss


def _pair(pred: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    pred, target = (to_numpy(x, np.float64).reshape(-1) for x in (pred, target))
    if pred.shape != target.shape or pred.size == 0:
        raise ValueError(f"need equally many (> 0) predictions and targets, got {pred.size} and {target.size}")
    if not (np.isfinite(pred).all() and np.isfinite(target).all()):
        raise ValueError("steering predictions and targets must be finite")
    return pred, target


def mse(pred: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor) -> float:
    """Mean squared error over all samples."""
    pred, target = _pair(pred, target)
    return float(np.mean((pred - target) ** 2))


def weighted_mse(pred: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor, lam: float) -> float:
    """MSE weighted by ``exp(lam * |target|)`` (sharper curves weigh more); ``lam = 0`` gives :func:`mse`."""
    pred, target = _pair(pred, target)
    return float(weighted_steering_loss(torch.from_numpy(pred), torch.from_numpy(target), lam)[0])


def tenfold_splits(num_samples: int, folds: int = 10) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(train_indices, test_indices)`` per fold; test chunks are contiguous and cover every sample once.

    Chunk sizes differ by at most one (the first ``num_samples % folds`` chunks are one longer).
    """
    if folds < 2 or num_samples < folds:
        raise ValueError(f"need at least 2 folds and one sample per fold, got {folds} folds, {num_samples} samples")
    indices = np.arange(num_samples)
    for test in np.array_split(indices, folds):
        yield np.concatenate([indices[: test[0]], indices[test[-1] + 1:]]), test


@dataclass(frozen=True)
class MeanStd:
    """Mean and standard deviation of per-fold errors."""

    mean: float
    std: float

    def __str__(self) -> str:
        return f"{self.mean:.2f} ± {self.std:.2f}"


def summarize_folds(values: Sequence[float] | np.ndarray, ddof: int = 0) -> MeanStd:
    """Mean ± standard deviation of per-fold values (population std by default)."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if values.size <= ddof:
        raise ValueError(f"need more than {ddof} fold values, got {values.size}")
    return MeanStd(float(values.mean()), float(values.std(ddof=ddof)))
