"""Checkpoints: weights plus the model configuration that built them, read with ``weights_only=True``.

Loading checks, in this order, so that a bad file fails with one line naming it before anything large is
allocated: the file is readable and a PyTorch zip archive; it unpickles with ``weights_only=True``; it carries our
header; its embedded ``model_config`` is valid and within :func:`~uni_encoder_core.config_bounds.check_config`'s bounds;
the model that config describes, built without memory on the ``meta`` device, has at most :data:`MAX_PARAMETERS`
parameters and exactly the names and shapes of the stored weights; every stored weight is finite. Only then is
the model built and loaded.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
from pathlib import Path
from typing import Any

import torch

from uni_encoder_core.atomic_io import atomic_writer
from uni_encoder_core.config import EncoderConfig, ModelConfig
from uni_encoder_core.config_yaml import from_dict, to_dict
from uni_encoder_core.errors import ConfigError, UserError
from uni_encoder_core.models.teacher import Teacher
from uni_encoder_core.models.unified import MultiTaskModel, UniEncoder

FORMAT = "uni-encoder-checkpoint"
VERSION = 1
KINDS: dict[str, type[MultiTaskModel]] = {"UniEncoder": UniEncoder, "Teacher": Teacher}
ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes a zip archive
MAX_PARAMETERS = 1_000_000_000
"""Largest model (parameters and buffers, 4 GB in fp32) that a checkpoint or ``init`` may ask for; Swin-T's
unified model has about 90 M."""
FIX = "use a checkpoint written by 'uni-encoder init' or training"


class CheckpointError(UserError, RuntimeError):
    """A checkpoint file is missing, unreadable, truncated, not ours, describes a model out of bounds, holds
    non-finite weights, or does not match the model it describes; the message names the file and the fix."""


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


def _check_file(path: Path) -> None:
    """Readable, non-empty, and a zip archive, or :class:`CheckpointError` saying what the file is instead."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: checkpoint file not found; check the path") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path}: is a directory, not a checkpoint file; give the .pt file") from None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({exc.strerror}); check its permissions") from None
    if not head:
        raise CheckpointError(f"{path}: is empty (0 bytes), an interrupted copy or write?; {FIX}")
    if not head.startswith(ZIP_MAGIC):
        try:
            head.decode("utf-8")
            what = "a text file"
        except UnicodeDecodeError:
            what = f"binary data starting {head[:4].hex(' ')}"
        raise CheckpointError(f"{path}: not a checkpoint (a PyTorch zip archive) but {what}; {FIX}")


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The raw checkpoint dictionary, checked for format; raises :class:`CheckpointError` naming the file."""
    path = Path(path)
    _check_file(path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = " ".join(str(exc).split())[:300]
        message = f"{path}: holds objects other than weights, refused by weights_only=True: {reason}; {FIX}"
        raise CheckpointError(message) from None
    except Exception as exc:  # noqa: BLE001 - any byte sequence may reach the unpickler; each is a bad file
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt?): {reason}; {FIX}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a uni-encoder checkpoint (no '{FORMAT}' header); {FIX}")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {payload.get('version')}, this build reads {VERSION}")
    if payload.get("kind") not in KINDS:
        raise CheckpointError(f"{path}: unknown model kind {payload.get('kind')!r} (known: {sorted(KINDS)})")
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()):
        raise CheckpointError(f"{path}: 'state_dict' is not a mapping of names to tensors; {FIX}")
    return payload


def check_finite(state_dict: dict[str, torch.Tensor], source: str = "<state>") -> None:
    """Raise :class:`CheckpointError` naming the first floating-point tensor with NaN or Inf entries."""
    for name, tensor in state_dict.items():
        if tensor.is_floating_point() or tensor.is_complex():
            bad = int((~torch.isfinite(tensor)).sum())
            if bad:
                raise CheckpointError(
                    f"{source}: weight '{name}' has {bad} of {tensor.numel()} entries NaN or Inf (diverged "
                    "training?); use an earlier checkpoint of the run"
                )


def _mismatches(expected: dict[str, torch.Tensor], state_dict: dict[str, torch.Tensor]) -> list[str]:
    """Missing, unexpected and mis-shaped names of ``state_dict`` against ``expected`` (one phrase each kind)."""
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    shapes = [
        f"{k}: {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
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
    return problems


def load_state(model: MultiTaskModel, state_dict: dict[str, torch.Tensor], source: str = "<state>") -> None:
    """Load ``state_dict`` into ``model`` exactly; missing, unexpected or mis-shaped keys raise CheckpointError."""
    problems = _mismatches(model.state_dict(), state_dict)
    if problems:
        raise CheckpointError(f"{source}: weights do not match the model: " + " | ".join(problems))
    model.load_state_dict(state_dict)


def skeleton(kind: type[MultiTaskModel], cfg: ModelConfig, source: str = "<config>") -> MultiTaskModel:
    """``kind(cfg)`` on the ``meta`` device (shapes only, no memory); raises :class:`CheckpointError` when it
    cannot be built or has more than :data:`MAX_PARAMETERS` parameters and buffers."""
    try:
        with torch.device("meta"):
            model = kind(_without_pretrained(cfg))
    except (ValueError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"{source}: the model config cannot be built: {exc}") from None
    count = sum(t.numel() for t in model.state_dict().values())
    if count > MAX_PARAMETERS:
        raise CheckpointError(f"{source}: the model config describes {count / 1e6:,.0f} M parameters, more than "
                              f"the {MAX_PARAMETERS / 1e6:,.0f} M allowed; check its sizes")
    return model


def _without_pretrained(cfg: ModelConfig) -> ModelConfig:
    """``cfg`` with no encoder reading pretrained weights (a checkpoint's own weights replace them)."""
    changes = {f.name: dataclasses.replace(getattr(cfg, f.name), pretrained=None)
               for f in dataclasses.fields(cfg) if isinstance(getattr(cfg, f.name), EncoderConfig)}
    return dataclasses.replace(cfg, **changes)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> MultiTaskModel:
    """Rebuild the model stored at ``path`` (``UniEncoder`` or ``Teacher``) from its embedded config, in eval mode.

    The encoders' ``pretrained`` files are not read (the stored weights replace them). Raises
    :class:`CheckpointError` for every check listed in this module's docstring, before the model is built.
    """
    payload = read_checkpoint(path, map_location)
    try:
        cfg = from_dict(ModelConfig, payload.get("model_config"), source=f"{path} (model_config)")
    except ConfigError as exc:
        raise CheckpointError(f"{path}: embedded model config is invalid: {exc}") from None
    kind, state = KINDS[payload["kind"]], payload["state_dict"]
    expected = skeleton(kind, cfg, f"{path} (model_config)").state_dict()
    problems = _mismatches(expected, state)
    if problems:
        n_cfg, n_file = sum(t.numel() for t in expected.values()), sum(t.numel() for t in state.values())
        raise CheckpointError(
            f"{path}: weights do not match the model its config describes ({n_cfg / 1e6:.3f} M parameters, the "
            f"file holds {n_file / 1e6:.3f} M): " + " | ".join(problems)
        )
    check_finite(state, str(path))
    model = kind(_without_pretrained(cfg))
    model.load_state_dict(state)
    return model.to(map_location).eval()
