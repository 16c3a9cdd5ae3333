"""Cityscapes read from its official folders: frame triplets, panoptic labels and depth-evaluation frames.

Layout under ``root`` (the archives unpacked side by side; nothing is pre-processed):

- ``leftImg8bit_sequence/{split}/{city}/{city}_{seq:06d}_{frame:06d}_leftImg8bit.png``: 30-frame snippets of
  consecutive frame numbers; the 20th frame of each snippet is the annotated one. Snippets are found as runs of
  consecutive numbers per ``(city, seq)`` cut into blocks of 30; a triplet never crosses a snippet boundary.
- ``camera/{split}/{city}/{city}_{seq}_{frame}_camera.json``: ``intrinsic`` (``fx``, ``fy``, ``u0``, ``v0``,
  pixels of the 1024x2048 frame) and ``extrinsic.baseline`` (m); a snippet uses its annotated frame's file.
- ``gtFine/cityscapes_panoptic_{split}.json`` + ``gtFine/cityscapes_panoptic_{split}/*_panoptic.png``, as
  ``cityscapesscripts.preparation.createPanopticImgs`` writes them (official label ids): the PNG's segment id is
  ``R + 256 G + 256^2 B``, ``segments_info`` gives each id's ``category_id`` and ``iscrowd``. Images come from
  ``leftImg8bit/{split}/{city}/{image_id}_leftImg8bit.png`` (else the same name in ``leftImg8bit_sequence``).
- ``disparity/{split}/{city}/{city}_{seq}_{frame}_disparity.png``: 16-bit disparity, ``d = (p - 1) / 256`` for
  ``p > 0``; depth ``= baseline * fx / d``, 0 where invalid.

Every frame loses its bottom ``crop_bottom`` rows (the ego car) and is resized to the network size; intrinsics
follow (``uni_encoder_core.data.frames``: pixel centres at integer coordinates, as the inference pipeline).
Depth evaluation follows ManyDepth: the annotated frame with the previous frame at offset -2, full-frame ground
truth (``uni_encoder_core.eval.depth.cityscapes_depth_errors`` cuts and crops it).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from uni_encoder_core.config import AugmentConfig, DataConfig
from uni_encoder_core.data.augment import augment_segmentation, augment_triplet
from uni_encoder_core.data.frames import (
    DataError,
    image_tensor,
    read_png16,
    read_rgb,
    require_dir,
    shape_image,
    shape_intrinsics,
    shape_labels,
)
from uni_encoder_core.data.samples import DepthEvalSample, SegmentationSample, TripletSample
from uni_encoder_core.errors import ConfigError
from uni_encoder_core.eval.depth import cityscapes_gt_depth
from uni_encoder_core.labels import LABEL_DIVISOR, LABEL_IDS, THING_CLASSES, VOID

SNIPPET_LENGTH = 30
ANNOTATED_INDEX = 19  # the 20th frame of a snippet carries the annotations
EVAL_OFFSETS = (-2, 0)  # ManyDepth's Cityscapes protocol: previous frame two frames back
_SEQUENCE_NAME = re.compile(r"^(?P<city>.+)_(?P<seq>\d{6})_(?P<frame>\d{6})_leftImg8bit\.png$")


@dataclass(frozen=True)
class Snippet:
    """One 30-frame snippet: frames ``start .. start + 29`` of sequence ``seq`` in ``city``."""

    city: str
    seq: int
    start: int

    @property
    def annotated(self) -> int:
        """Frame number of the annotated (20th) frame."""
        return self.start + ANNOTATED_INDEX

    def name(self, frame: int) -> str:
        """File stem of ``frame``, e.g. ``aachen_000000_000019``."""
        return f"{self.city}_{self.seq:06d}_{frame:06d}"


@dataclass(frozen=True)
class Camera:
    """A frame's calibration: ``K`` 3x3 (pixels of the full frame), ``baseline`` (m)."""

    K: np.ndarray
    baseline: float


