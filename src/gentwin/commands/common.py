"""What every command shares: ``key=value`` arguments, the one-line error and exit code, output capture."""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Callable
from pathlib import Path

from gentwin.errors import UsageError


def fail(message: str, code: int) -> None:
    """Prints ``error: <message>`` on stderr and exits with ``code``."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


def console(main: Callable[[list[str]], int]) -> None:
    """A console script: ``main(arguments)``'s return value is the exit code."""
    sys.exit(main(sys.argv[1:]))


def options(argv: list[str], valued: dict[str, str], switches: dict[str, tuple[str, bool]]) -> list[str]:
    """``argv`` with each ``key=value`` argument written as the ``--`` option it stands for, for a command
    whose parser takes options: ``valued`` maps a key to its option (``out=X`` -> ``--out X``),
    ``switches`` a key to its switch and the value that sets it (``check=false`` -> ``--no-check``).
    Anything else stays (a path holding ``=``, a multirun's folder, is a path when it exists or its
    part before ``=`` holds a ``/``; a bad value is left for the parser to name)."""
    out = []
    for a in argv:
        key, sep, value = a.partition("=")
        if not sep or a.startswith("-") or "/" in key or Path(a).exists():
            out.append(a)
        elif key in valued:
            out += [valued[key], value]
        elif key in switches and value.lower() in ("true", "false"):
            switch, sets = switches[key]
            out += [switch] if (value.lower() == "true") == sets else []
        else:
            out.append(a)
    return out


def integer(args: dict, key: str, default: int | None, low: int = 1) -> int | None:
    """``args[key]`` as an integer >= ``low`` (``default`` when absent); raises ``UsageError`` otherwise."""
    if key not in args:
        return default
    try:
        value = int(args[key])
    except ValueError:
        raise UsageError(f"{key}={args[key]}: must be an integer") from None
    if value < low:
        raise UsageError(f"{key}={value}: must be >= {low}")
    return value


def flag(args: dict, key: str) -> bool:
    """``args[key]`` as ``true``/``false`` (absent: false); raises ``UsageError`` otherwise."""
    value = args.get(key, "false").lower()
    if value not in ("true", "false"):
        raise UsageError(f"{key}={args[key]}: must be true or false")
    return value == "true"


class _Tee(io.TextIOBase):
    """A text stream that also appends what it is given to a log file (terminal redraws left out)."""

    def __init__(self, stream, log):
        self.stream, self.log = stream, log

    def write(self, text: str) -> int:
        self.stream.write(text)
        if "\r" not in text and "\x1b[" not in text:
            self.log.write(text)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()
        self.log.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self):
        return self.stream.encoding


@contextlib.contextmanager
def tee(path: Path):
    """``run.log`` keeps what the run prints (stdout and stderr), beside Hydra's own log lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", buffering=1) as log:
        out, err = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = _Tee(out, log), _Tee(err, log)
        try:
            yield
        finally:
            sys.stdout, sys.stderr = out, err
