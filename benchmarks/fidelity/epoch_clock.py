"""A logging handler that notes the time of every end-of-epoch log line (both sides use it:
merbench logs ``epoch N ...``, MMSA ``VAL-...``); plain Python so MMSA's own venv can import it."""

from __future__ import annotations

import logging
import time


class EpochClock(logging.Handler):
    def __init__(self, prefix: str) -> None:
        super().__init__(logging.DEBUG)
        self.prefix = prefix
        self.times: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith(self.prefix):
            self.times.append(time.perf_counter())
