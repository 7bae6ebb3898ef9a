"""Every error a user can cause, and the exit code each command gives it: one place for both.

A command catches ``GentwinError``, prints ``error: <message>`` (one line that names the problem) and
exits with the error's ``exit_code``. Anything else is a bug in gentwin and keeps its traceback.

| code | meaning |
|---|---|
| 0 | done |
| 1 | a bug (a traceback), or a command that had nothing to do (``report`` with no finished job) |
| 2 | invalid configuration or usage: nothing was written |
| 3 | a missing, unreadable or malformed data file: nothing was left behind |
| 4 | a loss became NaN or infinite: training stopped before the update |
| 130 | interrupted (Ctrl-C) |
"""

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_DATA, EXIT_DIVERGED, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130


class GentwinError(Exception):
    """Base of the errors a user can cause; ``exit_code`` is what the command exits with."""

    exit_code = EXIT_FAILED


class ConfigError(GentwinError, ValueError):
    """An invalid configuration value; the message names the key and what is allowed (exit 2)."""

    exit_code = EXIT_CONFIG


class UsageError(ConfigError):
    """Bad command-line arguments of ``sample``, ``report`` or ``export-model`` (exit 2)."""


class CheckpointError(ConfigError):
    """A file that is missing, is not a gentwin checkpoint, or asks to build a foreign class (exit 2)."""


class DataError(GentwinError, ValueError):
    """A missing, malformed or inconsistent data file; the message names the file (exit 3)."""

    exit_code = EXIT_DATA


class ConditionsError(DataError):
    """An unreadable conditions file given to ``sample`` (exit 3)."""


class ExportError(GentwinError):
    """A model that cannot be exported in the requested format (exit 1); the message says why."""


class Diverged(GentwinError, RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept (exit 4)."""

    exit_code = EXIT_DIVERGED


def not_text(path, error: UnicodeDecodeError, expected: str) -> str:
    """The one-line message for a binary file where a text file was expected."""
    return (f"{path}: not a text file (byte {error.object[error.start]:#04x} at offset {error.start} is not UTF-8; "
            f"expected {expected})")
