"""Camera geometry with known answers: pose round trips, projection, rigid flow, warping, RANSAC, metric scale."""

import math

import pytest
import torch

from uni_encoder_core.geometry import (
    axis_angle_to_matrix,
    backproject,
    depth_to_disparity,
    disparity_to_depth,
    fit_ground_plane_ransac,
    fit_ground_plane_to_depth,
    invert_pose_vec,
    matrix_to_pose_vec,
    metric_scale_from_camera_height,
    plane_depth,
    pose_vec_to_matrix,
    project,
    rigid_flow,
    scale_intrinsics,
    warp_with_flow,
)

H, W = 48, 64
FX, CX, CY = 50.0, 31.5, 23.5


def intrinsics(batch: int = 1, fx: float = FX, cx: float = CX, cy: float = CY) -> torch.Tensor:
    return torch.tensor([[fx, 0.0, cx], [0.0, fx, cy], [0.0, 0.0, 1.0]]).expand(batch, 3, 3).clone()


def pixel_grid(height: int = H, width: int = W) -> tuple[torch.Tensor, torch.Tensor]:
    v, u = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                          indexing="ij")
    return u, v


def road_depth(camera_height: float, K: torch.Tensor, height: int = H, width: int = W, far: float = 80.0):
    """Depth of a flat road ``camera_height`` below an upright camera; rows above the horizon see a far wall."""
    _, v = pixel_grid(height, width)
    fy, cy = K[0, 1, 1], K[0, 1, 2]
    ground = camera_height * fy / (v - cy)
    return torch.where(v > cy + 0.5, ground, torch.full_like(v, far)).clamp(max=far)[None, None]


# --------------------------------------------------------------------------- poses


def test_axis_angle_quarter_turn_about_z_maps_x_to_y():
    R = axis_angle_to_matrix(torch.tensor([[0.0, 0.0, math.pi / 2]]))
    assert torch.allclose(R[0] @ torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]), atol=1e-6)


def test_pose_vec_round_trip_and_monodepth2_inversion():
    g = torch.Generator().manual_seed(3)
    aa = 0.4 * torch.randn(5, 3, generator=g)
    t = torch.randn(5, 3, generator=g)
    T = pose_vec_to_matrix(aa, t)
    assert torch.allclose(T[:, :3, 3], t)
    assert torch.allclose(T[:, 3], torch.tensor([0.0, 0.0, 0.0, 1.0]).expand(5, 4))
    assert torch.allclose(pose_vec_to_matrix(aa, t, invert=True), torch.linalg.inv(T), atol=1e-5)
    aa2, t2 = matrix_to_pose_vec(T)
    assert torch.allclose(aa2, aa, atol=1e-5) and torch.allclose(t2, t, atol=1e-6)
    aa_inv, t_inv = invert_pose_vec(aa, t)
    assert torch.allclose(pose_vec_to_matrix(aa_inv, t_inv), torch.linalg.inv(T), atol=1e-5)


def test_pose_vec_rejects_bad_shapes():
    with pytest.raises(ValueError, match="axis_angle must have shape"):
        pose_vec_to_matrix(torch.zeros(2, 4), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="same batch size"):
        pose_vec_to_matrix(torch.zeros(2, 3), torch.zeros(3, 3))


# --------------------------------------------------------------------------- projection


def test_project_of_backproject_returns_the_pixel_grid_and_depth():
    depth = 1.0 + 20.0 * torch.rand(2, 1, H, W, generator=torch.Generator().manual_seed(0))
    K = intrinsics(2, fx=60.0, cx=30.0, cy=20.0)
    points = backproject(depth, K)
    # X = (u - cx) z / fx at a known pixel
    assert torch.allclose(points[1, 0, 7, 11], (11 - 30.0) * depth[1, 0, 7, 11] / 60.0)
    pixels, z = project(points, K)
    u, v = pixel_grid()
    assert torch.allclose(pixels[:, 0], u.expand(2, H, W), atol=1e-4)
    assert torch.allclose(pixels[:, 1], v.expand(2, H, W), atol=1e-4)
    assert torch.allclose(z, depth)


def test_backproject_names_the_bad_argument():
    with pytest.raises(ValueError, match="depth must have shape"):
        backproject(torch.ones(1, H, W), intrinsics())
    with pytest.raises(ValueError, match="K must have shape"):
        backproject(torch.ones(2, 1, H, W), intrinsics(1))


