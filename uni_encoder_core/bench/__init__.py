"""``uni-encoder bench``: inference and training cost, measured side by side in one run (SPEC §9).

Sections: ``streaming`` (unified all-heads per-frame cost vs separate per-task networks vs naive 16-frame
re-encoding), ``variants`` (eager fp32, torch.compile, autocast, ONNX Runtime), ``training`` (step time and peak
memory) and ``rendering`` (synthetic world frames/s). Writes ``bench.json`` and ``bench.md`` (markdown tables).
Weights are randomly initialised: the cost of a network does not depend on its weights.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

import torch

from uni_encoder_core.atomic_io import atomic_writer
from uni_encoder_core.bench.rendering import run_rendering
from uni_encoder_core.bench.report import SECTIONS, to_markdown
from uni_encoder_core.bench.streaming import run_streaming
from uni_encoder_core.bench.timing import machine_info
from uni_encoder_core.bench.training import run_training
from uni_encoder_core.bench.variants import VARIANTS, run_variants
from uni_encoder_core.config import ConfigError, ModelConfig, load_config
from uni_encoder_core.models.unified import UniEncoder


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``uni-encoder bench``."""
    parser.add_argument("--model", default="config/model/swin_t.yaml", help="model config (default: %(default)s)")
    parser.add_argument("--height", type=int, default=192, help="input height, a multiple of 32 (default 192)")
    parser.add_argument("--width", type=int, default=512, help="input width, a multiple of 32 (default 512)")
    parser.add_argument("--frames", type=int, default=10, help="measured frames per path (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up frames per path (default 2)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="device (default cpu)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--out", default="results/bench", help="directory for bench.json and bench.md")
    parser.add_argument("--only", help=f"comma-separated sections to run: {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("--tasks", default="panoptic",
                        help="segmentation tasks of the streaming paths, comma-separated ('' = none; default panoptic)")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="unified-path variants to compare with eager fp32 (default: %(default)s)")
    parser.add_argument("--compile-timeout", type=float, default=600.0,
                        help="seconds allowed for torch.compile to compile; 0 skips it (default 600)")
    parser.add_argument("--train-batch", type=int, default=1, help="training: triplets and labelled images (default 1)")
    parser.add_argument("--train-steps", type=int, default=3, help="training steps, the first is warm-up (default 3)")
    parser.add_argument("--render-frames", type=int, default=10, help="synthetic frames to render (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights and inputs")


def check_args(args: argparse.Namespace) -> list[str]:
    """The sections to run; raises ``ValueError`` naming a bad argument."""
    sections = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else list(SECTIONS)
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown or not sections:
        raise ValueError(f"--only: unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    bad = sorted(set(v.strip() for v in args.variants.split(",") if v.strip()) - set(VARIANTS))
    if bad:
        raise ValueError(f"--variants: unknown {bad}; choose from {', '.join(VARIANTS)}")
    if args.height <= 0 or args.width <= 0 or args.height % 32 or args.width % 32:
        raise ValueError(f"--height/--width must be positive multiples of 32, got {args.height}x{args.width}")
    for name in ("frames", "train_batch", "render_frames"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.warmup < 0:
        raise ValueError(f"--warmup must be >= 0, got {args.warmup}")
    if args.train_steps < 2:
        raise ValueError(f"--train-steps must be >= 2 (the first is warm-up), got {args.train_steps}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda requested but CUDA is not available")
    return sections


def prepare(args: argparse.Namespace) -> tuple[list[str], ModelConfig, list[str]]:
    """Sections, model config (at ``--height`` x ``--width``) and streaming tasks; ``ValueError``/``ConfigError``
    name a bad argument."""
    sections = check_args(args)
    cfg = dataclasses.replace(load_config(args.model, ModelConfig), height=args.height, width=args.width)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = sorted(set(tasks) - set(cfg.segmentation.tasks))
    if unknown:
        raise ValueError(f"--tasks: {unknown} are not tasks of this model ({', '.join(cfg.segmentation.tasks)})")
    return sections, cfg, tasks


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


def run(args: argparse.Namespace) -> int:
    """Run the benchmark, write ``bench.json`` and ``bench.md`` to ``--out`` and print the markdown."""
    try:
        sections, cfg, tasks = prepare(args)
    except (ValueError, ConfigError) as exc:
        print(f"uni-encoder bench: {exc}", file=sys.stderr)
        return 2
    result = benchmark(args, sections, cfg, tasks)
    out = Path(args.out)
    with atomic_writer(out / "bench.json", "w") as fh:
        json.dump(result, fh, indent=2)
    markdown = to_markdown(result)
    with atomic_writer(out / "bench.md", "w") as fh:
        fh.write(markdown)
    print(markdown)
    print(f"wrote {out / 'bench.json'} and {out / 'bench.md'}")
    return 0
