"""Run a covidweak command with its progress as JSON lines on stdout, for a parent process.

Slicer runs inference in a child process (``PythonSlicer -m covidweak.slicer.progress_stream
segment CT --out DIR ...``) so its GUI stays responsive. Every command reports to the
progress :func:`covidweak.cli.main` hands it (:func:`covidweak.progress.command_progress`);
here that is one that prints ``{"done": 3, "total": 40, "message": "lesion probability"}``
per update, so any command streams progress without a flag of its own. The
parent ignores every other stdout line. tqdm's own output is no substitute: its
redraws carry no line breaks and its format changes between versions.
"""

from __future__ import annotations

import json
import sys
from typing import Optional, Sequence, TextIO

from .. import progress as _progress


def json_progress(stream: Optional[TextIO] = None) -> _progress.Progress:
    """A :class:`Progress` that writes one JSON line per update (flushed at once)."""

    def callback(done: int, total: int, message: str) -> None:
        out = stream if stream is not None else sys.stdout
        out.write(json.dumps({"done": int(done), "total": int(total), "message": str(message)}) + "\n")
        out.flush()

    return _progress.Progress(callback)


def parse_progress_line(line: str) -> Optional[tuple[int, int, str]]:
    """``(done, total, message)`` of a progress line, None for any other line."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        record = json.loads(line)
        return int(record["done"]), int(record["total"]), str(record.get("message", ""))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``covidweak`` command line with JSON progress lines instead of progress bars."""
    from .. import cli

    return cli.main(argv, progress=json_progress())


if __name__ == "__main__":
    sys.exit(main())
