"""A tiny Cityscapes tree in the official layout (three snippets, cameras, disparity, panoptic ground truth made by
cityscapesscripts' own createPanopticImgs from instanceIds PNGs), shared by the tests that read Cityscapes."""

import json

import cv2
import numpy as np
from cityscapesscripts.preparation.createPanopticImgs import convert2panoptic

H, W = 16, 32  # full frame of the fixture
FX, FY, U0, V0, BASELINE = 20.0, 22.0, 15.5, 7.0, 0.2
# (city, seq, first frame): aachen has two back-to-back snippets (frames 0-29 and 30-59)
SNIPPETS = [("aachen", 0, 0), ("aachen", 0, 30), ("bochum", 1, 100)]


def write_rgb(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))


def frame_image(frame):
    """Uniform image whose red channel is the frame number."""
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = frame, 50, 200
    return rgb


def instance_ids():
    """An official *_instanceIds.png: road (7), sky (23), a person crowd (24), two cars (26000, 26001), ego (1)."""
    ids = np.full((H, W), 7, np.uint16)
    ids[:4] = 23
    ids[4:8, :8] = 24
    ids[4:8, 8:16] = 26000
    ids[4:8, 16:24] = 26001
    ids[12:] = 1
    return ids


def make_cityscapes(root, split="train"):
    for city, seq, start in SNIPPETS:
        for frame in range(start, start + 30):
            name = f"{city}_{seq:06d}_{frame:06d}"
            write_rgb(root / "leftImg8bit_sequence" / split / city / f"{name}_leftImg8bit.png", frame_image(frame))
        stem = f"{city}_{seq:06d}_{start + 19:06d}"
        camera = {"extrinsic": {"baseline": BASELINE, "pitch": 0.0, "roll": 0.0, "x": 1.7, "y": 0.0, "yaw": 0.0,
                                "z": 1.2},
                  "intrinsic": {"fx": FX, "fy": FY, "u0": U0, "v0": V0}}
        (root / "camera" / split / city).mkdir(parents=True, exist_ok=True)
        (root / "camera" / split / city / f"{stem}_camera.json").write_text(json.dumps(camera))
        write_rgb(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", frame_image(start + 19))
        gt = root / "gtFine" / split / city
        gt.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(gt / f"{stem}_gtFine_instanceIds.png"), instance_ids())
        disparity = np.zeros((H, W), np.uint16)
        disparity[:, :8] = 1 + 256 * 8  # d = 8 px -> depth 0.2 * 20 / 8 = 0.5 m
        disparity[:, 8:16] = 1 + 640  # d = 2.5 px -> 1.6 m
        disparity[:, 16:24] = 1  # d = 0 -> invalid
        (root / "disparity" / split / city).mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(root / "disparity" / split / city / f"{stem}_disparity.png"), disparity)
    convert2panoptic(str(root / "gtFine"), str(root / "gtFine"), False, [split])
    return root
