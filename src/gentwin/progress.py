"""Progress of a whole job as plain lines (logs, pipes): its share done, the time spent and an ETA.

A line is written when about ``step`` more of the job is done or ``every`` seconds have passed since
the last one, so a one-hour run and a one-minute run both print a few dozen lines, each with the
time left for the whole job (not for the current epoch).

Steps inside a command that are long only sometimes (the classifier test, leaf post-processing) write
lines only inside :func:`shown`, which the commands open around their final evaluation, and only once
they have taken ``AFTER`` seconds: a short test or a small evaluation prints nothing more.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import time

#: Inside :func:`shown`: seconds a step runs before its first line, and at most between two lines.
AFTER, EVERY = 5.0, 30.0
_shown: contextvars.ContextVar[bool] = contextvars.ContextVar("gentwin_progress_shown", default=False)


def duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``1h02m``."""
    if seconds != seconds or seconds == float("inf"):
        return "?"
    s = int(round(max(seconds, 0)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def eta(elapsed: float, fraction: float) -> float:
    """Seconds left when ``fraction`` of the job took ``elapsed`` seconds (constant speed)."""
    return float("inf") if fraction <= 0 else elapsed * (1 - min(fraction, 1.0)) / fraction


class Lines:
    """Writes ``<what> 35% <detail>  12s, ETA 22s`` lines as the job advances.

    Args:
        what: the job's name at the start of each line (``epoch 3/60`` is given per call as ``detail``).
        every: seconds after which a line is written even if less than ``step`` was done.
        step: share of the job after which a line is written.
        write: where lines go; default ``print`` to ``sys.stdout`` (flushed).
        after: no line at all (forced ones included) before the job has run this many seconds.
    """

    def __init__(self, what: str = "", every: float = 30.0, step: float = 0.05, write=None, start: float = 0.0,
                 after: float = 0.0):
        self.what, self.every, self.step, self.start = what, every, step, start  # start: done before (a resume)
        self.after = after
        self.write = write or (lambda line: print(line, file=sys.stdout, flush=True))
        self.t0 = time.perf_counter()
        self.last_time, self.last_fraction = self.t0, start

    def line(self, fraction: float, detail: str = "", now: float | None = None) -> str:
        elapsed = (time.perf_counter() if now is None else now) - self.t0
        now = (fraction - self.start) / (1 - self.start) if self.start < 1 else 1.0
        left = "done" if fraction >= 1 else f"ETA {duration(eta(elapsed, now))}"
        head = f"{self.what} " if self.what else ""
        return f"{head}{min(fraction, 1.0):4.0%}  {detail + '  ' if detail else ''}{duration(elapsed)}, {left}"

    def update(self, fraction: float, detail: str = "", force: bool = False) -> bool:
        """Writes a line if due (or ``force``; the first at 100 % always is); returns whether it did."""
        now = time.perf_counter()
        if now - self.t0 < self.after:
            return False
        due = fraction - self.last_fraction >= self.step - 1e-9 or now - self.last_time >= self.every
        due = due or fraction >= 1 > self.last_fraction  # the end is always said, once
        if not (due or force):
            return False
        self.write(self.line(fraction, detail, now))
        self.last_time, self.last_fraction = now, fraction
        return True


@contextlib.contextmanager
def shown():
    """Inside: :func:`job` gives the steps that ask for it progress lines on ``sys.stdout`` (through a
    run's ``run.log`` tee)."""
    token = _shown.set(True)
    try:
        yield
    finally:
        _shown.reset(token)


def job(what: str, step: float = 0.1) -> Lines | None:
    """Progress lines for a step named ``what`` inside :func:`shown` (each ``step`` of it, from ``AFTER``
    seconds on, at least every ``EVERY`` seconds), else ``None``: generic code prints nothing unless a
    command asks."""
    return Lines(what, every=EVERY, step=step, after=AFTER) if _shown.get() else None
