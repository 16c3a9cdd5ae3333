"""``uni-encoder bench``: result structure, encoder passes per frame counted with forward hooks, equal outputs of
the cached and re-encoding paths, ONNX Runtime heads, the compile time limit, argument errors. No timing asserts."""

import json
import math
import time
from collections import Counter
from pathlib import Path

import pytest
import torch

from uni_encoder_core.bench.streaming import build_paths, synthetic_frame
from uni_encoder_core.bench.timing import Clock, TimeLimitExceeded, summarize, time_limit
from uni_encoder_core.bench.variants import OnnxHeads, UnifiedPath, compiled_heads
from uni_encoder_core.cli import main
from uni_encoder_core.config import ModelConfig
from uni_encoder_core.config_yaml import load_config
from uni_encoder_core.inference.export import DepthGraph, EncoderGraph
from uni_encoder_core.models.unified import UniEncoder

TINY = Path(__file__).resolve().parents[1] / "config" / "model" / "tiny.yaml"
H, W = 64, 128
WINDOW = 16


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one intra-op thread


@pytest.fixture(scope="module")
def tiny() -> UniEncoder:
    torch.manual_seed(0)
    cfg = load_config(TINY, ModelConfig)
    return UniEncoder(cfg).eval()


def count_forward_calls(modules: dict) -> tuple[Counter, list]:
    counts: Counter = Counter()
    handles = [m.register_forward_hook(lambda *_, n=name: counts.update([n])) for name, m in modules.items()]
    return counts, handles


def test_paths_encoder_calls_per_frame_and_equal_outputs(tiny):
    paths, encoders = build_paths(tiny, ["panoptic"])
    assert list(paths) == ["unified", "separate", "naive"]
    prime = [synthetic_frame(i, H, W, torch.device("cpu")) for i in range(WINDOW)]
    for path in paths.values():
        path.prime(prime)
    counts, handles = count_forward_calls(encoders)
    clock = Clock(torch.device("cpu"))
    frames = [synthetic_frame(WINDOW + i, H, W, torch.device("cpu")) for i in range(2)]
    try:
        for image in frames:
            outputs = {}
            for name, path in paths.items():
                before = Counter(counts)
                clock.start()
                outputs[name] = path.step(image, clock)
                calls = counts - before
                if name == "separate":
                    assert calls == Counter({n: 1 for n in encoders if n != "unified encoder (Swin)"})
                else:
                    assert calls == Counter({"unified encoder (Swin)": 1 if name == "unified" else WINDOW})
                assert set(clock.laps) == {"encoder", "depth", "pose + flow/mask", "segmentation", "steering"}
            unified, naive = outputs["unified"], outputs["naive"]  # unified = PerceptionPipeline.process
            for key in ("depth", "T", "flow", "curvature"):
                torch.testing.assert_close(naive[key], unified[key], atol=1e-5, rtol=1e-4)
            moving = naive["mask"] > 0.5  # the pipeline gives the thresholded motion mask
            assert torch.equal(unified["mask"], moving) and 0 < moving.sum() < moving.numel()
            assert unified["segmentation"]["panoptic"].shape == (H, W)
            sep = outputs["separate"]
            assert sep["depth"].shape == (1, 1, H, W) and sep["flow"].shape == (1, 3, H, W)
            assert sep["curvature"].shape == (1,) and torch.isfinite(sep["curvature"]).all()
    finally:
        for h in handles:
            h.remove()
    # the ring's window = the last 16 frames encoded afresh, oldest first
    with torch.no_grad():
        window = torch.stack([tiny.encode(f)[-1] for f in (prime + frames)[-WINDOW:]], dim=1)
        expected = tiny.predict_steering(window)
    torch.testing.assert_close(outputs["unified"]["curvature"], expected, atol=1e-5, rtol=1e-4)


def test_onnx_heads_give_the_eager_depth(tiny, tmp_path):
    image = synthetic_frame(3, H, W, torch.device("cpu"))
    with torch.no_grad():
        feats = tiny.encode(image)
    files = {"encoder": tmp_path / "encoder.onnx", "depth": tmp_path / "depth.onnx"}
    torch.onnx.export(EncoderGraph(tiny), (image,), str(files["encoder"]), input_names=["images"],
                      output_names=[f"feat{i}" for i in range(4)], opset_version=17, dynamo=False)
    torch.onnx.export(DepthGraph(tiny), tuple(feats), str(files["depth"]), input_names=[f"feat{i}" for i in range(4)],
                      output_names=["disparity", "depth"], opset_version=17, dynamo=False)
    heads = OnnxHeads(files, torch.device("cpu"), threads=1)
    assert heads.provider == "CPUExecutionProvider"
    clock = Clock(torch.device("cpu"))
    out = UnifiedPath(heads, WINDOW, all_heads=False).step(image, clock)
    assert set(clock.laps) == {"encoder", "depth"}
    with torch.no_grad():
        expected = tiny.predict_depth(feats)[1]
    torch.testing.assert_close(out["depth"], expected, atol=1e-4, rtol=1e-4)


