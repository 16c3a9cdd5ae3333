"""Procedural materials and lighting of the synthetic world.

Every texture is a function of the hit point's world or object-local coordinates (never of the pixel),
so a static point has the same colour in every frame. Lighting is Lambertian with a per-seed sun, plus
a distance haze; semantic ids are Cityscapes train ids.
"""

from __future__ import annotations

import numpy as np

from uni_encoder_core.data.synthetic.render import (
    ROAD,
    SIDEWALK,
    SKY,
    TERRAIN,
    Camera,
    Hits,
    Style,
)
from uni_encoder_core.data.synthetic.road import Road
from uni_encoder_core.data.synthetic.scene import BUILDING, CAR, CROWN, KIND_TRAIN_ID, TRUNK, Boxes, Layout


def hash01(*keys: np.ndarray) -> np.ndarray:
    """Deterministic pseudo-random numbers in [0, 1) from integer keys (same shape as the keys)."""
    h = np.zeros(np.broadcast(*keys).shape, dtype=np.int64)
    for key, prime in zip(keys, (73856093, 19349663, 83492791)):
        h ^= np.asarray(key, dtype=np.int64) * prime
    h = (h ^ (h >> 13)) * 1274126177
    return ((h ^ (h >> 16)) & 0xFFFF).astype(np.float32) / 65536.0


def _paint(colour: np.ndarray, rgb, where: np.ndarray) -> None:
    colour[where] = np.asarray(rgb, dtype=np.float32)


def shade_ground(z, x, y, road: Road, layout: Layout, style: Style, s_guess) -> tuple[np.ndarray, np.ndarray]:
    """Colour (Nx3) and train id (N,) of ground points at world ``(x, y)`` (float64) seen at depth ``z``."""
    s, d, residual = road.project(x, y, s_guess)
    ad = np.abs(d).astype(np.float32)
    kerb = layout.road_half_width
    resolved = np.abs(residual) < 0.1
    on_road = resolved & (ad < kerb)
    on_walk = resolved & (ad >= kerb) & (ad < kerb + layout.sidewalk_width)
    label = np.full(len(z), TERRAIN, dtype=np.uint8)
    label[on_road] = ROAD
    label[on_walk] = SIDEWALK
    fade = np.clip(1.0 - z / np.float32(80.0), 0.25, 1.0)
    fine = style.texture(x * (1 / 0.1), y * (1 / 0.1)) * fade
    coarse = style.texture(x * (1 / 1.7), y * (1 / 1.7) + 17.0)
    colour = np.empty((len(z), 3), dtype=np.float32)
    colour[:] = style.grass
    colour *= (1.0 + 0.25 * fine + 0.15 * coarse)[:, None]
    colour[on_road] = style.asphalt * (1.0 + 0.1 * fine[on_road] + 0.08 * coarse[on_road])[:, None]
    sw, adw = s[on_walk], ad[on_walk]
    tiles = ((np.mod(sw, 0.6) < 0.05) | (np.mod(adw - kerb, 0.6) < 0.05)) & (adw > kerb + 0.25)
    colour[on_walk] = style.sidewalk * (1.0 + 0.06 * fine[on_walk] - 0.12 * tiles * fade[on_walk])[:, None]
    sr, adr = s[on_road], ad[on_road]
    paint = ((adr < 0.075) & (np.mod(sr, 9.0) < 3.0)) | (np.abs(adr - layout.lane_width) < 0.06)
    road_idx = np.flatnonzero(on_road)
    _paint(colour, (0.86, 0.86, 0.84), road_idx[paint])
    _paint(colour, (0.72, 0.71, 0.69), np.flatnonzero(on_walk)[adw < kerb + 0.25])
    light = style.ambient + style.sunlight * max(style.sun[2], 0.0)
    return colour * np.float32(light), label


