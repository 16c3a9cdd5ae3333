"""One registry of data sets: ``data.kind`` names a builder of its samples, for training, evaluation and inspection.

A builder takes the :class:`DataConfig`, the role and the split and returns a map-style torch ``Dataset``. Kinds and
their roles (the sample type each role gives, ``uni_encoder_core.data.samples``):

- ``cityscapes``: ``triplets`` (:class:`TripletSample`), ``labelled`` (:class:`SegmentationSample`),
  ``depth_eval`` (:class:`DepthEvalSample`, ManyDepth protocol); splits are the official folders;
- ``kitti``: ``triplets``, ``depth_eval`` (Eigen split, lidar ground truth);
- ``lane_keeping``: ``steering`` (:class:`SteeringWindow`); ``val`` is the held-out chunk ``fold``;
- ``synthetic``: ``triplets`` (exact depth, poses, scene flow and motion), ``labelled``, ``steering``: one world per
  seed (``train_seeds`` for ``train``, ``val_seeds`` otherwise), or, with ``root``, the one world a
  ``uni-encoder synth`` folder was rendered from (its ``meta.json``; ``split`` is then ignored).

The training loop, ``uni-encoder eval`` and ``uni-encoder dataset show`` only call :func:`build_dataset`, so a new
data set plugs in with one :func:`register` call.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch.utils.data import ConcatDataset, Dataset

from uni_encoder_core.config import DataConfig
from uni_encoder_core.data.frames import DataError
from uni_encoder_core.errors import ConfigError

Builder = Callable[[DataConfig, str, str], Dataset]

_BUILDERS: dict[str, Builder] = {}
ROLES: dict[str, tuple[str, ...]] = {}
"""Data kind -> the roles it can give."""


def register(kind: str, roles: tuple[str, ...]) -> Callable[[Builder], Builder]:
    """Decorator: make ``builder`` the data set of ``data.kind: <kind>`` giving ``roles``; a kind is registered once."""

    def add(builder: Builder) -> Builder:
        if kind in _BUILDERS:
            raise ValueError(f"data kind {kind!r} is already registered")
        _BUILDERS[kind], ROLES[kind] = builder, roles
        return builder

    return add


def known_kinds() -> list[str]:
    """The registered data kinds, sorted."""
    return sorted(_BUILDERS)


def build_dataset(cfg: DataConfig, role: str, split: str) -> Dataset:
    """The ``role`` samples of ``split`` from the data set ``cfg.kind`` at ``cfg.root``.

    Raises :class:`ConfigError` for an unknown kind or a role the kind does not have, :class:`DataError` for a
    root that does not exist, a data set without samples or a problem in its files (naming the file).
    """
    if cfg.kind not in _BUILDERS:
        raise ConfigError(f"data kind {cfg.kind!r} is not registered; known: {', '.join(known_kinds())}")
    if role not in ROLES[cfg.kind]:
        raise ConfigError(f"{cfg.kind} data has roles {', '.join(ROLES[cfg.kind])}, not {role!r}")
    if cfg.root and not Path(cfg.root).exists():
        raise DataError(f"{cfg.kind} data: root {cfg.root} does not exist")
    dataset = _BUILDERS[cfg.kind](cfg, role, split)
    if len(dataset) == 0:
        raise DataError(f"{cfg.kind} data at {cfg.root or '(rendered)'}: no {role} samples in the {split} split")
    return dataset


def _with_root(cfg: DataConfig) -> DataConfig:
    """``cfg``, checked to name a data folder (a real data set has no default location)."""
    if not cfg.root:
        raise DataError(f"{cfg.kind} data needs a root folder")
    return cfg


@register("cityscapes", ("triplets", "labelled", "depth_eval"))
def _cityscapes(cfg: DataConfig, role: str, split: str) -> Dataset:
    from uni_encoder_core.data.cityscapes import build_cityscapes

    return build_cityscapes(_with_root(cfg), role, split)


@register("kitti", ("triplets", "depth_eval"))
def _kitti(cfg: DataConfig, role: str, split: str) -> Dataset:
    from uni_encoder_core.data.kitti import build_kitti

    return build_kitti(_with_root(cfg), role, split)


@register("lane_keeping", ("steering",))
def _lane_keeping(cfg: DataConfig, role: str, split: str) -> Dataset:
    from uni_encoder_core.data.lane_keeping import build_lane_keeping

    return build_lane_keeping(_with_root(cfg), role, split)


@register("synthetic", ("triplets", "labelled", "steering"))
def synthetic_dataset(cfg: DataConfig, role: str, split: str) -> Dataset:
    """Drives of the synthetic world: one per seed of ``train_seeds`` (split ``train``) or ``val_seeds`` (any other
    split), each of ``synthetic_frames`` frames at ``height`` x ``width``; or the world of the ``synth`` folder
    ``root``."""
    from uni_encoder_core.data.synthetic import (
        SyntheticSegmentationDataset,
        SyntheticSteeringDataset,
        SyntheticTripletDataset,
        SyntheticWorld,
        WorldConfig,
    )
    from uni_encoder_core.data.synthetic.stored import read_meta

    if cfg.root:
        try:
            worlds = [SyntheticWorld(WorldConfig(**read_meta(cfg.root)["world"]))]
        except (TypeError, ValueError) as exc:
            raise DataError(f"{Path(cfg.root) / 'meta.json'}: invalid world configuration ({exc})") from None
    else:
        seeds = cfg.train_seeds if split == "train" else cfg.val_seeds
        if not seeds:
            raise ConfigError(f"synthetic data: no {'train' if split == 'train' else 'val'}_seeds given")
        worlds = [SyntheticWorld(WorldConfig(seed=s, height=cfg.height, width=cfg.width,
                                             num_frames=cfg.synthetic_frames)) for s in seeds]
    if role == "triplets":
        parts = [SyntheticTripletDataset(w, tuple(cfg.frame_offsets)) for w in worlds]
    elif role == "labelled":
        parts = [SyntheticSegmentationDataset(w) for w in worlds]
    else:
        parts = [SyntheticSteeringDataset(w, cfg.window, cfg.window_stride) for w in worlds]
    return parts[0] if len(parts) == 1 else ConcatDataset(parts)
