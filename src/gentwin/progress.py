"""Progress of a whole job as plain lines (logs, pipes): its share done, the time spent and an ETA.

A line is written when about ``step`` more of the job is done or ``every`` seconds have passed since
the last one, so a one-hour run and a one-minute run both print a few dozen lines, each with the
time left for the whole job (not for the current epoch).
"""

from __future__ import annotations

import sys
import time


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
    """

    def __init__(self, what: str = "", every: float = 30.0, step: float = 0.05, write=None, start: float = 0.0):
        self.what, self.every, self.step, self.start = what, every, step, start  # start: done before (a resume)
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
        """Writes a line if due (or ``force``); returns whether it did."""
        now = time.perf_counter()
        due = fraction - self.last_fraction >= self.step - 1e-9 or now - self.last_time >= self.every
        if not (due or force):
            return False
        self.write(self.line(fraction, detail, now))
        self.last_time, self.last_fraction = now, fraction
        return True