def _building(colour, along, height, horizontal, half_face, z1, pattern, ident, style: Style) -> np.ndarray:
    """Facades: floors of windows (some lit), shop windows at street level, a cornice; a grey roof."""
    colour = colour * (1.0 + 0.05 * style.texture(along * 4.0, height * 4.0))[:, None]
    floor_h, spacing = pattern[:, 0], pattern[:, 1]
    fl = np.floor(height / floor_h)
    fz = height / floor_h - fl
    cx = (along + 1000.0) / spacing
    col = np.floor(cx)
    fx = np.abs(cx - col - 0.5)
    inner = (np.abs(along) < half_face - 0.8) & (height < z1 - 1.2) & ~horizontal
    window = inner & (fl >= 1) & (fz > 0.3) & (fz < 0.3 + pattern[:, 3]) & (fx < pattern[:, 2] / 2)
    window |= inner & (fl == 0) & (fz > 0.15) & (fz < 0.78) & (fx < 0.42)
    glow = hash01(fl[window].astype(np.int64), col[window].astype(np.int64), ident[window])
    glass = np.array([0.11, 0.14, 0.2], np.float32) * (0.6 + 1.2 * glow)[:, None]
    glass[glow > 0.93] = (0.85, 0.72, 0.45)
    cornice = (height > z1 - 0.45) & ~horizontal
    colour[cornice] *= 0.78
    colour[window] = glass
    _paint(colour, (0.33, 0.32, 0.31), horizontal)
    return colour


def _car(colour, along, l1, l2, height, horizontal, end, half_face, box: Boxes, k) -> np.ndarray:
    """Car bodies (wheels, lights, dark underbody) and cabins (glass between pillars, a roof)."""
    cabin = box.pattern[k, 3] > 0
    side_glass = cabin & ~horizontal & (height > box.z0[k] + 0.04) & (height < box.z1[k] - 0.06)
    side_glass &= np.abs(along) < half_face - np.where(end, 0.1, 0.2)
    body = ~cabin & ~horizontal
    wheel = body & ~end & (height < 0.62) & (np.abs(np.abs(l1) - (box.half_length[k] - 0.85)) < 0.36)
    lamp = body & end & (height > 0.55 * box.z1[k]) & (height < 0.85 * box.z1[k])
    lamp &= np.abs(l2) > box.half_width[k] - 0.4
    colour[horizontal] *= 0.9
    _paint(colour, (0.1, 0.1, 0.1), body & (height < 0.22))
    _paint(colour, (0.04, 0.04, 0.04), wheel)
    _paint(colour, (0.8, 0.08, 0.05), lamp & (l1 < 0))
    _paint(colour, (0.95, 0.92, 0.8), lamp & (l1 > 0))
    _paint(colour, (0.07, 0.08, 0.1), side_glass)
    return colour


def shade_boxes(boxes: Boxes, k, dx, dy, height, horizontal, end, up, style: Style) -> tuple[np.ndarray, np.ndarray]:
    """Colour (Nx3) and train id (N,) of box hit points.

    ``k`` indexes ``boxes``; ``dx, dy``: world-axis offset (m) of the hit point from the box centre;
    ``height``: above ground (m); ``horizontal``/``end``: hit on the top/bottom face / on an end face;
    ``up``: the ray points upwards.
    """
    cos, sin = np.cos(boxes.heading), np.sin(boxes.heading)
    c, s = cos.astype(np.float32)[k], sin.astype(np.float32)[k]
    l1, l2 = dx * c + dy * s, dy * c - dx * s
    along = np.where(end, l2, l1)
    half_face = np.where(end, boxes.half_width[k], boxes.half_length[k]).astype(np.float32)
    # Lambertian light per box face: front/back end, left/right side, top, bottom
    sun = style.sun
    facing = np.stack([cos, -cos, -sin, sin], axis=1) * sun[0] + np.stack([sin, -sin, cos, -cos], axis=1) * sun[1]
    facing = np.concatenate([facing, np.full((len(cos), 1), sun[2]), np.full((len(cos), 1), -sun[2])], axis=1)
    table = (style.ambient + style.sunlight * np.maximum(facing, 0.0)).astype(np.float32)
    face = np.where(horizontal, 4 + up, np.where(end, l1 < 0, 2 + (l2 < 0)))
    light = table[k, face]
    kind = boxes.kind[k]
    colour = boxes.colour[k]
    z1 = boxes.z1.astype(np.float32)
    b = np.flatnonzero(kind == BUILDING)
    if len(b):
        kb = k[b]
        ident = (np.round(boxes.x * 3.0).astype(np.int64) + 7919 * np.round(boxes.y * 3.0).astype(np.int64))[kb]
        colour[b] = _building(colour[b], along[b], height[b], horizontal[b], half_face[b], z1[kb],
                              boxes.pattern[kb], ident, style)
    v = np.flatnonzero(kind == CAR)
    if len(v):
        colour[v] = _car(colour[v], along[v], l1[v], l2[v], height[v], horizontal[v], end[v], half_face[v],
                         boxes, k[v])
    g = np.flatnonzero((kind == CROWN) | (kind == TRUNK))
    if len(g):
        leaf = style.texture(l1[g] * 2.2 + height[g] * 1.3, l2[g] * 2.2 - height[g] * 0.7)
        colour[g] *= (1.0 + 0.35 * leaf - 0.4 * (horizontal[g] & up[g]))[:, None]
    return colour * light[:, None], KIND_TRAIN_ID[kind]


