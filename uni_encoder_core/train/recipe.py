"""Training recipes: one YAML file per stage (:class:`StageConfig`: what trains, on which data, with which losses,
for how long).

A recipe is read with the same strict loader as every other configuration (unknown keys and wrong types are
named with their dotted key), then :func:`check_stage` rejects combinations that cannot train: unknown model
parts or loss groups, distillation without a teacher, periods that are not positive, a schedule out of range.
Paths in a recipe (``model``, ``out_dir``, ``init_from``, ``teacher``) are relative to the
directory the command runs in (the repository root for the shipped recipes).
"""

from __future__ import annotations

import os

from uni_encoder_core.config import StageConfig
from uni_encoder_core.config_yaml import load_config, read_yaml
from uni_encoder_core.errors import ConfigError
from uni_encoder_core.models.teacher import Teacher
from uni_encoder_core.models.unified import UniEncoder
from uni_encoder_core.train.objective import LOSSES

NETWORKS = {"student": UniEncoder, "teacher": Teacher}
"""Recipe ``network`` -> the model class it trains."""


def _fail(source: str, key: str, message: str) -> ConfigError:
    return ConfigError(f"{source}: key '{key}' {message}")


def check_stage(cfg: StageConfig, source: str = "<recipe>") -> StageConfig:
    """Reject a recipe that cannot train, naming the key; returns ``cfg``. Raises :class:`ConfigError`."""
    parts = NETWORKS[cfg.network].parts
    unknown = sorted(set(cfg.trainable) - set(parts))
    if unknown or not cfg.trainable:
        raise _fail(source, "trainable", f"lists unknown parts {unknown} of the {cfg.network}; known: {list(parts)}"
                    if unknown else "is empty: a stage must train at least one part")
    bad_losses = sorted(set(cfg.losses) - set(LOSSES))
    if bad_losses or not cfg.losses:
        raise _fail(source, "losses", f"lists unknown loss groups {bad_losses}; known: {list(LOSSES)}"
                    if bad_losses else "is empty: a stage must use at least one loss group")
    if "distil" in cfg.losses and (cfg.network != "student" or not cfg.teacher):
        raise _fail(source, "losses", "has 'distil', which needs network 'student' and a 'teacher' checkpoint")
    if cfg.teacher and "distil" not in cfg.losses:
        raise _fail(source, "teacher", "is set but 'distil' is not in 'losses'")
    for key in ("steps", "log_every", "image_every", "validate_every", "validation_batches", "checkpoint_every",
                "keep_last", "max_nonfinite"):
        if getattr(cfg, key) < 1:
            raise _fail(source, key, f"must be >= 1, got {getattr(cfg, key)}")
    if "sup" in cfg.losses and cfg.batch_labelled < 1:
        raise _fail(source, "batch_labelled", f"must be >= 1 when 'sup' is a loss, got {cfg.batch_labelled}")
    if {"ssup", "distil"} & set(cfg.losses) and cfg.batch_triplets < 1:
        raise _fail(source, "batch_triplets", f"must be >= 1 with 'ssup' or 'distil', got {cfg.batch_triplets}")
    if not cfg.lr > 0 or cfg.weight_decay < 0 or not cfg.grad_clip > 0:
        raise _fail(source, "lr", f"lr and grad_clip must be > 0 and weight_decay >= 0, got lr={cfg.lr}, "
                    f"grad_clip={cfg.grad_clip}, weight_decay={cfg.weight_decay}")
    if len(cfg.betas) != 2 or not all(0 <= b < 1 for b in cfg.betas):
        raise _fail(source, "betas", f"must be two numbers in [0, 1), got {cfg.betas}")
    sched = cfg.schedule
    if sched.warmup_steps < 0:
        raise _fail(source, "schedule.warmup_steps", f"must be >= 0, got {sched.warmup_steps}")
    if not (0 < sched.warmup_start_factor <= 1 and 0 <= sched.min_lr_factor <= 1 and 0 < sched.gamma <= 1):
        raise _fail(source, "schedule", "needs 0 < warmup_start_factor <= 1, 0 <= min_lr_factor <= 1, 0 < gamma <= 1")
    if sched.milestones != sorted(set(sched.milestones)) or any(m < 1 for m in sched.milestones):
        raise _fail(source, "schedule.milestones", f"must be positive and strictly increasing, got {sched.milestones}")
    if cfg.data.height != cfg.labelled.height or cfg.data.width != cfg.labelled.width:
        raise _fail(source, "labelled_data", "must have the same height and width as 'data'")
    for key, data in (("data", cfg.data), ("labelled_data", cfg.labelled)):
        shared = sorted(set(data.train_seeds) & set(data.val_seeds))
        if data.kind == "synthetic" and shared:
            raise _fail(source, f"{key}.val_seeds", f"seeds {shared} are in both train_seeds and val_seeds "
                        "(validation must see held-out drives)")
    return cfg


def recipe_kind(path: str | os.PathLike) -> str:
    """``steering_cv`` for a steering cross-testing recipe (top-level ``kind: steering_cv``), else ``stage``."""
    raw = read_yaml(path)
    return raw.get("kind", "stage") if isinstance(raw, dict) else "stage"


def load_stage(path: str | os.PathLike) -> StageConfig:
    """Read and check a recipe file; raises :class:`ConfigError` naming the file and the key."""
    return check_stage(load_config(path, StageConfig), str(path))
