"""Replay a recording through the perception pipeline exactly as the node would run it, without ROS.

Every camera message of a rosbag2 recording, in stamp order, goes through :class:`PerceptionPipeline` and the
node's message building (:class:`OutputMessages`); the outputs are recorded into an MCAP bag with the node's
topics, types and headers (the input image's stamp and frame id). Unlike the live node nothing is dropped and no
wall clock is read for the outputs: the same recording and checkpoint give the same output bag, byte for byte.
What cannot be used is reported, never fatal: undecodable or truncated messages, stamps that go backwards,
unknown encodings, frames the pipeline refuses; gaps and backward steps restart the temporal window (a reset,
with its reason). The intrinsics of an image are those of the newest ``camera_info`` stamped at or before it,
else the node's ``intrinsics`` parameter. Latency is the pipeline's compute time per frame (wall clock, reported
only).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from uni_encoder_core.bags.output_bag import OutputBagWriter
from uni_encoder_core.bags.reader import (
    ACKERMANN_TYPE,
    CAMERA_INFO_TYPE,
    CURVATURE_TYPES,
    IMAGE_TYPES,
    BagReader,
    Rejected,
    usable_camera_info,
)
from uni_encoder_core.bags.steering import SteeringSeries, read_steering
from uni_encoder_core.inference.pipeline import CameraFrame, PerceptionPipeline, PerceptionResult, PipelineError
from uni_encoder_core.inference.settings import NodeConfig
from uni_encoder_core.messages.frames import camera_in_base, camera_matrix
from uni_encoder_core.messages.images import ImageError, image_to_rgb8
from uni_encoder_core.messages.outputs import Header, OutputMessages
from uni_encoder_core.messages.steering import CommandGate


@dataclass
class ReplayConfig:
    """What to read from a recording.

    ``image_topic``: sensor_msgs/Image or CompressedImage; ``camera_info_topic``: optional CameraInfo;
    ``curvature_topic`` (Float32/Float64, 1/m) or ``steering_topic`` (AckermannDriveStamped, with ``wheelbase``
    in m): the recorded steering the predictions are scored against; ``tolerance`` (s): the farthest a recorded
    sample may be from a prediction's stamp; ``steering_lambda``: eq. 5's lambda for the weighted MSE;
    ``panel_frames``: frames drawn in the panels.
    """

    image_topic: str
    camera_info_topic: str | None = None
    curvature_topic: str | None = None
    steering_topic: str | None = None
    wheelbase: float | None = None
    tolerance: float = 0.05
    steering_lambda: float = 0.1
    panel_frames: int = 4


@dataclass
class BagReplay:
    """The outcome of one recording: output topic message counts, per-frame pipeline latency (s), the steering
    predictions (stamps ns, head curvature 1/m, commanded angle rad), window resets (stamp s, reason), rejected
    messages, the recorded steering (None without a steering topic) and sampled frames for the panels."""

    bag: Path
    output: Path
    frames: int = 0
    processed: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    prediction_stamps: list[int] = field(default_factory=list)
    head_curvature: list[float] = field(default_factory=list)
    command_angle: list[float] = field(default_factory=list)
    resets: list[tuple[float, str]] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    recorded: SteeringSeries | None = None
    panels: list[tuple[np.ndarray, PerceptionResult]] = field(default_factory=list)


def output_messages(node: NodeConfig) -> OutputMessages:
    """The node's message builder for these settings (camera extrinsic, command gate, speed, frames)."""
    T_base_cam = camera_in_base(list(node.camera_xyz), list(node.camera_rpy))
    gate = CommandGate(node.max_steering_angle, node.max_steering_rate, node.max_input_age)
    return OutputMessages(T_base_cam, gate, node.speed, node.odom_frame, node.base_frame)


def check_bag(path: Path, cfg: ReplayConfig) -> None:
    """Raise :class:`~uni_encoder_core.bags.reader.BagError` naming the bag when it is unreadable or lacks one of
    ``cfg``'s topics (or has it with another type): checked for every bag before the model loads."""
    with BagReader(path) as reader:
        reader.require(cfg.image_topic, IMAGE_TYPES)
        if cfg.camera_info_topic:
            reader.require(cfg.camera_info_topic, (CAMERA_INFO_TYPE,))
        if cfg.curvature_topic:
            reader.require(cfg.curvature_topic, CURVATURE_TYPES)
        if cfg.steering_topic:
            reader.require(cfg.steering_topic, (ACKERMANN_TYPE,))


