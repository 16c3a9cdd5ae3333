"""The synthetic world's road: a smooth random curvature profile integrated into a centreline.

World frame (REP 103): x east, y north, z up, ground plane z = 0. A road point is addressed by its
arclength ``s`` along the centreline (m) and its signed lateral offset ``d`` (m, positive to the left).
Curvature ``k(s)`` is in 1/m, positive = turning left.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

STEP = 0.25  # m between centreline samples


@dataclass(frozen=True)
class Road:
    """A centreline sampled every ``STEP`` metres: arclength, curvature, heading and position arrays (N,)."""

    s: np.ndarray
    curvature: np.ndarray
    heading: np.ndarray
    x: np.ndarray
    y: np.ndarray

    def __post_init__(self):
        table = np.stack([self.x, self.y, np.cos(self.heading), np.sin(self.heading), self.curvature], axis=1)
        object.__setattr__(self, "_table", table)

    @property
    def length(self) -> float:
        """Centreline length (m)."""
        return float(self.s[-1])

    def frames(self, s: np.ndarray) -> np.ndarray:
        """``(x, y, cos heading, sin heading, curvature)`` at arclengths ``s`` (clamped to the road): (..., 5)."""
        pos = np.clip(s, 0.0, self.s[-1]) * (1.0 / STEP)
        i = np.minimum(pos.astype(np.int64), len(self.s) - 2)
        w = (pos - i)[..., None]
        a = self._table[i]
        return a + (self._table[i + 1] - a) * w

    def sample(self, s: np.ndarray | float) -> tuple[np.ndarray, ...]:
        """Linearly interpolated ``(x, y, heading, curvature)`` at arclengths ``s`` (clamped to the road)."""
        s = np.clip(np.asarray(s, dtype=np.float64), 0.0, self.s[-1])
        return tuple(np.interp(s, self.s, arr) for arr in (self.x, self.y, self.heading, self.curvature))

    def point(self, s: np.ndarray | float, d: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World ``(x, y, heading)`` of the road point at arclength ``s`` and left offset ``d``."""
        x, y, heading, _ = self.sample(s)
        return x - np.sin(heading) * d, y + np.cos(heading) * d, heading

    def project(self, px: np.ndarray, py: np.ndarray, s0: np.ndarray | float, iterations: int = 3):
        """Road coordinates of ground points ``(px, py)`` by Newton steps from the guess ``s0``.

        Returns ``(s, d, residual)``: ``residual`` is the remaining tangential offset (m); a point is
        resolved when it is small, which holds for every point closer to the road than its radius of curvature.
        """
        s = np.broadcast_to(np.asarray(s0, dtype=np.float64), np.shape(px))
        for step in range(iterations + 1):
            f = self.frames(s)
            dx, dy = px - f[:, 0], py - f[:, 1]
            along = dx * f[:, 2] + dy * f[:, 3]
            d = dy * f[:, 2] - dx * f[:, 3]
            if step == iterations:
                return s, d, along
            s = s + along / np.maximum(1.0 - f[:, 4] * d, 0.2)


def curvature_profile(rng: np.random.Generator, length: float, max_curvature: float) -> np.ndarray:
    """Smooth random curvature samples (1/m) every ``STEP`` metres over ``length`` metres.

    Straights alternate with left and right curves (each turning at most 60 degrees); the sign is chosen so
    that the heading stays within +-80 degrees of the start (the road never crosses itself). A Hann window
    of 30 m blends the pieces, so curvature is continuous and never exceeds ``max_curvature``.
    """
    n = int(math.ceil(length / STEP)) + 1
    k = np.zeros(n)
    i = int(40.0 / STEP)  # start on a straight
    heading = 0.0
    limit = math.radians(80.0)
    while i < n:
        if rng.random() < 0.4:
            seg = int(rng.uniform(20.0, 70.0) / STEP)
        else:
            mag = rng.uniform(0.3, 1.0) * max_curvature
            turn = min(rng.uniform(math.radians(20.0), math.radians(60.0)), mag * 150.0)
            sign = 1.0 if rng.random() < 0.5 else -1.0
            if abs(heading + sign * turn) > limit:
                sign = -sign
            seg = max(int(turn / mag / STEP), 1)
            k[i : i + seg] = sign * mag
            heading += sign * turn
        i += seg
    window = np.hanning(int(30.0 / STEP) | 1)
    return np.convolve(k, window / window.sum(), mode="same")


def make_road(rng: np.random.Generator, length: float, max_curvature: float) -> Road:
    """Integrate a random curvature profile into a centreline starting at the origin heading east."""
    k = curvature_profile(rng, length, max_curvature)
    s = np.arange(len(k)) * STEP
    heading = np.concatenate([[0.0], np.cumsum(0.5 * (k[1:] + k[:-1]) * STEP)])
    mid = 0.5 * (heading[1:] + heading[:-1])
    x = np.concatenate([[0.0], np.cumsum(np.cos(mid) * STEP)])
    y = np.concatenate([[0.0], np.cumsum(np.sin(mid) * STEP)])
    return Road(s=s, curvature=k, heading=heading, x=x, y=y)
