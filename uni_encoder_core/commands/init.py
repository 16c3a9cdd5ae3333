"""``uni-encoder init``: write a randomly initialised checkpoint (smoke tests, benchmarks) and count parameters."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from uni_encoder_core.config import ModelConfig
from uni_encoder_core.config_yaml import load_config
from uni_encoder_core.errors import OutputExistsError, UsageError
from uni_encoder_core.models.checkpoint import save_checkpoint, skeleton
from uni_encoder_core.models.teacher import Teacher
from uni_encoder_core.models.unified import MultiTaskModel, UniEncoder


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``uni-encoder init``."""
    parser.add_argument("--model", required=True, help="model config, e.g. config/model/swin_t.yaml")
    parser.add_argument("--out", help="checkpoint file to write (written whole or not at all)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
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
    """Build the model from ``--model``, optionally print its summary, and save it to ``--out``.

    Raises ``UsageError`` without ``--out``/``--summary``, ``OutputExistsError`` for an existing ``--out`` without
    ``--overwrite``, ``ConfigError`` for an invalid config and ``CheckpointError`` for a model too large to build.
    """
    if not args.out and not args.summary:
        raise UsageError("nothing to do; give --out FILE and/or --summary")
    out = Path(args.out) if args.out else None
    if out is not None and out.is_dir():
        raise OutputExistsError(f"{out}: is a directory; --out names the checkpoint file, e.g. {out / 'model.pt'}")
    if out is not None and out.exists() and not args.overwrite:
        raise OutputExistsError(f"{out}: exists already; choose another --out or replace it with --overwrite")
    cfg = load_config(args.model, ModelConfig)
    kind = Teacher if args.teacher else UniEncoder
    skeleton(kind, cfg, args.model)  # refuses an unbuildable or oversized model before allocating it
    torch.manual_seed(args.seed)
    model = kind(cfg)
    if args.summary:
        print(format_summary(model))
    if out is not None:
        save_checkpoint(model, out, seed=args.seed)
        print(f"wrote {out}")
    return 0
