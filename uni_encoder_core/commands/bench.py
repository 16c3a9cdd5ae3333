"""``uni-encoder bench``: inference and training cost side by side; writes ``bench.json`` and ``bench.md``."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch

from uni_encoder_core.atomic_io import atomic_directory, check_output_directory
from uni_encoder_core.bench import benchmark
from uni_encoder_core.bench.report import SECTIONS, to_markdown
from uni_encoder_core.bench.variants import VARIANTS
from uni_encoder_core.config import ModelConfig
from uni_encoder_core.config_yaml import load_config
from uni_encoder_core.errors import UsageError

ROOT = Path(__file__).resolve().parents[2]
QUICK_SECTIONS = ("streaming", "execution", "steering", "node")
QUICK = {"model": str(ROOT / "config/model/tiny.yaml"), "height": 64, "width": 128, "frames": 3, "warmup": 1,
         "threads": 1, "only": ",".join(QUICK_SECTIONS)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``uni-encoder bench``."""
    parser.add_argument("--model", default="config/model/swin_t.yaml", help="model config (default: %(default)s)")
    parser.add_argument("--height", type=int, default=192, help="input height, a multiple of 32 (default 192)")
    parser.add_argument("--width", type=int, default=512, help="input width, a multiple of 32 (default 512)")
    parser.add_argument("--frames", type=int, default=10, help="measured frames per path (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up frames per path (default 2)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="device (default cpu)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--out", default="results/bench", help="directory for bench.json and bench.md (new or "
                                                               "empty; written whole or not at all)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out directory")
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
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: the tiny model at 64x128, {', '.join(QUICK_SECTIONS)}, "
                             f"{QUICK['frames']} frames, one thread (overrides those options)")


def check_args(args: argparse.Namespace) -> list[str]:
    """The sections to run; raises ``UsageError`` (a ``ValueError``) naming a bad argument. ``--quick`` sets its
    options first."""
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    sections = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else list(SECTIONS)
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown or not sections:
        raise UsageError(f"--only: unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    bad = sorted(set(v.strip() for v in args.variants.split(",") if v.strip()) - set(VARIANTS))
    if bad:
        raise UsageError(f"--variants: unknown {bad}; choose from {', '.join(VARIANTS)}")
    if args.height <= 0 or args.width <= 0 or args.height % 32 or args.width % 32:
        raise UsageError(f"--height/--width must be positive multiples of 32, got {args.height}x{args.width}")
    for name in ("frames", "train_batch", "render_frames"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.warmup < 0:
        raise UsageError(f"--warmup must be >= 0, got {args.warmup}")
    if args.train_steps < 2:
        raise UsageError(f"--train-steps must be >= 2 (the first is warm-up), got {args.train_steps}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda requested but CUDA is not available")
    return sections


def prepare(args: argparse.Namespace) -> tuple[list[str], ModelConfig, list[str]]:
    """Sections, model config (at ``--height`` x ``--width``) and streaming tasks; ``UsageError``/``ConfigError``
    name a bad argument."""
    sections = check_args(args)
    cfg = dataclasses.replace(load_config(args.model, ModelConfig), height=args.height, width=args.width)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = sorted(set(tasks) - set(cfg.segmentation.tasks))
    if unknown:
        raise UsageError(f"--tasks: {unknown} are not tasks of this model ({', '.join(cfg.segmentation.tasks)})")
    return sections, cfg, tasks


def run(args: argparse.Namespace) -> int:
    """Run the benchmark, write ``bench.json`` and ``bench.md`` to ``--out`` and print the markdown.

    ``--out`` is refused before any measurement when it is non-empty and ``--overwrite`` is not given.
    """
    sections, cfg, tasks = prepare(args)
    out = check_output_directory(args.out, args.overwrite)
    with atomic_directory(out, args.overwrite) as staged:
        result = benchmark(args, sections, cfg, tasks)
        markdown = to_markdown(result)
        (staged / "bench.json").write_text(json.dumps(result, indent=2))
        (staged / "bench.md").write_text(markdown)
    print(markdown)
    print(f"wrote {out / 'bench.json'} and {out / 'bench.md'}")
    return 0
