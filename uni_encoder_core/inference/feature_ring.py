"""The feature ring: per-frame encoder features of the last ``window`` frames, so no frame is encoded twice."""

from __future__ import annotations

import torch


class FeatureRing:
    """Fixed ``capacity`` slots of per-frame encoder features (every scale), allocated once on the first push."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.slots: list[torch.Tensor] = []  # per scale: capacity x C x h x w
        self.head = 0  # next slot to write
        self.count = 0

    def clear(self) -> None:
        """Forget every frame (the buffers stay allocated)."""
        self.head = self.count = 0

    def release(self) -> None:
        """Drop the buffers themselves (device memory is freed)."""
        self.slots, self.head, self.count = [], 0, 0

    def __len__(self) -> int:
        return self.count

    def push(self, feats: list[torch.Tensor]) -> None:
        """Store one frame's features (each 1xCxhxw) in the oldest slot."""
        if not self.slots:
            self.slots = [torch.empty((self.capacity, *f.shape[1:]), dtype=f.dtype, device=f.device) for f in feats]
        for slot, f in zip(self.slots, feats):
            slot[self.head].copy_(f[0])
        self.head = (self.head + 1) % self.capacity
        self.count = min(self.count + 1, self.capacity)

    def frame(self, age: int) -> list[torch.Tensor]:
        """Features of the frame pushed ``age`` pushes ago (0 = newest), each 1xCxhxw."""
        if age >= self.count:
            raise IndexError(f"the ring holds {self.count} frames, asked for age {age}")
        index = (self.head - 1 - age) % self.capacity
        return [slot[index : index + 1] for slot in self.slots]

    def window(self) -> torch.Tensor:
        """Coarsest features of the full window, oldest first: 1 x capacity x C x h x w."""
        slots = self.slots[-1]
        return torch.cat([slots[self.head :], slots[: self.head]])[None]
