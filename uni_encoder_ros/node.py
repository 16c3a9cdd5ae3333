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

import array
import dataclasses
import sys
import threading
import time
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import QoSProfile
from rclpy.qos_overriding_options import QoSOverridingOptions
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from tf2_msgs.msg import TFMessage

from uni_encoder_core.config import PipelineConfig
from uni_encoder_core.messages.frames import camera_in_base, camera_matrix
from uni_encoder_core.messages.images import ImageError, image_to_rgb8
from uni_encoder_core.messages.outputs import Header, OutputMessages
from uni_encoder_core.messages.steering import SteeringLimiter
from uni_encoder_ros.diagnostics import Diagnostics, NodeState
from uni_encoder_ros.interface import INPUT_QOS, OUTPUT_QOS, OUTPUT_TOPICS, PARAMETERS
from uni_encoder_ros.mailbox import Mailbox
from uni_encoder_ros.messages import header_fields, to_message, transform_message


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
        self.stats = Diagnostics()
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
            T_base_cam = camera_in_base(list(self.param("camera_xyz")), list(self.param("camera_rpy")))
            self.pipeline = PerceptionPipeline(cfg)
        except Exception as exc:  # every failure must reach the log: rclpy hides callback exceptions
            self.state = f"failed: {exc}"
            what = f"cannot load checkpoint '{self.param('checkpoint')}': " if isinstance(exc, CheckpointError) else ""
            self.get_logger().error(f"configure failed: {what}{exc}")
            return TransitionCallbackReturn.FAILURE
        limiter = SteeringLimiter(self.param("max_steering_angle"), self.param("max_steering_rate"))
        self.messages = OutputMessages(T_base_cam, limiter, self.param("speed"), self.param("odom_frame"),
                                       self.param("base_frame"))
        self.create_publishers()
        self.state = "inactive"
        self.get_logger().info(
            f"model loaded from '{cfg.checkpoint}' on {cfg.device} ({cfg.precision}), "
            f"input {self.pipeline.model_hw[1]}x{self.pipeline.model_hw[0]}"
        )
        return TransitionCallbackReturn.SUCCESS

    def pipeline_config(self) -> PipelineConfig:
        """The pipeline's typed settings from the node parameters of the same names."""
        values = {f.name: self.param(f.name) for f in dataclasses.fields(PipelineConfig)}
        return PipelineConfig(**{k: list(v) if isinstance(v, array.array) else v for k, v in values.items()})

    def create_publishers(self) -> None:
        """Outputs (system-default QoS, overridable by the ``qos_overrides.*`` parameters)."""
        qos = QoSOverridingOptions.with_default_policies()
        for topic, msg_type in OUTPUT_TOPICS.items():
            self.pubs[topic] = self.create_publisher(msg_type, topic, OUTPUT_QOS, qos_overriding_options=qos)
        if self.param("publish_tf"):
            self.pubs["/tf"] = self.create_publisher(TFMessage, "/tf", QoSProfile(depth=100))

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Start the subscriptions, the processing guard and the watchdog."""
        if self.released:
            self.pipeline.acquire()
            self.released = False
        qos = QoSOverridingOptions.with_default_policies()
        compressed = self.param("input") == "compressed"
        image_type, topic = (CompressedImage, "image/compressed") if compressed else (Image, "image")
        self.io_subscriptions = [
            self.create_subscription(image_type, topic, self.on_image, INPUT_QOS, callback_group=self.input_group,
                                     qos_overriding_options=qos),
            self.create_subscription(CameraInfo, "camera_info", self.on_camera_info, INPUT_QOS,
                                     callback_group=self.input_group, qos_overriding_options=qos),
        ]
        self.guard = self.create_guard_condition(self.process_latest, self.processing_group)
        period = min(0.1, self.param("max_input_age") / 2)
        self.io_timers = [self.create_timer(period, self.watchdog, self.monitor_group)]
        self.active_since = self.get_clock().now()
        self.latest_stamp = None
        self.stats.sequence.clear()
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
        """Count (also frames lost in transport), validate and keep the newest frame; wake the processing group."""
        self.stats.receive(info)
        try:
            rgb = image_to_rgb8(msg)
        except ImageError as exc:
            self.stats.reject(str(exc))
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
                    self.stats.reject(str(exc))
                    self.get_logger().warning(f"rejected frame: {exc}", throttle_duration_sec=2.0)
                    continue
                if result.reset:
                    self.get_logger().info(f"temporal window restarted: {result.reset}")
                self.publish(header, result)
            self.stats.counts["processed"] += 1
            now = self.get_clock().now()
            age = (now - Time.from_msg(header.stamp)).nanoseconds * 1e-9
            self.stats.latency.append((time.perf_counter() - received, age))

    def publish(self, header, result) -> None:
        """Publish every output of one frame with the input header's stamp (images: also its frame_id)."""
        head = header_fields(header)
        colour = self.pubs["segmentation/semantic_color"].get_subscription_count() > 0
        for topic, content in self.messages.images(result, head, self.K_info, colour).items():
            self.pubs[topic].publish(to_message(content))
        odometry = self.messages.odometry(result, head)
        self.pubs["odom"].publish(to_message(odometry))
        if "/tf" in self.pubs:
            self.pubs["/tf"].publish(transform_message(odometry))
        if result.steering_angle is not None:
            self.publish_steering(header, result)

    def publish_steering(self, header, result) -> None:
        """Ackermann command from the steering head, unless the frame is already older than ``max_input_age``."""
        age = (self.get_clock().now() - Time.from_msg(header.stamp)).nanoseconds * 1e-9
        if age > self.param("max_input_age"):
            self.get_logger().warning(f"no steering command: frame is {age:.2f} s old", throttle_duration_sec=2.0)
            return
        self.pubs["steering"].publish(to_message(self.messages.steering(result, header_fields(header))))
        self.stats.counts["steering"] += 1

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
        now = self.get_clock().now().to_msg()
        self.pubs["steering"].publish(to_message(self.messages.stop(Header(now.sec, now.nanosec, ""))))
        self.stats.counts["stop"] += 1
        if not self.stale:
            self.stale = True
            self.get_logger().error(f"input stale ({age:.2f} s > max_input_age {limit} s): commanding a stop")
            self.publish_diagnostics()

    def publish_diagnostics(self) -> None:
        """/diagnostics: rates, latencies, counters and model state; ERROR when stale or not loaded."""
        window = self.pipeline.ring.count if self.pipeline is not None else 0
        age = self.input_age() if self.state == "active" else None  # no reference time before activation
        state = NodeState(self.get_name(), str(self.param("device")), self.param("checkpoint"), self.state, age,
                          self.param("max_input_age"), self.mailbox.dropped, window)
        self.diagnostics.publish(self.stats.message(state, self.get_clock().now().to_msg()))


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
