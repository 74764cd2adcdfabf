"""Errors a user can fix.

Every message names the problem and the fix in one line. The CLI prints such
errors without a traceback and exits with status 2; Slicer modules show them
in the status line.
"""


class CovidWeakError(Exception):
    """Base class: a problem with the user's input, model or environment."""


class InputError(CovidWeakError):
    """An image, mask or file that cannot be used as given."""


class ModelError(CovidWeakError):
    """A missing, corrupt or mismatched weight file."""


class DeviceError(CovidWeakError):
    """A requested compute device that is not available."""


class CancelledError(CovidWeakError):
    """The user cancelled a long-running operation."""
