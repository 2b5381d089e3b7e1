"""Progress and messages from long-running library code, without the library printing.

Library functions take a `Reporter`; the default one logs. The CLI passes `RichReporter`, which draws
a progress bar with the live metrics (loss, accuracy, pairs/s).
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("rewardlab")


class Reporter:
    """Receives progress from training, scoring and reports. Subclass to draw it somewhere."""

    def start(self, task: str, total: int | None) -> None:
        log.info("%s (%s)", task, total)

    def advance(self, n: int = 1, **metrics: Any) -> None:
        pass

    def finish(self) -> None:
        pass

    def message(self, text: str) -> None:
        log.info(text)


class RichReporter(Reporter):
    """A rich progress bar on stderr with the latest metrics beside it.

    When stderr is not a terminal (a log file, CI, a batch scheduler) a bar would only appear at the end,
    so a plain line with the count, elapsed and remaining time is written every `every_s` seconds instead.
    """

    def __init__(self, every_s: float = 30.0) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.every_s = every_s
        self._progress: Any = None
        self._task: Any = None
        self._plain: _PlainProgress | None = None

    def start(self, task: str, total: int | None) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.finish()
        if not self.console.is_terminal:
            self._plain = _PlainProgress(task, total, self.every_s, self.console.print)
            return
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[metrics]}"),
            console=self.console,
            transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(task, total=total, metrics="")

    def advance(self, n: int = 1, **metrics: Any) -> None:
        shown = "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items())
        if self._plain is not None:
            self._plain.advance(n, shown)
            return
        if self._progress is None:
            return
        if metrics:
            self._progress.update(self._task, advance=n, metrics=shown)
        else:
            self._progress.update(self._task, advance=n)

    def finish(self) -> None:
        if self._plain is not None:
            self._plain.finish()
            self._plain = None
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def message(self, text: str) -> None:
        (self._progress.console if self._progress else self.console).print(text, highlight=False)


class _PlainProgress:
    """Progress as occasional log lines: 'training 120/510 (24%)  2m10s elapsed, ~6m50s left  loss 0.68'."""

    def __init__(self, task: str, total: int | None, every_s: float, emit: Any) -> None:
        import time

        self.task, self.total, self.every_s, self.emit = task, total, every_s, emit
        self.clock = time.monotonic
        self.started = self.last = self.clock()
        self.done, self.metrics = 0, ""

    def advance(self, n: int, metrics: str) -> None:
        self.done += n
        self.metrics = metrics or self.metrics
        if self.clock() - self.last >= self.every_s:
            self._line()

    def finish(self) -> None:
        self._line()

    def _line(self) -> None:
        self.last = now = self.clock()
        elapsed = now - self.started
        count = str(self.done) if self.done or self.total else ""
        if self.total:
            count += f"/{self.total} ({100 * self.done / self.total:.0f}%)"
        left = ""
        if self.total and self.done:
            left = f", ~{_duration(elapsed * (self.total - self.done) / self.done)} left"
        count = f"{count}  " if count else ""
        line = f"{self.task} {count}{_duration(elapsed)} elapsed{left}  {self.metrics}"
        self.emit(line.rstrip(), highlight=False)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
