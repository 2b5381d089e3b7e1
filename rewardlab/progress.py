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
    """A rich progress bar on stderr with the latest metrics beside it."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self._progress: Any = None
        self._task: Any = None

    def start(self, task: str, total: int | None) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.finish()
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
        if self._progress is None:
            return
        shown = "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items())
        if metrics:
            self._progress.update(self._task, advance=n, metrics=shown)
        else:
            self._progress.update(self._task, advance=n)

    def finish(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def message(self, text: str) -> None:
        (self._progress.console if self._progress else self.console).print(text, highlight=False)
