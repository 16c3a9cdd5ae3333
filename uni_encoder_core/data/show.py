"""One sample as the trainer sees it: a PNG panel for a person, an npz of its arrays for a script.

The sample comes from ``uni_encoder_core.data.registry.build_dataset`` (so from exactly the loader, crop, resize and,
on the ``train`` split, augmentation the trainer uses). Its fields are written as they are:

- ``images`` Sx3xHxW float32 in [0, 1] (a labelled sample's single ``image`` gets a leading axis of 1);
- ``K`` 3x3 (pixels of ``images``) where the sample has intrinsics (lane-keeping recordings have none);
- the ground truth it carries: ``depth``, ``T_target_to_source``, ``scene_flow``, ``motion_mask`` (triplets),
  ``semantic``, ``instance``, ``panoptic`` (labelled), ``gt_depth`` (depth evaluation, full resolution),
  ``curvature`` and ``stamps`` (steering windows); ``offsets`` of the frames where the sample has them.

The panel shows the frames (four per row), then every label or depth map coloured, then the intrinsics and the
other numbers as text.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import torch

from uni_encoder_core.atomic_io import atomic_writer
from uni_encoder_core.colour import caption, colour_depth, colour_image, colour_semantic, fit, grid, text_panel
from uni_encoder_core.config import DataConfig
from uni_encoder_core.data.frames import DataError
from uni_encoder_core.data.registry import build_dataset

FRAMES_PER_ROW = 4


def sample_arrays(sample: object) -> dict[str, np.ndarray]:
    """The sample's present fields as numpy arrays (``image`` renamed ``images`` with a leading axis of 1)."""
    arrays = {}
    for f in dataclasses.fields(sample):
        value = getattr(sample, f.name)
        if value is None:
            continue
        value = value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
        if f.name == "image":
            arrays["images"] = value[None]
        else:
            arrays[f.name] = value
    return arrays


def _colour_ids(ids: np.ndarray) -> np.ndarray:
    """Instance ids -> a fixed pseudo-random colour per id, 0 black."""
    lut = np.random.default_rng(0).integers(64, 256, (int(ids.max(initial=0)) + 1, 3), dtype=np.uint8)
    lut[0] = 0
    return lut[ids.astype(np.int64)]


def _colour_mask(mask: np.ndarray) -> np.ndarray:
    return np.repeat((mask > 0.5)[..., None], 3, axis=-1).astype(np.uint8) * 255


def _maps(arrays: dict[str, np.ndarray], height: int, width: int) -> list[np.ndarray]:
    """Coloured label, depth, mask and flow maps, each resized to ``height x width`` and captioned."""
    maps = []
    for name, colour in (("depth", colour_depth), ("gt_depth", colour_depth), ("semantic", colour_semantic),
                         ("instance", _colour_ids), ("motion_mask", _colour_mask)):
        if name in arrays:
            maps.append(caption(fit(colour(np.squeeze(arrays[name])), height, width), name))
    if "panoptic" in arrays:
        panoptic = colour_semantic(arrays["panoptic"] // 1000) // 2 + _colour_ids(arrays["panoptic"] % 1000) // 2
        maps.append(caption(fit(panoptic, height, width), "panoptic"))
    if "scene_flow" in arrays:
        for offset, flow in zip(arrays.get("offsets", range(len(arrays["scene_flow"]))), arrays["scene_flow"]):
            if offset != 0:
                speed = np.linalg.norm(flow, axis=0)  # coloured as an inverse depth would be: fast = bright
                inverse = colour_depth(np.where(speed > 0, 1.0 / np.maximum(speed, 1e-6), 0.0))
                maps.append(caption(fit(inverse, height, width), f"|scene flow| to {int(offset):+d}"))
    return maps


def _text(arrays: dict[str, np.ndarray], title: str) -> list[str]:
    lines = [title, f"images {' x '.join(map(str, arrays['images'].shape))}"]
    if "K" in arrays:
        lines += ["K (px):", *("  " + "  ".join(f"{v:9.3f}" for v in row) for row in arrays["K"])]
    else:
        lines.append("K: none (the data set has no intrinsics)")
    if "offsets" in arrays:
        lines.append(f"offsets {arrays['offsets'].tolist()}")
    if "curvature" in arrays:
        lines.append(f"curvature 1/m: newest {float(arrays['curvature'][-1]):+.4f}, "
                     f"range {float(arrays['curvature'].min()):+.4f}..{float(arrays['curvature'].max()):+.4f}")
    return lines


def sample_panel(arrays: dict[str, np.ndarray], title: str) -> np.ndarray:
    """A panel of :func:`sample_arrays`' output: frames, coloured maps, text. HxWx3 uint8 RGB."""
    images = arrays["images"]
    labels = arrays.get("offsets")
    frames = [caption(colour_image(image), f"offset {int(labels[i]):+d}" if labels is not None else f"frame {i}")
              for i, image in enumerate(images)]
    rows = [frames[i:i + FRAMES_PER_ROW] for i in range(0, len(frames), FRAMES_PER_ROW)]
    height, width = frames[0].shape[:2]
    maps = _maps(arrays, height, width)
    rows += [maps[i:i + FRAMES_PER_ROW] for i in range(0, len(maps), FRAMES_PER_ROW)]
    text = _text(arrays, title)
    rows.append([text_panel(text, max(height, 14 * len(text) + 6), max(width, 2 * 160))])
    return _stack(rows)


def _stack(rows: list[list[np.ndarray]]) -> np.ndarray:
    """Image rows via :func:`grid`, then the text row below at its own size (padded to the same width)."""
    body = grid(rows[:-1])
    text = rows[-1][0]
    width = max(body.shape[1], text.shape[1])
    pad = [np.pad(p, ((0, 0), (0, width - p.shape[1]), (0, 0))) for p in (body, text)]
    return np.concatenate(pad, axis=0)


def show_sample(cfg: DataConfig, role: str, split: str, index: int, out: str | Path) -> Path:
    """Write sample ``index`` of ``cfg.kind``'s ``role`` data set on ``split`` to ``out`` (``.png`` or ``.npz``).

    Raises :class:`DataError` for an unsupported suffix, an index outside the data set, or a data problem
    (naming the file), ``ConfigError`` for a role the kind does not have.
    """
    out = Path(out)
    if out.suffix not in (".png", ".npz"):
        raise DataError(f"output {out}: must end in .png (panel) or .npz (arrays)")
    dataset = build_dataset(cfg, role, split)
    if not 0 <= index < len(dataset):
        raise DataError(f"index {index} outside 0..{len(dataset) - 1} ({len(dataset)} {role} samples)")
    arrays = sample_arrays(dataset[index])
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npz":
        with atomic_writer(out, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    else:
        panel = sample_panel(arrays, f"{cfg.kind} {role} {split} #{index}")
        if not cv2.imwrite(str(out), np.ascontiguousarray(panel[..., ::-1])):
            raise DataError(f"could not write {out}")
    return out