def shade_sky(xc: np.ndarray, yc: np.ndarray, heading: float, style: Style) -> np.ndarray:
    """Sky colour (Nx3) for rays ``(xc, yc, 1)``: horizon-to-zenith gradient with clouds fixed in the world."""
    elevation = np.arctan2(-yc, np.sqrt(1.0 + xc**2))
    t = np.clip(elevation / 0.5, 0.0, 1.0) ** 0.7
    colour = style.horizon * (1 - t)[:, None] + style.zenith * t[:, None]
    azimuth = heading - np.arctan(xc)
    cloud = style.texture(np.mod(azimuth, 2 * np.pi) * (256 / (2 * np.pi)) * 3, elevation * 300.0 + 50.0)
    amount = np.clip((cloud - style.clouds) * 0.8, 0.0, 0.75) * (elevation > 0)
    colour = colour * (1 - amount)[:, None] + 0.96 * amount[:, None]
    return colour.astype(np.float32)


def shade(hits: Hits, boxes: Boxes, cam: Camera, road: Road, layout: Layout, style: Style,
          xc: np.ndarray, yc: np.ndarray, s_camera: float) -> tuple[np.ndarray, np.ndarray]:
    """RGB (HxWx3 float32, [0, 1]) and semantic train ids (HxW uint8) of a cast frame."""
    H, W = hits.depth.shape
    rgb = np.empty((H * W, 3), dtype=np.float32)
    semantic = np.full(H * W, SKY, dtype=np.uint8)
    depth, box = hits.depth.ravel(), hits.box.ravel()
    xc32, yc32 = xc.astype(np.float32), yc.astype(np.float32)
    r, f = cam.right.astype(np.float32), cam.forward.astype(np.float32)
    haze_colour = style.horizon.astype(np.float32)

    def haze(colour, z):
        a = np.exp(z * np.float32(-1.0 / style.haze_distance))[:, None]
        return colour * (a * style.tint) + haze_colour * (1.0 - a)

    finite = np.isfinite(depth)
    idx = np.flatnonzero(finite & (box < 0))  # ground
    rows, cols = np.divmod(idx, W)
    z = depth[idx]
    px = z * xc32[cols]
    wx = cam.x + (px * r[0] + z * f[0]).astype(np.float64)
    wy = cam.y + (px * r[1] + z * f[1]).astype(np.float64)
    colour, semantic[idx] = shade_ground(z, wx, wy, road, layout, style, s_camera + z)
    rgb[idx] = haze(colour, z)

    idx = np.flatnonzero(box >= 0)
    rows, cols = np.divmod(idx, W)
    z, k = depth[idx], box[idx]
    px, py = z * xc32[cols], yc32[rows]
    dx = px * r[0] + z * f[0] - (boxes.x - cam.x).astype(np.float32)[k]
    dy = px * r[1] + z * f[1] - (boxes.y - cam.y).astype(np.float32)[k]
    colour, semantic[idx] = shade_boxes(boxes, k, dx, dy, np.float32(cam.height) - z * py,
                                        hits.horizontal.ravel()[idx], hits.end_face.ravel()[idx], py < 0, style)
    rgb[idx] = haze(colour, z)

    idx = np.flatnonzero(~finite)
    rows, cols = np.divmod(idx, W)
    rgb[idx] = shade_sky(xc[cols], yc[rows], cam.heading, style)
    return rgb.reshape(H, W, 3), semantic.reshape(H, W)