def discover_snippets(root: Path, split: str) -> list[Snippet]:
    """All snippets of ``leftImg8bit_sequence/{split}``, sorted by city, sequence and frame.

    Raises :class:`DataError` for a missing folder, a file not named ``{city}_{seq}_{frame}_leftImg8bit.png``
    inside its city's folder, a run of consecutive frames that is not a whole number of snippets, or no frame.
    """
    folder = require_dir(root / "leftImg8bit_sequence" / split, f"Cityscapes {split} sequences")
    frames: dict[tuple[str, int], list[int]] = defaultdict(list)
    for city_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        for path in sorted(city_dir.glob("*_leftImg8bit.png")):
            match = _SEQUENCE_NAME.match(path.name)
            if match is None or match["city"] != city_dir.name:
                raise DataError(f"{path}: not named {city_dir.name}_<seq:06d>_<frame:06d>_leftImg8bit.png")
            frames[(city_dir.name, int(match["seq"]))].append(int(match["frame"]))
    snippets = []
    for (city, seq), numbers in sorted(frames.items()):
        numbers.sort()
        breaks = [i + 1 for i in range(len(numbers) - 1) if numbers[i + 1] != numbers[i] + 1]
        for lo, hi in zip([0, *breaks], [*breaks, len(numbers)]):
            if (hi - lo) % SNIPPET_LENGTH:
                first = Snippet(city, seq, numbers[lo])
                raise DataError(
                    f"{folder / city}: frames {first.name(numbers[lo])} .. {first.name(numbers[hi - 1])} are "
                    f"{hi - lo} consecutive frames, not whole {SNIPPET_LENGTH}-frame snippets (incomplete download?)"
                )
            snippets += [Snippet(city, seq, numbers[i]) for i in range(lo, hi, SNIPPET_LENGTH)]
    if not snippets:
        raise DataError(f"{folder}: no *_leftImg8bit.png frames in its city folders")
    return snippets


def read_camera(path: Path) -> Camera:
    """A ``*_camera.json`` -> :class:`Camera`. Raises :class:`DataError` naming a missing or malformed file."""
    if not path.is_file():
        raise DataError(f"missing file {path}")
    try:
        data = json.loads(path.read_text())
        i = data["intrinsic"]
        K = np.array([[i["fx"], 0.0, i["u0"]], [0.0, i["fy"], i["v0"]], [0.0, 0.0, 1.0]], np.float64)
        return Camera(K, float(data["extrinsic"]["baseline"]))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path}: not a Cityscapes camera file ({type(exc).__name__}: {exc})") from None


def decode_panoptic(rgb: np.ndarray, segments_info: list[dict], source: str = "panoptic PNG") -> np.ndarray:
    """A ``createPanopticImgs`` PNG (HxWx3 uint8 RGB) and its ``segments_info`` -> panoptic ids HxW int32.

    Output ids are ``train_id * 1000 + instance``: thing segments (not crowd) get instances 1, 2, ... in the order
    of ``segments_info``; stuff and crowd segments get instance 0; id 0 and classes without a train id are void
    (``255 * 1000``). Raises :class:`DataError` naming ``source`` when the PNG holds an id missing from
    ``segments_info`` or ``segments_info`` lacks a field.
    """
    ids = rgb[..., 0].astype(np.int64) + 256 * rgb[..., 1].astype(np.int64) + 256**2 * rgb[..., 2].astype(np.int64)
    table = {0: VOID * LABEL_DIVISOR}
    instance = 0
    for seg in segments_info:
        try:
            seg_id, category, crowd = int(seg["id"]), int(seg["category_id"]), bool(seg.get("iscrowd", 0))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{source}: malformed segments_info entry {seg} ({exc})") from None
        train_id = LABEL_IDS.index(category) if category in LABEL_IDS else VOID
        if train_id in THING_CLASSES and not crowd:
            instance += 1
            if instance >= LABEL_DIVISOR:
                raise DataError(f"{source}: more than {LABEL_DIVISOR - 1} thing segments")
            table[seg_id] = train_id * LABEL_DIVISOR + instance
        else:
            table[seg_id] = train_id * LABEL_DIVISOR
    present = np.unique(ids)
    unknown = [int(i) for i in present if int(i) not in table]
    if unknown:
        raise DataError(f"{source}: segment ids {unknown[:5]} are not in its segments_info")
    lut_keys = np.array(sorted(table), np.int64)
    lut_values = np.array([table[k] for k in lut_keys], np.int32)
    return lut_values[np.searchsorted(lut_keys, ids)]


