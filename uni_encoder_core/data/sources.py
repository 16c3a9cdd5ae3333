"""Data sets by kind for the evaluation and inspection commands: ``(data config, role, split) -> Dataset``.

Kinds and their roles (the sample type each role gives, ``uni_encoder_core.data.samples``):

- ``cityscapes``: ``triplets`` (:class:`TripletSample`), ``labelled`` (:class:`SegmentationSample`),
  ``depth_eval`` (:class:`DepthEvalSample`, ManyDepth protocol);
- ``kitti``: ``triplets``, ``depth_eval`` (Eigen split, lidar ground truth);
- ``lane_keeping``: ``steering`` (:class:`SteeringWindow`);
- ``synthetic``: ``triplets`` (with exact depth, poses, scene flow and motion), ``labelled``, ``steering``. The
  world is the one a ``uni-encoder synth`` folder was rendered from (``root``, its ``meta.json``), or, without a
  root, the world of the split's first seed (``cfg.train_seeds`` for ``train``, else ``cfg.val_seeds``, as the
  training data registry picks them) with ``cfg.synthetic_frames`` frames at ``cfg.height x cfg.width``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch.utils.data import Dataset

from uni_encoder_core.config import ConfigError, DataConfig
from uni_encoder_core.data.cityscapes import build_cityscapes
from uni_encoder_core.data.frames import DataError
from uni_encoder_core.data.kitti import build_kitti
from uni_encoder_core.data.lane_keeping import build_lane_keeping
from uni_encoder_core.data.synthetic import (
    SyntheticSegmentationDataset,
    SyntheticSteeringDataset,
    SyntheticTripletDataset,
    SyntheticWorld,
    WorldConfig,
)
from uni_encoder_core.data.synthetic.stored import read_meta

ROLES: dict[str, tuple[str, ...]] = {
    "cityscapes": ("triplets", "labelled", "depth_eval"),
    "kitti": ("triplets", "depth_eval"),
    "lane_keeping": ("steering",),
    "synthetic": ("triplets", "labelled", "steering"),
}
"""Data kind -> the roles it can give."""


def synthetic_world(cfg: DataConfig, split: str) -> SyntheticWorld:
    """The world of a ``uni-encoder synth`` folder (``cfg.root``) or, without a root, of the split's first seed."""
    if cfg.root:
        try:
            return SyntheticWorld(WorldConfig(**read_meta(cfg.root)["world"]))
        except (TypeError, ValueError) as exc:
            raise DataError(f"{Path(cfg.root) / 'meta.json'}: invalid world configuration ({exc})") from None
    seeds = cfg.train_seeds if split == "train" else cfg.val_seeds
    if not seeds:
        raise ConfigError(f"synthetic data: no {'train' if split == 'train' else 'val'}_seeds for the {split} split")
    return SyntheticWorld(WorldConfig(seed=seeds[0], height=cfg.height, width=cfg.width,
                                      num_frames=cfg.synthetic_frames))


def build_synthetic(cfg: DataConfig, role: str, split: str) -> Dataset:
    """The synthetic world's samples of ``role`` (one world: see :func:`synthetic_world`)."""
    world = synthetic_world(cfg, split)
    if role == "triplets":
        return SyntheticTripletDataset(world, tuple(cfg.frame_offsets))
    if role == "labelled":
        return SyntheticSegmentationDataset(world)
    if role == "steering":
        return SyntheticSteeringDataset(world, cfg.window, cfg.window_stride)
    raise ConfigError(f"synthetic data has roles triplets, labelled and steering, not {role!r}")


BUILDERS: dict[str, Callable[[DataConfig, str, str], Dataset]] = {
    "cityscapes": build_cityscapes,
    "kitti": build_kitti,
    "lane_keeping": build_lane_keeping,
    "synthetic": build_synthetic,
}


def build_dataset(cfg: DataConfig, role: str, split: str) -> Dataset:
    """The ``role`` samples of ``split`` from the data set ``cfg.kind`` at ``cfg.root``.

    Raises :class:`ConfigError` for an unknown kind or a role the kind does not have, :class:`DataError` for a
    root that does not exist, a data set without samples or a problem in its files (naming the file).
    """
    if cfg.kind not in BUILDERS:
        raise ConfigError(f"unknown data kind {cfg.kind!r}; known: {', '.join(sorted(BUILDERS))}")
    if role not in ROLES[cfg.kind]:
        raise ConfigError(f"{cfg.kind} data has roles {', '.join(ROLES[cfg.kind])}, not {role!r}")
    if cfg.root and not Path(cfg.root).exists():
        raise DataError(f"{cfg.kind} data: root {cfg.root} does not exist")
    if not cfg.root and cfg.kind != "synthetic":
        raise DataError(f"{cfg.kind} data needs a root folder")
    dataset = BUILDERS[cfg.kind](cfg, role, split)
    if len(dataset) == 0:
        raise DataError(f"{cfg.kind} data at {cfg.root or '(rendered)'}: no {role} samples in the {split} split")
    return dataset
