"""``uni-encoder train``: one stage of training from a recipe (also one process per device under ``torchrun``).

Output in ``--out`` (default: the recipe's ``out_dir``): step checkpoints, ``best.pt``, ``final.pt``, the recipe
used and TensorBoard logs (see ``uni_encoder_core.train.checkpoints``). Bad input (a recipe that does not load, a
missing, corrupt or mismatched checkpoint for ``--init``/``--resume``, an unusable device) prints one line and
exits with 2; too many non-finite steps in a row exit with 1; SIGINT/SIGTERM write a checkpoint and exit with
128 + the signal number.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``uni-encoder train``."""
    parser.add_argument("--config", required=True, help="recipe YAML (training/configs/<stage>.yaml)")
    parser.add_argument("--out", help="run directory (default: the recipe's out_dir)")
    parser.add_argument("--init", help="start from the weights of this checkpoint (overrides the recipe's init_from)")
    parser.add_argument("--resume", action="store_true", help="continue the run in the run directory exactly")
    parser.add_argument("--steps", type=int, help="number of optimizer steps (overrides the recipe's steps)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None,
                        help="default: cuda when available, else cpu")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Train one stage (or run the steering cross-testing of a ``kind: steering_cv`` recipe); the exit code."""
    from uni_encoder_core.errors import ConfigError
    from uni_encoder_core.train.recipe import recipe_kind

    try:
        kind = recipe_kind(args.config)
    except ConfigError as exc:
        print(f"uni-encoder train: {exc}", file=sys.stderr)
        return 2
    return run_steering(args) if kind == "steering_cv" else run_stage(args)


def run_steering(args: argparse.Namespace) -> int:
    """The steering stage: tenfold cross-testing of every variant of the recipe (Table IV)."""
    from uni_encoder_core.errors import ConfigError
    from uni_encoder_core.models.checkpoint import CheckpointError
    from uni_encoder_core.train.steering_cv import load_steering_cv_config, run_steering_cv

    if args.resume or args.steps is not None:
        print("uni-encoder train: --resume and --steps do not apply to a steering_cv recipe", file=sys.stderr)
        return 2
    try:
        recipe = load_steering_cv_config(args.config)
        if args.init:
            recipe.variants = [replace(v, checkpoint=args.init) if v.init == "checkpoint" else v
                               for v in recipe.variants]
        run_steering_cv(recipe, args.out or recipe.out_dir, device=args.device, progress=not args.no_progress)
    except (ConfigError, CheckpointError, ValueError) as exc:
        print(f"uni-encoder train: {exc}", file=sys.stderr)
        return 2
    return 0


def run_stage(args: argparse.Namespace) -> int:
    """One training stage of the student or the teacher."""
    import torch

    from uni_encoder_core.errors import ConfigError
    from uni_encoder_core.models.checkpoint import CheckpointError
    from uni_encoder_core.train.distributed import DeviceError
    from uni_encoder_core.train.guard import TrainingDiverged
    from uni_encoder_core.train.loop import RunError, Trainer
    from uni_encoder_core.train.recipe import check_stage, load_stage

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        stage = load_stage(args.config)
        if args.steps is not None:
            stage.steps = args.steps
            check_stage(stage, f"{args.config} with --steps {args.steps}")
        trainer = Trainer(stage, args.out, device, args.init, args.resume, progress=not args.no_progress)
    except (ConfigError, CheckpointError, DeviceError, RunError) as exc:
        print(f"uni-encoder train: {exc}", file=sys.stderr)
        return 2
    try:
        result = trainer.run()
    except TrainingDiverged as exc:
        print(f"uni-encoder train: {exc}", file=sys.stderr)
        return 1
    if not trainer.rank0:
        return 128 + result.stopped_by if result.stopped_by else 0
    if result.finished:
        print(f"{stage.name}: {result.step} steps done; weights in {trainer.out_dir / 'final.pt'}")
        return 0
    print(f"{stage.name}: stopped at step {result.step}; checkpoint {result.checkpoint}; continue with --resume",
          file=sys.stderr)
    return 128 + result.stopped_by if result.stopped_by else 1
