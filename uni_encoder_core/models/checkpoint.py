"""Checkpoints: weights plus the model configuration that built them, read with ``weights_only=True``."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from uni_encoder_core.atomic_io import atomic_writer
from uni_encoder_core.config import ConfigError, ModelConfig, from_dict, to_dict
from uni_encoder_core.models.teacher import Teacher
from uni_encoder_core.models.unified import MultiTaskModel, UniEncoder

FORMAT = "uni-encoder-checkpoint"
VERSION = 1
KINDS: dict[str, type[MultiTaskModel]] = {"UniEncoder": UniEncoder, "Teacher": Teacher}


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated, not ours, or does not match the model it describes."""


def save_checkpoint(model: MultiTaskModel, path: str | os.PathLike, **extra: Any) -> None:
    """Write ``model`` (weights + its ``ModelConfig``) and ``extra`` entries (e.g. step, optimizer state).

    The file is replaced atomically; ``extra`` values must be loadable with ``weights_only=True``
    (tensors, numbers, strings, lists, dicts).
    """
    reserved = {"format", "version", "kind", "model_config", "state_dict"} & set(extra)
    if reserved:
        raise ValueError(f"extra checkpoint entries may not be named {sorted(reserved)}")
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "kind": type(model).__name__,
        "model_config": to_dict(model.cfg),
        "state_dict": model.state_dict(),
        **extra,
    }
    with atomic_writer(path, "wb") as fh:
        torch.save(payload, fh)


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The raw checkpoint dictionary, checked for format; raises :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = str(exc).strip().splitlines()[0]
        message = f"{path}: holds objects other than weights, refused by weights_only=True: {reason}"
        raise CheckpointError(message) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt?): {exc}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a uni-encoder checkpoint (no '{FORMAT}' header)")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {payload.get('version')}, this build reads {VERSION}")
    if payload.get("kind") not in KINDS:
        raise CheckpointError(f"{path}: unknown model kind {payload.get('kind')!r} (known: {sorted(KINDS)})")
    return payload


def load_state(model: MultiTaskModel, state_dict: dict[str, torch.Tensor], source: str = "<state>") -> None:
    """Load ``state_dict`` into ``model`` exactly; missing, unexpected or mis-shaped keys raise CheckpointError."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = [
        f"{k}: {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
        for k, v in own.items()
        if k in state_dict and state_dict[k].shape != v.shape
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys: {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}")
    if unexpected:
        more = " ..." if len(unexpected) > 8 else ""
        problems.append(f"{len(unexpected)} unexpected keys: {', '.join(unexpected[:8])}{more}")
    if shapes:
        problems.append(f"{len(shapes)} shape mismatches: {'; '.join(shapes[:8])}")
    if problems:
        raise CheckpointError(f"{source}: weights do not match the model: " + " | ".join(problems))
    model.load_state_dict(state_dict)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> MultiTaskModel:
    """Rebuild the model stored at ``path`` (``UniEncoder`` or ``Teacher``) from its embedded config, in eval mode."""
    payload = read_checkpoint(path, map_location)
    try:
        cfg = from_dict(ModelConfig, payload.get("model_config"), source=f"{path} (model_config)")
    except ConfigError as exc:
        raise CheckpointError(f"{path}: embedded model config is invalid: {exc}") from None
    model = KINDS[payload["kind"]](cfg)
    load_state(model, payload["state_dict"], str(path))
    return model.to(map_location).eval()
