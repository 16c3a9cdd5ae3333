"""A run's checkpoints on disk: resumable step checkpoints, the best weights, the stage's final weights.

Layout of a run directory ``OUT``::

    OUT/checkpoints/step_0001000.pt   everything to continue the run (the newest ``keep_last`` are kept)
    OUT/best.pt                       weights with the lowest held-out total loss so far
    OUT/final.pt                      weights at the end of the stage (what the next stage's ``init_from`` reads)
    OUT/recipe.yaml                   the recipe the run uses; OUT/tensorboard/ the logged scalars and panels

Every file is a uni-encoder checkpoint (``models.checkpoint``: written atomically, read with
``weights_only=True``). A step checkpoint adds the step, the optimizer, scheduler and gradient-scaler states,
the extra trainable state of the objective (the contrastive logit scale), every rank's random states, the data
streams' positions, the recipe and the best loss so far. Every problem is a :class:`CheckpointError` that names
the file and what is wrong.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from uni_encoder_core.config import ModelConfig, StageConfig
from uni_encoder_core.config_yaml import to_dict
from uni_encoder_core.models.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_state,
    read_checkpoint,
    save_checkpoint,
)
from uni_encoder_core.models.teacher import Teacher
from uni_encoder_core.models.unified import MultiTaskModel

STEP_FILE = re.compile(r"^step_(\d{7,})\.pt$")
RESUME_KEYS = ("step", "optimizer", "scheduler", "scaler", "objective", "rng", "data", "recipe", "best_loss")
NOT_COMPARED_ON_RESUME = ("out_dir",)


def step_path(out_dir: Path, step: int) -> Path:
    """``OUT/checkpoints/step_<step, 7 digits>.pt``."""
    return out_dir / "checkpoints" / f"step_{step:07d}.pt"


def step_checkpoints(out_dir: Path) -> list[tuple[int, Path]]:
    """The step checkpoints of a run directory as ``(step, path)``, oldest first."""
    folder = out_dir / "checkpoints"
    found = [(int(m.group(1)), p) for p in folder.glob("step_*.pt") if (m := STEP_FILE.match(p.name))]
    return sorted(found)


def prune(out_dir: Path, keep_last: int) -> None:
    """Delete all but the newest ``keep_last`` step checkpoints."""
    for _, path in step_checkpoints(out_dir)[:-keep_last]:
        path.unlink(missing_ok=True)


def rng_state(loop_rng: random.Random) -> dict[str, Any]:
    """This process's random states: torch (CPU and every CUDA device), numpy's global one and the loop's own."""
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "loop": [loop_rng.getstate()[0], list(loop_rng.getstate()[1]), loop_rng.getstate()[2]],
    }


def restore_rng(state: dict[str, Any], loop_rng: random.Random) -> None:
    """Undo :func:`rng_state`: the process continues with exactly the saved random streams."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    version, keys, gauss = state["loop"]
    loop_rng.setstate((version, tuple(keys), gauss))


def save_step(path: Path, model: MultiTaskModel, **state: Any) -> None:
    """Write a resumable step checkpoint; ``state`` holds every key of :data:`RESUME_KEYS`."""
    missing = sorted(set(RESUME_KEYS) - set(state))
    if missing:
        raise ValueError(f"a step checkpoint needs {missing}")
    save_checkpoint(model, path, **state)


def check_model(payload: dict[str, Any], path: Path, kind: str, cfg: ModelConfig) -> None:
    """Refuse a checkpoint of another network kind or another model configuration (naming what differs)."""
    if payload["kind"] != kind:
        raise CheckpointError(f"{path}: holds a {payload['kind']}, this stage trains a {kind}")
    stored, own = payload.get("model_config") or {}, to_dict(cfg)
    stored = {**stored, "encoder": {**stored.get("encoder", {}), "pretrained": None}}
    own = {**own, "encoder": {**own["encoder"], "pretrained": None}}
    differ = sorted(k for k in set(stored) | set(own) if stored.get(k) != own.get(k))
    if differ:
        raise CheckpointError(f"{path}: model configuration differs from the recipe's in {differ}")


def load_init(path: str | Path, model: MultiTaskModel) -> int:
    """Start ``model`` from the weights of checkpoint ``path`` (same kind and model configuration).

    Returns the step stored in the file (0 when none). Raises :class:`CheckpointError`.
    """
    path = Path(path)
    payload = read_checkpoint(path)
    check_model(payload, path, type(model).__name__, model.cfg)
    load_state(model, payload["state_dict"], str(path))
    return int(payload.get("step", 0))


def load_teacher(path: str | Path) -> Teacher:
    """The frozen teacher of distillation from ``path`` (opened read-only, eval mode, no gradients)."""
    teacher = load_checkpoint(path)
    if not isinstance(teacher, Teacher):
        raise CheckpointError(f"{path}: distillation needs a Teacher checkpoint, this one holds a "
                              f"{type(teacher).__name__}")
    return teacher.requires_grad_(False).eval()


def load_resume(out_dir: Path, stage: StageConfig, model: MultiTaskModel) -> dict[str, Any]:
    """The newest step checkpoint of ``out_dir``, its weights loaded into ``model``; the rest of the payload is
    returned for the loop to restore. Refuses a run directory without one, an unreadable file, another
    network or model configuration, or a recipe that differs (naming the keys)."""
    found = step_checkpoints(out_dir)
    if not found:
        raise CheckpointError(f"{out_dir / 'checkpoints'}: no step checkpoint to resume from")
    path = found[-1][1]
    payload = read_checkpoint(path)
    missing = sorted(set(RESUME_KEYS) - set(payload))
    if missing:
        raise CheckpointError(f"{path}: not a resumable step checkpoint (lacks {missing})")
    check_model(payload, path, type(model).__name__, model.cfg)
    saved, own = payload["recipe"], to_dict(stage)
    differ = sorted(k for k in set(saved) | set(own)
                    if k not in NOT_COMPARED_ON_RESUME and saved.get(k) != own.get(k))
    if differ == ["steps"]:  # the learning-rate schedule is laid out over the run's length
        raise CheckpointError(f"{path}: the run was started for {saved['steps']} steps and resume continues that "
                              f"schedule; drop --steps (or give --steps {saved['steps']}), or start a new run from it "
                              f"with --init {path} --out NEW_DIR")
    if differ:
        raise CheckpointError(f"{path}: was written by a different recipe (keys {differ} differ); resume needs the "
                              f"same recipe")
    load_state(model, payload["state_dict"], str(path))
    payload["path"] = path
    return payload
