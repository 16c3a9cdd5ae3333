"""Frame sequences for the steering stage: one recording's camera frames in time order with the driven path's curvature.

A :class:`FrameSequence` is what the steering cross-testing reads: ``len(seq)`` frames, ``seq.image(i)`` (HxWx3
uint8 RGB), ``seq.curvature`` (N, 1/m, + = left) and ``seq.stamps`` (N, s), plus an ``identity`` string that names
the data (a cache of encoder features is keyed by it). :func:`open_sequence` builds one from a
:class:`SteeringDataConfig`; the synthetic world is the source available in this build.
"""

from __future__ import annotations

import dataclasses
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

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


@dataclass
class SteeringDataConfig:
    """The recording the steering stage cross-tests on.

    ``kind: synthetic`` drives through the world ``synthetic``; ``lane_keeping`` (an HDF5 recording at ``root``)
    plugs in here once its reader exists. ``crop_bottom``: fraction of image rows removed at the bottom before
    resizing to the model's input (as the inference pipeline does).
    """

    kind: Literal["synthetic", "lane_keeping"] = "synthetic"
    root: str = ""
    crop_bottom: float = 0.0
    synthetic: WorldConfig = field(default_factory=WorldConfig)


def open_sequence(cfg: SteeringDataConfig) -> FrameSequence:
    """The frame sequence ``cfg`` names; raises ``ValueError`` for a kind this build cannot read."""
    if cfg.kind == "synthetic":
        sequence = SyntheticFrameSequence(cfg.synthetic)
    else:
        raise ValueError(f"steering data kind '{cfg.kind}' has no reader in this build (available: synthetic)")
    sequence.check()
    return sequence
