"""A recorded steering topic as a time series, and its values at other stamps (images, predictions).

Pairing rule: a query stamp is *matched* when the nearest steering sample lies within ``tolerance`` seconds;
its value is then linearly interpolated between the two samples around it (the nearest sample's value before
the first or after the last sample, or at an exact stamp). Ackermann topics interpolate the steering angle and
derive the curvature from it, ``tan(angle) / wheelbase``, so that the two always agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from uni_encoder_core.bags.reader import ACKERMANN_TYPE, CURVATURE_TYPES, BagReader, Rejected, decode_steering
from uni_encoder_core.errors import UsageError


@dataclass
class SteeringValues:
    """Steering at M query stamps: ``matched`` bool M; ``curvature`` float64 M (1/m, NaN where unmatched);
    ``steering_angle`` (rad) and ``speed`` (m/s) float64 M for Ackermann topics, else None."""

    matched: np.ndarray
    curvature: np.ndarray
    steering_angle: np.ndarray | None = None
    speed: np.ndarray | None = None


@dataclass
class SteeringSeries:
    """Steering labels of one topic in stamp order: ``stamps_ns`` int64 N, ``curvature`` float64 N (1/m,
    + = left); ``steering_angle`` (rad) and ``speed`` (m/s) float64 N and the ``wheelbase`` (m) for Ackermann
    topics, else None."""

    stamps_ns: np.ndarray
    curvature: np.ndarray
    steering_angle: np.ndarray | None = None
    speed: np.ndarray | None = None
    wheelbase: float | None = None

    def at(self, queries_ns: np.ndarray, tolerance: float) -> SteeringValues:
        """The labels at ``queries_ns`` (int64 M) under the module's pairing rule."""
        matched, left, weight = match_stamps(self.stamps_ns, queries_ns, tolerance)
        if not matched.any():
            return SteeringValues(matched, np.full(len(matched), np.nan))
        if self.steering_angle is None:
            curvature = interpolate(self.curvature, left, weight)
            return SteeringValues(matched, np.where(matched, curvature, np.nan))
        angle = np.where(matched, interpolate(self.steering_angle, left, weight), np.nan)
        speed = np.where(matched, interpolate(self.speed, left, weight), np.nan)
        return SteeringValues(matched, np.tan(angle) / self.wheelbase, angle, speed)


def read_steering(reader: BagReader, topic: str, wheelbase: float | None = None) -> SteeringSeries:
    """Every usable label on ``topic`` (Float32/Float64 curvature, or Ackermann with ``wheelbase`` in m).

    Unusable messages join ``reader.rejected``. Raises :class:`~uni_encoder_core.bags.reader.BagError` when the
    topic is missing or of another type, and ``UsageError`` for an Ackermann topic without a positive wheelbase.
    """
    msgtype = reader.require(topic, (*CURVATURE_TYPES, ACKERMANN_TYPE))
    if msgtype == ACKERMANN_TYPE and (wheelbase is None or not wheelbase > 0):
        raise UsageError(f"'{topic}' is {ACKERMANN_TYPE}: give the vehicle's wheelbase (m, --wheelbase) to turn "
                         f"angles into curvature, got {wheelbase}")
    stamps, samples = [], []
    for message in tqdm(reader.messages(topic), total=reader.count(topic), desc=topic, unit="msg", leave=False):
        try:
            samples.append(decode_steering(message, wheelbase))
        except ValueError as exc:
            reader.rejected.append(Rejected(topic, message.index, message.stamp, str(exc)))
            continue
        stamps.append(message.stamp_ns)
    series = SteeringSeries(np.asarray(stamps, np.int64), np.array([s.curvature for s in samples], np.float64))
    if msgtype == ACKERMANN_TYPE:
        series.steering_angle = np.array([s.steering_angle for s in samples], np.float64)
        series.speed = np.array([s.speed for s in samples], np.float64)
        series.wheelbase = wheelbase
    return series


def match_stamps(stamps_ns: np.ndarray, queries_ns: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray,
                                                                                             np.ndarray]:
    """Interpolation plan for ``queries_ns`` (int64 M) on samples at increasing ``stamps_ns`` (int64 N).

    Returns (``matched`` bool M, ``left`` int M, ``weight`` float M): a matched query's value is
    ``(1 - weight) * v[left] + weight * v[left + 1]`` (``weight`` 0 when there is no right neighbour).
    Raises ``ValueError`` for a negative tolerance.
    """
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0 s, got {tolerance}")
    stamps_ns, queries_ns = np.asarray(stamps_ns, np.int64), np.asarray(queries_ns, np.int64)
    m = len(queries_ns)
    if len(stamps_ns) == 0:
        return np.zeros(m, bool), np.zeros(m, np.int64), np.zeros(m)
    right = np.searchsorted(stamps_ns, queries_ns, side="left")  # first sample at or after the query
    left = np.clip(right - 1, 0, len(stamps_ns) - 1)
    right_c = np.clip(right, 0, len(stamps_ns) - 1)
    d_left = np.where(right > 0, queries_ns - stamps_ns[left], np.iinfo(np.int64).max)
    d_right = np.where(right < len(stamps_ns), stamps_ns[right_c] - queries_ns, np.iinfo(np.int64).max)
    matched = np.minimum(d_left, d_right) <= round(tolerance * 1e9)
    inside = (right > 0) & (right < len(stamps_ns))
    span = (stamps_ns[right_c] - stamps_ns[left]).astype(np.float64)
    weight = np.where(inside, (queries_ns - stamps_ns[left]) / np.where(inside, span, 1.0), 0.0)
    first = right == 0  # before (or at) the first sample: its value
    return matched, np.where(first, 0, left), np.where(first, 0.0, weight)


def interpolate(values: np.ndarray, left: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Values (float64) at the queries of a :func:`match_stamps` plan."""
    values = np.asarray(values, np.float64)
    right = np.minimum(left + 1, len(values) - 1)
    return (1.0 - weight) * values[left] + weight * values[right]
