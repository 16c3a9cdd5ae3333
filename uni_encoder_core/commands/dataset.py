"""``uni-encoder dataset``: data-set tools. ``show`` writes one sample as the trainer sees it (PNG panel or npz).

Each action is a sub-command: ``add_arguments`` creates the sub-parsers and ``run`` dispatches on ``args.action``.
"""

from __future__ import annotations

import argparse
import sys

import torch

from uni_encoder_core.config import ConfigError, DataConfig
from uni_encoder_core.data.sources import ROLES

DEFAULT_ROLES = {"cityscapes": "triplets", "kitti": "triplets", "lane_keeping": "steering", "synthetic": "triplets"}
DEFAULT_SIZES = {"kitti": (192, 640)}
DEFAULT_CROP = {"cityscapes": 0.25}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Sub-commands of ``uni-encoder dataset`` and their options."""
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="write one sample as the trainer sees it: PNG panel or npz arrays")
    show.add_argument("--kind", required=True, choices=sorted(ROLES), help="data set kind")
    show.add_argument("--root", help="data folder (synthetic: a `uni-encoder synth` output; omit to render)")
    show.add_argument("--out", required=True, help="FILE.png (panel for a person) or FILE.npz (arrays)")
    show.add_argument("--split", default="train", help="split (default train, augmented like training)")
    show.add_argument("--index", type=int, default=0, help="sample index (default 0)")
    show.add_argument("--role", help="samples of which role (default: triplets; lane_keeping: steering); "
                                     + "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(ROLES.items())))
    show.add_argument("--split-file", help="KITTI: split file in monodepth2's format ({split} is replaced)")
    show.add_argument("--height", type=int, help="network input height (default 192)")
    show.add_argument("--width", type=int, help="network input width (default 512; kitti 640)")
    show.add_argument("--crop-bottom", type=float, help="fraction of rows cut at the bottom (cityscapes 0.25, "
                                                        "others 0)")
    show.add_argument("--no-augment", action="store_true", help="show the train split without augmentation")
    show.add_argument("--seed", type=int, default=0, help="augmentation draw; synthetic world seed when rendering")
    show.add_argument("--frames", type=int, default=64, help="synthetic frames when rendering (default 64)")


def _show(args: argparse.Namespace) -> int:
    from uni_encoder_core.data.show import show_sample

    height, width = DEFAULT_SIZES.get(args.kind, (192, 512))
    cfg = DataConfig(kind=args.kind, root=args.root or "", split_file=args.split_file, height=args.height or height,
                     width=args.width or width, seed=args.seed, synthetic_frames=args.frames,
                     crop_bottom=DEFAULT_CROP.get(args.kind, 0.0) if args.crop_bottom is None else args.crop_bottom)
    cfg.augment.enabled = not args.no_augment
    torch.manual_seed(args.seed)
    out = show_sample(cfg, args.role or DEFAULT_ROLES[args.kind], args.split, args.index, args.out)
    print(f"wrote {out}")
    return 0


ACTIONS = {"show": _show}


def run(args: argparse.Namespace) -> int:
    """Run the chosen action; exit code 2 with one line naming the problem on bad input."""
    try:
        return ACTIONS[args.action](args)
    except (ConfigError, ValueError) as exc:
        print(f"uni-encoder dataset {args.action}: {exc}", file=sys.stderr)
        return 2