def test_rigid_flow_of_a_pure_translation_is_the_translation_and_moves_pixels_analytically():
    depth = 2.0 + 10.0 * torch.rand(1, 1, H, W, generator=torch.Generator().manual_seed(1))
    K = intrinsics()
    t = torch.tensor([[0.3, -0.1, -0.8]])
    T = pose_vec_to_matrix(torch.zeros(1, 3), t)
    flow = rigid_flow(depth, K, T)
    assert torch.allclose(flow, t[:, :, None, None].expand(1, 3, H, W), atol=1e-5)
    pixels, z = project(backproject(depth, K) + flow, K)
    u, v = pixel_grid()
    x, y = (u - CX) * depth[0, 0] / FX, (v - CY) * depth[0, 0] / FX
    zs = depth[0, 0] + t[0, 2]
    assert torch.allclose(pixels[0, 0], FX * (x + t[0, 0]) / zs + CX, atol=1e-3)
    assert torch.allclose(pixels[0, 1], FX * (y + t[0, 1]) / zs + CY, atol=1e-3)
    assert torch.allclose(z[0, 0], zs, atol=1e-5)


def test_rigid_flow_of_a_rotation_about_the_optical_axis():
    depth = torch.full((1, 1, H, W), 5.0)
    K = intrinsics()
    T = pose_vec_to_matrix(torch.tensor([[0.0, 0.0, 0.1]]), torch.zeros(1, 3))
    points = backproject(depth, K)
    flow = rigid_flow(depth, K, T)
    c, s = math.cos(0.1), math.sin(0.1)
    expected_x = c * points[:, 0] - s * points[:, 1] - points[:, 0]
    assert torch.allclose(flow[:, 0], expected_x, atol=1e-5)
    assert torch.allclose(flow[:, 2], torch.zeros(1, H, W), atol=1e-6)


def test_warp_with_flow_shifts_a_fronto_parallel_plane_by_the_analytic_disparity():
    source = torch.rand(1, 3, H, W, generator=torch.Generator().manual_seed(2))
    depth = torch.full((1, 1, H, W), 10.0)
    K = intrinsics()
    flow = rigid_flow(depth, K, pose_vec_to_matrix(torch.zeros(1, 3), torch.tensor([[0.4, 0.0, 0.0]])))
    warped, valid = warp_with_flow(source, depth, K, flow)  # shift = fx * tx / z = 2 px
    assert torch.allclose(warped[..., : W - 2], source[..., 2:], atol=1e-5)
    assert valid[..., : W - 2].all() and not valid[..., W - 2 :].any()
    identity, valid = warp_with_flow(source, depth, K, torch.zeros(1, 3, H, W))
    assert torch.allclose(identity, source, atol=1e-5) and valid.all()


def test_scale_intrinsics_keeps_pixel_centres_aligned():
    K = intrinsics(1)
    Kh = scale_intrinsics(K, 0.5, 0.5)
    point = torch.tensor([1.0, -0.5, 4.0]).view(1, 3, 1, 1)
    full, _ = project(point, K)
    half, _ = project(point, Kh)
    assert torch.allclose(half, (full + 0.5) / 2 - 0.5, atol=1e-5)


def test_disparity_depth_conversion_round_trip_and_range():
    disp = torch.tensor([0.0, 0.5, 1.0])
    depth = disparity_to_depth(disp, 0.1, 100.0)
    assert torch.allclose(depth[[0, 2]], torch.tensor([100.0, 0.1]))
    assert torch.allclose(depth[1], torch.tensor(1 / (0.01 + 9.99 * 0.5)))  # 1 / (1/100 + (1/0.1 - 1/100) * 0.5)
    assert torch.allclose(depth_to_disparity(depth, 0.1, 100.0), disp, atol=1e-6)


# --------------------------------------------------------------------------- ground plane


def noisy_plane_with_outliers(batch: int, n: int, outlier_fraction: float, seed: int):
    g = torch.Generator().manual_seed(seed)
    normals, offsets, points, is_out = [], [], [], []
    for b in range(batch):
        tilt = math.radians(5.0 * b)
        normal = torch.tensor([0.0, -math.cos(tilt), math.sin(tilt)])  # towards an upright camera
        offset = 1.2 + 0.3 * b
        xz = torch.rand(n, 2, generator=g) * torch.tensor([20.0, 40.0]) + torch.tensor([-10.0, 2.0])
        # solve n . X + d = 0 for y
        y = (offset + normal[0] * xz[:, 0] + normal[2] * xz[:, 1]) / -normal[1]
        inlier = torch.stack([xz[:, 0], y, xz[:, 1]], 1) + 0.005 * torch.randn(n, 3, generator=g)
        outlier = torch.rand(n, 3, generator=g) * torch.tensor([20.0, 6.0, 40.0]) + torch.tensor([-10.0, -4.0, 2.0])
        out = torch.rand(n, generator=g) < outlier_fraction
        points.append(torch.where(out[:, None], outlier, inlier))
        normals.append(normal)
        offsets.append(offset)
        is_out.append(out)
    return torch.stack(points), torch.stack(normals), torch.tensor(offsets), torch.stack(is_out)


