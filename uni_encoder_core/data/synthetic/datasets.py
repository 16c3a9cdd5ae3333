"""Torch data sets over the synthetic world, giving the same samples as the real-data loaders.

Frames are rendered on demand (a few tens of milliseconds each) and the most recent ones are kept, so
reading a sequence in order renders every frame once. Each DataLoader worker holds its own copy.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
from torch.utils.data import Dataset

from uni_encoder_core.data.samples import SegmentationSample, SteeringWindow, TripletSample
from uni_encoder_core.data.synthetic.world import SyntheticFrame, SyntheticWorld, WorldConfig


def image_tensor(rgb: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 -> 3xHxW float32 in [0, 1]."""
    return torch.from_numpy(rgb).permute(2, 0, 1).float().div_(255.0)


class _FrameSource(Dataset):
    """A world plus a small cache of its most recently rendered frames."""

    def __init__(self, cfg: WorldConfig | SyntheticWorld, cache_size: int = 32):
        self.world = cfg if isinstance(cfg, SyntheticWorld) else SyntheticWorld(cfg)
        self._cache: OrderedDict[int, SyntheticFrame] = OrderedDict()
        self._cache_size = cache_size

    def frame(self, i: int) -> SyntheticFrame:
        """Frame ``i`` of the world (rendered at most once while it stays in the cache)."""
        if i in self._cache:
            self._cache.move_to_end(i)
            return self._cache[i]
        frame = self.world.frame(i)
        self._cache[i] = frame
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return frame

    def _index(self, index: int) -> int:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} outside 0..{len(self) - 1}")
        return index


class SyntheticTripletDataset(_FrameSource):
    """Frame triplets (default offsets -1, 0, +1) with the world's exact depth, poses, scene flow and motion."""

    def __init__(self, cfg: WorldConfig | SyntheticWorld, offsets: tuple[int, ...] = (-1, 0, 1)):
        super().__init__(cfg)
        if 0 not in offsets:
            raise ValueError(f"offsets must contain 0 (the target frame), got {offsets}")
        self.offsets = tuple(offsets)

    def __len__(self) -> int:
        return max(self.world.cfg.num_frames - (max(self.offsets) - min(self.offsets)), 0)

    def __getitem__(self, index: int) -> TripletSample:
        t = self._index(index) - min(self.offsets)
        target = self.frame(t)
        frames = [self.frame(t + o) for o in self.offsets]
        to_source = [np.linalg.inv(f.T_world_cam) @ target.T_world_cam for f in frames]
        flows = [self.world.scene_flow(t, t + o, target.depth, target.instance) for o in self.offsets]
        return TripletSample(
            images=torch.stack([image_tensor(f.rgb) for f in frames]),
            K=torch.from_numpy(target.K).float(),
            offsets=self.offsets,
            depth=torch.from_numpy(target.depth)[None],
            T_target_to_source=torch.from_numpy(np.stack(to_source)).float(),
            scene_flow=torch.from_numpy(np.stack(flows)).permute(0, 3, 1, 2).contiguous(),
            motion_mask=torch.from_numpy(target.motion_mask)[None].float(),
        )


class SyntheticSegmentationDataset(_FrameSource):
    """Every frame with its semantic, instance and panoptic labels."""

    def __len__(self) -> int:
        return self.world.cfg.num_frames

    def __getitem__(self, index: int) -> SegmentationSample:
        f = self.frame(self._index(index))
        return SegmentationSample(
            image=image_tensor(f.rgb),
            semantic=torch.from_numpy(f.semantic).long(),
            instance=torch.from_numpy(f.instance).long(),
            panoptic=torch.from_numpy(f.panoptic).long(),
        )


class SyntheticSteeringDataset(_FrameSource):
    """Windows of ``window`` consecutive frames (every ``stride`` frames) with the path curvature per frame."""

    def __init__(self, cfg: WorldConfig | SyntheticWorld, window: int = 16, stride: int = 1):
        super().__init__(cfg, cache_size=max(32, 2 * window))
        if window < 1 or stride < 1:
            raise ValueError(f"window and stride must be >= 1, got window={window}, stride={stride}")
        self.window, self.stride = window, stride

    def __len__(self) -> int:
        return max((self.world.cfg.num_frames - self.window) // self.stride + 1, 0)

    def __getitem__(self, index: int) -> SteeringWindow:
        start = self._index(index) * self.stride
        frames = [self.frame(i) for i in range(start, start + self.window)]
        return SteeringWindow(
            images=torch.stack([image_tensor(f.rgb) for f in frames]),
            curvature=torch.tensor([f.curvature for f in frames], dtype=torch.float32),
            stamps=torch.tensor([f.stamp for f in frames], dtype=torch.float64),
        )
