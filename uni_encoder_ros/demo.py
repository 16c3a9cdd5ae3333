"""The ``uni-encoder demo`` run: the perception node's main job on an embedded default, no ROS install needed.

Starts the real ``perception_node`` (a separate process, real Fast DDS on loopback), streams the synthetic
driving world to it as ``image`` + ``camera_info`` at the camera rate, records every output topic, lets the
input go stale to see the watchdog's stop command, and writes ``OUT/`` with one PNG panel per output,
``summary.json`` / ``summary.md`` (frames in/out, latency percentiles, drops, rejects) and ``node.log``.

Without a trained demo checkpoint (``checkpoints/demo_tiny.pt``) the tiny model runs with random weights:
the outputs then show the plumbing (topics, headers, rates, latency), not perception quality.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from tf2_msgs.msg import TFMessage

from uni_encoder_core.atomic_io import atomic_directory, check_output_directory
from uni_encoder_core.data.synthetic import SyntheticWorld, WorldConfig
from uni_encoder_ros.demo_report import stamp_seconds, write_report
from uni_encoder_ros.interface import OUTPUT_TOPICS
from uni_encoder_ros.messages import numpy_to_image
from uni_encoder_ros.node_process import start_node, stop_node

ROOT = Path(__file__).resolve().parents[1]
DEMO_CHECKPOINT = ROOT / "checkpoints" / "demo_tiny.pt"
IMAGE_TOPICS = tuple(topic for topic, msg_type in OUTPUT_TOPICS.items() if msg_type is Image)


def resolve_checkpoint(args: argparse.Namespace, out: Path) -> tuple[Path, bool]:
    """(checkpoint to use, whether it is trained); writes a random tiny checkpoint when none exists. A given
    ``--checkpoint`` is read and checked first (``CheckpointError`` naming the file and the problem)."""
    if args.checkpoint:
        from uni_encoder_core.models.checkpoint import load_checkpoint

        load_checkpoint(args.checkpoint)
        return Path(args.checkpoint), True
    if DEMO_CHECKPOINT.is_file():
        return DEMO_CHECKPOINT, True
    import torch

    from uni_encoder_core.config import ModelConfig
    from uni_encoder_core.config_yaml import load_config
    from uni_encoder_core.models.checkpoint import save_checkpoint
    from uni_encoder_core.models.unified import UniEncoder

    print(f"WARNING: no trained demo checkpoint at {DEMO_CHECKPOINT}: running the tiny model with RANDOM weights. "
          "The outputs show topics, headers, rates and latency, not perception quality.", file=sys.stderr)
    torch.manual_seed(args.seed)
    path = out / "random_tiny.pt"
    save_checkpoint(UniEncoder(load_config(ROOT / "config/model/tiny.yaml", ModelConfig)), path)
    return path, False


class Recorder:
    """An rclpy node that publishes the camera and records every output with its arrival time."""

    def __init__(self):
        self.node = rclpy.create_node("demo_camera")
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.image = self.node.create_publisher(Image, "image", qos)
        self.info = self.node.create_publisher(CameraInfo, "camera_info", qos)
        self.got: dict[str, list[tuple[float, Any]]] = defaultdict(list)
        topics = OUTPUT_TOPICS | {"/tf": TFMessage, "/diagnostics": DiagnosticArray}
        for topic, msg_type in topics.items():
            self.node.create_subscription(msg_type, topic, lambda m, t=topic: self.record(t, m), qos)

    def record(self, topic: str, msg: Any) -> None:
        """Keep ``msg`` with its arrival time (node clock, s)."""
        self.got[topic].append((self.now(), msg))

    def now(self) -> float:
        """Node clock in seconds."""
        return self.node.get_clock().now().nanoseconds * 1e-9

    def spin_until(self, condition, timeout: float) -> bool:
        """Spin until ``condition()`` or ``timeout`` s; returns whether it held."""
        end = time.monotonic() + timeout
        while time.monotonic() < end and not condition():
            rclpy.spin_once(self.node, timeout_sec=0.02)
        return condition()

    def stamps(self, topic: str) -> list[float]:
        """Header stamps (s) of what arrived on ``topic``."""
        return [stamp_seconds(m) for _, m in self.got[topic]]


def stream(rec: Recorder, world, frames: int, rate: float) -> list[float]:
    """Publish ``frames`` synthetic frames at ``rate`` Hz with live stamps; returns the stamps (s)."""
    sent = []
    start = time.monotonic()
    for i in range(frames):
        frame = world.frame(i)
        stamp = rec.node.get_clock().now().to_msg()
        info = CameraInfo(height=frame.rgb.shape[0], width=frame.rgb.shape[1], k=frame.K.reshape(-1).tolist())
        info.header.stamp, info.header.frame_id = stamp, "camera_optical"
        msg = numpy_to_image(frame.rgb, "rgb8")
        msg.header.stamp, msg.header.frame_id = stamp, "camera_optical"
        rec.info.publish(info)
        rec.image.publish(msg)
        sent.append(stamp.sec + stamp.nanosec * 1e-9)
        rec.spin_until(lambda i=i: time.monotonic() >= start + (i + 1) / rate, 10.0)
    return sent


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo; returns 0 when every output topic delivered and the watchdog stopped the vehicle."""
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("ROS_DOMAIN_ID", "73")
    final = check_output_directory(args.out, args.overwrite)
    with atomic_directory(final, args.overwrite) as out:
        code = _run_demo(args, out)
    print(f"results in {final}/")
    return code