def _camera_infos(reader: BagReader, topic: str | None) -> tuple[list[int], list[object]]:
    if topic is None:
        return [], []
    reader.require(topic, (CAMERA_INFO_TYPE,))
    infos = [(m.stamp_ns, m.msg) for m in reader.messages(topic) if usable_camera_info(m.msg) is not None]
    return [s for s, _ in infos], [i for _, i in infos]


def replay_bag(path: Path, pipeline: PerceptionPipeline, node: NodeConfig, cfg: ReplayConfig,
               output: Path) -> BagReplay:
    """Run every frame of the recording at ``path`` and record the outputs into the new bag ``output``.

    The pipeline's temporal state is reset first. Raises :class:`~uni_encoder_core.bags.reader.BagError` naming
    the bag when it is unreadable or lacks a requested topic.
    """
    pipeline.reset()
    messages = output_messages(node)
    with BagReader(path) as reader:
        reader.require(cfg.image_topic, IMAGE_TYPES)
        steering_topic = cfg.curvature_topic or cfg.steering_topic
        recorded = read_steering(reader, steering_topic, cfg.wheelbase) if steering_topic else None
        info_stamps, infos = _camera_infos(reader, cfg.camera_info_topic)
        run = BagReplay(path, output, frames=reader.count(cfg.image_topic), recorded=recorded)
        panel_at = set(np.linspace(0, max(run.frames - 1, 0), min(cfg.panel_frames, run.frames)).round().astype(int))
        with OutputBagWriter(output) as writer:
            for message in tqdm(reader.messages(cfg.image_topic), total=run.frames, desc=path.name, unit="frame"):
                try:
                    rgb = image_to_rgb8(message.msg, node.max_input_pixels)
                except ImageError as exc:
                    reader.rejected.append(Rejected(cfg.image_topic, message.index, message.stamp, str(exc)))
                    continue
                k = int(np.searchsorted(info_stamps, message.stamp_ns, side="right")) - 1
                info = infos[k] if k >= 0 else None
                K = camera_matrix(rgb.shape[0], rgb.shape[1], info, list(node.intrinsics))
                start = time.perf_counter()
                try:
                    result = pipeline.process(CameraFrame(rgb, message.stamp, K))
                except PipelineError as exc:
                    reader.rejected.append(Rejected(cfg.image_topic, message.index, message.stamp, str(exc)))
                    continue
                run.latencies.append(time.perf_counter() - start)
                run.processed += 1
                if result.reset:
                    run.resets.append((message.stamp, result.reset))
                stamp = message.msg.header.stamp
                header = Header(int(stamp.sec), int(stamp.nanosec), message.msg.header.frame_id)
                for topic, content in messages.images(result, header, info, colour=True).items():
                    writer.write(topic, content)
                writer.write("odom", messages.odometry(result, header))
                if result.steering_angle is not None:
                    drive = messages.steering(result, header)  # None: a rate-bounded stop (non-finite command)
                    if drive is not None:
                        writer.write("steering", drive)
                    if drive is not None and not drive.reason:
                        run.prediction_stamps.append(message.stamp_ns)
                        run.head_curvature.append(float(result.curvature))
                        run.command_angle.append(drive.steering_angle)
                if message.index in panel_at:
                    run.panels.append((np.array(rgb), result))
        run.counts = dict(writer.counts)
        run.rejected = list(reader.rejected)
    return run


def command_curvature(angles: list[float] | np.ndarray, wheelbase: float) -> np.ndarray:
    """Curvature (1/m) of commanded Ackermann angles (rad): ``tan(angle) / wheelbase``."""
    return np.tan(np.asarray(angles, np.float64)) / wheelbase


def latency_stats(latencies: list[float]) -> dict[str, float]:
    """Mean, median, 95th percentile and maximum of per-frame latencies, in milliseconds (NaN when none)."""
    if not latencies:
        return dict.fromkeys(("mean_ms", "median_ms", "p95_ms", "max_ms"), math.nan)
    ms = np.asarray(latencies) * 1e3
    return {"mean_ms": float(ms.mean()), "median_ms": float(np.median(ms)), "p95_ms": float(np.percentile(ms, 95)),
            "max_ms": float(ms.max())}

