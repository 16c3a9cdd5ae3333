"""Losses with known answers: reconstruction on a rendered scene, SSIM, smoothness, motion, ground, eqs. 3-5."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from kornia.metrics import ssim

from uni_encoder_core.config import LossConfig
from uni_encoder_core.data.synthetic import SyntheticWorld, WorldConfig
from uni_encoder_core.geometry import depth_to_disparity, pose_vec_to_matrix, scale_intrinsics, warp_with_flow
from uni_encoder_core.geometry import rigid_flow as rigid_flow_of
from uni_encoder_core.losses.distillation import distillation_loss
from uni_encoder_core.losses.ground import above_ground_loss
from uni_encoder_core.losses.motion import motion_consistency_loss, motion_sparsity_loss
from uni_encoder_core.losses.photometric import photometric_loss, reprojection_error, reprojection_errors
from uni_encoder_core.losses.self_supervised import SelfSupervisedInputs, self_supervised_loss
from uni_encoder_core.losses.smoothness import disparity_smoothness, edge_aware_smoothness
from uni_encoder_core.losses.steering import weighted_steering_loss
from uni_encoder_core.losses.total import total_loss

MIN_DEPTH, MAX_DEPTH = 0.1, 100.0
H, W = 96, 128
CAMERA_HEIGHT, WALL = 1.5, 30.0


def intrinsics(batch: int = 1, height: int = H, width: int = W) -> torch.Tensor:
    f = 0.8 * width
    K = torch.tensor([[f, 0.0, (width - 1) / 2], [0.0, f, (height - 1) / 2], [0.0, 0.0, 1.0]])
    return K.expand(batch, 3, 3).clone()


def render(T_world_to_cam: torch.Tensor, K: torch.Tensor, height: int = H, width: int = W):
    """Ray-cast a textured road (y = 1.5 m below the world origin) and wall (z = 30 m): (rgb 1x3xHxW, depth 1x1xHxW).

    The world frame is the target camera's optical frame.
    """
    T = T_world_to_cam[0].double()
    R, t = T[:3, :3], T[:3, 3]
    v, u = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64),
                          indexing="ij")
    Kd = K[0].double()
    rays = torch.stack([(u - Kd[0, 2]) / Kd[0, 0], (v - Kd[1, 2]) / Kd[1, 1], torch.ones_like(u)])  # z = 1
    origin = -R.T @ t
    direction = torch.einsum("ij,jhw->ihw", R.T, rays)
    lam_ground = (CAMERA_HEIGHT - origin[1]) / direction[1]
    lam_wall = (WALL - origin[2]) / direction[2]
    lam_ground = torch.where(lam_ground > 0, lam_ground, torch.full_like(lam_ground, float("inf")))
    lam = torch.minimum(lam_ground, lam_wall)
    point = origin[:, None, None] + lam * direction
    x, y, z = point
    on_ground = lam_ground <= lam_wall
    a, b = x, torch.where(on_ground, 0.6 * z, y)
    rgb = torch.stack([
        0.5 + 0.25 * torch.sin(2.1 * a + 1.7 * b) + 0.2 * torch.cos(3.3 * a - 0.9 * b),
        0.5 + 0.3 * torch.sin(1.3 * a - 2.4 * b + 1.0),
        0.5 + 0.2 * torch.cos(2.9 * a + 0.5 * b) * torch.sin(1.1 * b),
    ])
    return rgb.float()[None].clamp(0, 1), lam.float()[None, None]


def warp_all(sources, depth, K, poses):
    return [warp_with_flow(s, depth, K, rigid_flow_of(depth, K, T))[0] for s, T in zip(sources, poses)]


def shifted(poses, axis_angle, translation):
    return [pose_vec_to_matrix(torch.tensor([axis_angle]), torch.tensor([translation])) @ T for T in poses]


def scene():
    """Target frame and two source frames (one behind, one ahead) with their true ``T_t->s``."""
    K = intrinsics()
    identity = torch.eye(4)[None]
    T_prev = pose_vec_to_matrix(torch.tensor([[0.0, 0.01, 0.0]]), torch.tensor([[0.05, 0.0, 0.6]]))
    T_next = pose_vec_to_matrix(torch.tensor([[0.0, -0.01, 0.0]]), torch.tensor([[-0.05, 0.0, -0.6]]))
    target, depth = render(identity, K)
    sources = [render(T_prev, K)[0], render(T_next, K)[0]]
    return target, depth, K, sources, [T_prev, T_next]


@pytest.fixture(scope="module")
def world_triplet():
    """Frame 20 of a synthetic drive (target) with frames 19 and 21 (sources): images, depth, K, T_t->s, 3D flows.

    The complete flow of each source is the rigid flow plus the cars' own motion rotated into the source
    orientation: ``T (X + d) - X = F_R + R d``. Sky (depth 0) is put at ``MAX_DEPTH``.
    """
    world = SyntheticWorld(WorldConfig(seed=3, height=192, width=512, num_frames=30))
    frames = {i: world.frame(i) for i in (19, 20, 21)}
    target = frames[20]

    def image(frame):
        return torch.from_numpy(frame.rgb).permute(2, 0, 1)[None].float() / 255.0

    depth = torch.from_numpy(target.depth)[None, None]
    depth = torch.where(depth > 0, depth, torch.full_like(depth, MAX_DEPTH))
    K = torch.from_numpy(target.K).float()[None]
    poses, object_flows = [], []
    for j in (19, 21):
        poses.append(torch.from_numpy(np.linalg.inv(frames[j].T_world_cam) @ target.T_world_cam).float()[None])
        flow = world.scene_flow(20, j, target.depth, target.instance)  # the cars' own motion, HxWx3
        object_flows.append(torch.from_numpy(flow).permute(2, 0, 1)[None])
    return {
        "target": image(target), "sources": [image(frames[19]), image(frames[21])], "depth": depth, "K": K,
        "poses": poses, "object_flows": object_flows,
        "motion_mask": torch.from_numpy(target.motion_mask)[None, None].float(),
    }


def complete_flows(depth, K, poses, object_flows):
    return [rigid_flow_of(depth, K, T) + (T[:, :3, :3] @ d.flatten(2)).view_as(d) for T, d in zip(poses, object_flows)]


# --------------------------------------------------------------------------- photometric


def test_ssim_of_identical_images_is_one_and_their_error_zero():
    x = torch.rand(2, 3, 20, 24, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(ssim(x, x, window_size=3, eps=0.0), torch.ones_like(x), atol=1e-5)
    assert reprojection_error(x, x).abs().max() < 1e-6


def test_reprojection_error_of_two_flat_images_matches_the_formula():
    target, pred = torch.full((1, 3, 8, 8), 0.5), torch.full((1, 3, 8, 8), 0.6)
    c1 = 0.01**2
    s = (2 * 0.5 * 0.6 + c1) / (0.5**2 + 0.6**2 + c1)  # flat images: only the luminance term differs
    expected = 0.85 * (1 - s) / 2 + 0.15 * 0.1
    assert torch.allclose(reprojection_error(pred, target), torch.full((1, 1, 8, 8), expected), atol=1e-6)


def test_reconstruction_is_near_zero_for_the_true_pose_and_depth_and_larger_for_a_wrong_pose():
    target, depth, K, sources, poses = scene()
    true_loss, _ = photometric_loss(target, warp_all(sources, depth, K, poses))
    wrong = shifted(poses, [0.0, 0.03, 0.0], [0.3, 0.0, 0.3])
    wrong_loss, _ = photometric_loss(target, warp_all(sources, depth, K, wrong))
    assert true_loss < 0.02  # measured 0.012: bilinear resampling of the texture
    assert wrong_loss > 5 * true_loss  # measured 0.41
    # half the true depth (wrong scale for this pose) is also clearly worse (measured 0.095)
    assert photometric_loss(target, warp_all(sources, depth * 0.5, K, poses))[0] > 3 * true_loss


def test_reconstruction_on_the_synthetic_world_is_small_for_the_true_geometry_and_motion(world_triplet):
    w = world_triplet
    target, sources, depth, K, poses = w["target"], w["sources"], w["depth"], w["K"], w["poses"]

    def errors(depth, poses, object_flows):
        flows = complete_flows(depth, K, poses, object_flows)
        warped = [warp_with_flow(s, depth, K, f)[0] for s, f in zip(sources, flows)]
        return torch.cat([reprojection_error(x, target) for x in warped], 1).min(1, keepdim=True)[0]

    true = errors(depth, poses, w["object_flows"])
    # measured 0.028: what remains is resampling the renderer's hard (not anti-aliased) edges
    assert true.mean() < 0.04
    # wrong pose (measured 0.118 for 0.3 m sideways, 0.135 for 0.02 rad yaw) or depth scale (0.098 for half depth)
    assert errors(depth, shifted(poses, [0, 0, 0], [0.3, 0, 0]), w["object_flows"]).mean() > 3.5 * true.mean()
    assert errors(depth, shifted(poses, [0, 0.02, 0], [0, 0, 0]), w["object_flows"]).mean() > 3.5 * true.mean()
    assert errors(depth * 0.5, poses, w["object_flows"]).mean() > 3 * true.mean()
    # on moving cars the rigid flow alone is wrong; the cars' own motion explains them (measured 0.05 vs 0.18)
    moving = w["motion_mask"].bool()
    rigid_only = errors(depth, poses, [torch.zeros_like(d) for d in w["object_flows"]])
    assert true[moving].mean() < 0.5 * rigid_only[moving].mean()


def test_minimum_over_sources_and_automask():
    target = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    noise = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    loss, mask = photometric_loss(target, [noise, target.clone()])
    assert loss.abs() < 1e-6 and mask is None
    # a static scene: the un-warped source equals the target, so auto-masking hides every pixel of a bad warp
    loss, mask = photometric_loss(target, [noise], reprojection_errors([target.clone()], target))
    assert loss < 1e-4 and mask.sum() == 0
    loss, mask = photometric_loss(target, [target.clone()], reprojection_errors([noise], target))
    assert loss < 1e-6 and mask.mean() == 1


# --------------------------------------------------------------------------- smoothness


def test_disparity_smoothness_of_a_step_with_and_without_an_image_edge():
    disp = torch.ones(1, 1, 10, 22)
    disp[..., 11:] = 3.0  # mean 2: normalised, a step of 1 between columns 10 and 11 (21 column differences)
    flat = torch.zeros(1, 3, 10, 22)
    edge = flat.clone()
    edge[..., 11:] = 1.0
    assert torch.allclose(disparity_smoothness(disp, flat), torch.tensor(1.0 / 21), rtol=1e-5)
    assert torch.allclose(disparity_smoothness(disp, edge), torch.tensor(math.exp(-1.0) / 21), rtol=1e-5)
    assert disparity_smoothness(torch.full((1, 1, 10, 22), 0.3), flat) == 0
    # per channel on flows (channel mean); the image is resized to the map
    assert torch.allclose(edge_aware_smoothness(disp.expand(1, 3, 10, 22) - 1, flat), torch.tensor(2.0 / 21))
    assert edge_aware_smoothness(torch.ones(1, 1, 5, 10), torch.rand(1, 3, 10, 20)) == 0


# --------------------------------------------------------------------------- motion


def test_motion_consistency_counts_only_static_near_pixels():
    rigid = torch.zeros(1, 3, 4, 4)
    complete = torch.full((1, 3, 4, 4), 0.2)
    disp = torch.full((1, 1, 4, 4), 0.5)
    static = torch.zeros(1, 1, 4, 4)
    assert torch.allclose(motion_consistency_loss(complete, rigid, static, disp), torch.tensor(0.2))
    assert motion_consistency_loss(complete, rigid, torch.ones(1, 1, 4, 4), disp) == 0
    assert motion_consistency_loss(rigid + 1.0, rigid + 1.0, static, disp) == 0
    disp[..., :2] = 0.01  # far half ignored
    assert torch.allclose(motion_consistency_loss(complete, rigid, static, disp), torch.tensor(0.1))


def test_motion_sparsity_pushes_the_mask_to_zero_where_flows_agree():
    rigid = torch.zeros(1, 3, 4, 4)
    complete = rigid.clone()
    complete[..., 0, :] = 1.0  # one moving row: large discrepancy
    mask = torch.full((1, 1, 4, 4), 0.5)
    mask[..., 0, :] = 0.9  # the moving row is not penalised
    assert torch.allclose(motion_sparsity_loss(mask, complete, rigid), torch.tensor(math.log(2.0)))
    assert motion_sparsity_loss(torch.zeros(1, 1, 4, 4), complete, rigid) == 0
    saturated = torch.ones(1, 1, 4, 4, requires_grad=True)  # a sigmoid mask at exactly 1 in float32
    loss = motion_sparsity_loss(saturated, complete, rigid)
    loss.backward()
    assert 99.9 < loss < 100.1 and torch.isfinite(saturated.grad).all()  # torch BCE caps -log at 100
    with pytest.raises(ValueError, match="motion_mask must have shape"):
        motion_sparsity_loss(torch.zeros(1, 2, 4, 4), complete, rigid)


# --------------------------------------------------------------------------- ground


def test_above_ground_loss_is_zero_for_synthetic_ground_truth_at_every_scale():
    # at 8x24 the RANSAC band is 3 rows: a plane through the camera and one image row holds a whole row of inliers
    # and passes the tilt test; it must be rejected, the true road is never above the ground-truth depth
    world = SyntheticWorld(WorldConfig(seed=0, height=64, width=192, num_frames=64))
    frame = world.frame(6)
    depth = torch.from_numpy(frame.depth)[None, None]
    disp = depth_to_disparity(torch.where(depth > 0, depth, MAX_DEPTH), MIN_DEPTH, MAX_DEPTH)
    for scale in range(4):
        coarse = F.avg_pool2d(disp, 2**scale)
        K = scale_intrinsics(torch.from_numpy(frame.K).float()[None], 0.5**scale, 0.5**scale)
        assert above_ground_loss(coarse, K, MIN_DEPTH, MAX_DEPTH) == 0, scale


def test_above_ground_loss_targets_stay_in_the_sigmoid_range():
    # a road seen from 3 cm (depth units are arbitrary in self-supervision): its nearest rows are closer than
    # min_depth, so the prediction there sits at disparity 1, as close as the sigmoid allows: nothing is below the road
    K = intrinsics()
    _, depth = render(torch.eye(4)[None], K)
    disp = depth_to_disparity((0.02 * depth).clamp_min(MIN_DEPTH), MIN_DEPTH, MAX_DEPTH)
    assert (disp == 1).any()
    assert above_ground_loss(disp, K, MIN_DEPTH, MAX_DEPTH) == 0


def test_above_ground_loss_is_zero_on_the_road_and_pulls_up_points_below_it():
    K = intrinsics()
    _, depth = render(torch.eye(4)[None], K)
    disp = depth_to_disparity(depth, MIN_DEPTH, MAX_DEPTH)
    assert above_ground_loss(disp, K, MIN_DEPTH, MAX_DEPTH) == 0
    sunk = depth.clone()
    sunk[..., 60:70, 20:40] *= 1.5  # these points now lie below the road
    disp = depth_to_disparity(sunk, MIN_DEPTH, MAX_DEPTH).requires_grad_()
    loss = above_ground_loss(disp, K, MIN_DEPTH, MAX_DEPTH)
    loss.backward()
    assert loss > 0
    assert (disp.grad[..., 60:70, 20:40] < 0).all()  # descent raises their disparity (brings them closer)
    outside = torch.ones_like(disp.grad, dtype=torch.bool)
    outside[..., 60:70, 20:40] = False
    assert (disp.grad[outside] == 0).all()


# --------------------------------------------------------------------------- eqs. 3-5


def test_distillation_loss_is_the_weighted_l1_of_eq3_and_leaves_the_teacher_alone():
    cfg = LossConfig()
    teacher_flow = torch.zeros(2, 3, 4, 4, requires_grad=True)
    teacher_mask = torch.zeros(2, 1, 4, 4, requires_grad=True)
    student_flow = torch.full((2, 3, 4, 4), 0.5, requires_grad=True)
    student_mask = torch.full((2, 1, 4, 4), 0.25, requires_grad=True)
    loss, terms = distillation_loss(student_flow, teacher_flow, student_mask, teacher_mask, cfg)
    assert torch.allclose(loss, torch.tensor(0.1 * 0.5 + 1e-3 * 0.25))
    assert set(terms) == {"flow", "mask"}
    loss.backward()
    assert teacher_flow.grad is None and student_flow.grad.abs().sum() > 0


def test_steering_loss_is_mse_for_lambda_zero_and_weights_large_curvatures():
    pred = torch.tensor([0.1, -0.2, 0.05, 0.3])
    target = torch.tensor([0.0, -0.1, 0.02, 0.5])
    loss, terms = weighted_steering_loss(pred, target, lam=0.0)
    assert torch.allclose(loss, torch.nn.functional.mse_loss(pred, target))
    assert torch.allclose(terms["mse"], loss)
    loss, _ = weighted_steering_loss(torch.tensor([1.0, 1.0]), torch.tensor([0.0, 1.0]), lam=math.log(2.0))
    assert torch.allclose(loss, torch.tensor((1 * 1.0 + 2 * 0.0) / 3))  # w = [1, 2]
    with pytest.raises(ValueError, match="differ in shape"):
        weighted_steering_loss(pred, target[:2], lam=0.1)


def test_total_loss_sums_the_parts_with_their_weights_and_names_every_term():
    cfg = LossConfig(sup_weight=1.0, ssup_weight=2.0, distil_weight=0.5)
    sup = (torch.tensor(3.0), {"cls": torch.tensor(1.0)})
    ssup = (torch.tensor(2.0), {"recon": torch.tensor(0.2)})
    distil = (torch.tensor(4.0), {"flow": torch.tensor(0.3)})
    loss, terms = total_loss(cfg, sup=sup, ssup=ssup, distil=distil)
    assert loss.item() == pytest.approx(3.0 + 4.0 + 2.0)
    assert terms["sup/cls"] == 1.0 and terms["ssup/recon"] == pytest.approx(0.2) and terms["distil"] == 4.0
    loss, terms = total_loss(cfg, ssup=ssup)
    assert loss.item() == 4.0 and "sup" not in terms
    with pytest.raises(ValueError, match="at least one"):
        total_loss(cfg)


def test_loss_config_defaults_are_the_papers_weights():
    cfg = LossConfig()
    assert (cfg.class_weight, cfg.mask_bce_weight, cfg.mask_dice_weight, cfg.contrastive_weight) == (2, 5, 5, 0.5)
    assert (cfg.motion_consistency_weight, cfg.motion_sparsity_weight, cfg.above_ground_weight) == (5, 0.1, 0.1)
    assert (cfg.distil_flow_weight, cfg.distil_mask_weight) == (0.1, 1e-3)
    assert (cfg.sup_weight, cfg.ssup_weight, cfg.distil_weight, cfg.ssim_weight) == (1, 1, 1, 0.85)


# --------------------------------------------------------------------------- eq. 2


def test_self_supervised_loss_on_the_synthetic_world_prefers_the_true_geometry(world_triplet):
    w = world_triplet
    target, sources, depth, K, poses = w["target"], w["sources"], w["depth"], w["K"], w["poses"]
    cfg = LossConfig(automask=False)
    disp = depth_to_disparity(depth, MIN_DEPTH, MAX_DEPTH)
    disparities = [disp, torch.nn.functional.interpolate(disp, scale_factor=0.5, mode="area")]
    masks = [w["motion_mask"]] * 2

    def loss_for(T, flows=None, masks=None, scales=1):
        inputs = SelfSupervisedInputs(target, sources, K, disparities[:scales], T, flows, masks)
        return self_supervised_loss(inputs, cfg, MIN_DEPTH, MAX_DEPTH)

    true_loss, terms = loss_for(poses, complete_flows(depth, K, poses, w["object_flows"]), masks, scales=2)
    assert terms["recon"] < 0.04  # measured 0.029
    # the true motion is consistent on static pixels, the true mask is 0 there, nothing is below the road
    assert terms["consistency"] == 0 and terms["sparsity"] < 1e-6 and terms["ground"] == 0
    wrong = shifted(poses, [0, 0, 0], [0.4, 0, 0])
    wrong_loss, _ = loss_for(wrong, complete_flows(depth, K, wrong, w["object_flows"]), masks)
    assert wrong_loss > 3 * true_loss  # measured 0.13 vs 0.029
    # rigid-only phase (no flow, no mask): only recon and disparity smoothness
    rigid_only, terms = loss_for(poses)
    assert set(terms) == {"recon", "smooth_disp"} and terms["recon"] < 0.045
    # complete-flow phase (no mask): zero complete flows are a wrong warp for a moving camera
    bad, _ = loss_for(poses, [torch.zeros(1, 3, *depth.shape[-2:])] * 2)
    assert bad > 2.5 * rigid_only  # measured 0.105 vs 0.032


def test_self_supervised_loss_rejects_inconsistent_inputs():
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match="one T_t_to_s per source"):
        self_supervised_loss(SelfSupervisedInputs(x, [x, x], intrinsics(1, 8, 8), [x[:, :1]], [torch.eye(4)[None]]),
                             LossConfig(), MIN_DEPTH, MAX_DEPTH)
    with pytest.raises(ValueError, match="motion_mask needs complete_flow"):
        self_supervised_loss(SelfSupervisedInputs(x, [x], intrinsics(1, 8, 8), [x[:, :1]], [torch.eye(4)[None]],
                                                  motion_mask=[x[:, :1]]), LossConfig(), MIN_DEPTH, MAX_DEPTH)


def test_every_loss_has_finite_gradients_on_random_inputs():
    g = torch.Generator().manual_seed(0)
    B, h, w = 2, 32, 48
    target, src = torch.rand(B, 3, h, w, generator=g), [torch.rand(B, 3, h, w, generator=g) for _ in range(2)]
    disps = [torch.randn(B, 1, h // 2**s, w // 2**s, generator=g).sigmoid().requires_grad_() for s in range(3)]
    pose = (0.05 * torch.randn(2, B, 6, generator=g)).requires_grad_()
    flows = [(0.1 * torch.randn(B, 3, h, w, generator=g)).requires_grad_() for _ in range(2)]
    mask_logits = torch.randn(2, B, 1, h, w, generator=g).requires_grad_()
    poses = [pose_vec_to_matrix(p[:, :3], p[:, 3:]) for p in pose]
    masks = list(mask_logits.sigmoid())
    inputs = SelfSupervisedInputs(target, src, intrinsics(B, h, w), disps, poses, flows, masks)
    ssup = self_supervised_loss(inputs, LossConfig(), MIN_DEPTH, MAX_DEPTH, generator=torch.Generator().manual_seed(1))
    assert set(ssup[1]) == {"recon", "smooth_disp", "smooth_flow", "smooth_mask", "consistency", "sparsity", "ground",
                            "automask_fraction"}
    teacher = torch.randn(B, 3, h, w, generator=g), torch.rand(B, 1, h, w, generator=g)
    distil = distillation_loss(flows[0], teacher[0], masks[0], teacher[1], LossConfig())
    steer = weighted_steering_loss(disps[2].mean((1, 2, 3)), torch.randn(B, generator=g), lam=0.1)
    loss, terms = total_loss(LossConfig(), ssup=ssup, distil=distil)
    (loss + steer[0]).backward()
    assert all(torch.isfinite(v) for v in terms.values())
    for name, leaf in [("pose", pose), ("mask", mask_logits)] + [(f"disp{i}", d) for i, d in enumerate(disps)] + [
        (f"flow{i}", f) for i, f in enumerate(flows)
    ]:
        assert torch.isfinite(leaf.grad).all(), name
        assert leaf.grad.abs().sum() > 0, name
