"""Progress reporting and cancellation shared by the CLI (tqdm) and Slicer (progress bar + Cancel).

Long-running functions take an optional ``progress: Progress`` argument and call
``progress.update(done, total, message)`` between units of work. The call raises
:class:`CancelledError` once ``cancel()`` was requested, so work stops at a clean
boundary and nothing half-written is kept.
"""

from __future__ import annotations

import sys
import threading
from typing import Callable, Iterable, Iterator, Optional, TypeVar

from .errors import CancelledError

T = TypeVar("T")
Callback = Callable[[int, int, str], None]


class Progress:
    """Forward progress to a callback and carry a thread-safe cancel flag."""

    def __init__(self, callback: Optional[Callback] = None):
        self._callback = callback
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        if self._cancel.is_set():
            raise CancelledError("cancelled by the user; no partial output was kept")

    def update(self, done: int, total: int, message: str = "") -> None:
        self.check()
        if self._callback is not None:
            self._callback(done, total, message)

    def iterate(self, items: Iterable[T], total: int, message: str = "") -> Iterator[T]:
        """Yield ``items`` while reporting ``i/total`` after each one."""
        self.update(0, total, message)
        for i, item in enumerate(items, start=1):
            yield item
            self.update(i, total, message)


def tqdm_progress(desc: str = "") -> Progress:
    """A :class:`Progress` drawing a tqdm bar on a terminal and staying quiet otherwise."""
    from tqdm import tqdm

    bar = tqdm(total=0, desc=desc, disable=not sys.stderr.isatty(), leave=False)

    def callback(done: int, total: int, message: str) -> None:
        if bar.total != total:
            bar.reset(total=total)
        if message:
            bar.set_description(message, refresh=False)
        bar.n = done
        bar.refresh()

    return Progress(callback)


def command_progress(args, desc: str = "") -> Progress:
    """The progress a command reports to: the one its caller handed over in ``args.progress``, else a tqdm bar.

    :func:`covidweak.cli.main` and :func:`covidweak.slicer.runner.run_command` set
    ``args.progress``: JSON lines for a parent process, or the Slicer panel's progress bar and
    Cancel when a command runs inside Slicer's Python.
    """
    given = getattr(args, "progress", None)
    return given if given is not None else tqdm_progress(desc)
