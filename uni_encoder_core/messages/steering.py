"""The command gate: every Ackermann command of the node and of rosbag replay passes here before it is sent.

The gate assumes the actuator holds the last angle it was sent (straight ahead, 0 rad, before the first command).
A steering command is clamped to ``+-max_angle`` and may move at most ``max_rate`` times the time elapsed since the
last command sent, that time counted at most ``max_step_time`` (so the first command after a long gap does not jump
the whole range). A non-finite angle or speed becomes a stop command carrying the reason. Stop commands (speed 0,
angle held) go out at most once per ``stop_period``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def _check_positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


@dataclass(frozen=True)
class Command:
    """What the gate lets through: angle (rad, + left), speed (m/s), and for a stop command (speed 0) ``reason``."""

    angle: float
    speed: float
    reason: str = ""

    @property
    def stop(self) -> bool:
        """True for a stop command."""
        return bool(self.reason)


class CommandGate:
    """Clamp, rate-limit and sanity-check steering commands (see the module docstring).

    ``max_angle`` rad, ``max_rate`` rad/s, ``max_step_time`` s (elapsed time counted at most), ``stop_period`` s
    (minimum interval between stop commands); each must be finite and > 0 (``ValueError`` naming it otherwise).
    Times passed to :meth:`steer` and :meth:`stop` are seconds of one clock chosen by the caller (the node: its
    steady clock; replay: the message stamps); time going backwards allows no change.
    """

    def __init__(self, max_angle: float, max_rate: float, max_step_time: float = 0.5, stop_period: float = 0.1):
        self.set_limits(max_angle, max_rate, max_step_time, stop_period)
        self.angle = 0.0  # rad: the last angle sent
        self.sent_at: float | None = None  # time of the last command sent
        self.last_stop: float | None = None
        self.non_finite = 0  # commands turned into stops because an angle or speed was not finite

    def set_limits(self, max_angle: float, max_rate: float, max_step_time: float, stop_period: float = 0.1) -> None:
        """Replace the limits (validated first: on ``ValueError`` the old ones stay)."""
        for name, value in (("max_angle", max_angle), ("max_rate", max_rate), ("max_step_time", max_step_time),
                            ("stop_period", stop_period)):
            _check_positive(name, value)
        self.max_angle, self.max_rate = float(max_angle), float(max_rate)
        self.max_step_time, self.stop_period = float(max_step_time), float(stop_period)

    def steer(self, angle: float, speed: float, now: float) -> Command | None:
        """The command to send for a desired ``angle`` (rad) at ``speed`` (m/s) at time ``now`` (s).

        Non-finite input gives a stop command (counted in ``non_finite``), or None when a stop was sent less than
        ``stop_period`` ago.
        """
        if not (math.isfinite(angle) and math.isfinite(speed)):
            self.non_finite += 1
            return self.stop(now, f"non-finite command (angle {angle}, speed {speed})")
        limited = min(max(angle, -self.max_angle), self.max_angle)
        step = self.max_rate * self._elapsed(now)
        limited = min(max(limited, self.angle - step), self.angle + step)
        self.angle, self.sent_at = limited, now
        return Command(limited, float(speed))

    def stop(self, now: float, reason: str) -> Command | None:
        """A stop command (speed 0, the last angle held) naming ``reason``, or None within ``stop_period`` of the last.

        The angle is first brought back within ``+-max_angle`` (the limits may have changed since it was sent).
        """
        if self.last_stop is not None and 0.0 <= now - self.last_stop < self.stop_period:
            return None
        self.angle = min(max(self.angle, -self.max_angle), self.max_angle)
        self.last_stop = self.sent_at = now
        return Command(self.angle, 0.0, reason)

    def _elapsed(self, now: float) -> float:
        if self.sent_at is None:
            return self.max_step_time
        return min(max(0.0, now - self.sent_at), self.max_step_time)
