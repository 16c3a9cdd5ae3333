"""The unified model's networks: shapes, value ranges, known numbers, gradient flow, freezing, the teacher."""

import math
from pathlib import Path

import pytest
import timm
import torch

from uni_encoder_core.config import EncoderConfig, ModelConfig
from uni_encoder_core.config_yaml import load_config
from uni_encoder_core.geometry import disparity_to_depth, matrix_to_pose_vec
from uni_encoder_core.models.encoder import SharedEncoder
from uni_encoder_core.models.pose import MultiScalePoseDecoder, PoseHead
from uni_encoder_core.models.steering import SteeringHead, ackermann_steering_angle, spatial_embedding
from uni_encoder_core.models.teacher import Teacher
from uni_encoder_core.models.tokenizer import VOCABULARY
from uni_encoder_core.models.unified import UniEncoder

CONFIGS = Path(__file__).resolve().parents[1] / "config" / "model"


@pytest.fixture(scope="module")
def tiny_cfg() -> ModelConfig:
    return load_config(CONFIGS / "tiny.yaml", ModelConfig)


@pytest.fixture(scope="module")
def tiny(tiny_cfg) -> UniEncoder:
    torch.manual_seed(0)
    return UniEncoder(tiny_cfg).eval()


def check_pose(T, axis_angle, translation, batch):
    assert T.shape == (batch, 4, 4)
    torch.testing.assert_close(T[:, 3], torch.tensor([0.0, 0.0, 0.0, 1.0]).expand(batch, 4))
    R = T[:, :3, :3]
    torch.testing.assert_close(R @ R.transpose(1, 2), torch.eye(3).expand(batch, 3, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(T[:, :3, 3], translation)
    aa_back, _ = matrix_to_pose_vec(T)
    torch.testing.assert_close(aa_back, axis_angle, atol=1e-5, rtol=0)
    # random weights: the 0.01 output scale keeps the motion near identity
    assert translation.norm(dim=1).max() < 0.1 and axis_angle.norm(dim=1).max() < 0.1


@pytest.mark.parametrize("height,width", [(192, 512), (192, 640)])
def test_per_frame_heads_shapes_and_ranges(tiny, height, width):
    B = 2
    g = torch.Generator().manual_seed(1)
    tgt, src = torch.rand(B, 3, height, width, generator=g), torch.rand(B, 3, height, width, generator=g)
    with torch.no_grad():
        f_t, f_s = tiny.encode(tgt), tiny.encode(src)
        strides = (4, 8, 16, 32)
        expected = [(B, c, height // s, width // s) for c, s in zip([24, 48, 96, 192], strides)]
        assert [tuple(f.shape) for f in f_t] == expected

        disparities, depth = tiny.predict_depth(f_t)
        assert [tuple(d.shape) for d in disparities] == [(B, 1, height // s, width // s) for s in (1, 2, 4, 8)]
        assert all(((d > 0) & (d < 1)).all() for d in disparities)
        assert depth.shape == (B, 1, height, width)
        assert depth.min() >= 0.1 and depth.max() <= 100.0
        torch.testing.assert_close(depth, disparity_to_depth(disparities[0], 0.1, 100.0))

        T, axis_angle, translation = tiny.predict_pose(f_s, f_t)
        check_pose(T, axis_angle, translation, B)

        flow, mask = tiny.predict_motion(f_s, f_t, axis_angle, translation)
        assert flow.shape == (B, 3, height, width) and mask.shape == (B, 1, height, width)
        assert torch.isfinite(flow).all() and ((mask >= 0) & (mask <= 1)).all()

        seg = tiny.predict_segmentation(f_t, ["panoptic", "semantic"])
        assert sorted(seg) == ["panoptic", "semantic"]
        q = tiny.cfg.segmentation.num_queries
        assert seg["semantic"].class_logits.shape == (B, q, 20)
        assert seg["semantic"].mask_logits.shape == (B, q, height // 4, width // 4)

        window = torch.stack([f_t[3]] * 8 + [f_s[3]] * 8, dim=1)
        curvature = tiny.predict_steering(window)
        assert curvature.shape == (B,) and torch.isfinite(curvature).all()


def test_steering_head_sees_frame_order_only_through_the_temporal_embedding(tiny_cfg):
    torch.manual_seed(0)
    head = SteeringHead(192, tiny_cfg.steering).eval()
    window = torch.randn(2, 16, 192, 2, 5)
    with torch.no_grad():
        head.temporal.zero_()  # attention pooling alone is invariant to the order of the frames
        torch.testing.assert_close(head(window.flip(1)), head(window), atol=1e-5, rtol=1e-5)
        head.temporal.copy_(torch.randn(16, tiny_cfg.steering.hidden_dim))
        assert (head(window.flip(1)) - head(window)).abs().max() > 1e-3
    with pytest.raises(ValueError, match="Bx16xCxhxw"):
        head(window[:, :15])


def test_ackermann_steering_angle_known_values():
    assert ackermann_steering_angle(0.1, 2.7) == pytest.approx(math.atan(0.27))
    assert ackermann_steering_angle(-0.1, 2.7) == pytest.approx(-0.263712, abs=1e-6)


def test_spatial_embedding_values():
    emb = spatial_embedding(3, 5, 8)
    assert emb.shape == (15, 8)
    # token (row 0, col 0): sin(0) = 0, cos(0) = 1 in both halves
    torch.testing.assert_close(emb[0], torch.tensor([0.0, 0, 1, 1, 0, 0, 1, 1]))
    # token (row 1, col 2): the first frequency is 1 rad per row / column
    expected = torch.tensor([math.sin(1), math.cos(1), math.sin(2), math.cos(2)])
    torch.testing.assert_close(emb[1 * 5 + 2, [0, 2, 4, 6]], expected)
    assert len({tuple(row.tolist()) for row in emb}) == 15


def test_pose_head_output_scale():
    torch.manual_seed(3)
    head = PoseHead(16, 32, output_scale=0.01)
    x = torch.randn(2, 16, 3, 5)
    aa, t = head(x)
    head.output_scale = 1.0
    aa_1, t_1 = head(x)
    torch.testing.assert_close(aa_1 * 0.01, aa)
    torch.testing.assert_close(t_1 * 0.01, t)


@pytest.mark.parametrize("seed", range(4))
def test_random_pose_decoder_stays_near_identity(tiny_cfg, seed):
    torch.manual_seed(seed)
    decoder = MultiScalePoseDecoder([24, 48, 96, 192], tiny_cfg.pose).eval()
    feats = [torch.randn(2, c, 64 // s, 128 // s) * 3 for c, s in zip([24, 48, 96, 192], (4, 8, 16, 32))]
    with torch.no_grad():
        T, aa, t = decoder(feats, [f.flip(0) for f in feats])
    check_pose(T, aa, t, 2)


def test_gradients_reach_the_encoder_from_every_head(tiny_cfg):
    torch.manual_seed(0)
    model = UniEncoder(tiny_cfg).train()
    g = torch.Generator().manual_seed(2)
    images = torch.rand(2, 3, 64, 128, generator=g)
    heads = {
        "depth": lambda f: model.predict_depth(f)[1].mean(),
        "pose": lambda f: sum(x.sum() for x in model.predict_pose([x[:1] for x in f], [x[1:] for x in f])[1:]),
        "scene_flow": lambda f: model.scene_flow([torch.cat([x[:1], x[1:]], 1) for x in f], *_ego()).sum(),
        "motion_mask": lambda f: model.motion_mask([torch.cat([x[:1], x[1:]], 1) for x in f], *_ego()).sum(),
        "segmentation": lambda f: sum(
            p.mask_logits.sum() + p.class_logits.sum() for p in model.predict_segmentation(f, ["panoptic"]).values()
        ),
        "steering": lambda f: model.predict_steering(f[3].unsqueeze(1).repeat(1, 16, 1, 1, 1)).sum(),
    }
    first = model.encoder.backbone.patch_embed.proj.weight
    for name, loss_of in heads.items():
        model.zero_grad(set_to_none=True)
        loss_of(model.encode(images)).backward()
        assert first.grad is not None and first.grad.abs().sum() > 0, f"no encoder gradient from {name}"
        head_grads = [p.grad for p in getattr(model, name).parameters() if p.grad is not None]
        assert head_grads and all(torch.isfinite(g).all() for g in head_grads), name


def _ego():
    return torch.tensor([[0.01, -0.02, 0.005]]), torch.tensor([[0.1, 0.0, 0.9]])


def _train_inputs(batch=2, height=64, width=128):
    g = torch.Generator().manual_seed(5)
    return {o: torch.rand(batch, 3, height, width, generator=g) for o in (-1, 0, 1)}


def test_forward_train_returns_what_the_losses_need(tiny):
    frames = _train_inputs()
    labelled = torch.rand(3, 3, 64, 128)
    length = tiny.cfg.segmentation.text_context_length
    text_ids = torch.randint(1, len(VOCABULARY), (3, tiny.cfg.segmentation.num_text_queries, length))
    with torch.no_grad():
        out = tiny.forward_train(frames, labelled, ["panoptic", "instance", "semantic"], text_ids)
    assert len(out.disparities) == 4 and out.depth.shape == (2, 1, 64, 128)
    for field in ("poses", "axis_angles", "translations", "complete_flow", "motion_mask"):
        assert sorted(getattr(out, field)) == [-1, 1], field
    for o in (-1, 1):
        assert out.complete_flow[o].shape == (2, 3, 64, 128) and out.motion_mask[o].shape == (2, 1, 64, 128)
    # the pose head sees each pair earlier frame first: the previous frame's pose is predict_pose(previous,
    # target), the next frame's the inverse of predict_pose(target, next); flow and mask take (source, target)
    with torch.no_grad():
        feats = {o: tiny.encode(frames[o]) for o in (-1, 0, 1)}
        T_prev, _, _ = tiny.predict_pose(feats[-1], feats[0])
        T_next, _, _ = tiny.predict_pose(feats[0], feats[1])
        flow, mask = tiny.predict_motion(feats[1], feats[0], out.axis_angles[1], out.translations[1])
    torch.testing.assert_close(out.poses[-1], T_prev, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out.poses[1], torch.linalg.inv(T_next), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out.poses[1][:, :3, 3], out.translations[1])
    torch.testing.assert_close(out.complete_flow[1], flow, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out.motion_mask[1], mask, atol=1e-5, rtol=1e-4)
    assert out.segmentation.class_logits.shape[0] == 3 and out.segmentation.text_queries is not None
    assert out.segmentation.mask_logits.shape[-2:] == (16, 32)
    # labelled images of another size take their own encoder pass
    with torch.no_grad():
        other = tiny.forward_train(frames, torch.rand(3, 3, 96, 160), ["semantic"] * 3, text_ids, motion=False)
    assert other.segmentation.mask_logits.shape[-2:] == (24, 40) and other.depth.shape == (2, 1, 64, 128)
    no_motion = tiny.forward_train(frames, motion=False)
    assert no_motion.poses and not no_motion.complete_flow and no_motion.segmentation is None


def test_forward_train_rejects_bad_arguments(tiny):
    frames = _train_inputs()
    with pytest.raises(ValueError, match="target frame"):
        tiny.forward_train({-1: frames[-1], 1: frames[1]})
    with pytest.raises(ValueError, match="one segmentation task each"):
        tiny.forward_train(frames, labelled=frames[0], seg_tasks=["panoptic"])


def test_frozen_parts_stay_frozen(tiny_cfg):
    torch.manual_seed(0)
    model = UniEncoder(tiny_cfg)
    model.set_trainable(["scene_flow", "motion_mask"])
    model.train()
    assert not model.encoder.training and not model.pose.training and model.scene_flow.training
    before = {k: v.clone() for k, v in model.state_dict().items()}
    frames = _train_inputs()
    out = model.forward_train(frames)
    loss = sum(out.complete_flow[o].abs().mean() + out.motion_mask[o].mean() for o in (-1, 1)) + out.depth.mean()
    loss = loss + sum(t.abs().sum() for t in out.translations.values())
    loss.backward()
    torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0).step()
    assert all(p.grad is None for p in model.encoder.parameters())
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith(("scene_flow.", "motion_mask.")) for k in changed), sorted(changed)[:5]
    # batch-norm statistics of the frozen pose decoder did not move
    assert not any(k.startswith("pose.") for k in changed)
    with pytest.raises(ValueError, match="unknown model parts"):
        model.set_trainable(["decoder"])


def test_teacher_outputs_match_the_students(tiny_cfg, tiny):
    torch.manual_seed(0)
    teacher = Teacher(tiny_cfg).eval()
    assert teacher.pose_encoder.channels == [64, 128, 256, 512]
    frames = _train_inputs(batch=1)
    with torch.no_grad():
        t_out = teacher.forward_train(frames)
        s_out = tiny.forward_train(frames)
    for o in (-1, 1):
        assert t_out.complete_flow[o].shape == s_out.complete_flow[o].shape == (1, 3, 64, 128)
        assert t_out.motion_mask[o].shape == s_out.motion_mask[o].shape == (1, 1, 64, 128)
        check_pose(t_out.poses[o], t_out.axis_angles[o], t_out.translations[o], 1)
    assert t_out.depth.shape == s_out.depth.shape
    assert set(teacher.parameter_counts()) == {
        "encoder", "pose_encoder", "motion_encoder", "depth", "pose", "scene_flow", "motion_mask", "segmentation"
    }


def test_encoder_rejects_sizes_not_divisible_by_32(tiny):
    with pytest.raises(ValueError, match="multiples of 32"):
        tiny.encode(torch.rand(1, 3, 100, 128))
    with pytest.raises(ValueError, match="Bx3xHxW"):
        tiny.encode(torch.rand(1, 4, 64, 128))


def test_encoder_loads_local_pretrained_timm_weights(tmp_path, tiny_cfg):
    sizes = {"embed_dim": 24, "depths": (1, 1, 1, 1), "num_heads": (1, 2, 3, 6)}
    torch.manual_seed(7)
    classifier = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, strict_img_size=False, **sizes)
    path = tmp_path / "swin.pth"
    torch.save({"state_dict": classifier.state_dict()}, path)
    encoder = SharedEncoder(EncoderConfig(**{**vars(tiny_cfg.encoder), "pretrained": str(path)}))
    source = classifier.state_dict()
    loaded = encoder.backbone.state_dict()
    for key, value in loaded.items():
        torch.testing.assert_close(value, source[key.replace("layers_", "layers.", 1)], atol=0, rtol=0)
    # the same features as the classifier's own stages
    x = torch.rand(1, 3, 64, 128)
    with torch.no_grad():
        expected = classifier.forward_intermediates(x, intermediates_only=True)
        torch.testing.assert_close(encoder(x)[3], expected[3], atol=1e-5, rtol=1e-5)

    with pytest.raises(FileNotFoundError, match="not found"):
        SharedEncoder(EncoderConfig(**{**vars(tiny_cfg.encoder), "pretrained": str(tmp_path / "none.pth")}))
    torch.save({k: v for k, v in source.items() if "layers.3" not in k}, path)
    with pytest.raises(ValueError, match="lack .* encoder keys, e.g. .*layers_3"):
        SharedEncoder(EncoderConfig(**{**vars(tiny_cfg.encoder), "pretrained": str(path)}))


def test_pair_encoder_adapts_rgb_weights_to_six_channels(tmp_path):
    torch.manual_seed(8)
    classifier = timm.create_model("resnet18", pretrained=False)
    path = tmp_path / "resnet18.pth"
    torch.save(classifier.state_dict(), path)
    encoder = SharedEncoder(EncoderConfig("resnet18", pretrained=str(path), in_chans=6))
    assert encoder.channels == [64, 128, 256, 512]
    rgb = classifier.conv1.weight.detach()
    pair = encoder.backbone.conv1.weight.detach()
    assert pair.shape == (64, 6, 7, 7)
    # each image of the pair gets half the RGB filter: a pair of equal images gives the RGB response
    torch.testing.assert_close(pair[:, :3], 0.5 * rgb)
    torch.testing.assert_close(pair[:, 3:], 0.5 * rgb)
    torch.testing.assert_close(encoder.backbone.layer4[1].conv2.weight, classifier.layer4[1].conv2.weight)


def test_paper_configuration_builds_at_full_size():
    cfg = load_config(CONFIGS / "swin_t.yaml", ModelConfig)
    torch.manual_seed(0)
    model = UniEncoder(cfg).eval()
    assert model.encoder.channels == [96, 192, 384, 768]
    counts = model.parameter_counts()
    assert 27.0e6 < counts["encoder"] < 28.0e6  # Swin-T without its classifier
    images = torch.rand(2, 3, 192, 512)
    with torch.no_grad():
        feats = model.encode(images)
        assert [tuple(f.shape[1:]) for f in feats] == [(96, 48, 128), (192, 24, 64), (384, 12, 32), (768, 6, 16)]
        src, tgt = [f[:1] for f in feats], [f[1:] for f in feats]
        _, depth = model.predict_depth(tgt)
        T, aa, t = model.predict_pose(src, tgt)
        flow, mask = model.predict_motion(src, tgt, aa, t)
        seg = model.predict_segmentation(tgt, ["panoptic"])
        curvature = model.predict_steering(feats[3][:1].unsqueeze(1).repeat(1, 16, 1, 1, 1))
    assert depth.shape == (1, 1, 192, 512) and flow.shape == (1, 3, 192, 512) and mask.shape == (1, 1, 192, 512)
    assert depth.min() >= 0.1 and depth.max() <= 100.0 and ((mask >= 0) & (mask <= 1)).all()
    check_pose(T, aa, t, 1)
    assert seg["panoptic"].mask_logits.shape == (1, 150, 48, 128)
    assert curvature.shape == (1,) and torch.isfinite(curvature).all()
