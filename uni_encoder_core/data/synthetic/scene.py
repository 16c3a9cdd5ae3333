"""Objects of the synthetic world: building facades, poles, trees, parked cars and cars moving along lanes.

Every object is an upright box (footprint rectangle x height interval) in the world frame; the renderer
intersects rays with these boxes analytically. Cars move along the road at their own speeds, so their pose
is a function of time; everything else is static.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from uni_encoder_core.data.synthetic.road import Road

BUILDING, CAR, POLE, CROWN, TRUNK = range(5)
# Cityscapes train id per object kind (a tree trunk is vegetation in Cityscapes).
KIND_TRAIN_ID = np.array([2, 13, 5, 8, 8], dtype=np.uint8)


@dataclass
class Boxes:
    """Upright boxes, one entry per object (all arrays have length N).

    ``x, y``: footprint centre (m, world); ``heading``: yaw of the box's long axis (rad); ``half_length``,
    ``half_width``: footprint half extents (m); ``z0, z1``: bottom and top height (m); ``kind``: one of
    BUILDING, CAR, POLE, CROWN, TRUNK; ``colour``: Nx3 base colour in [0, 1]; ``pattern``: Nx4 shape and
    texture parameters (buildings: floor height, window spacing, window width and height fractions; cars: body
    height, cabin length ratio, cabin shift ratio, 1 for the cabin box);
    ``instance``: car instance id (0 = none); ``moving``: True for cars driving along a lane.
    """

    x: np.ndarray
    y: np.ndarray
    heading: np.ndarray
    half_length: np.ndarray
    half_width: np.ndarray
    z0: np.ndarray
    z1: np.ndarray
    kind: np.ndarray
    colour: np.ndarray
    pattern: np.ndarray
    instance: np.ndarray
    moving: np.ndarray

    def __len__(self) -> int:
        return len(self.x)

    def take(self, index: np.ndarray) -> Boxes:
        """The subset of boxes selected by an index or boolean array."""
        return Boxes(**{f.name: getattr(self, f.name)[index].copy() for f in fields(self)})

    @staticmethod
    def concat(parts: list[Boxes]) -> Boxes:
        """All boxes of ``parts`` in order."""
        return Boxes(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Boxes)})

    @staticmethod
    def from_rows(rows: list[dict]) -> Boxes:
        """Boxes from a list of per-object dicts (missing ``pattern``/``instance``/``moving`` default to 0)."""
        def col(name, default, dtype):
            return np.array([r.get(name, default) for r in rows], dtype=dtype).reshape(len(rows), *np.shape(default))

        return Boxes(
            x=col("x", 0.0, np.float64), y=col("y", 0.0, np.float64), heading=col("heading", 0.0, np.float64),
            half_length=col("half_length", 0.0, np.float64), half_width=col("half_width", 0.0, np.float64),
            z0=col("z0", 0.0, np.float64), z1=col("z1", 0.0, np.float64), kind=col("kind", 0, np.int64),
            colour=col("colour", (0.0, 0.0, 0.0), np.float32), pattern=col("pattern", (0.0,) * 4, np.float32),
            instance=col("instance", 0, np.int32), moving=col("moving", False, bool),
        )


@dataclass(frozen=True)
class Layout:
    """Cross-section of the street (m): two driving lanes, a parking lane and a sidewalk on each side."""

    lane_width: float = 3.5
    parking_width: float = 2.2
    sidewalk_width: float = 3.0

    @property
    def road_half_width(self) -> float:
        """Centreline to kerb (m)."""
        return self.lane_width + self.parking_width


CAR_COLOURS = np.array(
    [[0.75, 0.75, 0.78], [0.1, 0.1, 0.12], [0.55, 0.08, 0.07], [0.12, 0.22, 0.5], [0.85, 0.85, 0.82],
     [0.35, 0.37, 0.4], [0.6, 0.5, 0.2], [0.2, 0.4, 0.25]], dtype=np.float32)
FACADE_COLOURS = np.array(
    [[0.72, 0.62, 0.5], [0.62, 0.6, 0.58], [0.78, 0.72, 0.62], [0.55, 0.38, 0.3], [0.68, 0.66, 0.6],
     [0.82, 0.78, 0.7], [0.5, 0.48, 0.5], [0.7, 0.55, 0.42]], dtype=np.float32)


def _car_row(rng: np.random.Generator, instance: int, moving: bool) -> dict:
    """A car's overall box; ``pattern`` = (body height, cabin length ratio, cabin shift ratio, 0)."""
    van = rng.random() < 0.12
    colour = CAR_COLOURS[rng.integers(len(CAR_COLOURS))] * rng.uniform(0.85, 1.1)
    height = rng.uniform(1.9, 2.2) if van else rng.uniform(1.4, 1.6)
    pattern = (0.5 * height, 0.8, -0.12) if van else (rng.uniform(0.55, 0.62) * height, rng.uniform(0.48, 0.6), -0.1)
    return dict(
        half_length=(rng.uniform(4.8, 5.4) if van else rng.uniform(3.9, 4.8)) / 2,
        half_width=rng.uniform(0.85, 0.98), z0=0.0, z1=height, kind=CAR, colour=np.clip(colour, 0, 1),
        pattern=(*pattern, 0.0), instance=instance, moving=moving,
    )


