"""``perception_node``: the unified encoder as a ROS 2 lifecycle node (REP 103/105/118).

Lifecycle: the checkpoint loads in ``on_configure`` (a missing or corrupt file fails the transition
with a clear log line), subscriptions start in ``on_activate``, device memory is released in
``on_deactivate``. With ``autostart`` (default) the node walks itself to *active*, so ``ros2 run``
works alone; a failed configure then exits with status 1.

Data flow (keep-latest): the image callback only validates the message and stores it in a one-slot
mailbox, counting an overwritten, unprocessed frame as dropped; inference runs in its own callback
group, woken by a guard condition, always on the newest frame. Every output reuses the input header.

Safety (the contract: docs/decisions.md): every steering command passes the :class:`CommandGate`; a steady-clock
watchdog stops the vehicle when no valid command came for ``max_input_age``; callbacks count their errors;
transitions are serialised with the callbacks (``io_lock``) and inference (``processing``).
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import QoSProfile
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from tf2_msgs.msg import TFMessage

from uni_encoder_core.messages.frames import CameraInfoError, CameraIntrinsics, camera_in_base
from uni_encoder_core.messages.images import ImageError, image_to_rgb8
from uni_encoder_core.messages.outputs import Header, OutputMessages
from uni_encoder_core.messages.stamps import NS, StampError, check_not_ahead, stamp_nanoseconds
from uni_encoder_core.messages.steering import CommandGate
from uni_encoder_ros.diagnostics import Diagnostics
from uni_encoder_ros.interface import (
    INPUT_QOS,
    OUTPUT_QOS,
    OUTPUT_TOPICS,
    PARAMETERS,
    check_params_files,
    params_files,
)
from uni_encoder_ros.mailbox import Mailbox
from uni_encoder_ros.messages import header_fields, to_message, transform_message
from uni_encoder_ros.monitoring import Monitoring, guarded
from uni_encoder_ros.parameters import STOP_PERIOD, Parameters
from uni_encoder_ros.watchdog import CommandWatch

WATCHDOG_PERIOD = 0.1  # s (steady clock) between watchdog checks, so between stop commands


class PerceptionNode(Parameters, Monitoring, LifecycleNode):
    """Camera in; depth, segmentation, scene flow, odometry and steering out (see the module docstring)."""

    def __init__(self, node_name: str = "perception_node", parameter_files: list[str] | None = None, **kwargs: Any):
        """``parameter_files``: the command line's parameter files, checked for values rcl would drop silently."""
        super().__init__(node_name, **kwargs)
        for name, (default, description) in PARAMETERS.items():  # any type: checked by check_parameter
            self.declare_parameter(name, default, ParameterDescriptor(description=description, dynamic_typing=True))
        self.values = {name: default for name, (default, _) in PARAMETERS.items()}
        self.file_error = check_params_files(parameter_files or [], self.get_fully_qualified_name())
        self.parameter_error = self.file_error or self.load_parameters()
        self.state = "unconfigured" if self.parameter_error is None else f"failed: {self.parameter_error}"
        self.pipeline = None
        self.released = False
        self.mailbox = Mailbox()
        self.processing = threading.Lock()  # the pipeline: inference, release, cleanup
        self.io_lock = threading.RLock()  # subscriptions and publishers: transitions vs. callbacks that use them
        self.stats = Diagnostics()
        self.steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.watch = CommandWatch(self.steady_now())
        self.stale = False
        self.camera: CameraIntrinsics | None = None
        self.K_info: CameraInfo | None = None
        self.gate = CommandGate(self.param("max_steering_angle"), self.param("max_steering_rate"),
                                self.param("max_input_age"), STOP_PERIOD)
        self.messages: OutputMessages | None = None
        self.pubs: dict[str, Any] = {}
        self.io_subscriptions: list[Any] = []
        self.input_group = MutuallyExclusiveCallbackGroup()
        self.processing_group = MutuallyExclusiveCallbackGroup()
        self.monitor_group = MutuallyExclusiveCallbackGroup()
        self.diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.guard = self.create_guard_condition(self.process_latest, self.processing_group)
        self.create_timer(self.param("diagnostics_period"), self.publish_diagnostics, self.monitor_group, self.steady)
        self.create_timer(WATCHDOG_PERIOD, self.watchdog, self.monitor_group, self.steady)
        self.add_on_set_parameters_callback(self.on_set_parameters)
        self.add_post_set_parameters_callback(self.on_parameters_set)

    def steady_now(self) -> float:
        """Seconds on the node's steady clock (runs whatever the ROS time does)."""
        return self.steady.now().nanoseconds / NS

    # ----------------------------------------------------------------- lifecycle

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Check the parameters, load the model (clean FAILURE with the reason) and create the publishers."""
        from uni_encoder_core.inference.pipeline import PerceptionPipeline  # torch loads here, not at import
        from uni_encoder_core.models.checkpoint import CheckpointError

        self.state = "loading"
        try:
            error = self.file_error or self.load_parameters()
            if error is not None:
                raise ValueError(f"invalid parameter: {error}")
            cfg = self.pipeline_config()
            T_base_cam = camera_in_base(self.param("camera_xyz"), self.param("camera_rpy"))
            pipeline = PerceptionPipeline(cfg)
        except Exception as exc:  # every failure must reach the log: rclpy hides callback exceptions
            self.state = f"failed: {exc}"
            what = f"cannot load checkpoint '{self.param('checkpoint')}': " if isinstance(exc, CheckpointError) else ""
            self.get_logger().error(f"configure failed: {what}{exc}")
            return TransitionCallbackReturn.FAILURE
        self.on_parameters_set([])
        with self.processing, self.io_lock:
            self.pipeline = pipeline
            self.messages = OutputMessages(T_base_cam, self.gate, self.param("speed"), self.param("odom_frame"),
                                           self.param("base_frame"))
            self.create_publishers()
            self.state = "inactive"
        self.get_logger().info(
            f"model loaded from '{cfg.checkpoint}' on {cfg.device} ({cfg.precision}), "
            f"input {self.pipeline.model_hw[1]}x{self.pipeline.model_hw[0]}"
        )
        return TransitionCallbackReturn.SUCCESS

    def create_publishers(self) -> None:
        """Outputs (system-default QoS, overridable by the ``qos_overrides.*`` parameters)."""
        qos = QoSOverridingOptions.with_default_policies()
        for topic, msg_type in OUTPUT_TOPICS.items():
            self.pubs[topic] = self.create_publisher(msg_type, topic, OUTPUT_QOS, qos_overriding_options=qos)
        if self.param("publish_tf"):
            self.pubs["/tf"] = self.create_publisher(TFMessage, "/tf", QoSProfile(depth=100))

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Start the subscriptions (with loss and QoS-incompatibility events) and the watchdog."""
        with self.processing:
            if self.released:
                self.pipeline.acquire()
                self.released = False
        qos = QoSOverridingOptions.with_default_policies()
        compressed = self.param("input") == "compressed"
        image_type, topic = (CompressedImage, "image/compressed") if compressed else (Image, "image")
        with self.io_lock:
            self.io_subscriptions = [
                self.create_subscription(image_type, topic, self.on_image, INPUT_QOS, callback_group=self.input_group,
                                         qos_overriding_options=qos, event_callbacks=self.transport_events()),
                self.create_subscription(CameraInfo, "camera_info", self.on_camera_info, INPUT_QOS,
                                         callback_group=self.input_group, qos_overriding_options=qos,
                                         event_callbacks=self.transport_events()),
            ]
            self.watch.restart(self.steady_now())
            self.stats.sequence.clear()
            self.state = "active"
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop input and processing with one last stop command; free device memory (the model stays on the CPU)."""
        with self.io_lock:
            self.state = "inactive"
            self.stop_io()
            self.send_stop("node deactivated")
        with self.processing:
            self.pipeline.release()
            self.released = True
        return TransitionCallbackReturn.SUCCESS

    def stop_io(self) -> None:
        """Destroy the subscriptions; forget any pending frame."""
        with self.io_lock:
            for sub in self.io_subscriptions:
                self.destroy_subscription(sub)
            self.io_subscriptions = []
            self.mailbox.take()

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Unload the model and remove the publishers."""
        with self.processing, self.io_lock:
            for pub in self.pubs.values():
                self.destroy_publisher(pub)
            self.pubs, self.pipeline, self.messages, self.state, self.released = {}, None, None, "unconfigured", False
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release everything from any state."""
        self.state = "shutting down"
        self.stop_io()
        result = self.on_cleanup(state)
        self.state = "finalized"
        return result

    # ----------------------------------------------------------------- input

    @guarded
    def on_image(self, msg: Image | CompressedImage, info: dict) -> None:
        """Count (also frames lost in transport), check stamp and pixels, keep the newest frame, wake processing."""
        self.stats.receive(info)
        self.watch.image(self.steady_now())
        try:
            stamp_ns = stamp_nanoseconds(msg.header.stamp)
            check_not_ahead(stamp_ns, self.get_clock().now().nanoseconds, self.param("max_future_stamp"))
            rgb = image_to_rgb8(msg, self.param("max_input_pixels"))
        except (StampError, ImageError) as exc:
            if str(exc).startswith("camera clock ahead"):
                self.stats.counts["future_stamp"] += 1
            self.reject(f"rejected image: {exc}")
            return
        with self.io_lock:
            if self.state != "active":
                return
            self.mailbox.put((msg.header, stamp_ns, rgb, time.perf_counter()))
            self.guard.trigger()

    def reject(self, reason: str) -> None:
        """Count a rejected message, note it as why no command came, and log it (throttled)."""
        self.stats.reject(reason)
        self.watch.no_command(reason)
        self.get_logger().warning(reason, throttle_duration_sec=2.0)

    @guarded
    def on_camera_info(self, msg: CameraInfo) -> None:
        """Remember the camera's intrinsics (they win over the ``intrinsics`` parameter); reject invalid ones."""
        try:
            camera = CameraIntrinsics.from_camera_info(msg)
        except CameraInfoError as exc:
            self.stats.counts["camera_info_rejected"] += 1
            self.get_logger().warning(f"rejected camera_info: {exc}", throttle_duration_sec=5.0)
            return
        self.camera, self.K_info = camera, msg

    def intrinsics(self, height: int, width: int) -> np.ndarray:
        """K (3x3 pixels) for an image of this size: camera_info scaled to it, else the ``intrinsics`` parameter."""
        camera = self.camera
        if camera is None:
            fx, fy, cx, cy = self.param("intrinsics")
            return np.array([[fx * width, 0, cx * width], [0, fy * height, cy * height], [0, 0, 1]])
        mismatch = camera.aspect_mismatch(height, width)
        if mismatch is not None:
            self.get_logger().warning(mismatch, throttle_duration_sec=10.0)
        return camera.scaled(height, width)

    # ----------------------------------------------------------------- processing

    @guarded
    def process_latest(self) -> None:
        """Run inference on the newest frame until the mailbox is empty (processing callback group)."""
        while self.state == "active" and (item := self.mailbox.take()) is not None:
            self.process(*item)

    def process(self, header, stamp_ns: int, rgb: np.ndarray, received: float) -> None:
        """One frame: inference, then its outputs (a failing frame is a counted rejection)."""
        from uni_encoder_core.inference.pipeline import CameraFrame

        with self.processing:
            if self.state != "active":
                return
            self.watch.busy(self.steady_now())
            try:
                result = self.pipeline.process(CameraFrame(rgb, stamp_ns / NS, self.intrinsics(*rgb.shape[:2])))
            except Exception as exc:  # noqa: BLE001 - a frame the pipeline cannot take is a rejection
                self.reject(f"rejected frame: {exc}")
                return
            finally:
                self.watch.busy(None)
        if result.reset:
            self.get_logger().info(f"temporal window restarted: {result.reset}")
        with self.io_lock:
            if self.state != "active":
                return
            self.publish(header, stamp_ns, result)
        self.stats.counts["processed"] += 1
        age = (self.get_clock().now().nanoseconds - stamp_ns) / NS
        self.stats.latency.append((time.perf_counter() - received, age))

    def publish(self, header, stamp_ns: int, result) -> None:
        """Publish every output of one frame with the input header's stamp (images: also its frame_id)."""
        head = header_fields(header)
        colour = self.pubs["segmentation/semantic_color"].get_subscription_count() > 0
        for topic, content in self.messages.images(result, head, self.K_info, colour).items():
            self.pubs[topic].publish(to_message(content))
        odometry = self.messages.odometry(result, head)
        self.pubs["odom"].publish(to_message(odometry))
        if "/tf" in self.pubs:
            self.pubs["/tf"].publish(transform_message(odometry))
        if result.steering_angle is None:
            self.watch.no_command(f"temporal window filling ({result.window_length}/{self.pipeline.ring.capacity} "
                                  "frames)")
        else:
            self.publish_steering(head, stamp_ns, result)

    def publish_steering(self, head: Header, stamp_ns: int, result) -> None:
        """The gated Ackermann command, unless the frame is already older than ``max_input_age``."""
        age = (self.get_clock().now().nanoseconds - stamp_ns) / NS
        if age > self.param("max_input_age"):
            self.watch.no_command(f"frame is {age:.2f} s old")
            self.get_logger().warning(f"no steering command: frame is {age:.2f} s old", throttle_duration_sec=2.0)
            return
        now = self.steady_now()
        drive = self.messages.steering(result, head, now)
        if drive is not None:
            self.pubs["steering"].publish(to_message(drive))
        if drive is not None and not drive.reason:
            self.stats.counts["steering"] += 1
            self.watch.command(now)
            return
        self.stats.counts["non_finite"] += 1
        self.stats.last_gate_stop = f"non-finite command (angle {result.steering_angle})"
        self.watch.no_command(self.stats.last_gate_stop)
        if drive is not None:
            self.stats.counts["stop"] += 1
        self.get_logger().error(f"command gate: {self.stats.last_gate_stop}: stop commanded",
                                throttle_duration_sec=2.0)


def main(args: list[str] | None = None) -> int:
    """Entry point of ``perception_node`` (``--ros-args`` accepted)."""
    rclpy.init(args=args)
    node = PerceptionNode(parameter_files=params_files(sys.argv if args is None else args))
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
