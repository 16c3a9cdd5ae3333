"""Lane-keeping recordings (HDF5, layout in ``docs/data_formats.md``) as 16-frame steering windows.

One file per recording, frames in time order:

- ``images`` uint8 NxHxWx3 (RGB), ``curvature`` float N (1/m, + = left), ``timestamps`` float64 N (s, strictly
  increasing); optional ``speed`` float N (m/s) and ``steering_angle`` float N (rad, + = left). A dataset's
  ``unit`` attribute, when present, must be the unit named here.
- root attributes ``format`` = ``"uni-encoder lane-keeping"``, ``version`` = 1 and free-text ``source``.

Cross-testing follows the original lane-keeping protocol (tenfold): every recording is cut into ``num_folds``
contiguous chunks of (nearly) equal length; windows never cross a chunk boundary, so a held-out chunk shares
no frame with the training windows. The protocol's augmentations are a random shadow (``data.augment``) and
per-image whitening (:func:`per_image_standardization`); samples are weighted ``exp(lambda |y|)`` (paper eq. 5).
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from uni_encoder_core.config import AugmentConfig, DataConfig
from uni_encoder_core.data.augment import augment_steering
from uni_encoder_core.data.frames import DataError, image_tensor, shape_image
from uni_encoder_core.data.samples import SteeringWindow
from uni_encoder_core.errors import ConfigError

FORMAT = "uni-encoder lane-keeping"
VERSION = 1
UNITS = {"curvature": "1/m", "timestamps": "s", "speed": "m/s", "steering_angle": "rad"}
SUFFIXES = (".h5", ".hdf5")


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def read_labels(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Check a recording's layout and return its (curvature N float64, timestamps N float64).

    Raises :class:`DataError` naming the file and the dataset for an unreadable file, a missing or misshaped
    dataset, a wrong unit attribute, or timestamps that do not increase.
    """
    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"{path}: not a readable HDF5 file ({exc})") from None
    with fh:
        if _text(fh.attrs.get("format", FORMAT)) != FORMAT or int(fh.attrs.get("version", VERSION)) > VERSION:
            raise DataError(f"{path}: format {_text(fh.attrs.get('format'))!r} version {fh.attrs.get('version')} "
                            f"is not {FORMAT!r} version <= {VERSION}")
        for name in ("images", "curvature", "timestamps"):
            if name not in fh or not isinstance(fh[name], h5py.Dataset):
                raise DataError(f"{path}: no '{name}' dataset (see docs/data_formats.md)")
        images = fh["images"]
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8 or images.shape[0] == 0:
            raise DataError(f"{path}: 'images' must be uint8 NxHxWx3 with N > 0, got {images.dtype} {images.shape}")
        n = images.shape[0]
        for name, unit in UNITS.items():
            if name not in fh:
                continue
            if fh[name].shape != (n,):
                raise DataError(f"{path}: '{name}' must have shape ({n},) like 'images', got {fh[name].shape}")
            if "unit" in fh[name].attrs and _text(fh[name].attrs["unit"]) != unit:
                raise DataError(f"{path}: '{name}' has unit {_text(fh[name].attrs['unit'])!r}, expected {unit!r}")
        curvature = fh["curvature"][:].astype(np.float64)
        stamps = fh["timestamps"][:].astype(np.float64)
    if not np.all(np.isfinite(curvature)):
        raise DataError(f"{path}: 'curvature' holds non-finite values")
    if n > 1 and not np.all(np.diff(stamps) > 0):
        first = int(np.argmin(np.diff(stamps) > 0))
        raise DataError(f"{path}: 'timestamps' must increase, but frame {first + 1} is not after frame {first}")
    return curvature, stamps


def fold_chunks(num_frames: int, num_folds: int = 10) -> list[tuple[int, int]]:
    """``num_folds`` contiguous chunks ``[start, end)`` covering ``0 .. num_frames``; chunk k starts at
    ``round(k * num_frames / num_folds)``."""
    if num_folds < 1:
        raise ValueError(f"num_folds must be >= 1, got {num_folds}")
    edges = [round(k * num_frames / num_folds) for k in range(num_folds + 1)]
    return list(zip(edges[:-1], edges[1:]))


def chunk_windows(chunk: tuple[int, int], window: int, stride: int = 1) -> list[int]:
    """First frames of the ``window``-frame windows (every ``stride`` frames) that fit inside ``chunk``."""
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be >= 1, got window={window}, stride={stride}")
    return list(range(chunk[0], chunk[1] - window + 1, stride))


def per_image_standardization(images: torch.Tensor) -> torch.Tensor:
    """Whiten each image of ``...x3xHxW``: ``(x - mean) / max(std, 1 / sqrt(3 H W))`` over its own pixels and
    channels (TensorFlow's ``per_image_standardization``, which the original protocol's networks used)."""
    flat = images.flatten(-3)
    mean = flat.mean(-1, keepdim=True)
    std = flat.std(-1, unbiased=False, keepdim=True).clamp_min(flat.shape[-1] ** -0.5)
    return ((flat - mean) / std).reshape(images.shape)


