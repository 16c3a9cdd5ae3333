"""Execution options of the pipeline: ONNX Runtime equals PyTorch, CUDA graphs fall back to eager with a warning,
device-side resizing and the one-copy transfer, half-precision models (the weights-converted path) on the CPU."""

import copy
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from uni_encoder_core.config import ModelConfig
from uni_encoder_core.config_yaml import load_config
from uni_encoder_core.inference.device_io import preprocess_on_device, to_host
from uni_encoder_core.inference.frame_pass import EagerPass, capture
from uni_encoder_core.inference.pipeline import CameraFrame, PerceptionPipeline, PipelineError
from uni_encoder_core.inference.settings import PipelineConfig
from uni_encoder_core.models.steering import SteeringHead
from uni_encoder_core.models.unified import UniEncoder

ROOT = Path(__file__).resolve().parents[1]
H, W = 96, 256
K = np.array([[180.0, 0.0, 128.0], [0.0, 180.0, 48.0], [0.0, 0.0, 1.0]])
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model() -> UniEncoder:
    torch.manual_seed(0)
    return UniEncoder(load_config(ROOT / "config/model/tiny.yaml", ModelConfig)).eval()


def frames(n: int, seed: int = 0) -> list[CameraFrame]:
    rng = np.random.default_rng(seed)
    return [CameraFrame(rng.integers(0, 256, (H, W, 3), dtype=np.uint8), 0.1 * i, K) for i in range(n)]


def run(pipe: PerceptionPipeline, n: int = 17):
    return [pipe.process(f) for f in frames(n)]


def test_onnxruntime_execution_gives_the_torch_outputs(model):
    tasks = ["panoptic", "semantic"]
    ref = run(PerceptionPipeline(PipelineConfig(warmup_frames=0, segmentation_tasks=tasks), model=model))
    ort = PerceptionPipeline(PipelineConfig(warmup_frames=1, segmentation_tasks=tasks, execution="onnxruntime"),
                             model=model)
    assert set(ort.runner.sessions) == {"encoder", "depth", "pose", "motion", "steering", "segmentation"}
    got = run(ort)
    assert got[-1].curvature is not None and got[0].relative_pose is None
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a.depth, b.depth, rtol=1e-4, atol=1e-5)
        for key in ("scene_flow", "relative_pose"):
            if b.relative_pose is not None:
                np.testing.assert_allclose(getattr(a, key), getattr(b, key), rtol=1e-3, atol=1e-5)
        assert (a.curvature is None) == (b.curvature is None)
        if b.curvature is not None:
            assert a.curvature == pytest.approx(b.curvature, rel=1e-3, abs=1e-5)
        # label maps: the same label on all but a handful of pixels where two classes tie within float rounding
        assert np.mean(a.semantic == b.semantic) > 0.999 and np.mean(a.panoptic == b.panoptic) > 0.999
    assert all(p.device.type == "cpu" and p.dtype == torch.float32 for p in model.parameters())


def test_onnxruntime_needs_fp32_and_bad_execution_is_named(model):
    with pytest.raises(PipelineError, match="execution must be one of"):
        PerceptionPipeline(PipelineConfig(execution="tensorrt"), model=model)
    with pytest.raises(PipelineError, match="needs precision fp32"):
        PerceptionPipeline(PipelineConfig(execution="onnxruntime", precision="bf16"), model=model)


