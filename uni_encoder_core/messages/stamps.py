"""Header stamps as integers, checked before anything uses them (a negative or unset stamp is a message fault)."""

from __future__ import annotations

from typing import Any

NS = 1_000_000_000


class StampError(ValueError):
    """A stamp that cannot be a camera frame's time; the text names the problem."""


def stamp_nanoseconds(stamp: Any) -> int:
    """``builtin_interfaces/Time`` (``sec``, ``nanosec``) -> integer nanoseconds.

    Raises :class:`StampError` for a negative ``sec``, a ``nanosec`` outside [0, 1e9) and the zero stamp (the
    driver did not set ``header.stamp``).
    """
    sec, nanosec = int(stamp.sec), int(stamp.nanosec)
    if sec < 0 or not 0 <= nanosec < NS:
        raise StampError(f"invalid stamp sec={sec} nanosec={nanosec}")
    if sec == 0 and nanosec == 0:
        raise StampError("zero stamp (the camera driver did not set header.stamp)")
    return sec * NS + nanosec


def check_not_ahead(stamp_ns: int, now_ns: int, tolerance: float) -> None:
    """Raise :class:`StampError` when ``stamp_ns`` is more than ``tolerance`` (s) ahead of the clock ``now_ns``.

    A clock at zero (simulated time before anything was published on ``/clock``) is named as such.
    """
    ahead = (stamp_ns - now_ns) / NS
    if ahead <= tolerance:
        return
    if now_ns == 0:
        raise StampError("node clock has no time yet (use_sim_time without /clock): frame cannot be checked")
    raise StampError(f"camera clock ahead by {ahead:.3f} s (> max_future_stamp {tolerance} s)")
