"""The ``uni-encoder`` command line: one entry point over the commands registered in ``uni_encoder_core.commands``."""

from __future__ import annotations

import argparse
import importlib
import sys

from uni_encoder_core.commands import COMMANDS


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one sub-parser per command (arguments added lazily)."""
    parser = argparse.ArgumentParser(prog="uni-encoder", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
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
    module = importlib.import_module(f"uni_encoder_core.commands.{name}")
    sub = argparse.ArgumentParser(prog=f"uni-encoder {name}", description=COMMANDS[name])
    module.add_arguments(sub)
    return int(module.run(sub.parse_args(argv[1:])) or 0)


if __name__ == "__main__":
    sys.exit(main())
