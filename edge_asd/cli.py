"""`edge-asd`: the command line. Each subcommand lives in `edge_asd/commands/<name>.py`.

A command module defines `register(subparsers)`, which adds its parser and sets
`func(args) -> int`. Modules keep heavy imports (onnxruntime, sounddevice) inside their
functions so that `edge-asd --help` stays instant. A UserError becomes one line on stderr
and its exit code; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable

from edge_asd import __version__
from edge_asd.errors import UserError

COMMANDS = (
    "run",
    "calibrate",
    "score",
    "validate_config",
    "devices",
    "bench",
    "build_engine",
    "demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-asd", description="Anomalous machine sound detection on the edge."
    )
    parser.add_argument("--version", action="version", version=f"edge-asd {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"edge_asd.commands.{name}").register(subparsers)
    verbose_after_the_command(subparsers)
    return parser


def verbose_after_the_command(subparsers: argparse._SubParsersAction) -> None:
    """Let `-v` follow the command too (`edge-asd calibrate -v ...`), as users type it;
    SUPPRESS keeps a `-v` given before the command when none follows."""
    for subparser in subparsers.choices.values():
        subparser.add_argument(
            "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging"
        )


def dispatch(
    parser: argparse.ArgumentParser,
    argv: list[str] | None,
    before_run: Callable[[argparse.Namespace], None] | None = None,
) -> int:
    """Parse, set up logging, run the chosen command; a UserError becomes one line + its code.

    Shared by `edge-asd` and `edge-asd-train` (whose parsers have `-v` and subcommands
    that set `func`). `before_run(args)` runs after logging is set up.
    """
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if before_run is not None:
        before_run(args)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"{parser.prog} {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def main(argv: list[str] | None = None) -> int:
    return dispatch(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
