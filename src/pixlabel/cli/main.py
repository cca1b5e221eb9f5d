"""The ``pixlabel`` command. Each subcommand is one module in this package exposing ``register(sub)``.

Exit codes: 0 success (bad image files are listed in ``errors.csv`` and do not fail a run);
1 unexpected internal error; 2 bad input or usage (the message names the file/row);
130 interrupted (finished work is kept; re-run to resume).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from pixlabel import __version__
from pixlabel.errors import PixlabelError
from pixlabel.progress import configure_logging

# A new command is one module here plus one line in this tuple (the module name; it registers the command's
# name, e.g. ``imports`` registers ``pixlabel import``, a keyword as a module name).
COMMANDS: tuple[str, ...] = (
    "demo", "label", "embed", "suggest", "ingest", "convert", "export", "imports",
    "train", "eval", "explain", "generate", "review", "serve",
)

EPILOG = """exit codes:
  0    success (unreadable images are listed in errors.csv; the run still succeeds)
  1    unexpected internal error (please report it with --verbose output)
  2    bad input or usage: the message names the file, row and what was expected
  130  interrupted; finished work is kept in the workspace, re-run the same command to resume
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pixlabel",
        description="Label every image in a folder from a handful of human labels.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"pixlabel {__version__}")
    noise = parser.add_mutually_exclusive_group()
    noise.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors; no progress bars")
    noise.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"pixlabel.cli.{name}")
        except ModuleNotFoundError as exc:  # a command whose module is not built yet stays hidden
            if exc.name == f"pixlabel.cli.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    configure_logging(quiet=args.quiet, verbose=args.verbose)
    try:
        return int(args.func(args) or 0)
    except PixlabelError as exc:
        print(f"pixlabel {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted; finished work is kept, re-run the same command to resume", file=sys.stderr)
        return 130
    except Exception:
        logging.getLogger("pixlabel").exception("internal error in %s", args.command)
        return 1


if __name__ == "__main__":
    sys.exit(main())