def car_boxes(cars: Boxes) -> Boxes:
    """Split each car's overall box into a body and a narrower, shorter cabin (``pattern[:, 3] == 1``) on top."""
    body = cars.take(slice(None))
    body.z1 = cars.pattern[:, 0].astype(np.float64)
    cabin = cars.take(slice(None))
    cabin.z0 = body.z1
    shift = cars.pattern[:, 2] * cars.half_length
    cabin.x = cars.x + np.cos(cars.heading) * shift
    cabin.y = cars.y + np.sin(cars.heading) * shift
    cabin.half_length = cars.half_length * cars.pattern[:, 1]
    cabin.half_width = cars.half_width - 0.08
    cabin.pattern = cars.pattern.copy()
    cabin.pattern[:, 3] = 1.0
    return Boxes.concat([body, cabin])


def _building(rng: np.random.Generator, road: Road, s0: float, s1: float, side: int, front: float) -> dict:
    """A box whose front face never crosses the facade line at ``front`` metres from the centreline."""
    ss = np.linspace(s0, s1, 7)
    fx, fy, _ = road.point(ss, side * front)
    axis = np.array([fx[-1] - fx[0], fy[-1] - fy[0]])
    axis /= np.linalg.norm(axis)
    out = side * np.array([-axis[1], axis[0]])  # away from the road
    offset = float(np.max(fx * out[0] + fy * out[1]))
    along = 0.5 * (fx[0] * axis[0] + fy[0] * axis[1] + fx[-1] * axis[0] + fy[-1] * axis[1])
    depth = rng.uniform(8.0, 14.0)
    centre = axis * along + out * (offset + depth / 2)
    length = float((fx[-1] - fx[0]) * axis[0] + (fy[-1] - fy[0]) * axis[1])
    return dict(
        x=centre[0], y=centre[1], heading=math.atan2(axis[1], axis[0]), half_length=length / 2,
        half_width=depth / 2, z0=0.0, z1=rng.uniform(7.0, 24.0), kind=BUILDING,
        colour=FACADE_COLOURS[rng.integers(len(FACADE_COLOURS))] * rng.uniform(0.85, 1.1),
        pattern=(rng.uniform(2.9, 3.6), rng.uniform(1.8, 3.2), rng.uniform(0.4, 0.7), rng.uniform(0.4, 0.6)),
    )


def static_objects(rng: np.random.Generator, road: Road, layout: Layout, s_start: float) -> Boxes:
    """Buildings, poles, trees and parked cars along both sides of the road from ``s_start`` to its end."""
    rows: list[dict] = []
    kerb = layout.road_half_width
    end = road.length - 30.0
    for side in (1, -1):
        s = s_start
        while s < end:  # building facades, sometimes with a gap (an alley showing the lot behind)
            k_max = float(np.max(np.abs(road.sample(np.linspace(s, s + 25.0, 6))[3])))
            length = min(rng.uniform(10.0, 28.0), 6.0 + 0.6 / max(k_max, 1e-3))
            front = kerb + layout.sidewalk_width + (rng.uniform(0.0, 1.5) if rng.random() < 0.3 else 0.0)
            rows.append(_building(rng, road, s, min(s + length, end + 30.0), side, front))
            s += length + (rng.uniform(2.0, 8.0) if rng.random() < 0.3 else 0.0)
        s = s_start + rng.uniform(0.0, 10.0)
        while s < end:  # street furniture: lamp poles near the kerb, trees in the middle of the sidewalk
            if rng.random() < 0.4:
                x, y, h = road.point(s, side * (kerb + 0.4))
                rows.append(dict(x=x, y=y, heading=h, half_length=0.11, half_width=0.11, z0=0.0,
                                 z1=rng.uniform(6.0, 8.0), kind=POLE, colour=(0.42, 0.43, 0.45)))
            else:
                x, y, h = road.point(s, side * (kerb + 1.6))
                crown = rng.uniform(1.0, 1.3)
                rows.append(dict(x=x, y=y, heading=h, half_length=0.17, half_width=0.17, z0=0.0, z1=2.7,
                                 kind=TRUNK, colour=(0.3, 0.22, 0.15)))
                rows.append(dict(x=x, y=y, heading=h + rng.uniform(0, 1.5), half_length=crown, half_width=crown,
                                 z0=rng.uniform(2.4, 2.7), z1=rng.uniform(5.5, 7.5), kind=CROWN,
                                 colour=np.array((0.2, 0.36, 0.12)) * rng.uniform(0.8, 1.2)))
            s += rng.uniform(9.0, 22.0)
    instance, cars = 1, []
    for side in (1, -1):
        s = s_start + rng.uniform(0.0, 8.0)
        while s < end:  # parked cars in the parking lanes, facing the direction of traffic
            if rng.random() < 0.6:
                car = _car_row(rng, instance, moving=False)
                s += car["half_length"]
                d = side * (layout.lane_width + layout.parking_width / 2 + rng.uniform(-0.15, 0.15))
                car["x"], car["y"], h = road.point(s, d)
                car["heading"] = h + (math.pi if side > 0 else 0.0)
                cars.append(car)
                instance += 1
                s += car["half_length"] + rng.uniform(0.8, 3.0)
            else:
                s += rng.uniform(5.0, 20.0)
    return Boxes.concat([Boxes.from_rows(rows), car_boxes(Boxes.from_rows(cars))])


