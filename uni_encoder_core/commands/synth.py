"""``uni-encoder synth``: render the synthetic driving world to disk (npz frames, meta.json, contact sheet, bag).

Layout of ``--out DIR`` (documented in docs/data_formats.md): ``frame_000000.npz`` ... one per frame,
``meta.json`` (intrinsics, camera height, wheelbase, fps, class table, conventions) and ``contact_sheet.png``
(RGB / depth / semantic / motion panels of a few frames). ``--bag PATH`` also writes a rosbag2 (MCAP).
Both are built beside their final paths and moved there only when complete (``atomic_directory``): a killed
run leaves the previous data set as it was, never a mix of two runs.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json

import cv2
import numpy as np
from tqdm import tqdm

from uni_encoder_core.atomic_io import atomic_directory, check_output_directory
from uni_encoder_core.colour import colour_depth, colour_semantic
from uni_encoder_core.data.synthetic.world import TRAIN_IDS, SyntheticFrame, SyntheticWorld, WorldConfig
from uni_encoder_core.errors import UsageError
from uni_encoder_core.labels import CLASSES, THING_CLASSES, VOID

NPZ_KEYS = ("rgb", "depth", "semantic", "instance", "panoptic", "K", "T_world_cam", "scene_flow", "motion_mask",
            "curvature", "steering_angle", "stamp")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``uni-encoder synth``."""
    parser.add_argument("--out", required=True, help="output directory (new or empty; written whole or not at all)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out (and an existing --bag)")
    parser.add_argument("--frames", type=int, default=100, help="number of frames (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="world seed: same seed, identical frames")
    parser.add_argument("--height", type=int, default=192, help="image height in pixels (default 192)")
    parser.add_argument("--width", type=int, default=512, help="image width in pixels (default 512)")
    parser.add_argument("--fps", type=float, default=10.0, help="frame rate (default 10)")
    parser.add_argument("--speed", type=float, default=10.0, help="driving speed in m/s (default 10)")
    parser.add_argument("--camera-height", type=float, default=1.5, help="camera above the road in m (default 1.5)")
    parser.add_argument("--wheelbase", type=float, default=2.7, help="for the Ackermann angle, m (default 2.7)")
    parser.add_argument("--bag", help="also write a rosbag2 (MCAP) to this path (a directory; '.mcap' is dropped)")


def colour_motion(frame: SyntheticFrame) -> np.ndarray:
    """The image dimmed, moving cars tinted by scene-flow magnitude (red = fast)."""
    grey = (frame.rgb.astype(np.float32).mean(-1, keepdims=True) * 0.45).repeat(3, -1)
    speed = np.linalg.norm(frame.scene_flow, axis=-1)
    scale = max(float(speed.max()), 1e-6)
    tint = np.stack([np.full_like(speed, 255), 255 * (1 - speed / scale), np.zeros_like(speed)], -1)
    return np.where(frame.motion_mask[..., None], 0.3 * grey + 0.7 * tint, grey).astype(np.uint8)


def contact_sheet(frames: list[SyntheticFrame]) -> np.ndarray:
    """A grid (one row per frame) of RGB / depth / semantic / motion panels with captions: HxWx3 uint8 RGB."""
    titles = ("rgb", "depth", "semantic", "motion")
    rows = []
    for f in frames:
        panels = [f.rgb, colour_depth(f.depth), colour_semantic(f.semantic), colour_motion(f)]
        panels = [np.ascontiguousarray(p) for p in panels]
        for p, title in zip(panels, titles):
            text = f"{title}  #{f.index}" + (f"  k={f.curvature:+.3f}/m" if title == "rgb" else "")
            cv2.putText(p, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        rows.append(np.concatenate(panels, axis=1))
    return np.concatenate(rows, axis=0)


def meta(cfg: WorldConfig, world: SyntheticWorld, files: list[str], bag: str | None) -> dict:
    """The meta.json content: camera, drive, class table and conventions."""
    K = world.K
    return {
        "format": "uni-encoder synthetic frames v1",
        "frames": files,
        "height": cfg.height, "width": cfg.width,
        "K": K.tolist(), "fx": K[0, 0], "fy": K[1, 1], "cx": K[0, 2], "cy": K[1, 2],
        "camera_height": cfg.camera_height, "wheelbase": cfg.wheelbase, "fps": cfg.fps, "speed": cfg.speed,
        "seed": cfg.seed,
        "world": dataclasses.asdict(cfg),
        "classes": [{"train_id": i, "name": name, "color": list(colour), "thing": i in THING_CLASSES,
                     "present": i in TRAIN_IDS} for i, (name, colour) in enumerate(CLASSES)],
        "void_id": VOID,
        "conventions": {
            "camera": "optical frame: x right, y down, z forward; T_world_cam maps camera points to the world "
                      "(x east, y north, z up, ground z = 0)",
            "depth": "optical z in metres, 0 = sky (no return)",
            "panoptic": "train_id*1000 + instance for cars, train_id*1000 for stuff",
            "instance": "car id, stable over the sequence; 0 = no car",
            "scene_flow": "object motion of the point seen at each pixel from this frame to the next, "
                          "in this camera frame, metres per frame; 0 for static scenery",
            "curvature": "of the driven path, 1/m, positive = turning left; steering_angle = atan(wheelbase*k)",
        },
        "bag": bag,
    }


def run(args: argparse.Namespace) -> int:
    """Render ``--frames`` frames to ``--out`` (and ``--bag``); returns the exit code.

    Raises ``UsageError`` for an invalid world setting and ``OutputExistsError`` for a non-empty ``--out`` or an
    existing ``--bag`` without ``--overwrite``, before anything is rendered.
    """
    try:
        cfg = WorldConfig(seed=args.seed, height=args.height, width=args.width, num_frames=args.frames, fps=args.fps,
                          speed=args.speed, camera_height=args.camera_height, wheelbase=args.wheelbase)
        world = SyntheticWorld(cfg)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    out = check_output_directory(args.out, args.overwrite)
    sheet_at = set(np.linspace(0, cfg.num_frames - 1, min(4, cfg.num_frames)).round().astype(int).tolist())
    sheet, files = [], []
    with contextlib.ExitStack() as stack:
        bag, bag_dir = None, None
        if args.bag:
            from uni_encoder_core.bags.writer import GroundTruthBagWriter, bag_directory

            bag_dir = check_output_directory(bag_directory(args.bag), args.overwrite)
            staged_bag = stack.enter_context(atomic_directory(bag_dir, args.overwrite, create=False))
        staged = stack.enter_context(atomic_directory(out, args.overwrite))
        if bag_dir is not None:
            bag = stack.enter_context(GroundTruthBagWriter(staged_bag, cfg))
        for i in tqdm(range(cfg.num_frames), desc="synth", unit="frame"):
            frame = world.frame(i)
            name = f"frame_{i:06d}.npz"
            np.savez_compressed(staged / name, **{key: np.asarray(getattr(frame, key)) for key in NPZ_KEYS})
            files.append(name)
            if bag is not None:
                bag.write(frame)
            if i in sheet_at:
                sheet.append(frame)
        cv2.imwrite(str(staged / "contact_sheet.png"), contact_sheet(sheet)[..., ::-1])
        (staged / "meta.json").write_text(json.dumps(meta(cfg, world, files, str(bag_dir) if bag_dir else None),
                                                     indent=2))
    print(f"wrote {len(files)} frames, meta.json and contact_sheet.png to {out}" + (f"; bag {bag_dir}" if bag else ""))
    return 0
