"""``uni-encoder export``: ONNX graphs of the per-frame inference path, checked against PyTorch with ONNX Runtime."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from uni_encoder_core.inference.export import export_model
from uni_encoder_core.models.checkpoint import CheckpointError, load_checkpoint
from uni_encoder_core.models.unified import UniEncoder


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``uni-encoder export``."""
    parser.add_argument("--checkpoint", required=True, help="UniEncoder checkpoint")
    parser.add_argument("--out", required=True, help="output directory for the .onnx files and export_report.json")
    parser.add_argument("--tolerance", type=float, default=1e-3, help="largest accepted |ONNX - PyTorch|")


def run(args: argparse.Namespace) -> int:
    """Export, print one line per graph, and fail (exit 1) when a graph fails or differs beyond tolerance."""
    try:
        model = load_checkpoint(args.checkpoint)
    except CheckpointError as exc:
        print(f"uni-encoder export: {exc}", file=sys.stderr)
        return 2
    if not isinstance(model, UniEncoder):
        kind = type(model).__name__
        print(f"uni-encoder export: {args.checkpoint} holds a {kind}, not a UniEncoder", file=sys.stderr)
        return 2
    failed = False
    for r in export_model(model, args.out):
        passed = r.passed(args.tolerance)
        failed |= not passed
        detail = r.error or "  ".join(
            f"{k}: {d:.2e} (torch itself {r.torch_sensitivity[k]:.1e})" for k, d in r.max_abs_diff.items()
        )
        print(f"{'ok  ' if passed else 'FAIL'} {r.name:<13} max abs diff [batch x width]  {detail}")
    print(f"report: {Path(args.out) / 'export_report.json'}")
    return 1 if failed else 0
