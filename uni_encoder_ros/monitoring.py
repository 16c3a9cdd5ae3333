"""The node's monitoring: the steady-clock watchdog and its stop commands, /diagnostics, the clock warning and the
transport events, plus :func:`guarded`, which keeps any callback's exception inside the process.

:class:`Monitoring` is a mixin of ``PerceptionNode``; it uses the node's ``state``, ``stats`` (Diagnostics),
``watch`` (CommandWatch), ``messages`` (OutputMessages), ``pubs``, ``io_lock``, ``mailbox``, ``pipeline``, ``param``
and ``steady_now``.
"""

from __future__ import annotations

import functools

from rclpy.event_handler import SubscriptionEventCallbacks

from uni_encoder_core.messages.outputs import Header
from uni_encoder_ros.diagnostics import NodeState
from uni_encoder_ros.messages import to_message


def guarded(callback):
    """Run a callback so that no exception leaves it: each is counted as an internal error and logged."""
    @functools.wraps(callback)
    def run(self, *args):
        try:
            return callback(self, *args)
        except Exception as exc:  # noqa: BLE001 - one message must never end the process
            self.stats.counts["internal_errors"] += 1
            self.stats.reject(f"{callback.__name__}: {type(exc).__name__}: {exc}")
            self.get_logger().error(f"{callback.__name__} failed: {exc!r}", throttle_duration_sec=2.0)
    return run


class Monitoring:
    """Watchdog, stop commands, diagnostics and transport events of the perception node (see the module docstring)."""

    def transport_events(self) -> SubscriptionEventCallbacks:
        """Count messages lost in transport and publishers with incompatible QoS (diagnostics name the fix)."""
        def lost(info) -> None:
            self.stats.counts["message_lost"] += info.total_count_change

        def incompatible(info) -> None:
            self.stats.counts["incompatible_qos"] += info.total_count_change
            self.stats.incompatible_policy = str(info.last_policy_kind).rsplit(".", 1)[-1]
            self.get_logger().warning(f"a publisher's QoS is incompatible ({self.stats.incompatible_policy})")

        return SubscriptionEventCallbacks(message_lost=lost, incompatible_qos=incompatible)

    def send_stop(self, reason: str) -> None:
        """Publish a stop command (rate-bounded by the gate) stamped with the node's clock."""
        if self.messages is None or "steering" not in self.pubs:
            return
        now = self.get_clock().now().to_msg()
        drive = self.messages.stop(Header(now.sec, now.nanosec, ""), reason, self.steady_now())
        if drive is not None:
            self.pubs["steering"].publish(to_message(drive))
            self.stats.counts["stop"] += 1

    @guarded
    def watchdog(self) -> None:
        """Steady clock: no valid command for ``max_input_age`` -> stop command (angle held) and ERROR."""
        if self.state != "active":
            return
        now, limit = self.steady_now(), self.param("max_input_age")
        silent = self.watch.silence(now)
        if silent <= limit:
            if self.stale:
                self.get_logger().info("valid steering commands resumed")
            self.stale = False
            return
        cause = self.watch.cause(now, limit)
        with self.io_lock:
            if self.state == "active":
                self.send_stop(cause)
        if not self.stale:
            self.stale = True
            self.get_logger().error(f"no valid steering command for {silent:.2f} s > max_input_age {limit} s "
                                    f"({cause}): commanding a stop")
            self.publish_diagnostics()

    def clock_warning(self) -> str:
        """Warning when simulated time is on but nothing has arrived on /clock (ROS time stays 0)."""
        if self.get_parameter("use_sim_time").value and self.get_clock().now().nanoseconds == 0:
            return ("use_sim_time is true but nothing arrived on /clock: frames cannot be time-checked and are "
                    "rejected; watchdog and diagnostics run on the steady clock")
        return ""

    @guarded
    def publish_diagnostics(self) -> None:
        """/diagnostics: rates, latencies, counters and model state (steady-clock timer; stamped with ROS time)."""
        window = self.pipeline.ring.count if self.pipeline is not None else 0
        active = self.state == "active"
        now, limit = self.steady_now(), self.param("max_input_age")
        warning = self.clock_warning()
        if warning:
            self.get_logger().warning(warning, throttle_duration_sec=10.0)
        state = NodeState(self.get_name(), str(self.param("device")), self.param("checkpoint"), self.state,
                          self.watch.silence(now) if active else None, limit,
                          self.watch.cause(now, limit) if active else "", self.mailbox.dropped, window, warning)
        self.diagnostics.publish(self.stats.message(state, self.get_clock().now().to_msg()))
