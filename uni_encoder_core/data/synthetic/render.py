"""Vectorised ray caster of the synthetic world (numpy, one call per frame).

The camera is level (no pitch, no roll), so every image column is a vertical plane through the camera:
the footprint of each box is intersected with the column's horizontal ray once per column, and the
vertical extent per row turns that interval into the per-pixel hit. Rays that hit no box meet the
ground plane at depth ``camera_height / y`` (y = normalised image row) or see the sky.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from uni_encoder_core.data.synthetic.scene import Boxes

ROAD, SIDEWALK, TERRAIN, SKY = 0, 1, 9, 10
NEAR = 0.05  # m
TILE = 256  # texels per side of the noise tile


@dataclass(frozen=True)
class Camera:
    """A level pinhole camera: position (m, world), heading (rad, yaw of the optical axis), height (m)."""

    x: float
    y: float
    heading: float
    height: float

    @property
    def right(self) -> np.ndarray:
        """World direction of the image x axis (horizontal)."""
        return np.array([np.sin(self.heading), -np.cos(self.heading)])

    @property
    def forward(self) -> np.ndarray:
        """World direction of the optical axis (horizontal)."""
        return np.array([np.cos(self.heading), np.sin(self.heading)])


@dataclass(frozen=True)
class Style:
    """Per-seed look: sun direction (unit 3-vector), light levels and material colours (RGB in [0, 1])."""

    sun: np.ndarray
    ambient: float
    sunlight: float
    zenith: np.ndarray
    horizon: np.ndarray
    haze_distance: float
    tint: np.ndarray  # colour of the light times exposure, applied to every lit surface
    clouds: float  # cloud threshold on the unit-variance noise: lower = more cloud
    asphalt: np.ndarray
    sidewalk: np.ndarray
    grass: np.ndarray
    noise: np.ndarray  # TILE x TILE smooth periodic noise, zero mean, unit std

    @staticmethod
    def random(rng: np.random.Generator) -> Style:
        """Lighting and materials drawn from ``rng``: sunny to overcast, warm to cool."""
        elevation, azimuth = rng.uniform(0.35, 1.1), rng.uniform(0, 2 * np.pi)
        sun = np.array([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)])
        overcast = rng.uniform(0.0, 1.0)
        zenith = (1 - overcast) * np.array([0.25, 0.45, 0.82]) + overcast * np.array([0.62, 0.65, 0.7])
        spectrum = np.fft.fft2(rng.standard_normal((TILE, TILE)))
        f = np.fft.fftfreq(TILE)
        spectrum *= np.exp(-(f[:, None] ** 2 + f[None, :] ** 2) / (2 * 0.08**2))
        noise = np.fft.ifft2(spectrum).real
        warm = rng.uniform(0.0, 1.0) ** 2 * (1 - overcast)  # low evening sun to neutral daylight
        return Style(
            sun=sun, ambient=0.45 + 0.25 * overcast, sunlight=0.75 * (1 - 0.6 * overcast),
            zenith=zenith, horizon=np.array([0.78, 0.82, 0.88]) * rng.uniform(0.9, 1.05) * (1 - 0.2 * warm)
            + np.array([0.2, 0.1, 0.0]) * warm,
            haze_distance=rng.uniform(250.0, 600.0),
            tint=np.array([1.0, 1.0 - 0.1 * warm, 1.0 - 0.25 * warm], np.float32) * rng.uniform(0.85, 1.15),
            clouds=1.3 - 1.8 * overcast,
            asphalt=np.array([0.3, 0.3, 0.32]) * rng.uniform(0.75, 1.2),
            sidewalk=np.array([0.6, 0.57, 0.53]) * rng.uniform(0.85, 1.1),
            grass=np.array([0.3, 0.42, 0.18]) * rng.uniform(0.8, 1.15),
            noise=((noise - noise.mean()) / noise.std()).astype(np.float32),
        )

    def texture(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Bilinearly sampled noise at texel coordinates ``(u, v)`` (periodic)."""
        u0, v0 = np.floor(u), np.floor(v)
        fu, fv = (u - u0).astype(np.float32), (v - v0).astype(np.float32)
        i, j = u0.astype(np.int64) & (TILE - 1), v0.astype(np.int64) & (TILE - 1)
        i1, j1 = (i + 1) & (TILE - 1), (j + 1) & (TILE - 1)
        n = self.noise
        top = n[j, i] + (n[j, i1] - n[j, i]) * fu
        bottom = n[j1, i] + (n[j1, i1] - n[j1, i]) * fu
        return top + (bottom - top) * fv


