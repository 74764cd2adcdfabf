"""The one way a module Logic runs covidweak work: in this process or in a child process, chosen explicitly.

* :attr:`Where.IN_PROCESS` (scripts, tests, headless batch): this Python runs the command; Cancel
  stops it at its next progress check.
* :attr:`Where.CHILD_PROCESS` (the Slicer panel): a child Python runs it, so PyTorch never loads in
  Slicer's GUI process, a crash cannot take the scene with it, and Cancel kills it at once.

Both run a ``covidweak`` command line (the same arguments, the same output files) and report to
the same :class:`~covidweak.progress.Progress`, handed to the command explicitly
(:func:`covidweak.cli.main`'s ``progress``).
"""

from __future__ import annotations

import enum
from typing import Optional, Sequence

from ..errors import InputError
from ..progress import Progress


class Where(enum.Enum):
    """Where a Logic's covidweak work runs."""

    IN_PROCESS = "in this process"
    CHILD_PROCESS = "in a child process"


def child_command(argv: Sequence[str]) -> list[str]:
    """The child process's command line for ``covidweak ARGV...``: its progress arrives as JSON lines
    (:mod:`covidweak.slicer.progress_stream`)."""
    from .child_process import python_command

    return [*python_command(), "-m", "covidweak.slicer.progress_stream", *[str(part) for part in argv]]


def run_command(argv: Sequence, where: Where, progress: Optional[Progress] = None, work_dir=None) -> None:
    """Run ``covidweak ARGV...`` and return when its outputs are written.

    Raises the command's own one-line :class:`~covidweak.errors.CovidWeakError` (and
    :class:`~covidweak.errors.CancelledError` after a cancel) wherever it ran.
    """
    argv = [str(part) for part in argv]
    if not isinstance(where, Where):
        raise TypeError(f"where must be a Where, not {where!r}")
    if where is Where.CHILD_PROCESS:
        from .child_process import ChildProcess, child_environment

        ChildProcess(child_command(argv), env=child_environment(), cwd=work_dir).wait(progress)
        return
    from .. import cli

    if argv[0] not in cli.COMMAND_MODULES:
        raise InputError(f"this covidweak has no '{argv[0]}' command: update the covidweak package (pip install -U)")
    try:
        args = cli.build_parser().parse_args(argv)
    except SystemExit:  # argparse has printed the reason to stderr
        raise InputError(f"covidweak {argv[0]} refused the arguments {' '.join(argv[1:])}: see the console") from None
    args.progress = progress
    code = int(args.func(args) or 0)
    if code:
        raise InputError(f"covidweak {argv[0]} stopped with exit status {code}: run it in a terminal to see why")