def _run_demo(args: argparse.Namespace, out: Path) -> int:
    """The demo writing into ``out`` (the staging folder of the results)."""
    checkpoint, trained = resolve_checkpoint(args, out)
    world = SyntheticWorld(WorldConfig(seed=args.seed, height=args.height, width=args.width,
                                       num_frames=max(args.frames, 2), fps=args.rate))
    params = {"checkpoint": str(checkpoint), "device": args.device, "publish_tf": "true", "metric_scale": "true",
              "camera_height": str(world.cfg.camera_height), "max_input_age": "2.0", "max_frame_gap": "2.0",
              "diagnostics_period": "0.5"}
    if trained:  # the semantic task's own prediction: the demo model's panoptic queries are not trained yet
        params["segmentation_tasks"] = "[panoptic,semantic]"
    # the recorder is one Python thread on a possibly busy machine: give it a deeper writer history than a vehicle
    # needs, through the node's standard QoS override parameters
    params |= {f"qos_overrides./{topic}.publisher.depth": "100" for topic in OUTPUT_TOPICS}
    log = out / "node.log"
    rclpy.init()
    rec = Recorder()
    proc = start_node(log, params)
    started = time.monotonic()
    try:
        up = rec.spin_until(lambda: rec.image.get_subscription_count() > 0 or proc.poll() is not None,
                            args.startup_timeout)
        if not up or proc.poll() is not None:
            print(f"uni-encoder demo: the node did not start; see {Path(args.out) / log.name}:\n"
                  f"{log.read_text()[-2000:]}", file=sys.stderr)
            return 1
        startup = time.monotonic() - started
        rec.spin_until(lambda: False, 1.0)  # let every output endpoint match
        sent = stream(rec, world, args.frames, args.rate)
        rec.spin_until(lambda: sent[-1] in rec.stamps("depth"), 30.0)
        end = rec.now()
        rec.spin_until(lambda: any(t > end and m.drive.speed == 0.0 for t, m in rec.got["steering"]), 10.0)
        rec.spin_until(lambda: False, 1.0)  # one more diagnostics round
    finally:
        stop_node(proc)
        rec.node.destroy_node()
        rclpy.try_shutdown()
    summary = write_report(out, rec.got, sent, world, {
        "checkpoint": str(checkpoint), "trained_weights": trained, "device": args.device,
        "camera": f"{args.width}x{args.height} rgb8 @ {args.rate:g} Hz", "node_startup_s": round(startup, 1),
    })
    print((out / "summary.md").read_text())
    missing = [t for t in IMAGE_TOPICS + ("odom", "steering", "/tf", "/diagnostics") if not rec.got[t]]
    if missing or not summary["stop_commands_after_input_ended"]:
        print(f"uni-encoder demo: incomplete run (no output on {missing}, "
              f"stop commands: {summary['stop_commands_after_input_ended']})", file=sys.stderr)
        return 1
    print(f"latency {json.dumps(summary['latency_ms'])} ms")
    return 0
