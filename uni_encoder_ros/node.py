"""``perception_node``: the unified encoder as a ROS 2 lifecycle node (REP 103/105/118).

Lifecycle: the checkpoint loads in ``on_configure`` (a missing or corrupt file fails the transition
with a clear log line), subscriptions start in ``on_activate``, device memory is released in
``on_deactivate``. With ``autostart`` (default) the node walks itself to *active*, so ``ros2 run``
works alone; a failed configure then exits with status 1.

Data flow (keep-latest): the image callback only validates the message and stores it in a one-slot
mailbox, counting an overwritten, unprocessed frame as dropped; inference runs in its own callback
group, woken by a guard condition, always on the newest frame. Every output reuses the input header.
A watchdog publishes a stop command and ERROR diagnostics when the input is older than ``max_input_age``.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import rclpy
from ackermann_msgs.msg import AckermannDriveStamped
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import TransformStamped
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import QoSHistoryPolicy, QoSProfile, qos_profile_sensor_data, qos_profile_system_default
from rclpy.qos_overriding_options import QoSOverridingOptions
from rclpy.time import Time
from scipy.spatial.transform import Rotation
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from tf2_msgs.msg import TFMessage

from uni_encoder_core.config import PipelineConfig
from uni_encoder_core.labels import PALETTE
from uni_encoder_ros.conversions import ImageError, image_to_rgb8, numpy_to_image

# name -> (default, description). These names are a public interface: config/perception.yaml documents each.
PARAMETERS: dict[str, tuple[Any, str]] = {
    "checkpoint": ("", "model checkpoint file (.pt) loaded at configure"),
    "device": ("cpu", "torch device: cpu, cuda, cuda:1, ..."),
    "precision": ("fp32", "fp32, fp16 or bf16 (autocast)"),
    "input": ("raw", "raw: sensor_msgs/Image on 'image'; compressed: CompressedImage on 'image/compressed'"),
    "segmentation_tasks": (["panoptic"], "OneFormer tasks to run: any of panoptic, semantic, instance"),
    "max_input_age": (0.5, "s; older input gives no steering; past it the watchdog commands a stop"),
    "max_frame_gap": (0.5, "s; a larger gap between stamps restarts the temporal window"),
    "camera_height": (1.5, "m above the ground, for metric scale"),
    "max_ground_tilt": (30.0, "deg; a ground-plane fit tilted further from the camera's vertical gives no scale"),
    "metric_scale": (False, "scale depth/odometry/flow to metres from a ground-plane fit and camera_height"),
    "crop_bottom": (0.0, "fraction of image rows removed at the bottom before inference (Cityscapes: 0.25)"),
    "wheelbase": (2.7, "m; steering angle = atan(wheelbase * curvature)"),
    "max_steering_angle": (0.5, "rad; commanded angle clamped to +-this"),
    "max_steering_rate": (0.5, "rad/s; commanded angle change limited by this times the stamp difference"),
    "speed": (2.0, "m/s commanded with every steering command; negative: visual-odometry speed (needs metric)"),
    "publish_tf": (False, "also broadcast odom -> base_link on /tf"),
    "autostart": (True, "configure and activate at start-up (no lifecycle manager needed)"),
    "intrinsics": ([0.58, 1.92, 0.5, 0.5], "fx/W, fy/H, cx/W, cy/H used until camera_info arrives"),
    "camera_xyz": ([0.0, 0.0, 1.5], "m; camera position in base_link"),
    "camera_rpy": ([0.0, 0.0, 0.0], "rad; camera body (x forward) orientation in base_link"),
    "odom_frame": ("odom", "frame of the odometry"),
    "base_frame": ("base_link", "vehicle frame (odometry child, steering commands)"),
    "diagnostics_period": (1.0, "s between /diagnostics messages"),
}

# Publishers: the RMW's default reliability and durability, keep-last 5 (the system-default history of Fast DDS is
# keep-last 1, which loses a sample whenever a reader is a frame behind).
OUTPUT_QOS = QoSProfile(
    history=QoSHistoryPolicy.KEEP_LAST, depth=5, reliability=qos_profile_system_default.reliability,
    durability=qos_profile_system_default.durability,
)
# Output topics (relative names) and their message types, in publication order; /tf is optional (``publish_tf``).
OUTPUT_TOPICS: dict[str, type] = {
    "depth": Image, "depth/camera_info": CameraInfo, "segmentation/semantic": Image,
    "segmentation/instance": Image, "segmentation/panoptic": Image, "segmentation/semantic_color": Image,
    "scene_flow": Image, "motion_mask": Image, "odom": Odometry, "steering": AckermannDriveStamped,
}
OPTICAL_IN_BODY = np.array([[0.0, 0, 1], [-1, 0, 0], [0, -1, 0]])  # REP 103: optical (x right, y down, z fwd)


@dataclass
class SteeringLimiter:
    """Clamp commanded angles to ``+-max_angle`` and their change to ``max_rate`` times the stamp difference.

    The first command is only clamped; a stamp that goes backwards (bag loop) allows no change for that command.
    """

    max_angle: float
    max_rate: float
    angle: float = 0.0
    stamp: float | None = None

    def update(self, target: float, stamp: float) -> float:
        """Limited angle (rad) for the desired ``target`` at time ``stamp`` (s)."""
        angle = min(max(target, -self.max_angle), self.max_angle)
        if self.stamp is not None:
            step = self.max_rate * max(0.0, stamp - self.stamp)
            angle = min(max(angle, self.angle - step), self.angle + step)
        self.angle, self.stamp = angle, stamp
        return angle


def camera_matrix(height: int, width: int, info: CameraInfo | None, normalised: list[float]) -> np.ndarray:
    """K (3x3 pixels) for an image of ``height`` x ``width``.

    From ``info`` (camera_info) scaled to that size when given, else from the normalised ``[fx/W, fy/H, cx/W, cy/H]``.
    """
    if info is not None:
        K = np.array(info.k, np.float64).reshape(3, 3)
        return np.diag([width / info.width, height / info.height, 1.0]) @ K
    fx, fy, cx, cy = normalised
    return np.array([[fx * width, 0, cx * width], [0, fy * height, cy * height], [0, 0, 1]])


def camera_in_base(xyz: list[float], rpy: list[float]) -> np.ndarray:
    """4x4 pose of the camera optical frame in base_link from the camera body position and roll/pitch/yaw."""
    T = np.eye(4)
    T[:3, :3] = Rotation.from_euler("xyz", rpy).as_matrix() @ OPTICAL_IN_BODY
    T[:3, 3] = xyz
    return T


def odometry_in_base(pose_optical: np.ndarray, T_base_cam: np.ndarray) -> np.ndarray:
    """Camera-optical odometry (camera in the first camera's frame) -> base_link in odom (= first base_link)."""
    return T_base_cam @ pose_optical @ np.linalg.inv(T_base_cam)


class Mailbox:
    """One-slot, thread-safe store of the newest item; putting over an untaken item counts a drop."""

    def __init__(self):
        self._lock = threading.Lock()
        self._item: Any = None
        self.dropped = 0

    def put(self, item: Any) -> None:
        """Store ``item``, replacing (and counting) any item not yet taken."""
        with self._lock:
            if self._item is not None:
                self.dropped += 1
            self._item = item

    def take(self) -> Any:
        """Remove and return the newest item, or None."""
        with self._lock:
            item, self._item = self._item, None
            return item


class PerceptionNode(LifecycleNode):
    """Camera in; depth, segmentation, scene flow, odometry and steering out (see the module docstring)."""

    def __init__(self, node_name: str = "perception_node", **kwargs: Any):
        super().__init__(node_name, **kwargs)
        for name, (default, description) in PARAMETERS.items():
            self.declare_parameter(name, default, ParameterDescriptor(description=description))
        self.state = "unconfigured"
        self.pipeline = None
        self.released = False
        self.mailbox = Mailbox()
        self.processing = threading.Lock()
        self.counts = dict.fromkeys(("received", "processed", "rejected", "steering", "stop", "transport_dropped"), 0)
        self.sequence: dict[bytes, int] = {}  # newest publication sequence number per image publisher
        self.last_reject = ""
        self.latency = deque(maxlen=200)  # (processing s, pipeline s) per output
        self.latest_stamp: Time | None = None
        self.active_since: Time | None = None
        self.stale = False
        self.K_info: CameraInfo | None = None
        self.pubs: dict[str, Any] = {}
        self.io_subscriptions: list[Any] = []
        self.io_timers: list[Any] = []
        self.guard = None
        self.input_group = MutuallyExclusiveCallbackGroup()
        self.processing_group = MutuallyExclusiveCallbackGroup()
        self.monitor_group = MutuallyExclusiveCallbackGroup()
        self.diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.last_report = (time.monotonic(), dict(self.counts))
        self.diag_timer = self.create_timer(
            float(self.param("diagnostics_period")), self.publish_diagnostics, self.monitor_group
        )

    def param(self, name: str) -> Any:
        """Current value of a declared parameter."""
        return self.get_parameter(name).value

    # ----------------------------------------------------------------- lifecycle

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the model (clean FAILURE with the reason on a bad checkpoint) and create the publishers."""
        from uni_encoder_core.inference.pipeline import PerceptionPipeline  # torch loads here, not at import
        from uni_encoder_core.models.checkpoint import CheckpointError

        self.state = "loading"
        try:
            cfg = self.pipeline_config()
            if self.param("input") not in ("raw", "compressed"):
                raise ValueError(f"parameter input must be 'raw' or 'compressed', got '{self.param('input')}'")
            if self.param("speed") < 0 and not cfg.metric_scale:
                raise ValueError("speed < 0 (visual-odometry speed) needs metric_scale: true")
            self.T_base_cam = camera_in_base(list(self.param("camera_xyz")), list(self.param("camera_rpy")))
            self.pipeline = PerceptionPipeline(cfg)
        except Exception as exc:  # every failure must reach the log: rclpy hides callback exceptions
            self.state = f"failed: {exc}"
            what = f"cannot load checkpoint '{self.param('checkpoint')}': " if isinstance(exc, CheckpointError) else ""
            self.get_logger().error(f"configure failed: {what}{exc}")
            return TransitionCallbackReturn.FAILURE
        self.limiter = SteeringLimiter(self.param("max_steering_angle"), self.param("max_steering_rate"))
        self.pose_var, self.prev_stamp, self.speed_estimate = np.zeros(6), 0.0, 0.0
        self.create_publishers()
        self.state = "inactive"
        self.get_logger().info(
            f"model loaded from '{cfg.checkpoint}' on {cfg.device} ({cfg.precision}), "
            f"input {self.pipeline.model_hw[1]}x{self.pipeline.model_hw[0]}"
        )
        return TransitionCallbackReturn.SUCCESS

    def pipeline_config(self) -> PipelineConfig:
        """The pipeline's typed settings from the node parameters."""
        return PipelineConfig(
            checkpoint=self.param("checkpoint"), device=self.param("device"), precision=self.param("precision"),
            segmentation_tasks=list(self.param("segmentation_tasks")), crop_bottom=self.param("crop_bottom"),
            metric_scale=self.param("metric_scale"), camera_height=self.param("camera_height"),
            max_ground_tilt=self.param("max_ground_tilt"),
            max_frame_gap=self.param("max_frame_gap"), wheelbase=self.param("wheelbase"),
        )

    def create_publishers(self) -> None:
        """Outputs (system-default QoS, overridable by the ``qos_overrides.*`` parameters)."""
        qos = QoSOverridingOptions.with_default_policies()
        for topic, msg_type in OUTPUT_TOPICS.items():
            self.pubs[topic] = self.create_publisher(
                msg_type, topic, OUTPUT_QOS, qos_overriding_options=qos
            )
        if self.param("publish_tf"):
            self.pubs["/tf"] = self.create_publisher(TFMessage, "/tf", QoSProfile(depth=100))

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Start the subscriptions, the processing guard and the watchdog."""
        if self.released:
            self.pipeline.acquire()
            self.released = False
        sensor = QoSProfile(
            history=qos_profile_sensor_data.history, depth=1, reliability=qos_profile_sensor_data.reliability,
            durability=qos_profile_sensor_data.durability,
        )
        qos = QoSOverridingOptions.with_default_policies()
        if self.param("input") == "compressed":
            image = self.create_subscription(CompressedImage, "image/compressed", self.on_image, sensor,
                                             callback_group=self.input_group, qos_overriding_options=qos)
        else:
            image = self.create_subscription(Image, "image", self.on_image, sensor,
                                             callback_group=self.input_group, qos_overriding_options=qos)
        info = self.create_subscription(CameraInfo, "camera_info", self.on_camera_info, sensor,
                                        callback_group=self.input_group, qos_overriding_options=qos)
        self.io_subscriptions = [image, info]
        self.guard = self.create_guard_condition(self.process_latest, self.processing_group)
        period = min(0.1, self.param("max_input_age") / 2)
        self.io_timers = [self.create_timer(period, self.watchdog, self.monitor_group)]
        self.active_since = self.get_clock().now()
        self.latest_stamp = None
        self.sequence.clear()
        self.state = "active"
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop input and processing; free device memory (the model stays loaded on the CPU)."""
        self.state = "inactive"
        self.stop_io()
        with self.processing:
            self.pipeline.release()
        self.released = True
        return TransitionCallbackReturn.SUCCESS

    def stop_io(self) -> None:
        """Destroy subscriptions, the guard and the watchdog; forget any pending frame."""
        for sub in self.io_subscriptions:
            self.destroy_subscription(sub)
        for timer in self.io_timers:
            self.destroy_timer(timer)
        if self.guard is not None:
            self.destroy_guard_condition(self.guard)
        self.io_subscriptions, self.io_timers, self.guard = [], [], None
        self.mailbox.take()

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Unload the model and remove the publishers."""
        with self.processing:
            for pub in self.pubs.values():
                self.destroy_publisher(pub)
            self.pubs, self.pipeline, self.state, self.released = {}, None, "unconfigured", False
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release everything from any state."""
        self.state = "shutting down"
        self.stop_io()
        result = self.on_cleanup(state)
        self.state = "finalized"
        return result

    # ----------------------------------------------------------------- input

    def on_image(self, msg: Image | CompressedImage, info: dict) -> None:
        """Validate and keep the newest frame; wake the processing group.

        Frames the keep-last-1 subscription never delivered show up as gaps in the publisher's
        sequence numbers and are counted as dropped in transport.
        """
        self.counts["received"] += 1
        seq, gid = info.get("publication_sequence_number"), info.get("publisher_gid")
        if seq is not None and gid is not None:
            key = bytes(gid["data"])
            last = self.sequence.get(key)
            if last is not None and seq > last + 1:
                self.counts["transport_dropped"] += seq - last - 1
            self.sequence[key] = seq
        try:
            rgb = image_to_rgb8(msg)
        except ImageError as exc:
            self.counts["rejected"] += 1
            self.last_reject = str(exc)
            self.get_logger().warning(f"rejected image: {exc}", throttle_duration_sec=2.0)
            return
        self.latest_stamp = Time.from_msg(msg.header.stamp)
        self.mailbox.put((msg.header, rgb, time.perf_counter()))
        if self.guard is not None:
            self.guard.trigger()

    def on_camera_info(self, msg: CameraInfo) -> None:
        """Remember the camera's intrinsics (they win over the ``intrinsics`` parameter)."""
        if msg.k[0] > 0 and msg.k[4] > 0 and msg.width > 0 and msg.height > 0:
            self.K_info = msg

    def intrinsics(self, height: int, width: int) -> np.ndarray:
        """K (3x3 pixels) for an image of this size (see :func:`camera_matrix`)."""
        return camera_matrix(height, width, self.K_info, list(self.param("intrinsics")))

    # ----------------------------------------------------------------- processing

    def process_latest(self) -> None:
        """Run inference on the newest frame until the mailbox is empty (processing callback group)."""
        from uni_encoder_core.inference.pipeline import CameraFrame, PipelineError

        while self.state == "active" and (item := self.mailbox.take()) is not None:
            header, rgb, received = item
            stamp = Time.from_msg(header.stamp).nanoseconds * 1e-9
            with self.processing:
                if self.state != "active":
                    return
                try:
                    result = self.pipeline.process(CameraFrame(rgb, stamp, self.intrinsics(*rgb.shape[:2])))
                except PipelineError as exc:
                    self.counts["rejected"] += 1
                    self.last_reject = str(exc)
                    self.get_logger().warning(f"rejected frame: {exc}", throttle_duration_sec=2.0)
                    continue
                if result.reset:
                    self.get_logger().info(f"temporal window restarted: {result.reset}")
                self.publish(header, result)
            self.counts["processed"] += 1
            now = self.get_clock().now()
            age = (now - Time.from_msg(header.stamp)).nanoseconds * 1e-9
            self.latency.append((time.perf_counter() - received, age))

    def publish(self, header, result) -> None:
        """Publish every output of one frame with the input header."""
        pubs = self.pubs
        pubs["depth"].publish(numpy_to_image(result.depth, "32FC1", header))
        pubs["depth/camera_info"].publish(self.camera_info(header, result.K, *result.depth.shape))
        if result.semantic is not None:
            pubs["segmentation/semantic"].publish(numpy_to_image(result.semantic, "mono8", header))
            if pubs["segmentation/semantic_color"].get_subscription_count() > 0:
                colour = PALETTE[result.semantic]
                pubs["segmentation/semantic_color"].publish(numpy_to_image(colour, "rgb8", header))
        if result.instance is not None:
            pubs["segmentation/instance"].publish(numpy_to_image(result.instance, "16UC1", header))
        if result.panoptic is not None:
            pubs["segmentation/panoptic"].publish(numpy_to_image(result.panoptic, "32SC1", header))
        if result.scene_flow is not None:
            pubs["scene_flow"].publish(numpy_to_image(result.scene_flow, "32FC3", header))
            mask = result.motion_mask.view(np.uint8) * 255  # bool -> 0/255 without a temporary
            pubs["motion_mask"].publish(numpy_to_image(mask, "mono8", header))
        self.publish_odometry(header, result)
        if result.steering_angle is not None:
            self.publish_steering(header, result)

    def camera_info(self, header, K: np.ndarray, height: int, width: int) -> CameraInfo:
        """CameraInfo of the depth image (same pixels as the input)."""
        info = CameraInfo(header=header, height=height, width=width)
        info.k = K.reshape(-1).tolist()
        info.r = np.eye(3).reshape(-1).tolist()
        info.p = np.hstack([K, np.zeros((3, 1))]).reshape(-1).tolist()
        if self.K_info is not None:
            info.distortion_model, info.d = self.K_info.distortion_model, list(self.K_info.d)
        return info

    def publish_odometry(self, header, result) -> None:
        """nav_msgs/Odometry odom -> base_link (+ /tf when enabled), with a drift-growing covariance.

        Each frame-to-frame motion is given a 1-sigma error of 10 % of itself plus a floor (1 cm, 1 mrad);
        the pose covariance accumulates these (random walk) and restarts with the odometry.
        """
        if result.relative_pose is None:
            if np.array_equal(result.pose, np.eye(4)):
                self.pose_var = np.zeros(6)
            twist, twist_var = np.zeros(6), np.full(6, 1e6)  # unknown at the start of a window
        else:
            rel = odometry_in_base(result.relative_pose, self.T_base_cam)
            dt = max(result.stamp - self.prev_stamp, 1e-3)
            motion = np.concatenate([rel[:3, 3], Rotation.from_matrix(rel[:3, :3]).as_rotvec()])
            step_var = (0.1 * np.abs(motion)) ** 2 + np.array([1e-4] * 3 + [1e-6] * 3)
            self.pose_var = self.pose_var + step_var
            twist, twist_var = motion / dt, step_var / dt**2
        self.prev_stamp = result.stamp
        self.speed_estimate = float(np.linalg.norm(twist[:3]))
        T = odometry_in_base(result.pose, self.T_base_cam)
        quat = Rotation.from_matrix(T[:3, :3]).as_quat()  # x, y, z, w
        odom = Odometry(child_frame_id=self.param("base_frame"))
        odom.header.stamp, odom.header.frame_id = header.stamp, self.param("odom_frame")
        p = odom.pose.pose
        p.position.x, p.position.y, p.position.z = (float(v) for v in T[:3, 3])
        p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w = (float(v) for v in quat)
        odom.pose.covariance = np.diag(self.pose_var).reshape(-1).tolist()
        tw = odom.twist.twist
        tw.linear.x, tw.linear.y, tw.linear.z, tw.angular.x, tw.angular.y, tw.angular.z = (float(v) for v in twist)
        odom.twist.covariance = np.diag(twist_var).reshape(-1).tolist()
        self.pubs["odom"].publish(odom)
        if "/tf" in self.pubs:
            tf = TransformStamped(header=odom.header, child_frame_id=odom.child_frame_id)
            tf.transform.translation.x, tf.transform.translation.y, tf.transform.translation.z = (
                p.position.x, p.position.y, p.position.z)
            tf.transform.rotation = p.orientation
            self.pubs["/tf"].publish(TFMessage(transforms=[tf]))

    def publish_steering(self, header, result) -> None:
        """Ackermann command from the steering head, unless the frame is already older than ``max_input_age``."""
        age = (self.get_clock().now() - Time.from_msg(header.stamp)).nanoseconds * 1e-9
        if age > self.param("max_input_age"):
            self.get_logger().warning(f"no steering command: frame is {age:.2f} s old", throttle_duration_sec=2.0)
            return
        cmd = AckermannDriveStamped()
        cmd.header.stamp, cmd.header.frame_id = header.stamp, self.param("base_frame")
        cmd.drive.steering_angle = self.limiter.update(result.steering_angle, result.stamp)
        cmd.drive.steering_angle_velocity = float(self.param("max_steering_rate"))
        speed = self.param("speed")
        cmd.drive.speed = float(speed if speed >= 0 else self.speed_estimate)
        self.pubs["steering"].publish(cmd)
        self.counts["steering"] += 1

    # ----------------------------------------------------------------- monitoring

    def input_age(self) -> float:
        """Seconds since the stamp of the newest valid frame (since activation when none arrived)."""
        ref = self.latest_stamp or self.active_since
        return (self.get_clock().now() - ref).nanoseconds * 1e-9

    def watchdog(self) -> None:
        """Past ``max_input_age``: publish a stop command (speed 0, angle held) and report ERROR."""
        age, limit = self.input_age(), self.param("max_input_age")
        if age <= limit:
            if self.stale:
                self.get_logger().info(f"input resumed (age {age:.2f} s)")
            self.stale = False
            return
        cmd = AckermannDriveStamped()
        cmd.header.stamp, cmd.header.frame_id = self.get_clock().now().to_msg(), self.param("base_frame")
        cmd.drive.steering_angle = self.limiter.angle
        cmd.drive.speed = 0.0
        cmd.drive.acceleration = 0.0  # AckermannDrive: 0 = change speed as quickly as possible
        self.pubs["steering"].publish(cmd)
        self.counts["stop"] += 1
        if not self.stale:
            self.stale = True
            self.get_logger().error(f"input stale ({age:.2f} s > max_input_age {limit} s): commanding a stop")
            self.publish_diagnostics()

    def publish_diagnostics(self) -> None:
        """/diagnostics: rates, latencies, counters and model state; ERROR when stale or not loaded."""
        now, counts = time.monotonic(), dict(self.counts)
        then, before = self.last_report
        self.last_report = (now, counts)
        span = max(now - then, 1e-6)
        status = DiagnosticStatus(name=f"{self.get_name()}: perception", hardware_id=str(self.param("device")))
        status.level, status.message = DiagnosticStatus.OK, "ok"
        if self.state == "active" and self.input_age() > self.param("max_input_age"):
            status.level = DiagnosticStatus.ERROR
            status.message = f"input stale: {self.input_age():.2f} s > max_input_age {self.param('max_input_age')} s"
        elif self.state.startswith("failed"):
            status.level, status.message = DiagnosticStatus.ERROR, f"model not loaded ({self.state})"
        elif self.state != "active":
            status.level, status.message = DiagnosticStatus.WARN, f"not active ({self.state})"
        elif counts["rejected"] > before["rejected"]:
            status.level = DiagnosticStatus.WARN
            status.message = f"rejected {counts['rejected'] - before['rejected']} frames: {self.last_reject}"
        latency = np.array(self.latency) * 1000.0 if self.latency else np.zeros((1, 2))
        window = self.pipeline.ring.count if self.pipeline is not None else 0
        values = {
            "model_state": self.state,
            "checkpoint": self.param("checkpoint"),
            "input_rate_hz": f"{(counts['received'] - before['received']) / span:.2f}",
            "output_rate_hz": f"{(counts['processed'] - before['processed']) / span:.2f}",
            "processing_latency_ms_p50": f"{np.percentile(latency[:, 0], 50):.1f}",
            "processing_latency_ms_max": f"{latency[:, 0].max():.1f}",
            "pipeline_latency_ms_p50": f"{np.percentile(latency[:, 1], 50):.1f}",
            "frames_received": str(counts["received"]),
            "frames_processed": str(counts["processed"]),
            "frames_dropped": str(self.mailbox.dropped + counts["transport_dropped"]),
            "frames_dropped_in_transport": str(counts["transport_dropped"]),
            "frames_rejected": str(counts["rejected"]),
            "last_reject_reason": self.last_reject,
            "window_length": str(window),
            "steering_commands": str(counts["steering"]),
            "stop_commands": str(counts["stop"]),
        }
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics.publish(msg)


def main(args: list[str] | None = None) -> int:
    """Entry point of ``perception_node`` (``--ros-args`` accepted)."""
    rclpy.init(args=args)
    node = PerceptionNode()
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    try:
        if node.param("autostart"):
            for name, transition in (("configure", node.trigger_configure), ("activate", node.trigger_activate)):
                if transition() != TransitionCallbackReturn.SUCCESS:
                    node.get_logger().fatal(f"could not {name}; exiting")
                    return 1
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.shutdown()
        node.destroy_node()
        if rclpy.ok():
            rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
