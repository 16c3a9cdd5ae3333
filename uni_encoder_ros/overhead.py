"""Node overhead: a frame published over DDS until the node's last output for it arrives, against the pipeline alone
on the same frame, side by side (``uni-encoder bench``'s ``node`` section).

The real ``perception_node`` runs as a separate process (Fast DDS on loopback) with the shipped parameter file; this
process publishes each frame, waits until every output of that frame arrived, then runs ``PerceptionPipeline``
itself on the same frame (the order alternates every round). Both first fill the 16-frame window, so every frame
yields every output, steering included. The difference is what the node adds: message conversion, DDS transport
both ways, output messages, the executor.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from uni_encoder_core.bench.timing import summarize
from uni_encoder_core.inference.pipeline import CameraFrame, PerceptionPipeline
from uni_encoder_core.inference.settings import PipelineConfig
from uni_encoder_core.messages.frames import camera_matrix
from uni_encoder_ros.interface import NODE_PARAMETERS, OUTPUT_TOPICS
from uni_encoder_ros.messages import numpy_to_image
from uni_encoder_ros.node_process import start_node, stop_node

# on-demand outputs (published only while someone subscribes) are not part of the per-frame product
TOPICS = {t: m for t, m in OUTPUT_TOPICS.items() if t != "segmentation/semantic_color"}


def _stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def measure_node_overhead(checkpoint: Path, height: int, width: int, frames: int, warmup: int, device: str,
                          tasks: list[str], log: Path, seed: int = 0, timeout: float = 10.0) -> dict:
    """``frames`` measured rounds after a window fill and ``warmup`` rounds: node ms (publish -> last output),
    pipeline ms, and their per-round ratio. Raises ``RuntimeError`` with the node's log when it does not start."""
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("ROS_DOMAIN_ID", "74")
    params = {"checkpoint": str(checkpoint), "device": device, "max_input_age": "60.0", "max_frame_gap": "3600.0",
              "diagnostics_period": "60.0", "warmup_frames": "2",
              "segmentation_tasks": "[" + ",".join(tasks) + "]"}
    pipeline = PerceptionPipeline(PipelineConfig(checkpoint=str(checkpoint), device=device, segmentation_tasks=tasks,
                                                 max_frame_gap=1000.0))
    K = camera_matrix(height, width, None, NODE_PARAMETERS["intrinsics"][0])
    rclpy.init()
    node = rclpy.create_node("overhead_probe")
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    publisher = node.create_publisher(Image, "image", reliable)
    arrivals: dict[str, dict[int, float]] = {t: {} for t in TOPICS}
    for topic, msg_type in TOPICS.items():
        node.create_subscription(msg_type, topic, lambda m, t=topic: arrivals[t].setdefault(
            _stamp_ns(m), time.perf_counter()), reliable)
    proc = start_node(log, params)

    def spin_until(condition, seconds: float) -> bool:
        end = time.monotonic() + seconds
        while time.monotonic() < end and not condition():
            rclpy.spin_once(node, timeout_sec=0.001)
        return condition()

    def through_node(msg: Image, ns: int, wanted: list[str]) -> float | None:
        start = time.perf_counter()
        publisher.publish(msg)
        if not spin_until(lambda: all(ns in arrivals[t] for t in wanted), timeout):
            return None
        return 1e3 * (max(arrivals[t][ns] for t in wanted) - start)

    def alone(rgb: np.ndarray, ns: int) -> float:
        start = time.perf_counter()
        pipeline.process(CameraFrame(rgb, ns * 1e-9, K))
        return 1e3 * (time.perf_counter() - start)

    rng = np.random.default_rng(seed)
    window = pipeline.ring.capacity
    node_ms, pipe_ms, lost = [], [], 0
    try:
        up = spin_until(lambda: publisher.get_subscription_count() > 0 or proc.poll() is not None, 180.0)
        if not up or proc.poll() is not None:
            raise RuntimeError(f"the node did not start; its log ({log}):\n{log.read_text()[-2000:]}")
        spin_until(lambda: all(node.count_publishers(t) > 0 for t in TOPICS), 20.0)
        spin_until(lambda: False, 1.0)  # let the output endpoints match
        for i in range(window + warmup + frames):
            rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            stamp = node.get_clock().now()
            msg = numpy_to_image(rgb, "rgb8")
            msg.header.stamp, msg.header.frame_id = stamp.to_msg(), "camera_optical"
            ns = stamp.nanoseconds
            wanted = [t for t in TOPICS if t != "steering" or i >= window - 1]

            if i % 2:
                b, a = alone(rgb, ns), through_node(msg, ns, wanted)
            else:
                a, b = through_node(msg, ns, wanted), alone(rgb, ns)
            if a is None:
                lost += 1
            elif i >= window + warmup:
                node_ms.append(a)
                pipe_ms.append(b)
    finally:
        stop_node(proc)
        node.destroy_node()
        rclpy.try_shutdown()
    if not node_ms:
        raise RuntimeError(f"no frame came back from the node within {timeout:g} s; its log: {log}")
    ratios = [a / b for a, b in zip(node_ms, pipe_ms)]
    return {"node_ms": summarize(node_ms), "pipeline_ms": summarize(pipe_ms), "ratio": summarize(ratios)["median"],
            "overhead": summarize(ratios)["median"] - 1.0, "lost_frames": lost, "height": height, "width": width,
            "samples": {"node_ms": node_ms, "pipeline_ms": pipe_ms}}
