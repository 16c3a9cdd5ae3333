"""Per-frame encoder features of a frame sequence, computed once and cached on disk for a frozen encoder.

The cache file is named by a SHA-256 key over everything the features depend on: the encoder's weights (names,
dtypes, shapes and bytes of its state dict: a changed checkpoint, random seed or ImageNet file gives another
key), the network input size and crop, the stored dtype, and the data (the sequence's identity, its curvature and
stamps, and the bytes of its first and last frames, so a changed file or renderer is noticed too). Files are
written atomically and read with ``weights_only=True``; an unreadable or mismatched file is recomputed.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from uni_encoder_core.atomic_io import atomic_writer
from uni_encoder_core.data.sequences import FrameSequence
from uni_encoder_core.data.synthetic.datasets import image_tensor
from uni_encoder_core.inference.pipeline import preprocess

CACHE_VERSION = 1
log = logging.getLogger(__name__)


def weights_digest(module: nn.Module) -> str:
    """SHA-256 (hex) of a module's state dict: every entry's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for name, value in sorted(module.state_dict().items()):
        value = value.detach().cpu().contiguous()
        h.update(f"{name}|{value.dtype}|{tuple(value.shape)}|".encode())
        h.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def data_digest(sequence: FrameSequence) -> str:
    """SHA-256 (hex) of the sequence's identity, labels, stamps and first and last frames."""
    h = hashlib.sha256(sequence.identity.encode())
    for array in (sequence.curvature, sequence.stamps, sequence.image(0), sequence.image(len(sequence) - 1)):
        array = np.ascontiguousarray(array)
        h.update(f"|{array.dtype}|{array.shape}|".encode())
        h.update(array.tobytes())
    return h.hexdigest()


def network_frames(sequence: FrameSequence, indices, size: tuple[int, int], crop_bottom: float) -> torch.Tensor:
    """Frames ``indices`` preprocessed as at inference (bottom crop, resize to ``size``): ``Bx3xHxW`` in [0, 1]."""
    return torch.stack([image_tensor(preprocess(sequence.image(int(i)), crop_bottom, size)[0]) for i in indices])


@torch.no_grad()
def encode_frames(encode: Callable[[torch.Tensor], torch.Tensor], frames: Callable[[np.ndarray], torch.Tensor],
                  num_frames: int, batch: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Features ``NxCxhxw`` (on the CPU, ``dtype``) of all frames, ``batch`` frames per ``encode`` call.

    ``frames(indices)`` gives ``Bx3xHxW`` images in [0, 1]; ``encode`` maps them to ``BxCxhxw`` features.
    """
    out = [encode(frames(idx).to(device)).to("cpu", dtype) for idx in np.array_split(
        np.arange(num_frames), max(1, -(-num_frames // batch)))]
    return torch.cat(out)


def cache_key(encoder: nn.Module, sequence: FrameSequence, size: tuple[int, int], crop_bottom: float,
              dtype: torch.dtype) -> str:
    """The key of the features of ``encoder`` over ``sequence`` at input ``size`` (H, W) and ``crop_bottom``."""
    parts = [f"v{CACHE_VERSION}", weights_digest(encoder), data_digest(sequence), f"{size}", f"{crop_bottom!r}",
             str(dtype)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def _read(path: Path, key: str, num_frames: int) -> torch.Tensor | None:
    """The cached features at ``path`` if the file is readable and holds ``key`` for ``num_frames`` frames."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is recomputed
        log.warning("feature cache %s is unreadable (%s); recomputing", path, exc)
        return None
    payload = payload if isinstance(payload, dict) else {}
    features = payload.get("features")
    if payload.get("key") != key or not isinstance(features, torch.Tensor) or len(features) != num_frames:
        log.warning("feature cache %s does not hold the expected features; recomputing", path)
        return None
    return features


def cached_features(encoder: nn.Module, encode: Callable[[torch.Tensor], torch.Tensor], sequence: FrameSequence,
                    cache_dir: str | Path, size: tuple[int, int], crop_bottom: float, batch: int,
                    device: torch.device, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, bool]:
    """``(features NxCxhxw on the CPU, whether they came from the cache)`` for a frozen ``encoder``.

    ``encode`` maps preprocessed ``Bx3xHxW`` images in [0, 1] to the features to cache (e.g. the coarsest map of
    the model's encoder, which is ``encoder``); it runs only on a cache miss.
    """
    key = cache_key(encoder, sequence, size, crop_bottom, dtype)
    path = Path(cache_dir) / f"features-{key[:32]}.pt"
    if path.is_file():
        features = _read(path, key, len(sequence))
        if features is not None:
            return features, True
    features = encode_frames(encode, lambda idx: network_frames(sequence, idx, size, crop_bottom), len(sequence),
                             batch, device, dtype)
    with atomic_writer(path, "wb") as fh:
        torch.save({"key": key, "identity": sequence.identity, "features": features}, fh)
    return features, False
