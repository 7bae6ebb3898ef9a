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


def split(argv: list[str], keys: tuple[str, ...], is_path: Callable[[Path], bool] = Path.exists,
          ) -> tuple[list[str], dict[str, str]]:
    """``(paths, {key: value})`` from ``path ... key=value ...``; raises ``UsageError`` naming an unknown key.
    A multirun's folders hold ``=`` (``0_model.latent_dim=8,seed=1/``): an argument is a path when
    ``is_path`` holds for it or its part before ``=`` holds a ``/``."""
    paths, args = [], {}
    for a in argv:
        key, sep, value = a.partition("=")
        if not sep or "/" in key or is_path(Path(a)):
            paths.append(a)
        elif key in keys:
            args[key] = value
        else:
            raise UsageError(f"unknown argument {key!r}; arguments are {', '.join(keys)}")
    return paths, args


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


def names(value: str | None):
    """A value naming one or more things: ``a`` -> ``"a"``; ``[a,b]`` -> ``["a", "b"]``; ``null`` -> ``None``."""
    if value is None or value.strip().lower() in ("null", "none", ""):
        return None
    value = value.strip()
    if value.startswith("[") and value.endswith("]"):
        return [v.strip().strip("'\"") for v in value[1:-1].split(",") if v.strip()]
    return value


def batch_sizes(args: dict, key: str, default: tuple[int, ...]) -> tuple[int, ...]:
    """``args[key]`` (``1,100`` or ``[1,100]``) as batch sizes >= 1 (``default`` when absent); raises ``UsageError``."""
    if key not in args:
        return default
    try:
        values = tuple(int(b) for b in args[key].strip("[]").split(","))
    except ValueError:
        raise UsageError(f"{key}={args[key]}: a comma-separated list of integers") from None
    if not values or min(values) < 1:
        raise UsageError(f"{key}={args[key]}: batch sizes must be >= 1")
    return values


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
