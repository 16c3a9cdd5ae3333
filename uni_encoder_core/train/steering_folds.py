"""Tenfold contiguous cross-testing of a frame sequence (Lechner et al.'s protocol, paper §IV-D).

The ``N`` frames of a recording, in time order, are cut into ``folds`` contiguous chunks whose sizes differ by
at most one (the first ``N % folds`` are one frame longer, as ``numpy.array_split`` and
``eval.steering.tenfold_splits``). Fold ``k`` tests on chunk ``k`` and trains on the frames before and after it.

A window is named by its newest frame ``e`` and covers frames ``e - window + 1 .. e``; its label is the curvature
at ``e``. Test windows lie inside the test chunk (every possible window, stride 1); training windows lie inside
one of the two training runs (before / after the test chunk, every ``train_stride``-th window), so no window holds
frames of both the training and the test part.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


def contiguous_chunks(num_frames: int, folds: int = 10) -> list[range]:
    """``folds`` contiguous chunks covering ``0..num_frames-1``; sizes differ by at most one, longer ones first.

    Raises ``ValueError`` for fewer than 2 folds or fewer frames than folds.
    """
    if folds < 2 or num_frames < folds:
        raise ValueError(f"need at least 2 folds and one frame per fold, got {folds} folds, {num_frames} frames")
    base, extra = divmod(num_frames, folds)
    starts = np.cumsum([0] + [base + (k < extra) for k in range(folds)])
    return [range(int(a), int(b)) for a, b in zip(starts[:-1], starts[1:])]


def window_ends(frames: range, window: int, stride: int = 1) -> np.ndarray:
    """Newest-frame indices of the windows of ``window`` frames inside ``frames``, every ``stride``-th one (int64)."""
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be >= 1, got window={window}, stride={stride}")
    return np.arange(frames.start + window - 1, frames.stop, stride, dtype=np.int64)


def window_frames(ends: np.ndarray | torch.Tensor, window: int) -> torch.Tensor:
    """Window ends ``(B,)`` -> frame indices ``BxT`` (oldest first, the newest = the end)."""
    ends = torch.as_tensor(np.asarray(ends), dtype=torch.long)
    return ends[:, None] - torch.arange(window - 1, -1, -1, dtype=torch.long)


@dataclass(frozen=True)
class Fold:
    """One fold: the test chunk, the training runs around it and the window ends of each part."""

    index: int
    test: range
    train: tuple[range, ...]
    train_ends: np.ndarray
    test_ends: np.ndarray


def cross_testing_folds(num_frames: int, window: int, folds: int = 10, train_stride: int = 1) -> list[Fold]:
    """The folds of a ``num_frames`` recording for windows of ``window`` frames.

    Raises ``ValueError`` when a chunk is shorter than one window (a fold without test windows).
    """
    chunks = contiguous_chunks(num_frames, folds)
    if len(chunks[-1]) < window:
        raise ValueError(f"{num_frames} frames in {folds} chunks give chunks of {len(chunks[-1])} frames, fewer than "
                         f"one window of {window}: use more frames or fewer folds")
    out = []
    for k, test in enumerate(chunks):
        runs = tuple(r for r in (range(0, test.start), range(test.stop, num_frames)) if len(r))
        train_ends = np.concatenate([window_ends(r, window, train_stride) for r in runs])
        out.append(Fold(k, test, runs, train_ends, window_ends(test, window)))
    return out