class _Cityscapes(Dataset):
    def __init__(self, root: str | Path, split: str, size: tuple[int, int], crop_bottom: float):
        self.root, self.split, self.size, self.crop_bottom = Path(root), split, tuple(size), crop_bottom

    def _frame(self, snippet: Snippet, frame: int) -> Path:
        return self.root / "leftImg8bit_sequence" / self.split / snippet.city / f"{snippet.name(frame)}_leftImg8bit.png"

    def _camera(self, city: str, stem: str) -> Camera:
        return read_camera(self.root / "camera" / self.split / city / f"{stem}_camera.json")

    def _images(self, snippet: Snippet, frames: list[int]) -> tuple[torch.Tensor, tuple[int, int]]:
        raw = [read_rgb(self._frame(snippet, f)) for f in frames]
        if any(r.shape != raw[0].shape for r in raw):
            raise DataError(f"{self._frame(snippet, frames[0])}: frames of one sample differ in size")
        images = torch.stack([image_tensor(shape_image(r, self.crop_bottom, self.size)) for r in raw])
        return images, raw[0].shape[:2]


class CityscapesTripletDataset(_Cityscapes):
    """Frames at ``offsets`` (default -1, 0, +1) around every target whose neighbours lie in its snippet.

    Samples: :class:`TripletSample` (images, ``K``; no ground truth). ``augment``: random flip and colour jitter.
    """

    def __init__(self, root: str | Path, split: str, size: tuple[int, int], crop_bottom: float = 0.25,
                 offsets: tuple[int, ...] = (-1, 0, 1), augment: AugmentConfig | None = None):
        super().__init__(root, split, size, crop_bottom)
        if 0 not in offsets:
            raise ValueError(f"offsets must contain 0 (the target frame), got {offsets}")
        self.offsets, self.augment = tuple(offsets), augment
        lo, hi = -min(self.offsets), SNIPPET_LENGTH - max(self.offsets)
        self.targets = [(s, s.start + i) for s in discover_snippets(self.root, split) for i in range(lo, hi)]

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> TripletSample:
        snippet, target = self.targets[index]
        images, hw = self._images(snippet, [target + o for o in self.offsets])
        K = shape_intrinsics(self._camera(snippet.city, snippet.name(snippet.annotated)).K, hw,
                             self.crop_bottom, self.size)
        sample = TripletSample(images=images, K=torch.from_numpy(K).float(), offsets=self.offsets)
        return sample if self.augment is None else augment_triplet(sample, self.augment)


