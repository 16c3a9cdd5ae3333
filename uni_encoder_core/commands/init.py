"""``uni-encoder init``: write a randomly initialised checkpoint (smoke tests, benchmarks) and count parameters."""

from __future__ import annotations

import argparse
import sys

import torch

from uni_encoder_core.config import ConfigError, ModelConfig, load_config
from uni_encoder_core.models.checkpoint import save_checkpoint
from uni_encoder_core.models.teacher import Teacher
from uni_encoder_core.models.unified import MultiTaskModel, UniEncoder


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``uni-encoder init``."""
    parser.add_argument("--model", required=True, help="model config, e.g. config/model/swin_t.yaml")
    parser.add_argument("--out", help="checkpoint file to write")
    parser.add_argument("--teacher", action="store_true", help="build the three-encoder distillation teacher")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the initialisation")
    parser.add_argument("--summary", action="store_true", help="print parameter counts per module")


def format_summary(model: MultiTaskModel) -> str:
    """Parameter counts per part and in total, one line each (millions and exact)."""
    counts = model.parameter_counts()
    width = max(len(name) for name in counts)
    lines = [f"{type(model).__name__} ({model.cfg.name})"]
    for name, n in [*counts.items(), ("total", sum(counts.values()))]:
        lines.append(f"  {name:<{width}}  {n / 1e6:8.3f} M  {n:>11,d}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Build the model from ``--model``, optionally print its summary, and save it to ``--out``."""
    if not args.out and not args.summary:
        print("uni-encoder init: give --out FILE and/or --summary", file=sys.stderr)
        return 2
    try:
        cfg = load_config(args.model, ModelConfig)
    except ConfigError as exc:
        print(f"uni-encoder init: {exc}", file=sys.stderr)
        return 2
    torch.manual_seed(args.seed)
    model = (Teacher if args.teacher else UniEncoder)(cfg)
    if args.summary:
        print(format_summary(model))
    if args.out:
        save_checkpoint(model, args.out, seed=args.seed)
        print(f"wrote {args.out}")
    return 0
