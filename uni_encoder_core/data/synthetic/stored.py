"""Frames of the synthetic world as ``uni-encoder synth`` wrote them: ``DIR/meta.json`` + ``frame_XXXXXX.npz``.

The layout is documented in ``docs/data_formats.md``. :class:`StoredFrames` gives the same
:class:`SyntheticFrame` objects as ``SyntheticWorld.frame``, read from the files instead of rendered.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from uni_encoder_core.data.frames import DataError
from uni_encoder_core.data.synthetic.world import SyntheticFrame, WorldConfig

SCALARS = ("curvature", "steering_angle", "stamp")
ARRAYS = ("rgb", "depth", "semantic", "instance", "panoptic", "K", "T_world_cam", "scene_flow", "motion_mask")


def read_meta(root: str | Path) -> dict:
    """``root/meta.json`` of a ``uni-encoder synth`` output; :class:`DataError` names a missing or broken file."""
    path = Path(root) / "meta.json"
    if not Path(root).is_dir():
        raise DataError(f"synthetic frames: folder {root} does not exist")
    if not path.is_file():
        raise DataError(f"{path}: missing; {root} is not a complete `uni-encoder synth` output (interrupted run?)")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not JSON ({exc})") from None
    if not isinstance(meta, dict) or not {"world", "frames"} <= set(meta):
        raise DataError(f"{path}: not a `uni-encoder synth` meta.json (needs 'world' and 'frames')")
    return meta


class StoredFrames:
    """The frames of one ``uni-encoder synth`` output folder, read on demand.

    ``cfg`` is the :class:`WorldConfig` that rendered them (from ``meta.json``); ``frame(i)`` reads file ``i``
    of ``meta.json``'s ``frames`` list. Raises :class:`DataError` naming a missing or unreadable file.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        meta = read_meta(self.root)
        try:
            self.cfg = WorldConfig(**meta["world"])
        except (TypeError, ValueError) as exc:
            raise DataError(f"{self.root / 'meta.json'}: invalid world configuration ({exc})") from None
        self.files = [self.root / name for name in meta["frames"]]
        if not self.files:
            raise DataError(f"{self.root / 'meta.json'}: lists no frames")

    def __len__(self) -> int:
        return len(self.files)

    def frame(self, i: int) -> SyntheticFrame:
        """Frame ``i`` with its ground truth, as rendered when the folder was written."""
        if not 0 <= i < len(self):
            raise IndexError(f"frame {i} outside 0..{len(self) - 1}")
        path = self.files[i]
        if not path.is_file():
            raise DataError(f"missing file {path}")
        try:
            with np.load(path) as data:
                fields = {k: data[k] for k in ARRAYS} | {k: float(data[k]) for k in SCALARS}
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise DataError(f"{path}: not a synthetic frame file ({type(exc).__name__}: {exc})") from None
        return SyntheticFrame(index=i, **fields)
