"""Frame sequences for the steering stage: one recording's camera frames in time order with the driven path's curvature.

A :class:`FrameSequence` is what the steering cross-testing reads: ``len(seq)`` frames, ``seq.image(i)`` (HxWx3
uint8 RGB), ``seq.curvature`` (N, 1/m, + = left) and ``seq.stamps`` (N, s), plus an ``identity`` string that names
the data (a cache of encoder features is keyed by it). :func:`open_sequence` builds one from a
:class:`SteeringDataConfig`: the synthetic world's drive or one lane-keeping HDF5 recording.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import h5py
import numpy as np

from uni_encoder_core.data.lane_keeping import read_labels
from uni_encoder_core.data.synthetic.world import SyntheticWorld, WorldConfig


class FrameSequence(ABC):
    """A recording: frames ``0..N-1`` in time order, the path curvature and the stamp of each.

    Subclasses set ``curvature`` and ``stamps`` (float64 arrays of shape ``(N,)``) and implement ``image``
    and ``identity``.
    """

    curvature: np.ndarray
    stamps: np.ndarray

    def __len__(self) -> int:
        return len(self.curvature)

    @abstractmethod
    def image(self, index: int) -> np.ndarray:
        """Frame ``index`` as HxWx3 uint8 RGB; raises ``IndexError`` outside ``0..N-1``."""

    @property
    @abstractmethod
    def identity(self) -> str:
        """A string naming the data exactly (same string = same frames and labels)."""

    def check(self) -> None:
        """Raise ``ValueError`` unless curvature and stamps are finite, equally long, and stamps increase."""
        if self.curvature.shape != self.stamps.shape or self.curvature.ndim != 1:
            raise ValueError(f"{self.identity}: curvature {self.curvature.shape} and stamps {self.stamps.shape} "
                             f"must be equally long 1-D arrays")
        if not (np.isfinite(self.curvature).all() and np.isfinite(self.stamps).all()):
            raise ValueError(f"{self.identity}: curvature and stamps must be finite")
        if np.any(np.diff(self.stamps) <= 0):
            raise ValueError(f"{self.identity}: stamps must increase strictly (frames in time order)")


class SyntheticFrameSequence(FrameSequence):
    """The synthetic world's drive: frame ``i`` is ``SyntheticWorld.frame(i)``, labelled with its path curvature."""

    def __init__(self, cfg: WorldConfig):
        self.world = SyntheticWorld(cfg)
        n = cfg.num_frames
        self.curvature = np.array([self.world.curvature(i) for i in range(n)], dtype=np.float64)
        self.stamps = np.array([self.world.stamp(i) for i in range(n)], dtype=np.float64)

    def image(self, index: int) -> np.ndarray:
        """Rendered RGB of frame ``index`` (HxWx3 uint8)."""
        if not 0 <= index < len(self):
            raise IndexError(f"frame {index} outside 0..{len(self) - 1}")
        return self.world.frame(index).rgb

    @property
    def identity(self) -> str:
        """``synthetic:`` and the world configuration as JSON (it defines every frame)."""
        return "synthetic:" + json.dumps(dataclasses.asdict(self.world.cfg), sort_keys=True)


class LaneKeepingFrameSequence(FrameSequence):
    """One lane-keeping HDF5 recording (layout in ``docs/data_formats.md``; checked by ``read_labels``)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.curvature, self.stamps = read_labels(self.path)
        self._file: h5py.File | None = None

    def image(self, index: int) -> np.ndarray:
        """Stored RGB of frame ``index`` (HxWx3 uint8)."""
        if not 0 <= index < len(self):
            raise IndexError(f"frame {index} outside 0..{len(self) - 1}")
        if self._file is None:
            self._file = h5py.File(self.path, "r")
        return self._file["images"][index]

    @property
    def identity(self) -> str:
        """``lane_keeping:``, the file name and a digest of its labels, stamps and first and last frames."""
        digest = hashlib.sha256(self.curvature.tobytes() + self.stamps.tobytes())
        digest.update(self.image(0).tobytes() + self.image(len(self) - 1).tobytes())
        return f"lane_keeping:{self.path.name}:{digest.hexdigest()[:16]}"


@dataclass
class SteeringDataConfig:
    """The recording the steering stage cross-tests on.

    ``kind: synthetic`` drives through the world ``synthetic``; ``lane_keeping`` reads the HDF5 recording
    ``root`` (e.g. written by ``uni-encoder dataset from-bag``). ``crop_bottom``: fraction of image rows removed
    at the bottom before resizing to the model's input (as the inference pipeline does).
    """

    kind: Literal["synthetic", "lane_keeping"] = "synthetic"
    root: str = ""
    crop_bottom: float = 0.0
    synthetic: WorldConfig = field(default_factory=WorldConfig)


def open_sequence(cfg: SteeringDataConfig) -> FrameSequence:
    """The frame sequence ``cfg`` names; raises ``ValueError`` (or ``DataError`` naming the file) for bad data."""
    if cfg.kind == "synthetic":
        sequence = SyntheticFrameSequence(cfg.synthetic)
    elif not cfg.root:
        raise ValueError("steering data kind 'lane_keeping' needs root: the HDF5 recording to cross-test on")
    else:
        sequence = LaneKeepingFrameSequence(cfg.root)
    sequence.check()
    return sequence
