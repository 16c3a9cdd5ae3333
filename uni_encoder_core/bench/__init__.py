"""Inference and training cost, measured side by side in one run (``uni-encoder bench``).

Sections: ``streaming`` (unified all-heads per-frame cost vs separate per-task networks vs naive 16-frame
re-encoding), ``execution`` (the pipeline under ONNX Runtime, fp16, CUDA graphs), ``steering`` (the command from the
feature ring vs re-encoding), ``node`` (the ROS node's overhead over the pipeline), ``variants`` (eager fp32,
torch.compile, autocast, ONNX Runtime per network), ``training`` (step time and peak memory) and ``rendering``
(synthetic world frames/s). Weights are randomly initialised: the cost of a network does not depend on its weights.
``ratios`` gathers the headline comparisons (lower is better) of the sections that ran.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import torch

from uni_encoder_core.bench.execution import run_execution, run_steering
from uni_encoder_core.bench.rendering import run_rendering
from uni_encoder_core.bench.streaming import run_streaming
from uni_encoder_core.bench.timing import machine_info
from uni_encoder_core.bench.training import run_training
from uni_encoder_core.bench.variants import run_variants
from uni_encoder_core.config import ModelConfig
from uni_encoder_core.models.checkpoint import save_checkpoint
from uni_encoder_core.models.unified import UniEncoder


def run_node(model: UniEncoder, args: argparse.Namespace, tasks: list[str]) -> dict:
    """Section ``node``: the ROS node's publish -> last output time against the pipeline alone (the ROS side,
    ``uni_encoder_ros.overhead``, is loaded only here)."""
    try:
        from uni_encoder_ros.overhead import measure_node_overhead
    except ImportError as exc:
        return {"unavailable": f"cannot load the ROS side ({exc})"}
    with tempfile.TemporaryDirectory(prefix="uni-encoder-bench-node-") as tmp:
        checkpoint = Path(tmp) / "model.pt"
        save_checkpoint(model.cpu(), checkpoint)
        model.to(args.device)
        env = os.environ.get("OMP_NUM_THREADS")
        if args.threads:
            os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the node process gets the same thread count
        try:
            return measure_node_overhead(checkpoint, args.height, args.width, args.frames, args.warmup, args.device,
                                         tasks, Path(tmp) / "node.log", args.seed)
        except RuntimeError as exc:
            return {"unavailable": str(exc)[:2000]}
        finally:
            if env is None:
                os.environ.pop("OMP_NUM_THREADS", None)
            else:
                os.environ["OMP_NUM_THREADS"] = env


def ratios(result: dict) -> dict[str, float]:
    """Headline ratios (lower is better) of the sections in ``result``."""
    out = {}
    if "streaming" in result:
        out["unified_vs_separate"] = 1.0 / result["streaming"]["paths"]["separate"]["ratio"]
    if "steering" in result:
        out["steering_buffered_vs_naive"] = result["steering"]["buffered_vs_naive"]
    if "node" in result and "ratio" in result["node"]:
        out["node_overhead"] = result["node"]["overhead"]
    if "execution" in result:
        paths = result["execution"]["paths"]
        if "onnxruntime" in paths:
            out["onnxruntime_vs_eager"] = paths["onnxruntime"]["ratio"]
        if "torch fp16" in paths:  # CUDA: the deployment path is the captured graph
            out["fp16_vs_fp32"] = paths["cuda graph fp16"]["ms"]["median"] / paths["cuda graph fp32"]["ms"]["median"]
            out["eager_fp16_vs_fp32"] = paths["torch fp16"]["ratio"]
            out["cuda_graph_fp32_vs_eager"] = paths["cuda graph fp32"]["ratio"]
    return out


def benchmark(args: argparse.Namespace, sections: list[str], cfg: ModelConfig, tasks: list[str]) -> dict:
    """Run ``sections`` and return the result dictionary (what ``bench.json`` holds)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    settings = {k: getattr(args, k) for k in ("model", "height", "width", "frames", "warmup", "device", "seed")}
    result: dict = {"machine": machine_info(device), "settings": {**settings, "sections": sections, "tasks": tasks}}
    torch.manual_seed(args.seed)
    model = UniEncoder(cfg).to(device).eval()
    result["parameters"] = model.parameter_counts()
    if "streaming" in sections:
        result["streaming"] = run_streaming(model, tasks, args.frames, args.warmup, args.seed)
    if "execution" in sections:
        result["execution"] = run_execution(model, tasks, args.frames, args.warmup)
    if "steering" in sections:
        result["steering"] = run_steering(model, args.frames, args.warmup)
    if "node" in sections:
        result["node"] = run_node(model, args, tasks)
    if "variants" in sections:
        which = tuple(v.strip() for v in args.variants.split(",") if v.strip())
        result["variants"] = run_variants(model, args.frames, args.warmup, args.compile_timeout, which)
    del model
    if "training" in sections:
        result["training"] = run_training(cfg, device, args.train_batch, args.train_steps, args.seed)
    if "rendering" in sections:
        result["rendering"] = run_rendering(args.height, args.width, args.render_frames, args.seed)
    result["machine"]["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    result["ratios"] = ratios(result)
    return result
