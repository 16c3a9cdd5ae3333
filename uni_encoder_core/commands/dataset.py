"""``uni-encoder dataset ACTION``: build and inspect training data; one entry of :data:`ACTIONS` per action.

``from-bag`` turns a rosbag2 recording into a lane-keeping HDF5 file (``docs/data_formats.md``) and writes its
report beside it (``FILE.report.json``: unreadable, dropped and unmatched messages); an existing file is
replaced only with ``--overwrite``. ``show`` writes one sample as the trainer sees it (PNG panel or npz arrays).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from uni_encoder_core.atomic_io import atomic_writer
from uni_encoder_core.data.registry import ROLES
from uni_encoder_core.errors import OutputExistsError

DEFAULT_ROLES = {"cityscapes": "triplets", "kitti": "triplets", "lane_keeping": "steering", "synthetic": "triplets"}
DEFAULT_SIZES = {"kitti": (192, 640)}
DEFAULT_CROP = {"cityscapes": 0.25}


class Action(NamedTuple):
    """One ``dataset`` action: its help line, its options and what it runs (returns the exit code)."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def add_from_bag_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``dataset from-bag``."""
    parser.add_argument("--bag", required=True, type=Path, help="rosbag2 recording (directory, .mcap or .db3)")
    parser.add_argument("--image-topic", required=True, help="sensor_msgs/Image or CompressedImage topic")
    steering = parser.add_mutually_exclusive_group(required=True)
    steering.add_argument("--curvature-topic", help="curvature labels (std_msgs/Float32 or Float64, 1/m)")
    steering.add_argument("--steering-topic", help="ackermann_msgs/AckermannDriveStamped (needs --wheelbase)")
    parser.add_argument("--wheelbase", type=float, help="m; Ackermann angle -> curvature = tan(angle) / wheelbase")
    parser.add_argument("--tolerance", type=float, default=0.05,
                        help="s; farthest steering sample from an image's stamp (default 0.05)")
    parser.add_argument("--out", required=True, type=Path, help="HDF5 file to write (.h5)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file and its report")


def run_from_bag(args: argparse.Namespace) -> int:
    """Convert ``--bag`` into ``--out`` and write ``<out>.report.json``.

    Raises ``OutputExistsError`` for an existing ``--out`` without ``--overwrite``, ``UsageError`` for
    inconsistent options and ``BagError`` naming an unreadable bag, a missing topic or a recording without one
    labelled image.
    """
    from uni_encoder_core.bags.to_dataset import FromBagConfig, bag_to_dataset

    if args.out.is_dir():
        raise OutputExistsError(f"{args.out}: is a directory; --out names the HDF5 file, e.g. {args.out / 'rec.h5'}")
    if args.out.exists() and not args.overwrite:
        raise OutputExistsError(f"{args.out}: exists already; choose another --out or replace it with --overwrite")
    cfg = FromBagConfig(args.image_topic, args.curvature_topic, args.steering_topic, args.wheelbase, args.tolerance)
    report = bag_to_dataset(args.bag, cfg, args.out)
    with atomic_writer(args.out.with_suffix(".report.json"), "w") as fh:
        json.dump(report.to_dict(), fh, indent=2)
    print(report.summary() + f"; report {args.out.with_suffix('.report.json')}")
    return 0


def add_show_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``dataset show``."""
    parser.add_argument("--kind", required=True, choices=sorted(ROLES), help="data set kind")
    parser.add_argument("--root", help="data folder (synthetic: a `uni-encoder synth` output; omit to render)")
    parser.add_argument("--out", required=True, help="FILE.png (panel for a person) or FILE.npz (arrays)")
    parser.add_argument("--split", default="train", help="split (default train, augmented like training)")
    parser.add_argument("--index", type=int, default=0, help="sample index (default 0)")
    parser.add_argument("--role", help="samples of which role (default: triplets; lane_keeping: steering); "
                                       + "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(ROLES.items())))
    parser.add_argument("--split-file", help="KITTI: split file in monodepth2's format ({split} is replaced)")
    parser.add_argument("--height", type=int, help="network input height (default 192)")
    parser.add_argument("--width", type=int, help="network input width (default 512; kitti 640)")
    parser.add_argument("--crop-bottom", type=float, help="fraction of rows cut at the bottom (cityscapes 0.25, "
                                                          "others 0)")
    parser.add_argument("--no-augment", action="store_true", help="show the train split without augmentation")
    parser.add_argument("--seed", type=int, default=0, help="augmentation draw; synthetic world seed when rendering")
    parser.add_argument("--frames", type=int, default=64, help="synthetic frames when rendering (default 64)")


def run_show(args: argparse.Namespace) -> int:
    """Write sample ``--index`` of ``--kind`` as ``--out`` (PNG or npz); ``ConfigError``/``ValueError`` name a bad
    option or a missing file."""
    import torch

    from uni_encoder_core.config import DataConfig
    from uni_encoder_core.data.show import show_sample

    height, width = DEFAULT_SIZES.get(args.kind, (192, 512))
    cfg = DataConfig(kind=args.kind, root=args.root or "", split_file=args.split_file, height=args.height or height,
                     width=args.width or width, train_seeds=[args.seed], val_seeds=[args.seed],
                     synthetic_frames=args.frames,
                     crop_bottom=DEFAULT_CROP.get(args.kind, 0.0) if args.crop_bottom is None else args.crop_bottom)
    cfg.augment.enabled = not args.no_augment
    torch.manual_seed(args.seed)
    out = show_sample(cfg, args.role or DEFAULT_ROLES[args.kind], args.split, args.index, args.out)
    print(f"wrote {out}")
    return 0


ACTIONS: dict[str, Action] = {
    "from-bag": Action("a rosbag2 recording -> a lane-keeping HDF5 file (RGB images, curvature labels)",
                       add_from_bag_arguments, run_from_bag),
    "show": Action("write one sample as the trainer sees it: PNG panel or npz arrays", add_show_arguments, run_show),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One sub-parser per action."""
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, action in ACTIONS.items():
        action.add_arguments(sub.add_parser(name, help=action.help, description=action.help))


def run(args: argparse.Namespace) -> int:
    """Run the chosen action (errors reach the command line's one-line report)."""
    return ACTIONS[args.action].run(args)
