"""The steering command limiter: the head's angle clamped in size and in rate of change before it is commanded."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SteeringLimiter:
    """Clamp commanded angles to ``+-max_angle`` and their change to ``max_rate`` times the stamp difference.

    Angles in rad, rates in rad/s, stamps in s. The first command is only clamped; a stamp that goes backwards
    (bag loop) allows no change for that command.
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
