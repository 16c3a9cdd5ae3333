"""KITTI raw read from its official folders through a split file (Eigen split): frame triplets and lidar depth.

Layout under ``root``: ``{date}/calib_cam_to_cam.txt``, ``{date}/calib_velo_to_cam.txt``,
``{date}/{drive}/image_02/data/{frame:010d}.png`` (left colour camera; ``image_03`` the right one) and
``{date}/{drive}/velodyne_points/data/{frame:010d}.bin`` (float32 x, y, z, reflectance; x forward).

Split files are text in the common monodepth2 format, one frame per line: ``{date}/{drive} {frame} {side}``
with ``side`` ``l`` (camera 2) or ``r`` (camera 3), e.g. ``2011_09_26/2011_09_26_drive_0002_sync 69 l``.

Images are resized whole to the network size (Eigen protocol: 192x640; no rows cropped); intrinsics are the
camera's rectified ``P_rect_0{2,3}`` scaled with pixel centres at integer coordinates (as everywhere in the
product). Depth evaluation uses the target frame alone (monodepth2's protocol) and lidar ground truth at the
camera's resolution, projected as monodepth2's ``generate_depth_map`` does (:func:`velodyne_depth`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from uni_encoder_core.config import AugmentConfig, DataConfig
from uni_encoder_core.data.augment import augment_triplet
from uni_encoder_core.data.frames import DataError, image_tensor, read_rgb, shape_image, shape_intrinsics
from uni_encoder_core.data.samples import DepthEvalSample, TripletSample
from uni_encoder_core.errors import ConfigError

CAMERAS = {"l": 2, "r": 3}
EVAL_OFFSETS = (0,)


@dataclass(frozen=True)
class SplitEntry:
    """One split-file line: drive folder ``{date}/{drive}``, frame number, side ``l``/``r``, and where it came from."""

    folder: str
    frame: int
    side: str
    source: str

    @property
    def date(self) -> str:
        """The recording date folder (holds the calibration files)."""
        return self.folder.split("/")[0]

    def image(self, root: Path, offset: int = 0) -> Path:
        """Path of this frame's (or a neighbour's) image."""
        return root / self.folder / f"image_0{CAMERAS[self.side]}" / "data" / f"{self.frame + offset:010d}.png"

    def velodyne(self, root: Path) -> Path:
        """Path of this frame's lidar scan."""
        return root / self.folder / "velodyne_points" / "data" / f"{self.frame:010d}.bin"


