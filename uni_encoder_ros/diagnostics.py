"""The node's frame counters and its ``/diagnostics`` status (rates, latencies, drops, rejects, model state)."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

COUNTERS = ("received", "processed", "rejected", "steering", "stop", "transport_dropped")


@dataclass
class NodeState:
    """What the status reports besides the counters: lifecycle ``state`` ("active", "failed: ...", ...), input age
    (s, None when not active) and its limit (s), frames overwritten in the mailbox and the temporal window's length.
    """

    name: str
    device: str
    checkpoint: str
    state: str
    input_age: float | None
    max_input_age: float
    mailbox_dropped: int
    window_length: int


class Diagnostics:
    """Counters of the node's frames (``counts``, keys :data:`COUNTERS`), the last reject reason and latencies."""

    def __init__(self):
        self.counts = dict.fromkeys(COUNTERS, 0)
        self.last_reject = ""
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
        status.level, status.message = DiagnosticStatus.OK, "ok"
        if node.input_age is not None and node.input_age > node.max_input_age:
            status.level = DiagnosticStatus.ERROR
            status.message = f"input stale: {node.input_age:.2f} s > max_input_age {node.max_input_age} s"
        elif node.state.startswith("failed"):
            status.level, status.message = DiagnosticStatus.ERROR, f"model not loaded ({node.state})"
        elif node.state != "active":
            status.level, status.message = DiagnosticStatus.WARN, f"not active ({node.state})"
        elif counts["rejected"] > before["rejected"]:
            status.level = DiagnosticStatus.WARN
            status.message = f"rejected {counts['rejected'] - before['rejected']} frames: {self.last_reject}"
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
        }
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        return status

    def message(self, node: NodeState, stamp) -> DiagnosticArray:
        """``/diagnostics`` message with :meth:`status` at ``stamp`` (``builtin_interfaces/Time``)."""
        msg = DiagnosticArray(status=[self.status(node)])
        msg.header.stamp = stamp
        return msg
