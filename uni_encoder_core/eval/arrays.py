"""Array input of the metrics: numpy arrays, torch tensors (any device) or nested sequences."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch


def to_numpy(x: npt.ArrayLike | torch.Tensor, dtype: npt.DTypeLike = None) -> np.ndarray:
    """``x`` as a numpy array (tensors detached and moved to the CPU), converted to ``dtype`` when given."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)
