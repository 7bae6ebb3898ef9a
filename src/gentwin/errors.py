"""The errors a user can cause, each mapped by ``cli`` to one message and its exit code."""


class ConfigError(ValueError):
    """An invalid configuration value; the message names the key and what is allowed (exit 2)."""


class DataError(ValueError):
    """A missing, malformed or inconsistent data file; the message names the file (exit 3)."""


class Diverged(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept (exit 4)."""


def not_text(path, error: UnicodeDecodeError, expected: str) -> str:
    """The one-line message for a binary file where a text file was expected."""
    return (f"{path}: not a text file (byte {error.object[error.start]:#04x} at offset {error.start} is not UTF-8; "
            f"expected {expected})")
