"""Writing a file so that its name holds the old content or the new one, never half of either.

Every writer in the package goes through :func:`replacing`. The content goes to a temporary
file in the target's own folder (the same file system, so the final rename is atomic) and takes
the target's name only when it is complete. An error or a crash leaves the old file, or none,
under the name; an error also removes the temporary file. (A killed process cannot clean up:
its temporary files start with a dot and end in ``.tmp``.)
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Iterator

from ..errors import InputError


def _create_beside(path: Path, suffix: str) -> Path:
    """A new empty file next to ``path``, created exclusively with the user's usual permissions.

    Not :func:`tempfile.mkstemp`: its files are private (mode 0600), and outputs must be as
    readable as any file the user writes (``0o666`` less the umask).
    """
    while True:
        temp = path.parent / f".{path.name}.{secrets.token_hex(4)}{suffix}"
        try:
            os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return temp
        except FileExistsError:
            continue


def _fsync(path: Path, folder: bool = False) -> None:
    if folder and os.name != "posix":
        return  # Windows cannot open a folder; there the rename is as durable as it gets
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _link_without_overwrite(temp: Path, path: Path) -> None:
    """Give ``temp`` the name ``path`` unless ``path`` appeared meanwhile (e.g. another process wrote it)."""
    try:
        os.link(temp, path)
    except FileExistsError:
        raise InputError(f"{path} already exists: choose another name or allow overwriting") from None
    except OSError:
        # Some file systems (FAT, some network shares) have no hard links; the caller's
        # existence check is then the only guard.
        if path.exists():
            raise InputError(f"{path} already exists: choose another name or allow overwriting") from None
        os.replace(temp, path)


@contextlib.contextmanager
def replacing(path, suffix: str = ".tmp", durable: bool = False, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without an error it becomes ``path``.

    ``suffix`` ends the temporary name: keep the real extension where the writer picks its format
    from the name (SimpleITK) or appends one (``numpy.savez`` adds ``.npz`` unless it is there).
    ``durable`` flushes the file and the folder to the disk before returning, for files whose loss
    in a power cut would cost work (training checkpoints, the case index header).
    ``overwrite=False`` refuses to replace a ``path`` that exists by the time the content is ready.
    The parent folder must exist.
    """
    path = Path(path)
    temp = _create_beside(path, suffix)
    try:
        yield temp
        if durable:
            _fsync(temp)
        if overwrite:
            os.replace(temp, path)
        else:
            _link_without_overwrite(temp, path)
        if durable:
            _fsync(path.parent, folder=True)
    finally:
        temp.unlink(missing_ok=True)


def write_text(path, text: str, durable: bool = False) -> None:
    """Write ``text`` (UTF-8, line ends as given) to ``path`` atomically, replacing any old file."""
    with replacing(path, durable=durable) as temp:
        with open(temp, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
