"""One registry of data sets: a recipe's ``data.kind`` names a builder of its train and held-out samples.

A builder takes the recipe's :class:`DataConfig`, the role (``triplets``: :class:`TripletSample` for the
self-supervised tasks, ``labelled``: :class:`SegmentationSample` for segmentation) and the split (``train`` or
``val``) and returns a map-style torch ``Dataset`` of those samples. The training loop only calls
:func:`build_dataset`, so a new data set plugs in with one :func:`register` call and no change to the loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from torch.utils.data import ConcatDataset, Dataset

from uni_encoder_core.config import ConfigError, DataConfig

Role = Literal["triplets", "labelled"]
Split = Literal["train", "val"]
Builder = Callable[[DataConfig, Role, Split], Dataset]

_BUILDERS: dict[str, Builder] = {}


def register(kind: str) -> Callable[[Builder], Builder]:
    """Decorator: make ``builder`` the data set of ``data.kind: <kind>``; a kind is registered once."""

    def add(builder: Builder) -> Builder:
        if kind in _BUILDERS:
            raise ValueError(f"data kind {kind!r} is already registered")
        _BUILDERS[kind] = builder
        return builder

    return add


def known_kinds() -> list[str]:
    """The registered data kinds, sorted."""
    return sorted(_BUILDERS)


def build_dataset(cfg: DataConfig, role: Role, split: Split) -> Dataset:
    """The ``role`` samples of ``split`` from the data set ``cfg.kind``.

    Raises :class:`ConfigError` for an unknown kind or role/split, or an empty data set.
    """
    if cfg.kind not in _BUILDERS:
        raise ConfigError(f"data kind {cfg.kind!r} is not registered; known: {known_kinds()}")
    if role not in ("triplets", "labelled") or split not in ("train", "val"):
        raise ConfigError(f"data role/split must be triplets|labelled and train|val, got {role!r}/{split!r}")
    dataset = _BUILDERS[cfg.kind](cfg, role, split)
    if len(dataset) == 0:
        raise ConfigError(f"data kind {cfg.kind!r} gives no {role} samples for the {split} split")
    return dataset


@register("synthetic")
def synthetic_dataset(cfg: DataConfig, role: Role, split: Split) -> Dataset:
    """Drives of the synthetic world: one world per seed (``train_seeds`` or ``val_seeds``), each of
    ``synthetic_frames`` frames at ``height`` x ``width``; the two seed lists must not share a seed."""
    from uni_encoder_core.data.synthetic import (
        SyntheticSegmentationDataset,
        SyntheticTripletDataset,
        WorldConfig,
    )

    shared = sorted(set(cfg.train_seeds) & set(cfg.val_seeds))
    if shared:
        raise ConfigError(f"synthetic data: seeds {shared} are in both train_seeds and val_seeds (not held out)")
    seeds = cfg.train_seeds if split == "train" else cfg.val_seeds
    if not seeds:
        raise ConfigError(f"synthetic data: no {split}_seeds given")
    worlds = [WorldConfig(seed=s, height=cfg.height, width=cfg.width, num_frames=cfg.synthetic_frames) for s in seeds]
    if role == "triplets":
        return ConcatDataset([SyntheticTripletDataset(w, tuple(cfg.frame_offsets)) for w in worlds])
    return ConcatDataset([SyntheticSegmentationDataset(w) for w in worlds])
