"""PerceptionPipeline: pre/post-processing geometry, one encoder pass per frame, the feature ring, temporal resets."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from uni_encoder_core.config import ModelConfig
from uni_encoder_core.config_yaml import load_config
from uni_encoder_core.eval.pose import trajectory_from_relative_poses
from uni_encoder_core.geometry import metric_scale_from_camera_height
from uni_encoder_core.inference.pipeline import (
    CameraFrame,
    FeatureRing,
    PerceptionPipeline,
    PipelineError,
    crop_rows,
    instance_ids_from_panoptic,
    model_intrinsics,
    preprocess,
    restore_rows,
)
from uni_encoder_core.inference.settings import PipelineConfig
from uni_encoder_core.labels import LABEL_DIVISOR, VOID
from uni_encoder_core.models.checkpoint import CheckpointError, save_checkpoint
from uni_encoder_core.models.unified import UniEncoder

ROOT = Path(__file__).resolve().parents[1]
H, W = 96, 256
K = np.array([[180.0, 0.0, 128.0], [0.0, 180.0, 48.0], [0.0, 0.0, 1.0]])


@pytest.fixture(scope="module")
def model() -> UniEncoder:
    torch.manual_seed(0)
    return UniEncoder(load_config(ROOT / "config/model/tiny.yaml", ModelConfig)).eval()


def frames(n: int, start: float = 0.0, dt: float = 0.1, seed: int = 0) -> list[CameraFrame]:
    rng = np.random.default_rng(seed)
    return [CameraFrame(rng.integers(0, 256, (H, W, 3), dtype=np.uint8), start + i * dt, K) for i in range(n)]


class Recorder:
    """Counts and keeps the arguments/results of the model's per-frame calls (the real model runs)."""

    def __init__(self, model: UniEncoder):
        self.encoded: list[list[torch.Tensor]] = []
        self.pose_sources: list[list[torch.Tensor]] = []
        self.windows: list[torch.Tensor] = []
        encode, predict_pose, predict_steering = model.encode, model.predict_pose, model.predict_steering

        def record_encode(x):
            feats = encode(x)
            self.encoded.append([f.clone() for f in feats])
            return feats

        def record_pose(src, tgt):
            self.pose_sources.append([f.clone() for f in src])
            return predict_pose(src, tgt)

        def record_steering(window):
            self.windows.append(window.clone())
            return predict_steering(window)

        model.encode, model.predict_pose, model.predict_steering = record_encode, record_pose, record_steering
        self.model = model

    def detach(self) -> None:
        for name in ("encode", "predict_pose", "predict_steering"):
            del self.model.__dict__[name]


@pytest.fixture(scope="module")
def run(model):
    """20 frames through a pipeline with a 25 % bottom crop, every model call recorded."""
    pipe = PerceptionPipeline(PipelineConfig(crop_bottom=0.25, warmup_frames=0), model=model)
    rec = Recorder(model)
    try:
        results = [pipe.process(f) for f in frames(20)]
    finally:
        rec.detach()
    return pipe, rec, results


# ----------------------------------------------------------------------------- pure functions


def test_crop_and_intrinsics_geometry():
    assert crop_rows(1024, 0.25) == 256 and crop_rows(96, 0.0) == 0 and crop_rows(97, 0.25) == 24
    with pytest.raises(PipelineError, match=r"crop_bottom must be in \[0, 1\), got 1.0"):
        crop_rows(10, 1.0)
    K_full = np.array([[2262.5, 0, 1096.98], [0, 2265.3, 513.137], [0, 0, 1]])  # Cityscapes camera
    K_net = model_intrinsics(K_full, (768, 2048), (192, 512))
    # pixel centres stay aligned: c' = 0.25 (c + 0.5) - 0.5
    np.testing.assert_allclose(K_net, [[565.625, 0, 273.87], [0, 566.325, 127.90925], [0, 0, 1]])
    K_crop = model_intrinsics(K_full, (768, 2048), (768, 2048))  # the crop alone changes nothing
    np.testing.assert_allclose(K_crop, K_full)


def test_preprocess_crops_the_bottom_and_resizes():
    rgb = np.zeros((100, 200, 3), np.uint8)
    rgb[:75] = 10
    rgb[75:] = 250  # the rows a 25 % crop removes
    image, crop = preprocess(rgb, 0.25, (30, 40))
    assert crop == 25 and image.shape == (30, 40, 3)
    assert (image == 10).all()