@dataclass
class Hits:
    """Per-pixel result of ray casting (HxW): optical depth (inf = sky), box index (-1 = ground or sky),
    whether the box was hit on its top/bottom face, and whether on an end (short) face."""

    depth: np.ndarray
    box: np.ndarray
    horizontal: np.ndarray
    end_face: np.ndarray


def rays(K: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Normalised ray coordinates of the pixel centres: x per column (W,), y per row (H,)."""
    xc = (np.arange(width) - K[0, 2]) / K[0, 0]
    yc = (np.arange(height) - K[1, 2]) / K[1, 1]
    return xc, yc


def cast(boxes: Boxes, cam: Camera, xc: np.ndarray, yc: np.ndarray, far: float) -> Hits:
    """Nearest intersection of every pixel's ray with the ground plane and the boxes."""
    h = cam.height
    H, W = len(yc), len(xc)
    with np.errstate(divide="ignore"):
        ground = np.where(yc > 0, h / np.where(yc > 0, yc, 1.0), np.inf).astype(np.float32)
    depth = np.repeat(ground[:, None], W, axis=1)
    box = np.full((H, W), -1, dtype=np.int32)
    horizontal = np.zeros((H, W), dtype=bool)
    end_face = np.zeros((H, W), dtype=bool)
    if len(boxes) == 0:
        return Hits(depth, box, horizontal, end_face)
    rel = np.stack([boxes.x - cam.x, boxes.y - cam.y], axis=1)
    bx, bz = rel @ cam.right, rel @ cam.forward  # box centres in camera (x right, z forward)
    axis = np.stack([np.cos(boxes.heading), np.sin(boxes.heading)], axis=1)
    ax, az = axis @ cam.right, axis @ cam.forward
    slabs = []
    for (ux, uz), extent in (((ax, az), boxes.half_length), ((-az, ax), boxes.half_width)):
        den = xc[None, :] * ux[:, None] + uz[:, None]
        den = np.where(np.abs(den) < 1e-12, 1e-12, den)
        centre = (bx * ux + bz * uz)[:, None]
        ta, tb = (centre - extent[:, None]) / den, (centre + extent[:, None]) / den
        slabs.append((np.minimum(ta, tb), np.maximum(ta, tb)))
    t_in = np.maximum(slabs[0][0], slabs[1][0])
    t_out = np.minimum(slabs[0][1], slabs[1][1])
    on_end = slabs[0][0] > slabs[1][0]
    seen = (t_in < t_out) & (t_out > NEAR) & (t_in < far)
    with np.errstate(divide="ignore", invalid="ignore"):
        za, zb = (h - boxes.z1[:, None]) / yc[None, :], (h - boxes.z0[:, None]) / yc[None, :]
    z_lo, z_hi = np.minimum(za, zb).astype(np.float32), np.maximum(za, zb).astype(np.float32)
    t_in, t_out = t_in.astype(np.float32), t_out.astype(np.float32)
    t_near = np.where(seen, np.maximum(t_in, NEAR), np.inf).min(axis=1)
    t_far = np.where(seen, t_out, -np.inf).max(axis=1)
    rows = (z_lo <= t_far[:, None]) & (z_hi >= t_near[:, None])
    visible = np.flatnonzero(seen.any(axis=1) & rows.any(axis=1))
    first_col, last_col = seen.argmax(axis=1), W - seen[:, ::-1].argmax(axis=1)
    first_row, last_row = rows.argmax(axis=1), H - rows[:, ::-1].argmax(axis=1)
    for k in visible:
        c0, c1, r0, r1 = first_col[k], last_col[k], first_row[k], last_row[k]
        lo = z_lo[k, r0:r1, None]
        entry = np.maximum(t_in[k, None, c0:c1], lo)
        hit = (entry <= np.minimum(t_out[k, None, c0:c1], z_hi[k, r0:r1, None])) & (entry > NEAR)
        block = depth[r0:r1, c0:c1]
        hit &= entry < block
        np.copyto(block, entry, where=hit)
        np.copyto(box[r0:r1, c0:c1], k, where=hit)
        np.copyto(horizontal[r0:r1, c0:c1], lo > t_in[k, None, c0:c1], where=hit)
        np.copyto(end_face[r0:r1, c0:c1], on_end[k, None, c0:c1], where=hit)
    return Hits(depth, box, horizontal, end_face)