class CityscapesSegmentationDataset(_Cityscapes):
    """Every image of ``gtFine/cityscapes_panoptic_{split}.json`` with semantic, instance and panoptic labels.

    Labels are derived from the panoptic PNG (:func:`decode_panoptic`), cropped and resized like the image
    (nearest neighbour): ``semantic`` = train id (255 void), ``instance`` = per-image thing number (0 none).
    """

    def __init__(self, root: str | Path, split: str, size: tuple[int, int], crop_bottom: float = 0.25,
                 augment: AugmentConfig | None = None):
        super().__init__(root, split, size, crop_bottom)
        self.augment = augment
        self.json_path = self.root / "gtFine" / f"cityscapes_panoptic_{split}.json"
        self.png_dir = require_dir(self.root / "gtFine" / f"cityscapes_panoptic_{split}", "Cityscapes panoptic PNGs")
        if not self.json_path.is_file():
            raise DataError(f"missing file {self.json_path} (cityscapesscripts createPanopticImgs writes it)")
        try:
            self.annotations = json.loads(self.json_path.read_text())["annotations"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DataError(f"{self.json_path}: not a panoptic annotation file ({exc})") from None
        if not self.annotations:
            raise DataError(f"{self.json_path}: no annotations")

    def __len__(self) -> int:
        return len(self.annotations)

    def _image_path(self, image_id: str) -> Path:
        city = image_id.rsplit("_", 2)[0]
        for folder in ("leftImg8bit", "leftImg8bit_sequence"):
            path = self.root / folder / self.split / city / f"{image_id}_leftImg8bit.png"
            if path.is_file():
                return path
        return self.root / "leftImg8bit" / self.split / city / f"{image_id}_leftImg8bit.png"

    def __getitem__(self, index: int) -> SegmentationSample:
        ann = self.annotations[index]
        png = self.png_dir / ann["file_name"]
        panoptic = decode_panoptic(read_rgb(png), ann["segments_info"], str(png))
        rgb = read_rgb(self._image_path(ann["image_id"]))
        if rgb.shape[:2] != panoptic.shape:
            raise DataError(f"{png}: size {panoptic.shape} differs from its image's {rgb.shape[:2]}")
        panoptic = torch.from_numpy(shape_labels(panoptic, self.crop_bottom, self.size)).long()
        sample = SegmentationSample(
            image=image_tensor(shape_image(rgb, self.crop_bottom, self.size)),
            semantic=panoptic // LABEL_DIVISOR,
            instance=panoptic % LABEL_DIVISOR,
            panoptic=panoptic,
        )
        return sample if self.augment is None else augment_segmentation(sample, self.augment)


class CityscapesDepthEvalDataset(_Cityscapes):
    """ManyDepth's Cityscapes depth evaluation: each snippet's annotated frame and the frame two before it.

    Samples: :class:`DepthEvalSample` with ``offsets`` (-2, 0) and ``gt_depth`` 1x1024x2048 (m, 0 = invalid)
    from the disparity PNG and the frame's camera (``baseline * fx / disparity``).
    """

    def __init__(self, root: str | Path, split: str, size: tuple[int, int], crop_bottom: float = 0.25):
        super().__init__(root, split, size, crop_bottom)
        self.snippets = discover_snippets(self.root, split)
        require_dir(self.root / "disparity" / split, f"Cityscapes {split} disparity")

    def __len__(self) -> int:
        return len(self.snippets)

    def __getitem__(self, index: int) -> DepthEvalSample:
        snippet = self.snippets[index]
        stem = snippet.name(snippet.annotated)
        images, hw = self._images(snippet, [snippet.annotated + o for o in EVAL_OFFSETS])
        camera = self._camera(snippet.city, stem)
        disparity_path = self.root / "disparity" / self.split / snippet.city / f"{stem}_disparity.png"
        depth = cityscapes_gt_depth(read_png16(disparity_path), camera.baseline, float(camera.K[0, 0]))
        return DepthEvalSample(
            images=images,
            K=torch.from_numpy(shape_intrinsics(camera.K, hw, self.crop_bottom, self.size)).float(),
            gt_depth=torch.from_numpy(depth).float()[None],
            offsets=EVAL_OFFSETS,
        )


def build_cityscapes(cfg: DataConfig, role: str, split: str) -> Dataset:
    """Cityscapes data set of ``role`` (``triplets``, ``labelled`` or ``depth_eval``) for ``split`` (the folder
    name: ``train``, ``val``, ``test``); the ``train`` split is augmented when ``cfg.augment.enabled``.

    Raises :class:`ConfigError` for an unknown role or an empty ``root``; :class:`DataError` for the data.
    """
    if not cfg.root:
        raise ConfigError("Cityscapes data: data.root is empty (the folder holding leftImg8bit_sequence, gtFine, ...)")
    size = (cfg.height, cfg.width)
    augment = cfg.augment if split == "train" and cfg.augment.enabled else None
    if role == "triplets":
        return CityscapesTripletDataset(cfg.root, split, size, cfg.crop_bottom, tuple(cfg.frame_offsets), augment)
    if role == "labelled":
        return CityscapesSegmentationDataset(cfg.root, split, size, cfg.crop_bottom, augment)
    if role == "depth_eval":
        return CityscapesDepthEvalDataset(cfg.root, split, size, cfg.crop_bottom)
    raise ConfigError(f"Cityscapes data has roles triplets, labelled and depth_eval, not {role!r}")
