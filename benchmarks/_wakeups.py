"""Count event-loop wake-ups in-process, on asyncio and on trio.

asyncio: wrap the loop's selector so each return from ``select()`` (one
wake-up of the loop) is counted. trio: an instrument counting
``after_io_wait``. uvloop has no hook for this; use ``strace -c`` there.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class WakeupCounter:
    """Records the ``time.monotonic()`` of each wake-up while ``counting``."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.counting = False

    def record(self) -> None:
        if self.counting:
            self.times.append(time.monotonic())

    def count_before(self, deadline: float) -> int:
        """Wake-ups before ``deadline`` (excludes the one that ends a sleep)."""
        return sum(1 for moment in self.times if moment < deadline)


@contextmanager
def count_wakeups() -> Iterator[WakeupCounter | None]:
    """Count wake-ups of the running loop; yields None where unsupported."""
    import sniffio

    counter = WakeupCounter()
    library = sniffio.current_async_library()
    if library == "trio":
        import trio

        class Instrument(trio.abc.Instrument):
            def after_io_wait(self, timeout: float) -> None:
                counter.record()

        instrument = Instrument()
        trio.lowlevel.add_instrument(instrument)
        try:
            yield counter
        finally:
            trio.lowlevel.remove_instrument(instrument)
        return
    import asyncio

    loop = asyncio.get_running_loop()
    selector = getattr(loop, "_selector", None)
    if selector is None:  # uvloop
        yield None
        return
    original = selector.select

    def select(timeout: Any = None) -> Any:
        events = original(timeout)
        counter.record()
        return events

    selector.select = select
    try:
        yield counter
    finally:
        selector.select = original


if __name__ == "__main__":  # pragma: no cover
    sys.exit("import this module; it has no command line")