def read_split_file(path: str | Path) -> list[SplitEntry]:
    """Parse a split file. Raises :class:`DataError` naming the file and line for a missing file, a line that is
    not ``{date}/{drive} {frame} {l|r}``, or a file without entries."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"missing split file {path}")
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        where = f"{path}:{number}"
        if len(parts) != 3 or parts[2] not in CAMERAS or not parts[1].isdigit() or parts[0].count("/") != 1:
            raise DataError(f"{where}: expected '<date>/<drive> <frame> <l|r>', got {line.strip()!r}")
        entries.append(SplitEntry(parts[0], int(parts[1]), parts[2], where))
    if not entries:
        raise DataError(f"{path}: no frames listed")
    return entries


def read_calib_file(path: Path) -> dict[str, np.ndarray]:
    """A KITTI calibration text file (``key: v1 v2 ...``) -> key -> float64 array; non-numeric values (the
    calibration time) are skipped. Raises :class:`DataError` for a missing file."""
    if not path.is_file():
        raise DataError(f"missing calibration file {path}")
    calib = {}
    for line in path.read_text().splitlines():
        key, _, values = line.partition(":")
        try:
            calib[key.strip()] = np.array([float(v) for v in values.split()], np.float64)
        except ValueError:
            continue
    return calib


def _calib_entry(calib: dict[str, np.ndarray], key: str, size: int, path: Path) -> np.ndarray:
    if key not in calib or calib[key].size != size:
        raise DataError(f"{path}: no {key} with {size} values")
    return calib[key]


@lru_cache(maxsize=64)
def camera_intrinsics(calib_dir: Path, side: str) -> tuple[np.ndarray, tuple[int, int]]:
    """(K 3x3 from ``P_rect_0{2,3}``, rectified image size (h, w) from ``S_rect_0{2,3}``) of a date folder."""
    path = calib_dir / "calib_cam_to_cam.txt"
    calib = read_calib_file(path)
    cam = CAMERAS[side]
    P = _calib_entry(calib, f"P_rect_0{cam}", 12, path).reshape(3, 4)
    width, height = _calib_entry(calib, f"S_rect_0{cam}", 2, path)
    return P[:, :3].copy(), (int(height), int(width))


def read_velodyne(path: Path) -> np.ndarray:
    """A ``velodyne_points/data/*.bin`` scan -> Nx4 float32 (x, y, z, reflectance). Raises :class:`DataError`
    for a missing file or a size that is not a whole number of 16-byte points."""
    if not path.is_file():
        raise DataError(f"missing lidar scan {path}")
    raw = np.fromfile(path, dtype=np.float32)
    if raw.size % 4:
        raise DataError(f"{path}: {raw.nbytes} bytes is not a whole number of 16-byte points (corrupt scan?)")
    return raw.reshape(-1, 4)


def velodyne_depth(points: np.ndarray, calib_dir: Path, side: str) -> np.ndarray:
    """Lidar points Nx3+ (velodyne frame) -> sparse depth HxW float64 (m, 0 = no point) of camera 2 or 3.

    monodepth2's ``generate_depth_map``: ``P_rect_0c @ R_rect_00 @ [R|T]_velo_to_cam`` projects the points that
    lie in front of the lidar (``x >= 0``); depth is the third homogeneous coordinate; pixels are
    ``round(u) - 1``, ``round(v) - 1`` (the KITTI devkit's one-based legacy, kept so that numbers compare with the
    published ones); the image size is ``S_rect_02``; several points on one pixel keep the nearest.
    """
    cam_path, velo_path = calib_dir / "calib_cam_to_cam.txt", calib_dir / "calib_velo_to_cam.txt"
    cam2cam, velo2cam = read_calib_file(cam_path), read_calib_file(velo_path)
    T_velo_cam = np.eye(4)
    T_velo_cam[:3, :3] = _calib_entry(velo2cam, "R", 9, velo_path).reshape(3, 3)
    T_velo_cam[:3, 3] = _calib_entry(velo2cam, "T", 3, velo_path)
    R_rect = np.eye(4)
    R_rect[:3, :3] = _calib_entry(cam2cam, "R_rect_00", 9, cam_path).reshape(3, 3)
    P = _calib_entry(cam2cam, f"P_rect_0{CAMERAS[side]}", 12, cam_path).reshape(3, 4)
    width, height = _calib_entry(cam2cam, "S_rect_02", 2, cam_path).astype(np.int64)

    front = np.asarray(points, np.float64)[:, :3]
    front = front[front[:, 0] >= 0]
    projected = np.concatenate([front, np.ones((len(front), 1))], axis=1) @ (P @ R_rect @ T_velo_cam).T
    z = projected[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        col = np.round(projected[:, 0] / z) - 1
        row = np.round(projected[:, 1] / z) - 1
    keep = (col >= 0) & (row >= 0) & (col < width) & (row < height)
    depth = np.full((height, width), np.inf)
    np.minimum.at(depth, (row[keep].astype(np.int64), col[keep].astype(np.int64)), z[keep])
    depth[~np.isfinite(depth) | (depth < 0)] = 0.0
    return depth


class _Kitti(Dataset):
    def __init__(self, root: str | Path, entries: list[SplitEntry], size: tuple[int, int],
                 offsets: tuple[int, ...]):
        self.root, self.entries, self.size, self.offsets = Path(root), entries, tuple(size), tuple(offsets)
        for entry in entries:
            for offset in self.offsets:
                if not entry.image(self.root, offset).is_file():
                    raise DataError(f"{entry.source}: frame {entry.frame + offset} is absent: missing image "
                                    f"{entry.image(self.root, offset)}")

    def __len__(self) -> int:
        return len(self.entries)

    def _images(self, entry: SplitEntry) -> tuple[torch.Tensor, torch.Tensor]:
        raw = [read_rgb(entry.image(self.root, o)) for o in self.offsets]
        if any(r.shape != raw[0].shape for r in raw):
            raise DataError(f"{entry.image(self.root)}: frames of one sample differ in size")
        K, _ = camera_intrinsics(self.root / entry.date, entry.side)
        K = shape_intrinsics(K, raw[0].shape[:2], 0.0, self.size)
        images = torch.stack([image_tensor(shape_image(r, 0.0, self.size)) for r in raw])
        return images, torch.from_numpy(K).float()


class KittiTripletDataset(_Kitti):
    """Frames at ``offsets`` (default -1, 0, +1) around every split-file frame, within its drive.

    Raises :class:`DataError` at construction when a listed frame or a neighbour has no image (naming the
    split-file line and the missing file). Samples: :class:`TripletSample` (images, ``K``).
    """

    def __init__(self, root: str | Path, entries: list[SplitEntry], size: tuple[int, int] = (192, 640),
                 offsets: tuple[int, ...] = (-1, 0, 1), augment: AugmentConfig | None = None):
        if 0 not in offsets:
            raise ValueError(f"offsets must contain 0 (the target frame), got {offsets}")
        super().__init__(root, entries, size, offsets)
        self.augment = augment

    def __getitem__(self, index: int) -> TripletSample:
        images, K = self._images(self.entries[index])
        sample = TripletSample(images=images, K=K, offsets=self.offsets)
        return sample if self.augment is None else augment_triplet(sample, self.augment)


class KittiDepthEvalDataset(_Kitti):
    """Eigen-split depth evaluation: the target frame and its lidar depth (:func:`velodyne_depth`) at the
    camera's own resolution. Samples: :class:`DepthEvalSample` (``offsets`` (0,))."""

    def __init__(self, root: str | Path, entries: list[SplitEntry], size: tuple[int, int] = (192, 640)):
        super().__init__(root, entries, size, EVAL_OFFSETS)

    def __getitem__(self, index: int) -> DepthEvalSample:
        entry = self.entries[index]
        images, K = self._images(entry)
        depth = velodyne_depth(read_velodyne(entry.velodyne(self.root)), self.root / entry.date, entry.side)
        return DepthEvalSample(images=images, K=K, gt_depth=torch.from_numpy(depth).float()[None],
                               offsets=EVAL_OFFSETS)


def build_kitti(cfg: DataConfig, role: str, split: str) -> Dataset:
    """KITTI data set of ``role`` (``triplets`` or ``depth_eval``) for ``split``: the frames of ``cfg.split_file``
    with ``{split}`` replaced by the split's name (e.g. ``splits/eigen_zhou/{split}_files.txt``); a path without
    ``{split}`` is read for every split. The ``train`` split is augmented when ``cfg.augment.enabled``.

    Raises :class:`ConfigError` for an unknown role, an empty ``root`` or no ``split_file``.
    """
    if not cfg.root or not cfg.split_file:
        raise ConfigError("KITTI data needs data.root (the raw data folder) and data.split_file")
    entries = read_split_file(cfg.split_file.replace("{split}", split))
    size = (cfg.height, cfg.width)
    if role == "triplets":
        augment = cfg.augment if split == "train" and cfg.augment.enabled else None
        return KittiTripletDataset(cfg.root, entries, size, tuple(cfg.frame_offsets), augment)
    if role == "depth_eval":
        return KittiDepthEvalDataset(cfg.root, entries, size)
    raise ConfigError(f"KITTI data has roles triplets and depth_eval, not {role!r}")
