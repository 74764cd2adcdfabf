"""The ``covidweak`` command line: one entry point, one subcommand module each.

Each module in :mod:`covidweak.commands` exposes ``add_parser(subparsers)``,
which registers its subcommand and sets ``func`` to a callable taking the parsed
arguments and returning an exit status. Errors the user can fix
(:class:`~covidweak.errors.CovidWeakError`) are printed as one line, without a
traceback, and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys
from typing import Optional, Sequence

from . import __version__
from .errors import CancelledError, CovidWeakError
from .progress import Progress

COMMAND_MODULES = ("phantom", "lungs", "demo", "segment", "severity", "diagnose", "index", "similar", "clusters",
                   "train", "export", "evaluate", "bench")
PLUGIN_GROUP = "covidweak.commands"
"""Entry points that add subcommands from other distributions (each names a module with ``add_parser``)."""
EXTENSION_COMMANDS = {"batch": "the extension's module Logics (COVIDBatchLib)"}
"""Subcommands the Slicer extension's distribution plugs in: ``covidweak`` never imports the extension."""
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="covidweak",
        description="Weakly supervised COVID-19 lesion analysis for chest CT and X-ray (research use only).",
    )
    parser.add_argument("--version", action="version", version=f"covidweak {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            importlib.import_module(f"covidweak.commands.{name}").add_parser(subparsers)
        except ModuleNotFoundError as error:
            from .optional import missing_extra_error

            missing = missing_extra_error(error.name, f"covidweak {name}")
            if missing is None:
                raise
            add_refusing_parser(subparsers, name, missing)
    plugins = {entry.name: entry for entry in importlib.metadata.entry_points(group=PLUGIN_GROUP)}
    for name in sorted(plugins):
        plugins[name].load().add_parser(subparsers)
    for name, what in EXTENSION_COMMANDS.items():
        if name not in plugins:
            add_refusing_parser(subparsers, name, CovidWeakError(
                f"covidweak {name} runs {what}, which this installation lacks: install the extension's Python "
                f"distribution (pip install -e . in the SlicerCOVIDWeak repository), or run it in Slicer"))
    return parser


def add_refusing_parser(subparsers, name: str, error: CovidWeakError) -> None:
    """Register command ``name`` as one that cannot run here: it accepts any arguments and raises ``error``
    (e.g. ``train`` inside Slicer, where the training code is not installed)."""

    def refuse(args):
        raise error

    # No option prefix: every argument, "--input" and "-h" included, is taken without complaint.
    stand_in = subparsers.add_parser(name, help="(not available here: run it to see why)", add_help=False,
                                     prefix_chars="\0")
    stand_in.add_argument("ignored", nargs=argparse.REMAINDER)
    stand_in.set_defaults(func=refuse)


def main(argv: Optional[Sequence[str]] = None, progress: Optional[Progress] = None) -> int:
    """Run one command; ``progress`` (default: a tqdm bar per command) receives its progress and cancel."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USER_ERROR
    args.progress = progress
    try:
        return int(args.func(args) or 0)
    except CancelledError as error:
        print(f"covidweak {args.command}: {error}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print(f"covidweak {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except CovidWeakError as error:
        print(f"covidweak {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except ModuleNotFoundError as error:
        from .optional import missing_extra_error

        missing = missing_extra_error(error.name, f"covidweak {args.command}")
        if missing is None:
            raise
        print(f"covidweak {args.command}: error: {missing}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
