"""Trivial baselines on one synthetic drive, measured as ``uni-encoder eval --dataset synthetic`` measures a model.

- depth: a constant depth for every pixel, scored like a prediction (full frame, per-image median scaling, so any
  constant gives the same abs_rel);
- semantic: the drive's own majority class for every pixel (the most frequent labelled class over all its frames,
  the strongest constant-class guess), mIoU over the drive.

Usage: ``python training/synthetic_baselines.py --seed 1000 --frames 128 --height 64 --width 128``; prints JSON.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from uni_encoder_core.data.synthetic import SyntheticWorld, WorldConfig
from uni_encoder_core.eval.accumulate import DepthEvaluation
from uni_encoder_core.eval.segmentation import MeanIoUMetric
from uni_encoder_core.labels import VOID


def baselines(seed: int, frames: int, height: int, width: int) -> dict[str, float]:
    """``{"depth_abs_rel_constant", "miou_majority", "majority_class"}`` on the drive ``seed`` of ``frames``."""
    world = SyntheticWorld(WorldConfig(seed=seed, height=height, width=width, num_frames=frames))
    depth = DepthEvaluation("full_frame")
    semantics = []
    for i in range(frames):
        f = world.frame(i)
        depth.add(f.depth, np.ones((height, width)))
        semantics.append(f.semantic)
    labels = np.stack(semantics)
    majority = int(np.bincount(labels[labels != VOID].ravel()).argmax())
    miou = MeanIoUMetric()
    for gt in semantics:
        miou.update(np.full_like(gt, majority), gt)
    return {"depth_abs_rel_constant": depth.compute()["abs_rel"], "miou_majority": miou.compute().miou,
            "majority_class": majority}


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
