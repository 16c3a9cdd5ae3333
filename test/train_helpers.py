"""Shared by the training tests: the synthetic recipes shrunk to a few tiny frames."""

import dataclasses
from pathlib import Path

from uni_encoder_core.config import StageConfig
from uni_encoder_core.train.recipe import check_stage, load_stage

ROOT = Path(__file__).resolve().parents[1]
SYNTHETIC = ROOT / "training" / "configs" / "synthetic"
NEVER = 10**6  # a period that does not come up in a short test run


def small_stage(name: str, out_dir: Path, **overrides) -> StageConfig:
    """The synthetic recipe ``name`` on one 10-frame drive (one held-out drive), batch 2 + 2, no periodic work."""
    stage = load_stage(SYNTHETIC / f"{name}.yaml")
    stage.model = str(ROOT / stage.model)
    stage.data = dataclasses.replace(stage.data, train_seeds=[0], val_seeds=[1000], synthetic_frames=10)
    stage.out_dir, stage.init_from, stage.teacher = str(out_dir), None, None
    stage.batch_labelled = stage.batch_triplets = 2
    stage.schedule.warmup_steps = 0
    stage.validation_batches = 1
    stage.log_every = stage.image_every = stage.validate_every = stage.checkpoint_every = NEVER
    for key, value in overrides.items():
        setattr(stage, key, value)
    return check_stage(stage, name)
