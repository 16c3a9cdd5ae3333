"""``uni-encoder demo``: start the real perception node on a synthetic camera stream and report what it publishes.

The work lives in ``uni_encoder_ros.demo`` (it speaks DDS through rclpy); this module only declares the
command, so the core library imports no ROS code.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``uni-encoder demo``."""
    parser.add_argument("--out", default="results/demo", help="results folder (default: results/demo; built beside "
                                                              "it and moved into place when complete)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    parser.add_argument("--checkpoint", help="model checkpoint (default: checkpoints/demo_tiny.pt, "
                                             "else random tiny weights)")
    parser.add_argument("--frames", type=int, default=64, help="camera frames to stream (default: 64)")
    parser.add_argument("--rate", type=float, default=10.0, help="camera rate (Hz, default: 10)")
    parser.add_argument("--height", type=int, default=192, help="camera image height (px, default: 192)")
    parser.add_argument("--width", type=int, default=512, help="camera image width (px, default: 512)")
    parser.add_argument("--seed", type=int, default=1000,
                        help="synthetic world seed (default: 1000, the recipes' validation drive, never trained on)")
    parser.add_argument("--device", default="cpu", help="torch device of the node")
    parser.add_argument("--startup-timeout", type=float, default=180.0, help="s to wait for the node to come up")


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse values the demo cannot run with, naming the option (``UsageError``), before anything starts."""
    from uni_encoder_core.errors import UsageError

    rules = [("--frames", args.frames >= 2, "at least 2 camera frames"),
             ("--rate", 0 < args.rate <= 100, "in (0, 100] Hz"),
             ("--height", 32 <= args.height <= 4096, "in [32, 4096] px"),
             ("--width", 32 <= args.width <= 4096, "in [32, 4096] px"), ("--seed", args.seed >= 0, "non-negative"),
             ("--startup-timeout", args.startup_timeout > 0, "positive (seconds)")]
    for option, ok, need in rules:
        if not ok:
            raise UsageError(f"{option} must be {need}, got {getattr(args, option[2:].replace('-', '_'))}")


def run(args: argparse.Namespace) -> int:
    """Run the demo (``uni_encoder_ros.demo.run_demo``); 0 when every output topic delivered and the watchdog
    stopped the vehicle. Bad arguments, an unusable ``--checkpoint`` or a non-empty ``--out`` without
    ``--overwrite`` are refused before the node starts."""
    check_arguments(args)
    from uni_encoder_ros.demo import run_demo  # the ROS side, loaded only for this command

    return run_demo(args)
