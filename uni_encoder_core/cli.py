"""The ``uni-encoder`` command line: one entry point over the commands registered in ``uni_encoder_core.commands``.

Errors are reported here, once for every command: bad input (:class:`~uni_encoder_core.errors.UserError`, and
any ``ValueError`` or ``OSError``) is printed as one line ``uni-encoder COMMAND: <file>: <problem>; <fix>`` with
exit code 2 (1 for an ``OSError``, 130 for Ctrl-C) and no traceback; ``uni-encoder --debug COMMAND ...``
re-raises it with its traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from uni_encoder_core.commands import COMMANDS
from uni_encoder_core.errors import UserError

EXIT_BAD_INPUT = 2
EXIT_SYSTEM = 1
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one sub-parser per command (arguments added lazily)."""
    parser = argparse.ArgumentParser(prog="uni-encoder", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error (before COMMAND)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def describe(exc: BaseException) -> str:
    """One line for ``exc``: its message with whitespace collapsed; an ``OSError`` names its file, and an error
    outside the project's own family says how to see where it came from."""
    if isinstance(exc, OSError) and not isinstance(exc, UserError) and exc.filename is not None:
        text = f"{exc.filename}: {exc.strerror or exc}; check the path and its permissions"
    else:
        text = str(exc) or type(exc).__name__
    if not isinstance(exc, UserError):
        text += " (--debug before the command shows the traceback)"
    return " ".join(text.split())


def main(argv: list[str] | None = None) -> int:
    """Run ``uni-encoder [--debug] COMMAND [ARGS]``; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = bool(argv) and argv[0] == "--debug"
    argv = argv[1:] if debug else argv
    parser = build_parser()
    if not argv or argv[0] not in COMMANDS:
        asked = not argv or argv[0] in ("-h", "--help")
        parser.print_help(sys.stdout if asked else sys.stderr)
        return 0 if asked else EXIT_BAD_INPUT
    name = argv[0]
    module = importlib.import_module(f"uni_encoder_core.commands.{name}")
    sub = argparse.ArgumentParser(prog=f"uni-encoder {name}", description=COMMANDS[name])
    module.add_arguments(sub)
    args = sub.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"uni-encoder {name}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (UserError, ValueError, OSError) as exc:
        if debug:
            raise
        print(f"uni-encoder {name}: {describe(exc)}", file=sys.stderr)
        return EXIT_SYSTEM if isinstance(exc, OSError) and not isinstance(exc, UserError) else EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
