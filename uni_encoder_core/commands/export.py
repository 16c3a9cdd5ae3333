"""``uni-encoder export``: ONNX graphs of the per-frame inference path, checked against PyTorch with ONNX Runtime."""

from __future__ import annotations

import argparse

from uni_encoder_core.atomic_io import atomic_directory, check_output_directory
from uni_encoder_core.inference.export import export_model
from uni_encoder_core.models.checkpoint import CheckpointError, load_checkpoint
from uni_encoder_core.models.unified import UniEncoder


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``uni-encoder export``."""
    parser.add_argument("--checkpoint", required=True, help="UniEncoder checkpoint")
    parser.add_argument("--out", required=True, help="output directory for the .onnx files and export_report.json "
                                                     "(new or empty; written whole or not at all)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out directory")
    parser.add_argument("--tolerance", type=float, default=1e-3, help="largest accepted |ONNX - PyTorch|")


def run(args: argparse.Namespace) -> int:
    """Export, print one line per graph, and fail (exit 1) when a graph fails or differs beyond tolerance.

    Raises ``OutputExistsError`` for a non-empty ``--out`` without ``--overwrite`` and ``CheckpointError`` for a
    bad checkpoint or one that holds a teacher.
    """
    out = check_output_directory(args.out, args.overwrite)
    model = load_checkpoint(args.checkpoint)
    if not isinstance(model, UniEncoder):
        raise CheckpointError(f"{args.checkpoint}: holds a {type(model).__name__}, not a UniEncoder; export a "
                              "checkpoint of the unified model")
    with atomic_directory(out, args.overwrite) as staged:
        reports = export_model(model, staged)
    failed = False
    for r in reports:
        passed = r.passed(args.tolerance)
        failed |= not passed
        detail = r.error or "  ".join(
            f"{k}: {d:.2e} (torch itself {r.torch_sensitivity[k]:.1e})" for k, d in r.max_abs_diff.items()
        )
        print(f"{'ok  ' if passed else 'FAIL'} {r.name:<13} max abs diff [batch x width]  {detail}")
    print(f"report: {out / 'export_report.json'}")
    return 1 if failed else 0