@dataclass
class Traffic:
    """Cars driving along the lanes (arrays over cars).

    Cars in the ego lane keep a gap to the camera that breathes: ``gap + amplitude*sin(2 pi t/period + phase)``
    (m of centreline); oncoming cars drive at constant speed ``speed`` from ``s0`` against the direction of
    the road. ``shape`` holds their (static) boxes; only their pose changes with time.
    """

    shape: Boxes
    follows: np.ndarray
    gap: np.ndarray
    amplitude: np.ndarray
    period: np.ndarray
    phase: np.ndarray
    s0: np.ndarray
    speed: np.ndarray
    lane: np.ndarray

    def arclength(self, t: float, s_camera: float) -> np.ndarray:
        """Centreline arclength (m) of every car at time ``t`` (s) when the camera is at ``s_camera``."""
        follow = s_camera + self.gap + self.amplitude * np.sin(2 * np.pi * t / self.period + self.phase)
        return np.where(self.follows, follow, self.s0 - self.speed * t)

    def pose(self, road: Road, t: float, s_camera: float, index) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World ``(x, y, yaw)`` (m, m, rad) of the cars ``index`` (int array or boolean mask) at time ``t``."""
        s = self.arclength(t, s_camera)[index]
        x, y, heading = road.point(s, self.lane[index])
        return x, y, heading + np.where(self.follows[index], 0.0, math.pi)

    def boxes(self, road: Road, t: float, s_camera: float) -> Boxes:
        """The cars' boxes at time ``t`` (cars outside the road are dropped)."""
        s = self.arclength(t, s_camera)
        keep = (s > 0.0) & (s < road.length)
        out = self.shape.take(keep)
        out.x, out.y, out.heading = self.pose(road, t, s_camera, keep)
        return car_boxes(out)


def traffic(rng: np.random.Generator, road: Road, layout: Layout, speed: float, duration: float,
            s_camera0: float, first_instance: int) -> Traffic:
    """Two cars ahead in the ego lane and a stream of oncoming cars over the whole drive."""
    rows, params = [], []
    gaps = [rng.uniform(16.0, 24.0), rng.uniform(50.0, 75.0)]
    for gap in gaps:
        params.append((True, gap, rng.uniform(2.0, 6.0), rng.uniform(8.0, 20.0), rng.uniform(0, 2 * np.pi),
                       0.0, 0.0, -layout.lane_width / 2))
    base = speed if speed > 0 else 8.0
    s = s_camera0 + rng.uniform(10.0, 40.0)
    starts = []
    while s < road.length + base * 1.3 * duration:
        starts.append(s)
        s += rng.uniform(35.0, 110.0)
    # the car further ahead in their direction (smaller s) is never slower: no collisions in the lane
    speeds = np.sort(rng.uniform(0.5, 1.3, len(starts)) * base)[::-1]
    for s0, v in zip(starts, speeds):
        params.append((False, 0.0, 0.0, 1.0, 0.0, s0, v, layout.lane_width / 2))
    for i in range(len(params)):
        rows.append(_car_row(rng, first_instance + i, moving=True))
    cols = list(zip(*params))
    return Traffic(shape=Boxes.from_rows(rows), follows=np.array(cols[0], bool),
                   **{name: np.array(c, np.float64) for name, c in zip(
                       ("gap", "amplitude", "period", "phase", "s0", "speed", "lane"), cols[1:])})
