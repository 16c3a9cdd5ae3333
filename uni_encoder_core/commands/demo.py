"""``uni-encoder demo``: start the real perception node on a synthetic camera stream and report what it publishes.

The work lives in ``uni_encoder_ros.demo`` (it speaks DDS through rclpy); this module only declares the
command, so the core library imports no ROS code.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``uni-encoder demo``."""
    parser.add_argument("--out", default="results/demo", help="results folder (created)")
    parser.add_argument("--checkpoint", help="model checkpoint (default: checkpoints/demo_tiny.pt, "
                                             "else random tiny weights)")
    parser.add_argument("--frames", type=int, default=64, help="camera frames to stream")
    parser.add_argument("--rate", type=float, default=10.0, help="camera rate (Hz)")
    parser.add_argument("--height", type=int, default=192, help="camera image height (px)")
    parser.add_argument("--width", type=int, default=512, help="camera image width (px)")
    parser.add_argument("--seed", type=int, default=1000,
                        help="synthetic world seed (default: a drive no training recipe uses)")
    parser.add_argument("--device", default="cpu", help="torch device of the node")
    parser.add_argument("--startup-timeout", type=float, default=180.0, help="s to wait for the node to come up")


def run(args: argparse.Namespace) -> int:
    """Run the demo (``uni_encoder_ros.demo.run_demo``); 0 when every output topic delivered and the watchdog
    stopped the vehicle."""
    from uni_encoder_ros.demo import run_demo  # the ROS side, loaded only for this command

    return run_demo(args)