def test_cuda_graphs_without_cuda_warn_and_run_eager_with_the_same_outputs(model, caplog):
    if torch.cuda.is_available():
        pytest.skip("this is the fallback without CUDA; tools/gpu_check.sh checks the captured graph")
    ref = run(PerceptionPipeline(PipelineConfig(warmup_frames=0), model=model), 3)
    with caplog.at_level(logging.WARNING, logger="uni_encoder_core.inference.frame_pass"):
        pipe = PerceptionPipeline(PipelineConfig(warmup_frames=1, cuda_graphs=True, channels_last=True), model=model)
    assert "CUDA graphs need a CUDA device; running eager" in caplog.text
    assert isinstance(pipe.runner, EagerPass)
    for a, b in zip(run(pipe, 3), ref):
        np.testing.assert_allclose(a.depth, b.depth, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(a.panoptic, b.panoptic)
    model.to(memory_format=torch.contiguous_format)


def test_capture_failure_falls_back_with_the_reason(model, caplog, monkeypatch):
    """A CUDA device that cannot run the pass (here: CUDA claimed available without a driver) leaves the eager pass
    and names the reason; a host sync inside the captured pass on a GPU takes the same route."""
    if torch.cuda.is_available():
        pytest.skip("needs a machine without a CUDA driver")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with caplog.at_level(logging.WARNING, logger="uni_encoder_core.inference.frame_pass"):
        got = capture(EagerPass(model, ["panoptic"]), (64, 128), torch.device("cuda"), 16)
    assert got is None
    assert "CUDA graph capture failed (RuntimeError: " in caplog.text and "running eager" in caplog.text


def test_the_pass_runs_every_head_on_a_half_and_bfloat16_model(model):
    """What ``precision: fp16|bf16`` does on CUDA (weights converted), checked on the CPU."""
    x = torch.rand(1, 3, 64, 128, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref_feats = model.encode(x)
        history = ref_feats[-1][:, None].expand(-1, 15, -1, -1, -1)
        ref = EagerPass(model, ["panoptic"])(x, ref_feats, history)
        for dtype in (torch.float16, torch.bfloat16):
            half = copy.deepcopy(model).to(dtype)
            out = EagerPass(half, ["panoptic"])(x, [f.to(dtype) for f in ref_feats], history.to(dtype))
            assert out["depth"].dtype == dtype and out["curvature"].dtype == dtype
            for key in ("depth", "flow", "curvature", "panoptic/mask_logits"):
                assert torch.isfinite(out[key]).all()
            assert torch.median((out["depth"].float() / ref["depth"] - 1).abs()) < 0.05
            assert float(out["curvature"]) == pytest.approx(float(ref["curvature"]), abs=0.05)


def test_steering_head_runs_in_half_precision():
    torch.manual_seed(0)
    head = SteeringHead(48, load_config(ROOT / "config/model/tiny.yaml", ModelConfig).steering).eval()
    window = torch.randn(2, 16, 48, 2, 4)
    with torch.no_grad():
        ref = head(window)
        for dtype in (torch.float16, torch.bfloat16):
            out = copy.deepcopy(head).to(dtype)(window.to(dtype))
            assert out.dtype == dtype
            torch.testing.assert_close(out.float(), ref, atol=0.02, rtol=0.05)


@pytest.mark.parametrize("size,crop", [((192, 512), 0), ((256, 512), 64), ((32, 64), 0)])
def test_device_resizing_matches_opencv(size, crop):
    rgb = np.random.default_rng(1).integers(0, 256, (*size, 3), dtype=np.uint8)
    got = preprocess_on_device(torch.from_numpy(rgb), crop, (64, 128))
    kept = rgb[: size[0] - crop]
    interp = cv2.INTER_AREA if kept.shape[0] > 64 else cv2.INTER_LINEAR
    expected = cv2.resize(kept, (128, 64), interpolation=interp).astype(np.float32) / 255
    assert got.shape == (1, 3, 64, 128)
    # OpenCV rounds to 8 bits (and its bilinear weights are fixed-point): within 1.5 grey levels
    np.testing.assert_allclose(got[0].permute(1, 2, 0).numpy(), expected, atol=1.5 / 255)


def test_to_host_packs_every_dtype_and_shape_into_one_copy():
    g = torch.Generator().manual_seed(0)
    tensors = {"depth": torch.rand(5, 7, generator=g), "pose": torch.rand(4, 4, generator=g).double(),
               "mask": torch.rand(5, 7, generator=g) > 0.5, "labels": torch.randint(0, 255, (5, 7)).to(torch.uint8),
               "panoptic": torch.randint(0, 255000, (5, 7), dtype=torch.int32), "curvature": torch.tensor([0.25])}
    host = to_host(tensors)
    assert set(host) == set(tensors)
    for key, t in tensors.items():
        assert host[key].dtype == t.numpy().dtype and host[key].shape == tuple(t.shape)
        np.testing.assert_array_equal(host[key], t.numpy())