def test_ransac_recovers_planes_from_60_percent_outliers_batched_and_seeded():
    points, normals, offsets, is_out = noisy_plane_with_outliers(3, 3000, 0.6, seed=4)
    normal, offset, inliers, _ = fit_ground_plane_ransac(
        points, iterations=200, threshold=0.03, generator=torch.Generator().manual_seed(7)
    )
    angle = torch.rad2deg(torch.arccos((normal * normals).sum(-1).clamp(max=1.0)))
    assert (angle < 0.5).all(), angle
    assert torch.allclose(offset, offsets, atol=0.01)
    recall = (inliers & ~is_out).sum(1) / (~is_out).sum(1)
    assert (recall > 0.95).all()
    again = fit_ground_plane_ransac(points, iterations=200, threshold=0.03, generator=torch.Generator().manual_seed(7))
    assert torch.equal(again[0], normal) and torch.equal(again[2], inliers)


def test_ransac_rejects_too_few_points():
    with pytest.raises(ValueError, match="at least 3 valid points"):
        fit_ground_plane_ransac(torch.zeros(1, 2, 3))


def test_ransac_flags_a_plane_tilted_beyond_max_tilt():
    g = torch.Generator().manual_seed(1)
    xy = torch.rand(1, 500, 2, generator=g) * torch.tensor([10.0, 4.0]) - torch.tensor([5.0, 2.0])
    wall = torch.cat([xy, torch.full((1, 500, 1), 8.0)], -1)  # z = 8: a wall facing the camera, no road in sight
    normal, offset, _, upright = fit_ground_plane_ransac(wall, threshold=0.05, max_tilt_deg=30.0)
    # no hypothesis is upright enough, so all points are fitted: the wall comes back, flagged as not upright
    assert torch.allclose(normal.abs(), torch.tensor([[0.0, 0.0, 1.0]]), atol=1e-4)
    assert offset.item() == pytest.approx(8.0, abs=1e-4)
    assert not upright.any()
    assert fit_ground_plane_ransac(wall, threshold=0.05)[3].all()  # without max_tilt_deg every plane is upright


def test_ground_plane_and_plane_depth_of_a_rendered_road():
    K = intrinsics()
    depth = road_depth(1.5, K)
    normal, offset, upright = fit_ground_plane_to_depth(depth, K, lower_fraction=0.4)
    assert upright.all() and torch.allclose(normal, torch.tensor([[0.0, -1.0, 0.0]]), atol=1e-3)
    assert torch.allclose(offset, torch.tensor([1.5]), atol=1e-3)
    ground = plane_depth(normal, offset, K, H, W)
    below_horizon = torch.arange(H) > CY + 0.5
    assert torch.allclose(ground[0, 0, below_horizon], depth[0, 0, below_horizon], rtol=1e-3)
    assert torch.isinf(ground[0, 0, : int(CY)]).all()  # rays above the horizon never meet the road


def test_metric_scale_from_camera_height_undoes_an_unknown_depth_scale():
    K = intrinsics(2)
    depth = road_depth(1.6, K).repeat(2, 1, 1, 1)
    depth[:, :, 40:, 20:30] = 4.0  # an obstacle standing in the lower image part
    factors = torch.tensor([0.27, 3.7])
    scale = metric_scale_from_camera_height(depth * factors.view(2, 1, 1, 1), K, camera_height=1.6)
    assert torch.allclose(scale, 1.0 / factors, rtol=0.01)
    wall = torch.full_like(depth[:1], 5.0)  # a wall 5 m ahead fills the lower rows: no road, no scale
    assert torch.isnan(metric_scale_from_camera_height(wall, K[:1], camera_height=1.6)).all()


def test_metric_scale_on_the_synthetic_world():
    from uni_encoder_core.data.synthetic import SyntheticWorld, WorldConfig

    world = SyntheticWorld(WorldConfig(seed=2, height=96, width=256, num_frames=30, camera_height=1.5))
    frames = [world.frame(i) for i in (3, 17)]  # parked and moving cars, kerbs, sidewalks; sky has depth 0
    depth = torch.stack([torch.from_numpy(f.depth) for f in frames])[:, None]
    K = torch.from_numpy(frames[0].K).float().expand(2, 3, 3)
    factors = torch.tensor([2.0, 0.4])
    scale = metric_scale_from_camera_height(depth * factors.view(2, 1, 1, 1), K, camera_height=1.5)
    assert torch.allclose(scale, 1.0 / factors, rtol=0.01)