def test_bench_cli_writes_json_and_markdown(tmp_path):
    argv = ["bench", "--model", str(TINY), "--height", str(H), "--width", str(W), "--frames", "2", "--warmup", "0",
            "--variants", "autocast", "--train-steps", "2", "--render-frames", "2", "--threads", "1",
            "--only", "streaming,variants,training,rendering", "--out", str(tmp_path)]
    assert main(argv) == 0
    result = json.loads((tmp_path / "bench.json").read_text())
    assert set(result) == {"machine", "settings", "parameters", "streaming", "variants", "training", "rendering",
                           "ratios"}
    assert result["ratios"] == {"unified_vs_separate": 1.0 / result["streaming"]["paths"]["separate"]["ratio"]}
    assert result["machine"]["torch_threads"] == 1 and result["machine"]["versions"]["torch"] == torch.__version__
    assert result["settings"]["sections"] == ["streaming", "variants", "training", "rendering"]
    paths = result["streaming"]["paths"]
    assert list(paths) == ["unified", "separate", "naive"]
    assert paths["unified"]["encoder_calls_per_frame"] == {"unified encoder (Swin)": 1.0}
    assert paths["naive"]["encoder_calls_per_frame"] == {"unified encoder (Swin)": 16.0}
    assert paths["separate"]["encoder_calls_per_frame"] == {
        "steering encoder (Swin)": 1.0, "teacher encoder (Swin, depth + seg)": 1.0,
        "teacher flow/mask pair encoder": 1.0, "teacher pose pair encoder": 1.0}
    for p in paths.values():
        assert len(p["samples_ms"]) == p["ms"]["n"] == 2
        assert p["ms"]["median"] == summarize(p["samples_ms"])["median"] > 0
        assert sum(p["stages_ms"].values()) > 0 and math.isfinite(p["ratio"]) and p["ratio"] > 0
    assert paths["unified"]["ratio"] == 1.0
    variants = result["variants"]
    assert variants["variants"] == ["eager fp32", "autocast bfloat16"]
    for scope in ("encoder + depth", "all heads"):
        assert list(variants["scopes"][scope]) == ["eager fp32", "autocast bfloat16"]
        assert variants["scopes"][scope]["eager fp32"]["ratio"] == 1.0
    training = result["training"]
    assert training["ms"]["n"] == 1 and math.isfinite(training["final_loss"])
    assert training["trainable_parameters"] == sum(result["parameters"].values()) + 1  # + contrastive logit scale
    assert set(training["stages_ms"]) == {"teacher forward", "student forward", "losses", "backward", "optimizer"}
    assert training["memory"]["peak_mib"] > training["memory"]["increase_mib"] >= 0
    assert result["rendering"]["ms"]["n"] == 2 and result["rendering"]["frames_per_s"] > 0
    md = (tmp_path / "bench.md").read_text()
    assert "| path | encoder passes / frame | median ms/frame | p90 ms/frame | ratio to unified |" in md
    assert "| 4 (1 + 1 + 1 + 1) |" in md and "| 16 |" in md
    assert "### Training step" in md and "### Unified path variants" in md


@pytest.mark.parametrize("argv,message", [
    (["--height", "100"], "multiples of 32"),
    (["--only", "streaming,bogus"], "unknown section"),
    (["--variants", "tensorrt"], "--variants: unknown"),
    (["--tasks", "depth"], "not tasks of this model"),
    (["--train-steps", "1"], "--train-steps must be >= 2"),
])
def test_bad_arguments_are_named(argv, message, capsys, tmp_path):
    assert main(["bench", "--model", str(TINY), "--out", str(tmp_path), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "bench.json").exists()


def test_summary_statistics_and_time_limit():
    s = summarize([float(v) for v in range(1, 11)])
    assert (s["median"], s["p90"], s["mean"], s["min"], s["n"]) == (5.5, pytest.approx(9.1), 5.5, 1.0, 10)
    t0 = time.perf_counter()
    with pytest.raises(TimeLimitExceeded, match="0.2 s"), time_limit(0.2):
        while True:
            time.sleep(0.01)
    assert time.perf_counter() - t0 < 2.0
    with time_limit(5.0):
        pass  # no alarm left behind
    time.sleep(0.01)


def test_compile_variant_reports_a_timeout_or_disabled(tiny):
    heads, note = compiled_heads(tiny, ["panoptic"], timeout=0)
    assert heads is None and note == {"unavailable": "disabled (--compile-timeout 0)"}
    heads, note = compiled_heads(tiny, ["panoptic"], timeout=0.5)
    assert heads is None and note == {"unavailable": "compilation did not finish within 0.5 s"}


def test_quick_bench_writes_every_ratio(tmp_path):
    """``--quick``: the tiny model through streaming, the execution settings, steering and the real node process."""
    assert main(["bench", "--quick", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "bench.json").read_text())
    assert result["settings"]["sections"] == ["streaming", "execution", "steering", "node"]
    assert result["settings"]["height"] == 64 and result["machine"]["torch_threads"] == 1
    ratios = result["ratios"]
    expected = {"unified_vs_separate", "steering_buffered_vs_naive", "node_overhead", "onnxruntime_vs_eager"}
    if torch.cuda.is_available():  # ONNX Runtime only with its CUDA provider next to a GPU
        assert set(ratios) - {"onnxruntime_vs_eager"} == expected - {"onnxruntime_vs_eager"} | {
            "fp16_vs_fp32", "eager_fp16_vs_fp32", "cuda_graph_fp32_vs_eager"}
    else:
        assert set(ratios) == expected
    assert all(math.isfinite(v) for v in ratios.values())
    assert 0 < ratios["steering_buffered_vs_naive"] < 1  # 16 frames re-encoded cost more than the head alone
    node = result["node"]
    assert node["node_ms"]["n"] == node["pipeline_ms"]["n"] == 3 and node["lost_frames"] <= 1
    assert ratios["node_overhead"] == node["overhead"] > -1
    runners = {name: note["runner"] for name, note in result["execution"]["notes"].items()}
    assert runners["torch eager fp32"] == "EagerPass" and runners.get("onnxruntime", "OnnxPass") == "OnnxPass"
    if torch.cuda.is_available():
        assert runners["cuda graph fp16"] == "GraphPass"  # captured, not the eager fallback
    md = (tmp_path / "bench.md").read_text()
    assert "### Ratios" in md and "| node_overhead |" in md and "### ROS node overhead" in md