def sample_weights(curvature: torch.Tensor, lam: float) -> torch.Tensor:
    """Weights ``exp(lam * |y|)`` of labels ``y`` (1/m): rare sharp bends count more (paper eq. 5)."""
    return torch.exp(lam * curvature.abs())


def recording_files(root: str | Path) -> list[Path]:
    """``root`` itself when it is a file, else its ``*.h5``/``*.hdf5`` files sorted by name.

    Raises :class:`DataError` when ``root`` does not exist or holds no recording.
    """
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise DataError(f"lane-keeping recordings: {root} does not exist")
    files = sorted(p for p in root.iterdir() if p.suffix in SUFFIXES)
    if not files:
        raise DataError(f"{root}: no lane-keeping recordings (*.h5, *.hdf5)")
    return files


class LaneKeepingDataset(Dataset):
    """Steering windows from the ``folds`` chunks of every recording in ``files``.

    Samples: :class:`SteeringWindow` (``images`` Tx3xhxw: cropped by ``crop_bottom`` and resized to ``size``,
    in [0, 1], or whitened when ``standardize``; ``curvature`` T; ``stamps`` T). ``augment``: flip (curvature
    sign with it), colour jitter, shadow. Files are opened lazily in each process (DataLoader workers).
    """

    def __init__(self, files: list[Path], size: tuple[int, int], folds: list[int], num_folds: int = 10,
                 window: int = 16, stride: int = 1, crop_bottom: float = 0.0,
                 augment: AugmentConfig | None = None, standardize: bool = False):
        bad = [k for k in folds if not 0 <= k < num_folds]
        if bad:
            raise ValueError(f"folds {bad} outside 0..{num_folds - 1}")
        self.files, self.size, self.window = list(files), tuple(size), window
        self.crop_bottom, self.augment, self.standardize = crop_bottom, augment, standardize
        self.labels: list[tuple[np.ndarray, np.ndarray]] = [read_labels(f) for f in self.files]
        self.windows = [
            (i, start)
            for i, (curvature, _) in enumerate(self.labels)
            for k in sorted(folds)
            for start in chunk_windows(fold_chunks(len(curvature), num_folds)[k], window, stride)
        ]
        self._handles: dict[int, h5py.File] = {}
        self._pid = os.getpid()

    def __len__(self) -> int:
        return len(self.windows)

    def targets(self) -> torch.Tensor:
        """Label of every window (curvature at its newest frame, 1/m), without reading images."""
        return torch.tensor([self.labels[i][0][s + self.window - 1] for i, s in self.windows], dtype=torch.float32)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_handles": {}}  # open HDF5 handles do not travel to worker processes

    def _file(self, i: int) -> h5py.File:
        if self._pid != os.getpid():  # a forked worker must not share the parent's HDF5 handles
            self._handles, self._pid = {}, os.getpid()
        if i not in self._handles:
            self._handles[i] = h5py.File(self.files[i], "r")
        return self._handles[i]

    def __getitem__(self, index: int) -> SteeringWindow:
        i, start = self.windows[index]
        frames = self._file(i)["images"][start : start + self.window]
        curvature, stamps = self.labels[i]
        window = SteeringWindow(
            images=torch.stack([image_tensor(shape_image(f, self.crop_bottom, self.size)) for f in frames]),
            curvature=torch.from_numpy(curvature[start : start + self.window]).float(),
            stamps=torch.from_numpy(stamps[start : start + self.window]),
        )
        if self.augment is not None:
            window = augment_steering(window, self.augment)
        if self.standardize:
            window.images = per_image_standardization(window.images)
        return window


def build_lane_keeping(cfg: DataConfig, role: str, split: str) -> Dataset:
    """Lane-keeping windows (role ``steering``): ``val``/``test`` = chunk ``cfg.fold`` of every recording,
    ``train`` = the other ``cfg.num_folds - 1`` chunks (augmented when ``cfg.augment.enabled``).

    Raises :class:`ConfigError` for an unknown role or split, an empty ``root`` or a fold outside the folds.
    """
    if role != "steering":
        raise ConfigError(f"lane-keeping data has the role steering, not {role!r}")
    if not cfg.root:
        raise ConfigError("lane-keeping data: data.root is empty (an HDF5 recording or a folder of them)")
    if not 0 <= cfg.fold < cfg.num_folds:
        raise ConfigError(f"lane-keeping data: fold {cfg.fold} outside 0..{cfg.num_folds - 1}")
    if split == "train":
        folds = [k for k in range(cfg.num_folds) if k != cfg.fold]
    elif split in ("val", "test"):
        folds = [cfg.fold]
    else:
        raise ConfigError(f"lane-keeping data has splits train, val and test, not {split!r}")
    augment = cfg.augment if split == "train" and cfg.augment.enabled else None
    return LaneKeepingDataset(recording_files(cfg.root), (cfg.height, cfg.width), folds, cfg.num_folds,
                              cfg.window, cfg.window_stride, cfg.crop_bottom, augment, cfg.standardize)
