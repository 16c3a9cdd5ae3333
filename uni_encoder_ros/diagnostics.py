"""The node's frame counters and its ``/diagnostics`` status (rates, latencies, drops, rejects, model state).

Levels: ERROR when no valid steering command was produced for ``max_input_age`` (the watchdog's stop), when the
command gate stopped a non-finite command, or when the model is not loaded; WARN when inactive, when the clock
does not run (``use_sim_time`` without ``/clock``), when messages are lost in transport or a publisher's QoS is
incompatible (the message names the fix), or when messages were rejected.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

COUNTERS = ("received", "processed", "rejected", "steering", "stop", "transport_dropped", "future_stamp",
            "camera_info_rejected", "non_finite", "message_lost", "incompatible_qos", "internal_errors")
# What to do about each kind of transport loss (named in the diagnostics message).
LOST_FIX = ("large frames lost over best-effort UDP: use shared-memory transport or raise net.core.rmem_max, or for a "
            "reliable camera set qos_overrides./image.subscription.reliability: reliable")
INCOMPATIBLE_FIX = "set this node's qos_overrides.<topic>.subscription.<policy> to what the camera offers"


@dataclass
class NodeState:
    """What the status reports besides the counters: lifecycle ``state`` ("active", "failed: ...", ...), seconds
    without a valid steering command (node steady clock; None when not active), its limit ``max_input_age`` (s) and
    the ``cause``, frames overwritten in the mailbox, the temporal window's length, a clock warning ("" if none).
    """

    name: str
    device: str
    checkpoint: str
    state: str
    silent: float | None
    max_input_age: float
    cause: str
    mailbox_dropped: int
    window_length: int
    clock_warning: str = ""


class Diagnostics:
    """Counters of the node's frames (``counts``, keys :data:`COUNTERS`), the last reject reason and latencies."""

    def __init__(self):
        self.counts = dict.fromkeys(COUNTERS, 0)
        self.last_reject = ""
        self.last_gate_stop = ""  # why the command gate last turned a command into a stop
        self.incompatible_policy = ""
        self.latency: deque[tuple[float, float]] = deque(maxlen=200)  # (processing s, pipeline s) per output
        self.last_report = (time.monotonic(), dict(self.counts))
        self.sequence: dict[bytes, int] = {}  # newest publication sequence number per image publisher

    def receive(self, info: dict) -> None:
        """Count a received image; ``info`` is its rclpy message info.

        Frames a keep-last-1 subscription never delivered show up as gaps in the publisher's sequence numbers and
        are counted as dropped in transport.
        """
        self.counts["received"] += 1
        seq, gid = info.get("publication_sequence_number"), info.get("publisher_gid")
        if seq is not None and gid is not None:
            key = bytes(gid["data"])
            last = self.sequence.get(key)
            if last is not None and seq > last + 1:
                self.counts["transport_dropped"] += seq - last - 1
            self.sequence[key] = seq

    def reject(self, reason: str) -> None:
        """Count a rejected message or frame and remember why."""
        self.counts["rejected"] += 1
        self.last_reject = reason

    def status(self, node: NodeState) -> DiagnosticStatus:
        """Status since the previous call: ERROR when stale or not loaded, WARN when inactive or rejecting."""
        now, counts = time.monotonic(), dict(self.counts)
        then, before = self.last_report
        self.last_report = (now, counts)
        span = max(now - then, 1e-6)
        status = DiagnosticStatus(name=f"{node.name}: perception", hardware_id=node.device)
        status.level, status.message = self._level(node, counts, before)
        latency = np.array(self.latency) * 1000.0 if self.latency else np.zeros((1, 2))
        values = {
            "model_state": node.state,
            "checkpoint": node.checkpoint,
            "input_rate_hz": f"{(counts['received'] - before['received']) / span:.2f}",
            "output_rate_hz": f"{(counts['processed'] - before['processed']) / span:.2f}",
            "processing_latency_ms_p50": f"{np.percentile(latency[:, 0], 50):.1f}",
            "processing_latency_ms_max": f"{latency[:, 0].max():.1f}",
            "pipeline_latency_ms_p50": f"{np.percentile(latency[:, 1], 50):.1f}",
            "frames_received": str(counts["received"]),
            "frames_processed": str(counts["processed"]),
            "frames_dropped": str(node.mailbox_dropped + counts["transport_dropped"]),
            "frames_dropped_in_transport": str(counts["transport_dropped"]),
            "frames_rejected": str(counts["rejected"]),
            "last_reject_reason": self.last_reject,
            "window_length": str(node.window_length),
            "steering_commands": str(counts["steering"]),
            "stop_commands": str(counts["stop"]),
            "seconds_without_command": "" if node.silent is None else f"{node.silent:.2f}",
            "frames_stamped_ahead": str(counts["future_stamp"]),
            "camera_info_rejected": str(counts["camera_info_rejected"]),
            "non_finite_commands": str(counts["non_finite"]),
            "messages_lost": str(counts["message_lost"]),
            "incompatible_qos_events": str(counts["incompatible_qos"]),
            "internal_errors": str(counts["internal_errors"]),
            "clock_warning": node.clock_warning,
        }
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        return status

    def _level(self, node: NodeState, counts: dict[str, int], before: dict[str, int]) -> tuple[bytes, str]:
        def new(key: str) -> int:
            return counts[key] - before[key]

        if node.state.startswith("failed"):
            return DiagnosticStatus.ERROR, f"model not loaded ({node.state})"
        if node.state != "active":
            return DiagnosticStatus.WARN, f"not active ({node.state})"
        if node.silent is not None and node.silent > node.max_input_age:
            return DiagnosticStatus.ERROR, (f"no valid steering command for {node.silent:.2f} s > max_input_age "
                                            f"{node.max_input_age} s ({node.cause}): stop commanded")
        if new("non_finite"):
            return DiagnosticStatus.ERROR, f"{new('non_finite')} non-finite commands stopped: {self.last_gate_stop}"
        if node.clock_warning:
            return DiagnosticStatus.WARN, node.clock_warning
        if new("incompatible_qos"):
            return DiagnosticStatus.WARN, (f"a publisher's QoS is incompatible ({self.incompatible_policy}): "
                                           f"{INCOMPATIBLE_FIX}")
        lost = max(new("message_lost"), new("transport_dropped"))  # two views of the same losses
        if lost:
            return DiagnosticStatus.WARN, f"{lost} image messages lost in transport: {LOST_FIX}"
        if new("rejected"):
            return DiagnosticStatus.WARN, f"rejected {new('rejected')} frames: {self.last_reject}"
        return DiagnosticStatus.OK, "ok"

    def message(self, node: NodeState, stamp) -> DiagnosticArray:
        """``/diagnostics`` message with :meth:`status` at ``stamp`` (``builtin_interfaces/Time``)."""
        msg = DiagnosticArray(status=[self.status(node)])
        msg.header.stamp = stamp
        return msg
