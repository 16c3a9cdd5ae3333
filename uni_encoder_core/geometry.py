"""Camera geometry: poses, back-projection, projection, rigid flow, 3D-flow warping, ground plane, metric scale.

Conventions: intrinsics ``K`` are ``Bx3x3`` in pixels for the tensor's own resolution; pixel ``(u, v)`` is the
centre of column ``u`` / row ``v``; the camera frame is optical (x right, y down, z forward). ``T_t->s`` maps
target-camera points into the source camera (``X_s = T_t->s @ X_t``); the 3D scene flow at a target pixel is the
displacement of its 3D point from the target to the source frame, expressed in the target camera frame.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from kornia.geometry.camera import project_points
from kornia.geometry.conversions import (
    Rt_to_matrix4x4,
    axis_angle_to_rotation_matrix,
    normalize_pixel_coordinates,
    rotation_matrix_to_axis_angle,
)
from kornia.geometry.depth import depth_to_3d_v2


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ValueError(message)


def _check_shape(name: str, tensor: torch.Tensor, shape: tuple) -> None:
    """``shape`` holds ints or None (any size)."""
    ok = tensor.dim() == len(shape) and all(s is None or s == n for s, n in zip(shape, tensor.shape))
    want = "x".join("*" if s is None else str(s) for s in shape)
    _check(ok, f"{name} must have shape {want}, got {tuple(tensor.shape)}")


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues: axis-angle ``Bx3`` (radians, direction = axis) -> rotation matrices ``Bx3x3``."""
    _check_shape("axis_angle", axis_angle, (None, 3))
    return axis_angle_to_rotation_matrix(axis_angle)


def pose_vec_to_matrix(axis_angle: torch.Tensor, translation: torch.Tensor, invert: bool = False) -> torch.Tensor:
    """Pose ``[R | t]`` from axis-angle ``Bx3`` and translation ``Bx3`` as ``Bx4x4``.

    ``invert=True`` returns ``[R | t]^-1 = [R^T | -R^T t]`` (monodepth2's ``transformation_from_parameters``:
    the pose network predicts the motion for a source frame before the target and inverts it for one after).
    """
    _check_shape("translation", translation, (None, 3))
    _check(translation.shape[0] == axis_angle.shape[0], "axis_angle and translation need the same batch size")
    R = axis_angle_to_matrix(axis_angle)
    t = translation.unsqueeze(-1)
    if invert:
        R = R.transpose(1, 2)
        t = -R @ t
    return Rt_to_matrix4x4(R, t)


