"""The ``uni-encoder`` command line: one entry point, one module per subcommand.

Each subcommand module defines ``add_arguments(parser)`` and ``run(args) -> int``; it is imported only
when its subcommand runs, so ``uni-encoder synth`` never loads rclpy and ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module implementing it, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("uni_encoder_core.models.checkpoint_cli", "write a randomly initialised checkpoint"),
    "train": ("uni_encoder_core.train.cli", "run a training stage from training/configs/*.yaml"),
    "eval": ("uni_encoder_core.eval.cli", "evaluate a checkpoint and print the paper's tables"),
    "replay": ("uni_encoder_ros.replay", "run the pipeline over a rosbag2 file and evaluate it"),
    "export": ("uni_encoder_core.inference.export", "export the per-frame inference path to ONNX"),
    "synth": ("uni_encoder_core.data.synthetic_cli", "render the synthetic driving world to disk"),
    "bench": ("uni_encoder_core.bench", "measure inference and training cost side by side"),
    "demo": ("uni_encoder_ros.demo", "run the perception node on a synthetic camera stream"),
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one sub-parser per command (arguments added lazily)."""
    parser = argparse.ArgumentParser(prog="uni-encoder", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``uni-encoder COMMAND [ARGS]``; returns the process exit code."""
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    if not argv or argv[0] not in COMMANDS:
        parser.print_help(sys.stderr if argv else sys.stdout)
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    name = argv[0]
    module_name, help_text = COMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            print(f"uni-encoder {name}: not available in this build ({module_name} is missing)", file=sys.stderr)
            return 2
        raise
    sub = argparse.ArgumentParser(prog=f"uni-encoder {name}", description=help_text)
    module.add_arguments(sub)
    return int(module.run(sub.parse_args(argv[1:])) or 0)


if __name__ == "__main__":
    sys.exit(main())
