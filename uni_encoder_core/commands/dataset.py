"""``uni-encoder dataset ACTION``: build and inspect training data; one entry of :data:`ACTIONS` per action.

``from-bag`` turns a rosbag2 recording into a lane-keeping HDF5 file (``docs/data_formats.md``) and writes its
report beside it (``FILE.report.json``: unreadable, dropped and unmatched messages); an existing file is
replaced only with ``--overwrite``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from uni_encoder_core.atomic_io import atomic_writer
from uni_encoder_core.errors import OutputExistsError


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


ACTIONS: dict[str, Action] = {
    "from-bag": Action("a rosbag2 recording -> a lane-keeping HDF5 file (RGB images, curvature labels)",
                       add_from_bag_arguments, run_from_bag),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One sub-parser per action."""
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, action in ACTIONS.items():
        action.add_arguments(sub.add_parser(name, help=action.help, description=action.help))


def run(args: argparse.Namespace) -> int:
    """Run the chosen action."""
    return ACTIONS[args.action].run(args)
