"""Progress of long runs on stderr: a live bar in a terminal, plain periodic lines anywhere else.

A bar redrawn in place means nothing in a log file, a CI job or under ``nohup``; there the same
progress comes as one line every ``ATTRIBKIT_PROGRESS_EVERY`` seconds (default 30) and one at the end:
``explaining: 128/400 (32%), 3.10 texts/s, ETA 1m 28s``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

#: Seconds between plain progress lines when stderr is not a terminal (environment variable).
EVERY_VARIABLE = "ATTRIBKIT_PROGRESS_EVERY"
DEFAULT_EVERY = 30.0


class ProgressUpdate(Protocol):
    def __call__(self, completed: int, info: str = "") -> None: ...


def _duration(time_left: float) -> str:
    seconds = round(time_left)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


class PlainProgress:
    """Progress as plain lines: one every ``every`` seconds (the first after one period), and the last one.

    Args:
        total: Units of work in all.
        description: What is being done (``explaining``).
        unit: What one unit is (``texts``, ``steps``).
        every: Seconds between lines (0 = a line for every update).
        write: Where lines go (stderr by default).
    """

    def __init__(
        self,
        total: int,
        description: str,
        *,
        unit: str = "texts",
        every: float = DEFAULT_EVERY,
        write: Callable[[str], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total, self.description, self.unit, self.every = total, description, unit, every
        self._write = write or (lambda line: print(line, file=sys.stderr, flush=True))
        self._clock = clock
        self._start = clock()
        self._first: int | None = None
        self._last_line = self._start  # the first line after one period: a quick run writes only its last
        self._shown: tuple[int, str] | None = None
        self.completed = 0
        self.info = ""

    def update(self, completed: int, info: str = "") -> None:
        """Record progress; write a line if ``every`` seconds passed since the last one."""
        if self._first is None:
            self._first = completed  # work resumed from disk is not counted in the rate
        self.completed, self.info = completed, info or self.info
        now = self._clock()
        if now - self._last_line >= self.every:
            self._emit(now)

    def finish(self) -> None:
        """Write the final state (unless that exact line was the last one written)."""
        if self._shown != (self.completed, self.info):
            self._emit(self._clock())

    def line(self, now: float) -> str:
        """The progress line at time ``now``."""
        share = f" ({100 * self.completed / self.total:.0f}%)" if self.total else ""
        text = f"{self.description}: {self.completed}/{self.total}{share}"
        elapsed = now - self._start
        done_here = self.completed - (self._first or 0)
        if elapsed > 0 and done_here > 0:
            rate = done_here / elapsed
            text += f", {rate:.2f} {self.unit}/s"
            if self.completed < self.total:
                text += f", ETA {_duration((self.total - self.completed) / rate)}"
        return text + (f", {self.info}" if self.info else "")

    def _emit(self, now: float) -> None:
        self._write(self.line(now))
        self._last_line = now
        self._shown = (self.completed, self.info)


def _every() -> float:
    text = os.environ.get(EVERY_VARIABLE, "")
    try:
        return max(0.0, float(text)) if text else DEFAULT_EVERY
    except ValueError:
        return DEFAULT_EVERY


@contextlib.contextmanager
def progress_bar(total: int, description: str, enabled: bool, *, unit: str = "texts") -> Iterator[ProgressUpdate]:
    """Progress on stderr; yields ``update(completed, info="")``.

    In a terminal: a rich bar with count, rate, elapsed time, ETA and ``info``. Elsewhere (a log, a
    pipe, CI): plain lines every ``ATTRIBKIT_PROGRESS_EVERY`` seconds (default 30) and at the end.

    Args:
        total: Units of work in all.
        description: What is being done.
        enabled: False shows nothing.
        unit: What one unit is, for the rate (``texts``, ``steps``).
    """
    if not enabled:
        yield lambda completed, info="": None
        return
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:
        plain = PlainProgress(total, description, unit=unit, every=_every())
        yield plain.update  # a run that fails says so itself: no progress line after its error
        plain.finish()
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            return Text(f"{task.speed:.2f} {unit}/s" if task.speed else f"- {unit}/s")

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(description, total=total, info="")

        def update(completed: int, info: str = "") -> None:
            if info:
                bar.update(task, completed=completed, info=info)
            else:
                bar.update(task, completed=completed)

        yield update
