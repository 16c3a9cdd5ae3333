"""The learning-rate schedule of a recipe: linear warm-up, then cosine decay or step decay."""

from __future__ import annotations

import math

import torch

from uni_encoder_core.config import ScheduleConfig


def lr_factor(cfg: ScheduleConfig, step: int, total_steps: int) -> float:
    """Factor of the base learning rate for optimizer step ``step`` (0-based) of ``total_steps``.

    Warm-up: ``warmup_start_factor`` at step 0 rising linearly to 1 at ``warmup_steps``. After it, ``cosine``:
    ``min + (1 - min) * (1 + cos(pi * p)) / 2`` with ``p`` the fraction of the remaining steps done (1 at the
    last step), ``step``: ``gamma ** (number of milestones <= step)``.
    """
    if step < cfg.warmup_steps:
        return cfg.warmup_start_factor + (1.0 - cfg.warmup_start_factor) * step / cfg.warmup_steps
    if cfg.kind == "step":
        return cfg.gamma ** sum(step >= m for m in cfg.milestones)
    span = max(total_steps - 1 - cfg.warmup_steps, 1)
    progress = min((step - cfg.warmup_steps) / span, 1.0)
    return cfg.min_lr_factor + (1.0 - cfg.min_lr_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: ScheduleConfig, total_steps: int
                    ) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` over :func:`lr_factor`; step it once after every optimizer step (skipped ones too)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(cfg, step, total_steps))
