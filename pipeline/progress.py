"""Progress of long work: a bar on a terminal, a log line every few seconds elsewhere."""

import logging
import sys
import time

log = logging.getLogger("quests_pipeline")


class Progress:
    def __init__(self, label: str, total: int, unit: str = "", interval: float = 5.0):
        self.label, self.total, self.unit, self.interval = label, max(total, 0), unit, interval
        self.done = 0
        self.started = self.last = time.monotonic()
        self.tty = sys.stderr.isatty()

    def advance(self, amount: int = 1) -> None:
        self.done += amount
        now = time.monotonic()
        if self.tty:
            width = 30
            filled = int(width * self.done / self.total) if self.total else width
            sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] "
                             f"{self.done}/{self.total} {self.unit} {now - self.started:.0f}s")
            sys.stderr.flush()
            if self.done >= self.total:
                sys.stderr.write("\n")
        elif now - self.last >= self.interval or self.done >= self.total:
            log.info("%s: %d/%d %s (%.0f s)", self.label, self.done, self.total, self.unit, now - self.started)
            self.last = now
