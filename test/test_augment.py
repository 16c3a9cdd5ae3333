"""Augmentations keep geometry consistent: a mirrored scene warped with mirrored pose and intrinsics is the
mirror of the warp; colour changes are the same for every frame of a sample."""

import math

import pytest
import torch

from uni_encoder_core.config import AugmentConfig
from uni_encoder_core.data.augment import (
    augment_triplet,
    colour_jitter,
    flip_intrinsics,
    flip_pose,
    flip_steering,
    flip_triplet,
    flip_vectors,
    random_shadow,
)
from uni_encoder_core.data.samples import SteeringWindow, TripletSample
from uni_encoder_core.geometry import (
    backproject,
    pose_vec_to_matrix,
    project,
    rigid_flow,
    transform_points,
    warp_points,
)

H, W = 24, 40
K = torch.tensor([[[30.0, 0.0, 17.3], [0.0, 28.0, 11.0], [0.0, 0.0, 1.0]]])


def scene():
    g = torch.Generator().manual_seed(0)
    depth = 4.0 + 3.0 * torch.rand(1, 1, H, W, generator=g)
    T = pose_vec_to_matrix(torch.tensor([[0.02, -0.05, 0.01]]), torch.tensor([[0.15, -0.05, 0.3]]))
    source = torch.rand(1, 3, H, W, generator=g)
    return depth, T, source


def test_flipped_intrinsics_mirror_the_principal_point():
    flipped = flip_intrinsics(K, W)
    assert torch.allclose(flipped, torch.tensor([[[30.0, 0.0, W - 1 - 17.3], [0.0, 28.0, 11.0], [0.0, 0.0, 1.0]]]))
    assert torch.allclose(flip_intrinsics(flipped, W), K)


def test_a_mirrored_point_projects_to_the_mirrored_pixel():
    point = torch.tensor([0.7, -0.4, 5.0]).view(1, 3, 1, 1)
    mirrored = point * torch.tensor([-1.0, 1.0, 1.0]).view(1, 3, 1, 1)
    (u, v), (u_f, v_f) = project(point, K)[0][0, :, 0, 0], project(mirrored, flip_intrinsics(K, W))[0][0, :, 0, 0]
    assert float(u_f) == pytest.approx(W - 1 - float(u)) and float(v_f) == pytest.approx(float(v))


def test_warp_of_the_flipped_scene_is_the_flipped_warp():
    depth, T, source = scene()
    warped, valid = warp_points(source, transform_points(T, backproject(depth, K)), K)
    K_f, T_f = flip_intrinsics(K, W), flip_pose(T)
    warped_f, valid_f = warp_points(source.flip(-1), transform_points(T_f, backproject(depth.flip(-1), K_f)), K_f)
    assert valid.mean() > 0.5  # the warp moves most pixels onto the source image
    assert torch.allclose(warped_f, warped.flip(-1), atol=1e-5)
    assert torch.equal(valid_f, valid.flip(-1))


def test_flipped_scene_flow_is_the_flow_of_the_flipped_scene():
    depth, T, _ = scene()
    flow = rigid_flow(depth, K, T)
    assert torch.allclose(flip_vectors(flow), rigid_flow(depth.flip(-1), flip_intrinsics(K, W), flip_pose(T)),
                          atol=1e-5)


def test_triplet_flip_moves_every_field_together_and_is_an_involution():
    depth, T, source = scene()
    sample = TripletSample(images=torch.rand(3, 3, H, W), K=K[0], depth=depth[0],
                           T_target_to_source=torch.stack([T[0], torch.eye(4), T[0].inverse()]),
                           scene_flow=torch.rand(3, 3, H, W), motion_mask=(torch.rand(1, H, W) > 0.5).float())
    flipped = flip_triplet(sample)
    assert torch.equal(flipped.images, sample.images.flip(-1)) and torch.equal(flipped.depth, depth[0].flip(-1))
    assert torch.allclose(flipped.T_target_to_source[1], torch.eye(4))
    # the yaw and the sideways translation change sign; forward motion stays
    assert float(flipped.T_target_to_source[0, 0, 3]) == pytest.approx(-0.15)
    assert float(flipped.T_target_to_source[0, 2, 3]) == pytest.approx(0.3)
    assert torch.equal(flipped.scene_flow[:, 0], -sample.scene_flow[:, 0].flip(-1))
    twice = flip_triplet(flipped)
    for name in ("images", "K", "depth", "T_target_to_source", "scene_flow", "motion_mask"):
        assert torch.allclose(getattr(twice, name), getattr(sample, name)), name


def test_steering_flip_negates_the_curvature():
    window = SteeringWindow(images=torch.rand(16, 3, 4, 6), curvature=torch.linspace(-0.02, 0.05, 16),
                            stamps=torch.arange(16, dtype=torch.float64))
    flipped = flip_steering(window)
    assert torch.equal(flipped.curvature, -window.curvature) and torch.equal(flipped.images, window.images.flip(-1))
    assert torch.equal(flipped.stamps, window.stamps)


def test_colour_jitter_is_the_same_for_every_frame():
    # seeded, and away from 0: a ratio of near-black pixels magnifies the hue step's HSV round-trip error
    frame = 0.1 + 0.8 * torch.rand(3, H, W, generator=torch.Generator().manual_seed(0))
    images = torch.stack([frame, frame, frame])
    out = colour_jitter(images, AugmentConfig(), torch.Generator().manual_seed(3))
    assert not torch.allclose(out[0], frame, atol=1e-3)
    assert torch.equal(out[0], out[1]) and torch.equal(out[1], out[2])
    bright = colour_jitter(images * 0.5, AugmentConfig(contrast=0.0, saturation=0.0, hue=0.0),
                           torch.Generator().manual_seed(4))
    ratio = bright / (images * 0.5)
    assert 0.8 <= float(ratio.min()) and float(ratio.max()) <= 1.2
    assert float(ratio.max() - ratio.min()) < 1e-3  # one brightness factor (up to the hue step's HSV round trip)


def test_triplet_augmentation_is_a_flip_or_not_with_its_probability():
    depth, T, _ = scene()
    sample = TripletSample(images=torch.rand(3, 3, H, W), K=K[0], T_target_to_source=T.expand(3, 4, 4))
    never = augment_triplet(sample, AugmentConfig(flip_probability=0.0, jitter_probability=0.0))
    always = augment_triplet(sample, AugmentConfig(flip_probability=1.0, jitter_probability=0.0))
    assert torch.equal(never.images, sample.images) and torch.equal(always.images, sample.images.flip(-1))
    assert torch.allclose(always.K, flip_intrinsics(K[0], W))


def test_shadow_darkens_one_polygon_identically_in_every_frame():
    images = torch.full((4, 3, 30, 50), 0.8)
    out = random_shadow(images, torch.Generator().manual_seed(1))
    ratio = out / images
    shaded = ratio < 1
    assert shaded.any() and torch.equal(shaded[0], shaded[3])
    dark = torch.unique(ratio[shaded])
    assert dark.numel() == 1 and 0.3 <= float(dark) <= 0.7
    assert math.isclose(float(ratio[~shaded].min()), 1.0)
