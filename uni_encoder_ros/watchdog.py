"""What the node's watchdog watches: when the last valid steering command was produced and why none came since."""

from __future__ import annotations

import threading


class CommandWatch:
    """Times (s, one steady clock) of the last valid steering command, the last image and the inference in progress,
    and the latest reason a frame gave no command. Thread-safe: the callbacks note, the watchdog asks."""

    def __init__(self, now: float):
        self._lock = threading.Lock()
        self.restart(now)

    def restart(self, now: float) -> None:
        """Start watching at ``now`` (activation): nothing received, no command yet."""
        with self._lock:
            self.command_at, self.image_at, self.busy_since = now, None, None
            self.reason = "no image received yet"

    def command(self, now: float) -> None:
        """A valid steering command was produced at ``now``."""
        with self._lock:
            self.command_at = now

    def image(self, now: float) -> None:
        """An image arrived at ``now``."""
        with self._lock:
            self.image_at = now

    def busy(self, since: float | None) -> None:
        """Inference started at ``since`` (None: it finished)."""
        with self._lock:
            self.busy_since = since

    def no_command(self, reason: str) -> None:
        """A frame gave no command, for ``reason``."""
        with self._lock:
            self.reason = reason

    def silence(self, now: float) -> float:
        """Seconds since the last valid command (or the start)."""
        with self._lock:
            return now - self.command_at

    def cause(self, now: float, limit: float) -> str:
        """Why there has been no valid command: no image for longer than ``limit`` (s), an inference running longer
        than ``limit``, or the latest reason noted."""
        with self._lock:
            if self.image_at is None or now - self.image_at > limit:
                return "no image received" if self.image_at is None else f"no image for {now - self.image_at:.2f} s"
            if self.busy_since is not None and now - self.busy_since > limit:
                return f"inference stalled for {now - self.busy_since:.2f} s"
            return self.reason
