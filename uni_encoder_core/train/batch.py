"""The data of one training step: frame triplets for ``L_ssup``/``L_distil``, labelled images for ``L_sup``.

A :class:`TrainBatch` is built from collated samples of ``data.samples`` (any data source); the segmentation task
of every labelled image and the seed of the losses' random draws come from one seeded ``random.Random``, so equal
samples and an equal RNG state give an equal batch.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import Tensor

from uni_encoder_core.config import ModelConfig, SegmentationConfig
from uni_encoder_core.data.samples import SegmentationSample, TripletSample, collate
from uni_encoder_core.data.synthetic import SyntheticSegmentationDataset, SyntheticTripletDataset, WorldConfig
from uni_encoder_core.losses.segmentation import SegmentationTarget, sample_tasks, segmentation_targets

D = TypeVar("D")


def tensors_to(obj: D, device: torch.device | str) -> D:
    """A copy of dataclass ``obj`` with every tensor field moved to ``device`` (other fields shared)."""
    moved = {f.name: getattr(obj, f.name).to(device) for f in dataclasses.fields(obj)
             if isinstance(getattr(obj, f.name), Tensor)}
    return dataclasses.replace(obj, **moved)


@dataclass
class TrainBatch:
    """One step's inputs.

    ``triplets``: collated :class:`TripletSample` (``images`` BxSx3xHxW, ``K`` Bx3x3, ``offsets`` with 0 = target)
    or None; ``labelled``: collated :class:`SegmentationSample` (``image`` Nx3xHxW) or None, with one segmentation
    ``task`` and one OneFormer ``target`` per image; ``seed`` seeds the losses' random draws (auto-mask tie noise,
    RANSAC ground fit) on the batch's device.
    """

    triplets: TripletSample | None = None
    labelled: SegmentationSample | None = None
    tasks: list[str] | None = None
    targets: list[SegmentationTarget] | None = None
    seed: int = 0

    @classmethod
    def from_samples(
        cls, triplets: list[TripletSample] | None, labelled: list[SegmentationSample] | None,
        seg_cfg: SegmentationConfig, rng: random.Random,
    ) -> TrainBatch:
        """Collate the samples, draw one task per labelled image (from ``seg_cfg.tasks``) and the loss seed.

        Labelled samples without ``instance`` ids count as having no thing instances. Raises ``ValueError`` for
        samples ``collate`` rejects.
        """
        trip = collate(triplets) if triplets else None
        seg = collate(labelled) if labelled else None
        tasks = targets = None
        if seg is not None:
            tasks = sample_tasks(seg.image.shape[0], list(seg_cfg.tasks), rng)
            instance = seg.instance if seg.instance is not None else torch.zeros_like(seg.semantic)
            targets = segmentation_targets(seg.semantic, instance, tasks, seg_cfg)
        return cls(trip, seg, tasks, targets, seed=rng.randrange(2**31))

    @property
    def frames(self) -> dict[int, Tensor]:
        """Frame offset -> Bx3xHxW images of the triplets (0 = target)."""
        if self.triplets is None:
            raise ValueError("the batch has no frame triplets")
        return {o: self.triplets.images[:, i] for i, o in enumerate(self.triplets.offsets)}

    @property
    def text_ids(self) -> Tensor:
        """The targets' text-query token ids, ``N x num_text x text_context_length``."""
        if not self.targets:
            raise ValueError("the batch has no segmentation targets")
        return torch.stack([t.text_ids for t in self.targets])

    def to(self, device: torch.device | str) -> TrainBatch:
        """A copy with every tensor on ``device``."""
        return dataclasses.replace(
            self,
            triplets=None if self.triplets is None else tensors_to(self.triplets, device),
            labelled=None if self.labelled is None else tensors_to(self.labelled, device),
            targets=None if self.targets is None else [tensors_to(t, device) for t in self.targets],
        )


def synthetic_batch(cfg: ModelConfig, size: int, seed: int) -> TrainBatch:
    """``size`` frame triplets (offsets -1, 0, 1) and the ``size`` target frames as labelled images, rendered from
    the synthetic world ``seed`` at the model's input size (``size + 2`` frames are rendered)."""
    if size < 1:
        raise ValueError(f"a batch needs at least one sample, got size {size}")
    world = WorldConfig(seed=seed, height=cfg.height, width=cfg.width, num_frames=size + 2)
    triplets = SyntheticTripletDataset(world)
    labelled = SyntheticSegmentationDataset(triplets.world)
    return TrainBatch.from_samples([triplets[i] for i in range(size)], [labelled[i + 1] for i in range(size)],
                                   cfg.segmentation, random.Random(seed))
