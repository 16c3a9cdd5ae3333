"""The synthetic driving world: a seeded, deterministic, ray-cast street scene with exact ground truth.

A camera ``camera_height`` metres above a flat road drives along the right lane at ``speed`` m/s, its yaw
following the road (level: no pitch, no roll). The road follows a smooth random curvature profile
(|k| <= ``max_curvature``); parking lanes, kerbs, sidewalks with poles and trees, building facades, parked
cars and cars moving along both lanes line it. Every frame comes with metric depth, Cityscapes train-id
semantics, car instances, panoptic ids, the camera pose, the 3D scene flow of moving cars, their motion
mask and the curvature of the driven path.

Frames are pure functions of ``(config, index)``: the same seed gives identical bytes, in any order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from uni_encoder_core.data.synthetic.render import NEAR, ROAD, SIDEWALK, SKY, TERRAIN, Camera, Style, cast, rays
from uni_encoder_core.data.synthetic.road import STEP, make_road
from uni_encoder_core.data.synthetic.scene import KIND_TRAIN_ID, Boxes, Layout, static_objects, traffic
from uni_encoder_core.data.synthetic.shading import shade
from uni_encoder_core.labels import LABEL_DIVISOR

TRAIN_IDS = frozenset({ROAD, SIDEWALK, TERRAIN, SKY, *KIND_TRAIN_ID.tolist()})
"""Cityscapes train ids of the classes this world contains."""
START_ARCLENGTH = 20.0  # m of road behind the first camera position


@dataclass
class WorldConfig:
    """Everything that defines a synthetic world; equal configs render identical frames.

    Distances in metres, angles in degrees, ``speed`` in m/s, ``fps`` in frames per second. ``num_frames``
    is the length of the drive the road is built for; ``start_time`` is the stamp of frame 0 (s).
    """

    seed: int = 0
    height: int = 192
    width: int = 512
    hfov_deg: float = 80.0
    camera_height: float = 1.5
    speed: float = 10.0
    fps: float = 10.0
    num_frames: int = 256
    wheelbase: float = 2.7
    max_curvature: float = 0.05
    lane_width: float = 3.5
    parking_width: float = 2.2
    sidewalk_width: float = 3.0
    draw_distance: float = 250.0
    start_time: float = 0.0

    def __post_init__(self):
        for name in ("height", "width", "num_frames"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"WorldConfig.{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("camera_height", "fps", "wheelbase", "lane_width", "draw_distance", "max_curvature"):
            if not getattr(self, name) > 0:
                raise ValueError(f"WorldConfig.{name} must be positive, got {getattr(self, name)!r}")
        if self.speed < 0:
            raise ValueError(f"WorldConfig.speed must be >= 0 m/s, got {self.speed!r}")
        if not 10.0 <= self.hfov_deg <= 150.0:
            raise ValueError(f"WorldConfig.hfov_deg must be within 10..150 degrees, got {self.hfov_deg!r}")
        if self.max_curvature > 0.2:
            raise ValueError(f"WorldConfig.max_curvature must be <= 0.2 1/m (a car's turning circle), "
                             f"got {self.max_curvature!r}")


@dataclass
class SyntheticFrame:
    """One rendered frame and its ground truth (H x W images, camera optical frame: x right, y down, z forward).

    ``depth``: optical z in metres, 0 where the ray sees the sky. ``semantic``: Cityscapes train ids.
    ``instance``: car instance id, stable across frames (0 = no car). ``panoptic``: train_id*1000 + instance
    for cars, train_id*1000 for stuff. ``T_world_cam``: maps camera-frame points into the world frame (x east,
    y north, z up). ``scene_flow``: motion of the point seen at each pixel from this frame to the next, caused
    by the object's own motion, in this camera frame (m per frame; 0 for static scenery). ``motion_mask``:
    pixels of moving cars. ``curvature``: of the driven path (1/m, + = left); ``steering_angle`` =
    atan(wheelbase * curvature) (rad); ``stamp`` in seconds.
    """

    index: int
    rgb: np.ndarray
    depth: np.ndarray
    semantic: np.ndarray
    instance: np.ndarray
    panoptic: np.ndarray
    K: np.ndarray
    T_world_cam: np.ndarray
    scene_flow: np.ndarray
    motion_mask: np.ndarray
    curvature: float
    steering_angle: float
    stamp: float


class SyntheticWorld:
    """A seeded street world and the drive through it; ``frame(i)`` renders frame ``i``."""

    def __init__(self, cfg: WorldConfig | None = None):
        self.cfg = cfg = cfg or WorldConfig()
        road_rng, scene_rng, traffic_rng, style_rng = (np.random.default_rng(s)
                                                       for s in np.random.SeedSequence(cfg.seed).spawn(4))
        self.layout = Layout(cfg.lane_width, cfg.parking_width, cfg.sidewalk_width)
        self.lane_offset = -cfg.lane_width / 2  # right-hand traffic: the camera drives in the right lane
        duration = cfg.num_frames / cfg.fps
        length = START_ARCLENGTH + 1.15 * cfg.speed * duration + cfg.draw_distance + 60.0
        self.road = make_road(road_rng, length, cfg.max_curvature)
        lane_step = (1.0 - self.road.curvature * self.lane_offset) * STEP
        self._lane_arclength = np.concatenate([[0.0], np.cumsum(0.5 * (lane_step[1:] + lane_step[:-1]))])
        self._lane_start = float(np.interp(START_ARCLENGTH, self.road.s, self._lane_arclength))
        self.static = static_objects(scene_rng, self.road, self.layout, s_start=5.0)
        self.traffic = traffic(traffic_rng, self.road, self.layout, cfg.speed, duration, START_ARCLENGTH,
                               first_instance=int(self.static.instance.max(initial=0)) + 1)
        if self.traffic.shape.instance.max() >= LABEL_DIVISOR:
            raise ValueError(f"WorldConfig.num_frames {cfg.num_frames} needs more than {LABEL_DIVISOR - 1} car "
                             f"instance ids, which panoptic ids (train_id*{LABEL_DIVISOR} + instance) cannot hold")
        self.style = Style.random(style_rng)
        f = (cfg.width / 2) / math.tan(math.radians(cfg.hfov_deg) / 2)
        self.K = np.array([[f, 0.0, cfg.width / 2], [0.0, f, cfg.height / 2], [0.0, 0.0, 1.0]])
        self._xc, self._yc = rays(self.K, cfg.height, cfg.width)

    # ------------------------------------------------------------------ the drive
    def _check(self, i: int, last: int | None = None) -> None:
        last = self.cfg.num_frames if last is None else last  # poses exist one frame past the drive
        if not 0 <= i <= last:
            raise IndexError(f"frame index {i} outside 0..{last} of this world's drive of {self.cfg.num_frames} "
                             f"frames (WorldConfig.num_frames)")

    def time(self, i: int) -> float:
        """Seconds since frame 0."""
        return i / self.cfg.fps

    def stamp(self, i: int) -> float:
        """Time stamp of frame ``i`` (s)."""
        return self.cfg.start_time + self.time(i)

    def arclength(self, i: int) -> float:
        """Centreline arclength (m) of the camera at frame ``i``."""
        lane = self._lane_start + self.cfg.speed * self.time(i)
        return float(np.interp(lane, self._lane_arclength, self.road.s))

    def camera(self, i: int) -> Camera:
        """The camera at frame ``i``."""
        self._check(i)
        x, y, heading = self.road.point(self.arclength(i), self.lane_offset)
        return Camera(float(x), float(y), float(heading), self.cfg.camera_height)

    def pose(self, i: int) -> np.ndarray:
        """``T_world_cam`` (4x4 float64) of frame ``i``: camera optical frame -> world."""
        cam = self.camera(i)
        T = np.zeros((4, 4))
        T[3, 3] = 1.0
        T[:2, 0] = cam.right
        T[:3, 1] = (0.0, 0.0, -1.0)
        T[:2, 2] = cam.forward
        T[:3, 3] = (cam.x, cam.y, cam.height)
        return T

    def curvature(self, i: int) -> float:
        """Curvature (1/m, + = left) of the path the camera drives at frame ``i`` (its lane, not the centreline)."""
        self._check(i)
        k = float(self.road.sample(self.arclength(i))[3])
        return k / (1.0 - k * self.lane_offset)

    def steering_angle(self, i: int) -> float:
        """Ackermann steering angle (rad, + = left) for the path curvature at frame ``i``."""
        return math.atan(self.cfg.wheelbase * self.curvature(i))

    # ------------------------------------------------------------------ rendering
    def boxes(self, i: int, cam: Camera) -> Boxes:
        """Every box that can be seen from ``cam`` at frame ``i`` (static scenery and traffic)."""
        moving = self.traffic.boxes(self.road, self.time(i), self.arclength(i))
        boxes = Boxes.concat([self.static, moving])
        rel = np.stack([boxes.x - cam.x, boxes.y - cam.y], axis=1)
        bx, bz = rel @ cam.right, rel @ cam.forward
        radius = np.hypot(boxes.half_length, boxes.half_width)
        tan_half = abs(self._xc).max()
        keep = ((bz + radius > NEAR) & (np.hypot(bx, bz) - radius < self.cfg.draw_distance)
                & (np.abs(bx) - radius < (bz + radius) * tan_half))
        return boxes.take(keep)

    def frame(self, i: int) -> SyntheticFrame:
        """Render frame ``i`` (0 <= i < num_frames) with its ground truth."""
        self._check(i, self.cfg.num_frames - 1)
        cam = self.camera(i)
        boxes = self.boxes(i, cam)
        hits = cast(boxes, cam, self._xc, self._yc, far=self.cfg.draw_distance)
        rgb, semantic = shade(hits, boxes, cam, self.road, self.layout, self.style, self._xc, self._yc,
                              self.arclength(i))
        on_box = hits.box >= 0
        instance = np.where(on_box, boxes.instance[hits.box], 0).astype(np.int32)
        motion_mask = on_box & boxes.moving[hits.box]
        depth = np.where(np.isinf(hits.depth), 0.0, hits.depth).astype(np.float32)
        flow = self.scene_flow(i, i + 1, depth, instance)
        return SyntheticFrame(
            index=i, rgb=np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8), depth=depth, semantic=semantic,
            instance=instance, panoptic=semantic.astype(np.int32) * LABEL_DIVISOR + instance, K=self.K.copy(),
            T_world_cam=self.pose(i), scene_flow=flow, motion_mask=motion_mask,
            curvature=self.curvature(i), steering_angle=self.steering_angle(i), stamp=self.stamp(i),
        )

    def car_pose(self, instance: np.ndarray, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World ``(x, y, yaw)`` of moving cars (by instance id) at frame ``i``."""
        idx = np.asarray(instance) - int(self.traffic.shape.instance[0])
        if np.any((idx < 0) | (idx >= len(self.traffic.follows))):
            raise ValueError(f"instance ids {instance} are not all moving cars of this world")
        return self.traffic.pose(self.road, self.time(i), self.arclength(i), idx)

    def scene_flow(self, i: int, j: int, depth: np.ndarray, instance: np.ndarray) -> np.ndarray:
        """3D scene flow (HxWx3 float32, camera frame ``i``) of the points seen in frame ``i`` towards frame ``j``.

        Only moving cars move: a point on car ``c`` follows the car's rigid motion from frame ``i`` to ``j``;
        everything else has zero flow. ``depth``/``instance`` are frame ``i``'s ground truth.
        """
        self._check(i)
        self._check(j)
        flow = np.zeros((*depth.shape, 3), dtype=np.float32)
        moving = instance >= int(self.traffic.shape.instance[0])  # traffic ids follow every static id
        if not moving.any():
            return flow
        v, u = np.nonzero(moving)
        z = depth[v, u].astype(np.float64)
        cam = self.camera(i)
        px = z * self._xc[u]
        wx = cam.x + px * cam.right[0] + z * cam.forward[0]
        wy = cam.y + px * cam.right[1] + z * cam.forward[1]
        ids = instance[v, u]
        x0, y0, h0 = self.car_pose(ids, i)
        x1, y1, h1 = self.car_pose(ids, j)
        c, s = np.cos(h1 - h0), np.sin(h1 - h0)
        dx, dy = wx - x0, wy - y0
        mx = x1 + c * dx - s * dy - wx
        my = y1 + s * dx + c * dy - wy
        flow[v, u, 0] = mx * cam.right[0] + my * cam.right[1]
        flow[v, u, 2] = mx * cam.forward[0] + my * cam.forward[1]
        return flow