def test_restore_rows_upsamples_and_fills_the_cropped_rows():
    maps = torch.arange(6, dtype=torch.float32).reshape(1, 1, 2, 3)
    depth = restore_rows(maps, 8, 6, 4, float("nan"), "nearest")
    assert depth.shape == (1, 1, 8, 6)
    np.testing.assert_array_equal(depth[0, 0, :4].numpy(), np.repeat(np.repeat(maps[0, 0].numpy(), 2, 0), 2, 1))
    assert torch.isnan(depth[0, 0, 4:]).all()
    labels = restore_rows(maps, 8, 6, 4, 255, "nearest")
    assert (labels[0, 0, 4:] == 255).all()


def test_instance_ids_from_panoptic():
    panoptic = np.array([[0, 0, 13001, 13002], [11001, 13001, 255000, 8000]], np.int32)
    ids = instance_ids_from_panoptic(panoptic)
    assert ids.dtype == np.uint16
    np.testing.assert_array_equal(ids, [[0, 0, 2, 3], [1, 2, 0, 0]])


def test_feature_ring_orders_frames_and_never_reallocates():
    ring = FeatureRing(4)
    first = None
    for i in range(6):
        ring.push([torch.full((1, 2, 3, 3), float(i)), torch.full((1, 5, 1, 1), float(i))])
        first = first or ring.slots[-1].data_ptr()
    assert len(ring) == 4 and ring.slots[-1].data_ptr() == first
    assert [float(ring.frame(age)[0][0, 0, 0, 0]) for age in range(4)] == [5.0, 4.0, 3.0, 2.0]
    window = ring.window()
    assert window.shape == (1, 4, 5, 1, 1)
    assert window.flatten().tolist()[::5] == [2.0, 3.0, 4.0, 5.0]  # oldest first
    with pytest.raises(IndexError, match="holds 4 frames, asked for age 4"):
        ring.frame(4)
    ring.clear()
    assert len(ring) == 0 and ring.slots[-1].data_ptr() == first


# ----------------------------------------------------------------------------- the pipeline


def test_encoder_runs_exactly_once_per_frame_and_heads_reuse_the_ring(run):
    _, rec, results = run
    assert len(rec.encoded) == 20
    # pose/motion of frame i pair it with frame i-1's cached features, never a re-encode
    assert len(rec.pose_sources) == 19
    for i, src in enumerate(rec.pose_sources, start=1):
        assert all(torch.equal(a, b) for a, b in zip(src, rec.encoded[i - 1]))
    # steering from the 16th frame on, over the coarsest maps of the last 16 frames, oldest first
    assert [r.curvature is None for r in results] == [True] * 15 + [False] * 5
    assert len(rec.windows) == 5
    for k, window in enumerate(rec.windows):
        last = 15 + k
        expected = torch.cat([rec.encoded[j][-1] for j in range(last - 15, last + 1)])[None]
        assert torch.equal(window, expected)
    assert [r.window_length for r in results] == list(range(1, 17)) + [16] * 4
    r = results[-1]
    assert r.steering_angle == pytest.approx(np.arctan(2.7 * r.curvature))


