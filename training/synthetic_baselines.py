"""Trivial baselines on one synthetic drive, measured as ``uni-encoder eval --dataset synthetic`` measures a model.

- depth: a constant depth for every pixel, scored like a prediction (full frame, per-image median scaling, so any
  constant gives the same abs_rel);
- semantic: the drive's own majority class for every pixel (the most frequent labelled class over all its frames,
  the strongest constant-class guess), mIoU over the drive;
- panoptic: all stuff, no things: that majority class as one stuff segment covering every frame, PQ over the drive;
- motion mask: all static (nothing predicted as moving), F1 of the moving pixels;
- pose: a camera that never moves, sequence ATE (``eval.pose.zero_motion_ate``); and, as a stronger reference
  (scale-aligned ATE forgives any straight drive), a camera moving at constant velocity along a straight line.

Usage: ``python training/synthetic_baselines.py --seed 1000 --frames 128 --height 64 --width 128``; prints JSON.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from uni_encoder_core.data.synthetic import SyntheticWorld, WorldConfig
from uni_encoder_core.eval.accumulate import DepthEvaluation
from uni_encoder_core.eval.motion import MotionMaskMetric
from uni_encoder_core.eval.pose import sequence_ate, zero_motion_ate
from uni_encoder_core.eval.segmentation import MeanIoUMetric, PanopticQualityMetric
from uni_encoder_core.labels import LABEL_DIVISOR, VOID


def baselines(seed: int, frames: int, height: int, width: int) -> dict[str, float]:
    """``depth_abs_rel_constant``, ``miou_majority``, ``majority_class``, ``pq_all_stuff``,
    ``motion_f1_all_static``, ``ate_zero_motion`` and ``ate_constant_velocity`` on the drive ``seed`` of ``frames``."""
    world = SyntheticWorld(WorldConfig(seed=seed, height=height, width=width, num_frames=frames))
    depth, motion = DepthEvaluation("full_frame"), MotionMaskMetric()
    semantics, panoptics, poses = [], [], []
    for i in range(frames):
        f = world.frame(i)
        depth.add(f.depth, np.ones((height, width)))
        semantics.append(f.semantic)
        panoptics.append(f.panoptic)
        poses.append(f.T_world_cam)
        if i > 0:  # scored on the same frames as a model's mask (every frame with a previous one)
            motion.update(np.zeros_like(f.motion_mask), f.motion_mask)
    labels = np.stack(semantics)
    majority = int(np.bincount(labels[labels != VOID].ravel()).argmax())
    miou, pq = MeanIoUMetric(), PanopticQualityMetric()
    for gt, gt_panoptic in zip(semantics, panoptics):
        miou.update(np.full_like(gt, majority), gt)
        pq.update(np.full(gt_panoptic.shape, majority * LABEL_DIVISOR, np.int64), gt_panoptic)
    return {"depth_abs_rel_constant": depth.compute()["abs_rel"], "miou_majority": miou.compute().miou,
            "majority_class": majority, "pq_all_stuff": pq.compute().pq,
            "motion_f1_all_static": motion.compute()["f1"], "ate_zero_motion": zero_motion_ate(np.stack(poses)),
            "ate_constant_velocity": sequence_ate(np.stack(poses), np.outer(np.arange(frames), [0.0, 0.0, 1.0]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--frames", type=int, default=128)
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--width", type=int, default=128)
    args = parser.parse_args()
    print(json.dumps(baselines(args.seed, args.frames, args.height, args.width), indent=1))


if __name__ == "__main__":
    main()
