"""Inference and training cost, measured side by side in one run (``uni-encoder bench``).

Sections: ``streaming`` (unified all-heads per-frame cost vs separate per-task networks vs naive 16-frame
re-encoding), ``variants`` (eager fp32, torch.compile, autocast, ONNX Runtime), ``training`` (step time and peak
memory) and ``rendering`` (synthetic world frames/s). Weights are randomly initialised: the cost of a network
does not depend on its weights.
"""

from __future__ import annotations

import argparse
import os

import torch

from uni_encoder_core.bench.rendering import run_rendering
from uni_encoder_core.bench.streaming import run_streaming
from uni_encoder_core.bench.timing import machine_info
from uni_encoder_core.bench.training import run_training
from uni_encoder_core.bench.variants import run_variants
from uni_encoder_core.config import ModelConfig
from uni_encoder_core.models.unified import UniEncoder


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
    if "variants" in sections:
        which = tuple(v.strip() for v in args.variants.split(",") if v.strip())
        result["variants"] = run_variants(model, args.frames, args.warmup, args.compile_timeout, which)
    del model
    if "training" in sections:
        result["training"] = run_training(cfg, device, args.train_batch, args.train_steps, args.seed)
    if "rendering" in sections:
        result["rendering"] = run_rendering(args.height, args.width, args.render_frames, args.seed)
    result["machine"]["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return result