def test_outputs_at_input_resolution_with_cropped_rows_invalid(run):
    _, _, results = run
    r = results[5]
    crop = crop_rows(H, 0.25)
    assert r.depth.shape == (H, W) and r.depth.dtype == np.float32
    assert np.isnan(r.depth[H - crop :]).all() and np.isfinite(r.depth[: H - crop]).all()
    assert (r.depth[: H - crop] > 0).all()
    assert r.semantic.shape == (H, W) and r.semantic.dtype == np.uint8 and (r.semantic[H - crop :] == 255).all()
    assert r.panoptic.dtype == np.int32 and (r.panoptic[H - crop :] == 255000).all()
    assert r.instance.dtype == np.uint16 and (r.instance[H - crop :] == 0).all()
    np.testing.assert_array_equal(r.instance, instance_ids_from_panoptic(r.panoptic))
    np.testing.assert_array_equal(r.semantic, np.where(r.panoptic == 255000, 255, r.panoptic // 1000))
    assert r.scene_flow.shape == (H, W, 3) and r.scene_flow.dtype == np.float32
    assert np.isnan(r.scene_flow[H - crop :]).all() and np.isfinite(r.scene_flow[: H - crop]).all()
    assert r.motion_mask.shape == (H, W) and r.motion_mask.dtype == bool and not r.motion_mask[H - crop :].any()
    assert results[0].scene_flow is None and results[0].relative_pose is None
    np.testing.assert_array_equal(r.K, K)


def test_odometry_integrates_the_relative_poses(run):
    _, _, results = run
    np.testing.assert_array_equal(results[0].pose, np.eye(4))
    expected = trajectory_from_relative_poses(np.stack([r.relative_pose for r in results[1:]]))
    np.testing.assert_allclose(np.stack([r.pose for r in results]), expected, atol=1e-12)
    for r in results[1:]:
        np.testing.assert_allclose(r.relative_pose[:3, :3] @ r.relative_pose[:3, :3].T, np.eye(3), atol=1e-5)


def test_window_resets_on_backwards_stamp_and_on_large_gap(model):
    pipe = PerceptionPipeline(PipelineConfig(max_frame_gap=0.5, warmup_frames=0), model=model)
    seq = frames(3, start=10.0)
    out = [pipe.process(f) for f in seq]
    assert [r.window_length for r in out] == [1, 2, 3] and out[-1].reset is None
    back = pipe.process(CameraFrame(seq[0].rgb, 9.0, K))  # bag loop
    assert back.reset == "stamp went backwards by 1.200 s"
    assert back.window_length == 1 and back.relative_pose is None and back.scene_flow is None
    np.testing.assert_array_equal(back.pose, np.eye(4))
    pipe.process(CameraFrame(seq[1].rgb, 9.1, K))
    moved = pipe.pose.copy()
    gap = pipe.process(CameraFrame(seq[2].rgb, 9.8, K))  # 0.7 s > max_frame_gap
    assert gap.reset == "gap of 0.700 s > max_frame_gap 0.5 s" and gap.window_length == 1
    np.testing.assert_array_equal(gap.pose, moved)  # a gap keeps the odometry, it only skips the motion


def test_metric_scale_from_camera_height_scales_depth_pose_and_flow(model):
    seq = frames(2, seed=3)
    plain = PerceptionPipeline(PipelineConfig(warmup_frames=0), model=model)
    # the random-weight model's ground fit is far from level: accept any tilt to check the scaling itself
    metric = PerceptionPipeline(PipelineConfig(warmup_frames=0, metric_scale=True, camera_height=1.65,
                                               max_ground_tilt=90.0), model=model)
    a = [plain.process(f) for f in seq]
    b = [metric.process(f) for f in seq]
    with torch.no_grad():
        image, _ = preprocess(seq[1].rgb, 0.0, (64, 128))
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
        _, depth = model.predict_depth(model.encode(x))
        K_net = torch.as_tensor(model_intrinsics(K, (H, W), (64, 128)), dtype=torch.float32)[None]
        scale = float(metric_scale_from_camera_height(depth, K_net, 1.65, max_tilt_deg=90.0)[0])
    assert b[1].metric and b[1].scale == pytest.approx(scale, rel=1e-5) and a[1].scale == 1.0
    np.testing.assert_allclose(b[1].depth, a[1].depth * scale, rtol=1e-5)
    np.testing.assert_allclose(b[1].relative_pose[:3, 3], a[1].relative_pose[:3, 3] * scale, rtol=1e-5)
    np.testing.assert_allclose(b[1].scene_flow, a[1].scene_flow * scale, rtol=1e-4, atol=1e-7)
    # at the default 30 degrees the same tilted fit gives no scale: depth stays as the network gave it
    level = PerceptionPipeline(PipelineConfig(warmup_frames=0, metric_scale=True, camera_height=1.65), model=model)
    c = [level.process(f) for f in seq]
    assert math.isnan(float(metric_scale_from_camera_height(depth, K_net, 1.65)[0]))
    assert c[1].scale == 1.0
    np.testing.assert_array_equal(c[1].depth, a[1].depth)


def test_reset_forgets_the_metric_scale(model):
    pipe = PerceptionPipeline(PipelineConfig(warmup_frames=0, metric_scale=True, camera_height=1.65,
                                             max_ground_tilt=90.0), model=model)
    pipe.process(frames(1, seed=3)[0])
    assert pipe.scale != 1.0, "the ground-plane fit must have set a scale for this check to mean anything"
    pipe.reset()
    assert pipe.scale == 1.0  # a failed fit on the next frame falls back to 1, not to a stale scale


def test_reduced_precision_stays_close_to_fp32(model):
    seq = frames(2, seed=5)
    ref = [PerceptionPipeline(PipelineConfig(warmup_frames=0), model=model).process(f) for f in seq][-1]
    low = PerceptionPipeline(PipelineConfig(warmup_frames=0, precision="bf16"), model=model)
    out = [low.process(f) for f in seq][-1]
    assert out.depth.dtype == np.float32 and np.isfinite(out.depth).all()
    assert not np.array_equal(out.depth, ref.depth), "bf16 autocast must actually change the arithmetic"
    assert np.median(np.abs(out.depth / ref.depth - 1)) < 0.05


def test_warm_up_leaves_no_temporal_state(model):
    pipe = PerceptionPipeline(PipelineConfig(warmup_frames=2), model=model)
    assert len(pipe.ring) == 0 and pipe.last_stamp is None
    np.testing.assert_array_equal(pipe.pose, np.eye(4))
    assert pipe.ring.slots, "warm-up allocates the ring once"


def test_release_frees_the_device_state_and_acquire_restores_it(model):
    pipe = PerceptionPipeline(PipelineConfig(warmup_frames=1), model=model)
    pipe.process(frames(1)[0])
    pipe.release()
    assert pipe.ring.slots == [] and len(pipe.ring) == 0 and pipe.last_stamp is None
    assert all(p.device.type == "cpu" for p in model.parameters())
    pipe.acquire()
    assert pipe.process(frames(1)[0]).window_length == 1


def test_bad_settings_and_frames_are_rejected_with_the_reason(model, tmp_path):
    with pytest.raises(PipelineError, match="precision must be one of"):
        PerceptionPipeline(PipelineConfig(precision="int8"), model=model)
    with pytest.raises(PipelineError, match="unknown segmentation task 'depth'"):
        PerceptionPipeline(PipelineConfig(segmentation_tasks=["depth"]), model=model)
    if not torch.cuda.is_available():
        with pytest.raises(PipelineError, match="CUDA is not available"):
            PerceptionPipeline(PipelineConfig(device="cuda"), model=model)
    with pytest.raises(CheckpointError, match="checkpoint file not found"):
        PerceptionPipeline(PipelineConfig(checkpoint=str(tmp_path / "missing.pt")))
    pipe = PerceptionPipeline(PipelineConfig(warmup_frames=0), model=model)
    with pytest.raises(PipelineError, match="HxWx3 uint8 RGB"):
        pipe.process(CameraFrame(np.zeros((H, W), np.uint8), 0.0, K))
    with pytest.raises(PipelineError, match="fx, fy > 0"):
        pipe.process(CameraFrame(np.zeros((H, W, 3), np.uint8), 0.0, np.zeros((3, 3))))


def test_loads_a_checkpoint_file(model, tmp_path):
    path = tmp_path / "tiny.pt"
    save_checkpoint(model, path)
    pipe = PerceptionPipeline(PipelineConfig(checkpoint=str(path), warmup_frames=0))
    seq = frames(1)
    np.testing.assert_allclose(
        pipe.process(seq[0]).depth,
        PerceptionPipeline(PipelineConfig(warmup_frames=0), model=model).process(seq[0]).depth,
        rtol=1e-6,
    )


def test_panoptic_and_instance_inference_use_the_model_configs_thresholds():
    """A class threshold no query reaches leaves every pixel void; none at all lets the queries claim the frame."""
    torch.manual_seed(0)
    outputs = {}
    for threshold in (1.0, 0.0):
        cfg = load_config(ROOT / "config/model/tiny.yaml", ModelConfig)
        cfg.segmentation.object_threshold, cfg.segmentation.overlap_threshold = threshold, 0.0
        torch.manual_seed(0)
        pipe = PerceptionPipeline(PipelineConfig(warmup_frames=0, segmentation_tasks=["panoptic", "instance"]),
                                  model=UniEncoder(cfg).eval())
        outputs[threshold] = pipe.process(frames(1)[0])
    assert (outputs[1.0].panoptic == VOID * LABEL_DIVISOR).all()
    assert (outputs[1.0].instance == 0).all()
    assert (outputs[0.0].panoptic != VOID * LABEL_DIVISOR).mean() > 0.5
