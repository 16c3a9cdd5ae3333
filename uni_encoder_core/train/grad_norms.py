"""Per-task gradient norms on the shared encoder: how hard each loss group pulls on the features all tasks share.

For each loss group of the objective (``sup``, ``ssup``, ``distil``) the L2 norm of ``d L_group / d theta`` over
the encoder's trainable parameters, unweighted (the group's weight in eq. 4 set to 1, the others to 0), from one
forward pass per group. Costs ``len(groups)`` extra forward and backward passes: the loop calls it only every
log period.
"""

from __future__ import annotations

import contextlib
import dataclasses

import torch

from uni_encoder_core.train.batch import TrainBatch
from uni_encoder_core.train.objective import TrainingObjective

GROUP_WEIGHTS = {"sup": "sup_weight", "ssup": "ssup_weight", "distil": "distil_weight"}


def encoder_grad_norms(objective: TrainingObjective, batch: TrainBatch,
                       autocast: contextlib.AbstractContextManager | None = None) -> dict[str, float]:
    """``{group: ||d L_group / d encoder||_2}`` on ``batch``; empty when the encoder is frozen.

    Leaves the parameters' ``.grad`` untouched (``torch.autograd.grad``).
    """
    params = [p for p in objective.model.encoder.parameters() if p.requires_grad]
    if not params:
        return {}
    base = objective.loss_cfg
    norms = {}
    try:
        for group in objective.losses:
            objective.loss_cfg = dataclasses.replace(base, **{w: float(g == group) for g, w in GROUP_WEIGHTS.items()})
            with autocast or contextlib.nullcontext():
                total = objective(batch)["total"]
            grads = torch.autograd.grad(total, params, allow_unused=True)
            squares = [g.float().pow(2).sum() for g in grads if g is not None]
            norms[group] = float(torch.stack(squares).sum().sqrt()) if squares else 0.0
    finally:
        objective.loss_cfg = base
    return norms
