"""``uni-encoder eval``: a checkpoint's rows of the paper's Tables II, III and IV on a data set (text, JSON, PNGs).

Cityscapes gives Tables II and III (ManyDepth depth protocol), KITTI Table III (Eigen split, Garg crop), lane
keeping Table IV (the checkpoint's steering head on every held-out chunk), the synthetic world all three. With
``--out DIR``: ``tables.txt``, ``tables.md``, ``results.json`` and ``depth.png`` / ``segmentation.png`` /
``steering.png`` panels.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from uni_encoder_core.atomic_io import atomic_directory, check_output_directory
from uni_encoder_core.config import DataConfig
from uni_encoder_core.data.lane_keeping import recording_files
from uni_encoder_core.data.registry import build_dataset
from uni_encoder_core.data.synthetic import SyntheticWorld, WorldConfig
from uni_encoder_core.data.synthetic.stored import StoredFrames
from uni_encoder_core.errors import UsageError
from uni_encoder_core.eval.report import format_tables, write_report
from uni_encoder_core.eval.runner import (
    EvalResult,
    EvalSettings,
    evaluate_depth_samples,
    evaluate_frames,
    evaluate_labelled,
    evaluate_recordings,
)
from uni_encoder_core.models.checkpoint import CheckpointError, load_checkpoint
from uni_encoder_core.models.unified import UniEncoder

DATASETS = ("cityscapes", "kitti", "synthetic", "lane_keeping")
DEFAULT_SPLITS = {"cityscapes": "val", "kitti": "test"}
DEFAULT_CROP = {"cityscapes": 0.25}
DEPTH_PROTOCOLS = {"cityscapes": "cityscapes", "kitti": "eigen"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``uni-encoder eval``."""
    parser.add_argument("--checkpoint", required=True, help="UniEncoder checkpoint (.pt)")
    parser.add_argument("--dataset", required=True, choices=DATASETS, help="data set kind")
    parser.add_argument("--root", help="data folder (synthetic: a `uni-encoder synth` output; omit to render)")
    parser.add_argument("--out", help="folder for tables.txt, tables.md, results.json and PNG panels")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out directory")
    parser.add_argument("--split", help="split folder / split-file name (default: cityscapes val, kitti test)")
    parser.add_argument("--split-file", help="KITTI: split file in monodepth2's format ({split} is replaced)")
    parser.add_argument("--crop-bottom", type=float, help="fraction of rows cut at the bottom (cityscapes 0.25, "
                                                          "others 0)")
    parser.add_argument("--seed", type=int, default=0, help="synthetic world seed when rendering (default 0)")
    parser.add_argument("--frames", type=int, default=200, help="synthetic frames when rendering (default 200)")
    parser.add_argument("--folds", type=int, default=10, help="steering: contiguous chunks per recording (10)")
    parser.add_argument("--label-scale", type=float, default=EvalSettings.label_scale,
                        help="steering errors in (label_scale x curvature)^2 (default: the steering stage's 100)")
    parser.add_argument("--steering-lambda", type=float, default=EvalSettings.steering_lambda,
                        help="eq. 5's lambda of the weighted MSE (default 0.1)")
    parser.add_argument("--panels", type=int, default=4, help="frames drawn per table in the PNGs (default 4)")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda, ...)")
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown")


def _model(path: str, device: str) -> UniEncoder:
    model = load_checkpoint(path)
    if not isinstance(model, UniEncoder):
        raise CheckpointError(f"{path}: holds a {type(model).__name__}; evaluation needs a UniEncoder checkpoint")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {device}: CUDA is not available here; use --device cpu")
    return model.to(device).eval()


def evaluate(args: argparse.Namespace, model: UniEncoder, settings: EvalSettings) -> EvalResult:
    """Run the evaluation ``args.dataset`` calls for."""
    if args.dataset == "synthetic":
        if args.root:
            frames = StoredFrames(args.root)
            return evaluate_frames(model, frames.frame, len(frames), settings)
        world = SyntheticWorld(WorldConfig(seed=args.seed, height=model.cfg.height, width=model.cfg.width,
                                           num_frames=args.frames))
        return evaluate_frames(model, world.frame, args.frames, settings)
    if not args.root:
        raise UsageError(f"--dataset {args.dataset} needs --root (the data folder)")
    if args.dataset == "lane_keeping":
        return evaluate_recordings(model, recording_files(args.root), settings)
    cfg = DataConfig(kind=args.dataset, root=args.root, split_file=args.split_file, height=model.cfg.height,
                     width=model.cfg.width, crop_bottom=settings.crop_bottom)
    cfg.augment.enabled = False
    if args.dataset == "kitti" and not args.split_file:
        raise UsageError("--dataset kitti needs --split-file (monodepth2 format, e.g. splits/eigen/test_files.txt)")
    result = EvalResult()
    if args.dataset == "cityscapes":
        evaluate_labelled(model, build_dataset(cfg, "labelled", args.split), settings, result)
    depth = build_dataset(cfg, "depth_eval", args.split)
    evaluate_depth_samples(model, depth, DEPTH_PROTOCOLS[args.dataset], settings, result)
    return result


def run(args: argparse.Namespace) -> int:
    """Evaluate, print the tables, write ``--out`` (bad input raises; the command line reports it in one line)."""
    args.split = args.split or DEFAULT_SPLITS.get(args.dataset, "test")
    crop = DEFAULT_CROP.get(args.dataset, 0.0) if args.crop_bottom is None else args.crop_bottom
    settings = EvalSettings(crop_bottom=crop, folds=args.folds, label_scale=args.label_scale,
                            steering_lambda=args.steering_lambda, panels=args.panels, device=args.device)
    out = check_output_directory(args.out, args.overwrite) if args.out else None  # refused before any work
    model = _model(args.checkpoint, args.device)
    with torch.inference_mode():
        result = evaluate(args, model, settings)
    name = Path(args.checkpoint).name
    text = format_tables(result, args.dataset, name, markdown=args.markdown)
    print(text, end="")
    if out is not None:
        about = {"checkpoint": str(args.checkpoint), "dataset": args.dataset, "root": args.root,
                 "split": None if args.dataset in ("synthetic", "lane_keeping") else args.split,
                 "model": model.cfg.name, "input_size": [model.cfg.height, model.cfg.width], "crop_bottom": crop,
                 "folds": args.folds if result.steering is not None else None}
        with atomic_directory(out, args.overwrite) as staged:
            files = write_report(result, about, format_tables(result, args.dataset, name),
                                 format_tables(result, args.dataset, name, markdown=True), staged)
        print(f"wrote {', '.join(f.name for f in files)} to {out}")
    return 0