def invert_pose_vec(axis_angle: torch.Tensor, translation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Axis-angle ``Bx3`` and translation ``Bx3`` of ``[R | t]`` -> those of its inverse ``[R^T | -R^T t]``
    (the rotation about the same axis by the opposite angle)."""
    _check_shape("translation", translation, (None, 3))
    inverse = -axis_angle
    return inverse, -(axis_angle_to_matrix(inverse) @ translation.unsqueeze(-1)).squeeze(-1)


def matrix_to_pose_vec(T: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`pose_vec_to_matrix` (no invert): ``Bx4x4`` -> (axis-angle ``Bx3``, translation ``Bx3``)."""
    _check_shape("T", T, (None, 4, 4))
    return rotation_matrix_to_axis_angle(T[:, :3, :3].contiguous()), T[:, :3, 3]


def backproject(depth: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Depth ``Bx1xHxW`` (z, camera units) -> camera-frame points ``Bx3xHxW``: ``X = depth * K^-1 [u, v, 1]^T``."""
    _check_shape("depth", depth, (None, 1, None, None))
    _check_shape("K", K, (depth.shape[0], 3, 3))
    points = depth_to_3d_v2(depth[:, 0], K)  # BxHxWx3
    return points.permute(0, 3, 1, 2)


def project(points: torch.Tensor, K: torch.Tensor, eps: float = 1e-7) -> tuple[torch.Tensor, torch.Tensor]:
    """Camera-frame points ``Bx3xHxW`` -> (pixel coordinates ``Bx2xHxW`` (u, v), depth z ``Bx1xHxW``).

    Points with ``z <= eps`` are behind the camera; their pixel coordinates are meaningless (callers mask them
    with ``z > eps``).
    """
    _check_shape("points", points, (None, 3, None, None))
    _check_shape("K", K, (points.shape[0], 3, 3))
    z = points[:, 2:3]
    safe = torch.cat([points[:, :2], torch.where(z > eps, z, torch.full_like(z, eps))], dim=1)
    pixels = project_points(safe.permute(0, 2, 3, 1), K[:, None, None])  # BxHxWx2
    return pixels.permute(0, 3, 1, 2), z


def transform_points(T: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Apply rigid transforms ``Bx4x4`` to points ``Bx3xHxW``."""
    _check_shape("T", T, (points.shape[0], 4, 4))
    B, _, H, W = points.shape
    flat = points.reshape(B, 3, H * W)
    return (T[:, :3, :3] @ flat + T[:, :3, 3:]).reshape(B, 3, H, W)


def rigid_flow(depth: torch.Tensor, K: torch.Tensor, T_t_to_s: torch.Tensor) -> torch.Tensor:
    """3D rigid flow ``Bx3xHxW`` of a static scene: ``T_t->s X - X`` for the back-projected target depth."""
    points = backproject(depth, K)
    return transform_points(T_t_to_s, points) - points


def sample_pixels(image: torch.Tensor, pixels: torch.Tensor, padding_mode: str = "border") -> torch.Tensor:
    """Bilinearly sample ``image`` BxCxHxW at pixel coordinates ``pixels`` Bx2xhxw (u, v) -> BxCxhxw."""
    H, W = image.shape[-2:]
    grid = normalize_pixel_coordinates(pixels.permute(0, 2, 3, 1), H, W)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode=padding_mode, align_corners=True)


def warp_points(source: torch.Tensor, points_s: torch.Tensor, K: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthesise the target view from ``source`` BxCxHxW by sampling it where the target pixels' 3D points land.

    ``points_s`` Bx3xHxW holds, on the target pixel grid, each pixel's 3D point in the source camera frame; it is
    projected with ``K`` and ``source`` is sampled bilinearly (border padding). Returns (warped BxCxHxW, valid
    Bx1xHxW float: in front of the camera and landing on a source pixel).
    """
    _check_shape("source", source, (points_s.shape[0], None, points_s.shape[2], points_s.shape[3]))
    pixels, z = project(points_s, K)
    H, W = source.shape[-2:]
    u, v = pixels[:, :1], pixels[:, 1:]
    valid = (z > 1e-3) & (u > -0.5) & (u < W - 0.5) & (v > -0.5) & (v < H - 0.5)
    return sample_pixels(source, pixels), valid.to(source.dtype)


def warp_with_flow(
    source: torch.Tensor, depth_t: torch.Tensor, K: torch.Tensor, scene_flow_t_to_s: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthesise the target view from ``source`` BxCxHxW using target depth and 3D scene flow.

    Each target pixel is back-projected with ``depth_t`` Bx1xHxW and moved by ``scene_flow_t_to_s`` Bx3xHxW (target
    camera frame, so the point lands in the source camera frame); :func:`warp_points` does the rest. Returns
    (warped BxCxHxW, valid Bx1xHxW float).
    """
    _check_shape("source", source, (depth_t.shape[0], None, depth_t.shape[2], depth_t.shape[3]))
    _check_shape("scene_flow_t_to_s", scene_flow_t_to_s, (depth_t.shape[0], 3, depth_t.shape[2], depth_t.shape[3]))
    return warp_points(source, backproject(depth_t, K) + scene_flow_t_to_s, K)


def fit_ground_plane_ransac(
    points: torch.Tensor,
    iterations: int = 100,
    threshold: float = 0.05,
    generator: torch.Generator | None = None,
    valid: torch.Tensor | None = None,
    max_tilt_deg: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fit one plane ``n . X + d = 0`` per batch item to ``points`` BxNx3 with RANSAC, then refine on the inliers.

    Hypotheses are planes through 3 points drawn from ``generator`` (seed 0 when None, so the result is
    deterministic); the one with most points within ``threshold`` (camera units) wins and is refitted by least
    squares to its inliers (to all valid points when no hypothesis is usable). ``valid`` BxN (bool) restricts the
    candidates; ``max_tilt_deg`` rejects hypotheses whose normal is further than that from the camera's vertical axis
    (a road seen by an upright camera) and flags a final plane that tilts further (the refit can). Hypotheses passing
    within ``threshold`` of the camera centre (the origin) are rejected: collinear pixels give such planes.
    The normal is oriented towards the camera (``d >= 0``), so ``d`` is the camera's distance from the plane and
    ``n . X + d`` is the height of X above it. Returns (normal Bx3 unit, offset d B, inliers BxN bool, upright B bool:
    the final normal is within ``max_tilt_deg`` of the vertical axis, always true when that is None).
    Computed without gradient: the plane is a fixed reference for losses and scale recovery.
    """
    _check_shape("points", points, (None, None, 3))
    _check(iterations >= 1 and threshold > 0, "iterations must be >= 1 and threshold > 0")
    B, N, _ = points.shape
    valid = torch.ones(B, N, dtype=torch.bool, device=points.device) if valid is None else valid.bool()
    _check_shape("valid", valid, (B, N))
    _check(bool((valid.sum(1) >= 3).all()), "fit_ground_plane_ransac needs at least 3 valid points per item")
    if generator is None:
        generator = torch.Generator(device=points.device).manual_seed(0)
    with torch.no_grad():
        pts = points.detach().to(torch.promote_types(points.dtype, torch.float32))  # half precision is too coarse
        idx = torch.multinomial(valid.float(), iterations * 3, replacement=True, generator=generator)
        tri = torch.gather(pts, 1, idx.unsqueeze(-1).expand(-1, -1, 3)).view(B, iterations, 3, 3)
        normal = torch.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0], dim=-1)
        length = normal.norm(dim=-1, keepdim=True)
        normal = normal / length.clamp_min(1e-12)
        offset = -(normal * tri[:, :, 0]).sum(-1)  # B x iterations
        inliers = ((pts @ normal.transpose(1, 2) + offset[:, None]).abs() < threshold) & valid[..., None]
        score = inliers.sum(1).to(pts.dtype)  # B x iterations
        ok = length[..., 0] > 0  # three distinct, non-collinear points
        # the camera stands off the ground: a plane through it (e.g. three pixels of one image row) is degenerate
        ok &= offset.abs() > threshold
        min_cos = -1.0 if max_tilt_deg is None else torch.cos(torch.deg2rad(pts.new_tensor(max_tilt_deg)))
        ok &= normal[..., 1].abs() >= min_cos
        best_score, best = torch.where(ok, score, torch.full_like(score, -1.0)).max(1)
        mask = inliers[torch.arange(B), :, best]  # BxN
        mask = torch.where((best_score >= 3)[:, None], mask, valid)  # no usable hypothesis: fit all valid points
        normal, offset = _least_squares_plane(pts.double(), mask)
        normal, offset = normal.to(pts.dtype), offset.to(pts.dtype)
        mask = (((pts @ normal[..., None])[..., 0] + offset[:, None]).abs() < threshold) & valid
        sign = torch.where(offset < 0, -1.0, 1.0).to(pts)
        return normal * sign[:, None], offset * sign, mask, normal[:, 1].abs() >= min_cos


def _least_squares_plane(points: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Total-least-squares plane through the masked points of each item (BxNx3, BxN) -> (normal Bx3, offset B)."""
    w = mask.to(points.dtype)[..., None]
    points = torch.where(mask[..., None], points, torch.zeros_like(points))
    centroid = (points * w).sum(1) / w.sum(1)
    centred = (points - centroid[:, None]) * w
    _, eigvec = torch.linalg.eigh(centred.transpose(1, 2) @ centred)
    normal = eigvec[..., 0]  # eigenvector of the smallest eigenvalue
    return normal, -(normal * centroid).sum(-1)


def fit_ground_plane_to_depth(
    depth: torch.Tensor,
    K: torch.Tensor,
    lower_fraction: float = 0.4,
    iterations: int = 100,
    relative_threshold: float = 0.01,
    max_tilt_deg: float | None = 30.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Ground plane from depth Bx1xHxW and K Bx3x3: (normal Bx3 towards the camera, offset B = camera distance,
    upright B bool as in :func:`fit_ground_plane_ransac`).

    RANSAC runs on the back-projected points of the lowest ``lower_fraction`` of the image rows; the inlier
    threshold is ``relative_threshold`` times the median depth of those points, so the fit is the same for any
    scale of ``depth``. Pixels with non-positive or non-finite depth are ignored.
    """
    _check_shape("depth", depth, (None, 1, None, None))
    _check(0 < lower_fraction <= 1, f"lower_fraction must be in (0, 1], got {lower_fraction}")
    H = depth.shape[2]
    top = H - min(H, max(3, round(H * lower_fraction)))
    points = backproject(depth.detach(), K)[:, :, top:].flatten(2).transpose(1, 2)  # BxNx3
    z = points[..., 2]
    valid = torch.isfinite(points).all(-1) & (z > 0)
    _check(bool((valid.sum(1) >= 3).all()), "fit_ground_plane_to_depth needs at least 3 pixels with valid depth")
    median = torch.where(valid, z, torch.full_like(z, float("nan"))).nanmedian(1).values  # lower median, as median()
    normalised = torch.where(valid[..., None], points / median[:, None, None], torch.zeros_like(points))
    normal, offset, _, upright = fit_ground_plane_ransac(
        normalised, iterations, relative_threshold, generator, valid=valid, max_tilt_deg=max_tilt_deg
    )
    return normal, offset * median, upright


def plane_depth(normal: torch.Tensor, offset: torch.Tensor, K: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Depth Bx1xHxW at which each pixel's ray meets the plane ``n . X + d = 0`` (normal Bx3, offset B).

    Rays parallel to the plane or meeting it behind the camera get ``inf``.
    """
    _check_shape("normal", normal, (None, 3))
    ones = torch.ones(normal.shape[0], 1, height, width, dtype=normal.dtype, device=normal.device)
    rays = backproject(ones, K)  # z = 1
    denom = (normal[:, :, None, None] * rays).sum(1, keepdim=True)
    depth = -offset[:, None, None, None] / denom
    return torch.where((depth > 0) & (denom != 0), depth, torch.full_like(depth, float("inf")))


def scale_intrinsics(K: torch.Tensor, sx: float, sy: float) -> torch.Tensor:
    """Intrinsics Bx3x3 for an image resized by ``sx`` (width) and ``sy`` (height), pixel centres kept aligned."""
    _check_shape("K", K, (None, 3, 3))
    S = K.new_tensor([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])
    return S @ K


def disparity_to_depth(disp: torch.Tensor, min_depth: float, max_depth: float) -> torch.Tensor:
    """Sigmoid disparity in [0, 1] -> depth: ``1 / (1/max_depth + (1/min_depth - 1/max_depth) * disp)``."""
    min_disp, max_disp = 1.0 / max_depth, 1.0 / min_depth
    return 1.0 / (min_disp + (max_disp - min_disp) * disp)


def depth_to_disparity(depth: torch.Tensor, min_depth: float, max_depth: float) -> torch.Tensor:
    """Inverse of :func:`disparity_to_depth`."""
    min_disp, max_disp = 1.0 / max_depth, 1.0 / min_depth
    return (1.0 / depth - min_disp) / (max_disp - min_disp)


def metric_scale_from_camera_height(
    depth: torch.Tensor,
    K: torch.Tensor,
    camera_height: float,
    lower_fraction: float = 0.3,
    iterations: int = 100,
    relative_threshold: float = 0.01,
    max_tilt_deg: float | None = 30.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Scale ``B`` that turns up-to-scale ``depth`` Bx1xHxW into metric depth, from a known camera height (m).

    The ground plane is fitted with :func:`fit_ground_plane_to_depth` to the lowest ``lower_fraction`` of the image
    rows; the scale is ``camera_height / (camera distance from that plane)``, NaN where the fitted plane tilts
    more than ``max_tilt_deg`` from the camera's vertical axis (a wall or a bad depth map, not the road).
    """
    _check(camera_height > 0, f"camera_height must be positive, got {camera_height}")
    _, offset, upright = fit_ground_plane_to_depth(
        depth, K, lower_fraction, iterations, relative_threshold, max_tilt_deg, generator
    )
    return torch.where(upright, camera_height / offset.clamp_min(1e-9), torch.nan)
