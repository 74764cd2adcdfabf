"""Run a covidweak command in a child process: progress from its stdout, Cancel kills its whole tree.

Inference runs out of Slicer's process so that a crash or an out-of-memory kill
of PyTorch cannot take the user's scene with it, and so that Cancel can stop it
at any moment instead of at the next progress check. The child starts in a
session (process group) of its own: data-loader workers or any other grandchild
die with it when the group is killed.
"""

from __future__ import annotations

import collections
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Optional, Sequence

from ..errors import CancelledError, CovidWeakError
from ..progress import Progress
from .progress_stream import parse_progress_line

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
KILL_GRACE_S = 3.0


def python_command() -> list[str]:
    """The interpreter for child processes: Slicer's PythonSlicer launcher when present.

    Inside Slicer ``sys.executable`` may be the application itself, which would
    open a second Slicer window; PythonSlicer sets up the same environment
    without a GUI.
    """
    launcher = shutil.which("PythonSlicer")
    return [launcher] if launcher else [sys.executable]


def child_environment() -> dict[str, str]:
    """This environment with the folder holding ``covidweak`` first on PYTHONPATH.

    In a Slicer extension ``covidweak`` sits next to the modules rather than in
    site-packages, so the child would not find it otherwise.
    """
    import covidweak  # this package, located wherever it was installed or copied

    package_parent = str(Path(covidweak.__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"  # progress lines must arrive as they are written
    return env


class ChildProcess:
    """One running command; reads its progress lines and keeps the tail of stderr."""

    def __init__(self, command: Sequence[str], env: Optional[dict] = None, cwd: Optional[str] = None):
        self.command = [str(part) for part in command]
        kwargs = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP} if os.name == "nt" else {"start_new_session": True}
        try:
            self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                            env=env, cwd=cwd, **kwargs)
        except OSError as error:
            raise CovidWeakError(f"cannot start {self.command[0]} ({error.strerror}): check the Python installation") from None
        self.latest: tuple[int, int, str] = (0, 0, "starting")
        # Every progress line, in order, until wait() reports it: a fast command can print several
        # stages between two polls, and each stage should reach the progress bar.
        self._updates: collections.deque = collections.deque()
        self._stderr = collections.deque(maxlen=40)
        self._readers = [threading.Thread(target=self._read_stdout, daemon=True),
                         threading.Thread(target=self._read_stderr, daemon=True)]
        for reader in self._readers:
            reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read_stdout(self) -> None:
        for line in self.process.stdout:
            parsed = parse_progress_line(line)
            if parsed is not None:
                self.latest = parsed
                self._updates.append(parsed)

    def _read_stderr(self) -> None:
        for line in self.process.stderr:
            if line.strip():
                self._stderr.append(line.rstrip())

    def wait(self, progress: Optional[Progress] = None, interval_s: float = 0.05) -> None:
        """Wait for the command, reporting its progress; kill it when ``progress`` is cancelled.

        Raises :class:`CancelledError` after a cancel, :class:`CovidWeakError`
        with the child's own one-line message when it fails.
        """
        while True:
            with contextlib.suppress(subprocess.TimeoutExpired):  # still running: report progress, look again
                self.process.wait(timeout=interval_s)
            if self.process.returncode is not None:
                break
            if progress is not None:
                try:
                    self._report(progress)
                except CancelledError:
                    self.kill()
                    raise
        for reader in self._readers:
            reader.join(timeout=5)
        if progress is not None:
            self._report(progress)  # the stages printed after the last poll
        self._raise_for_status(self.process.returncode)

    def _report(self, progress: Progress) -> None:
        """Every progress line received since the last call, or the latest again (so a cancel is noticed)."""
        if not self._updates:
            progress.update(*self.latest)
        while self._updates:
            progress.update(*self._updates.popleft())

    def kill(self) -> None:
        """Stop the command and everything it started: SIGTERM to the group, SIGKILL if it lingers."""
        if self.process.poll() is not None:
            return
        if os.name == "nt":
            subprocess.run(["taskkill", "/F", "/T", "/PID", str(self.pid)], capture_output=True)
        else:
            _signal_group(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=KILL_GRACE_S)
            except subprocess.TimeoutExpired:
                _signal_group(self.pid, signal.SIGKILL)
        self.process.wait()
        if os.name != "nt":
            # The leader is gone, but a grandchild that ignored SIGTERM may still hold the group.
            _signal_group(self.pid, signal.SIGKILL)

    @property
    def stderr_tail(self) -> list[str]:
        return list(self._stderr)

    def _raise_for_status(self, code: int) -> None:
        if code == 0:
            return
        if code == EXIT_INTERRUPTED:
            raise CancelledError("inference was interrupted; no partial output was kept")
        if code < 0:
            raise CovidWeakError(f"inference process was killed by signal {-code} (out of memory?): "
                                 f"try device cpu, or close other programs")
        last = self._stderr[-1] if self._stderr else ""
        if code == EXIT_USER_ERROR and ": error: " in last:
            raise CovidWeakError(last.split(": error: ", 1)[1])
        detail = " | ".join(self.stderr_tail[-3:]) or "no error output"
        raise CovidWeakError(f"inference process failed with exit status {code} ({detail}); "
                             f"see the Python console, or run the command in a terminal: {' '.join(self.command)}")


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group has already gone
        os.killpg(pid, sig)  # with start_new_session the group id is the child's pid
