"""Weighted steering loss ``L_pred`` (paper eq. 5): rare large curvatures weigh more."""

from __future__ import annotations

import torch
from torch import Tensor


def weighted_steering_loss(prediction: Tensor, target: Tensor, lam: float) -> tuple[Tensor, dict[str, Tensor]]:
    """``sum_i w_i (y_hat_i - y_i)^2 / sum_i w_i`` with ``w_i = exp(lam * |y_i|)`` over all elements.

    ``prediction`` and ``target`` have the same shape (curvatures, 1/m). ``lam = 0`` gives the plain MSE.
    Returns (loss, ``weighted_mse``/``mse`` terms, detached).
    """
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ in shape")
    if prediction.numel() == 0:
        raise ValueError("weighted_steering_loss needs at least one sample")
    target = target.detach()
    weights = torch.exp(lam * target.abs())
    squared = (prediction - target) ** 2
    loss = (weights * squared).sum() / weights.sum()
    return loss, {"weighted_mse": loss.detach(), "mse": squared.mean().detach()}
