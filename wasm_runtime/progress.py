"""A one-line elapsed-time indicator on stderr for the CLI's long phases (a cold kernel cache makes the first
packaging take minutes). Shown only on a terminal: logs and pipes get no carriage-return noise."""

from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager


@contextmanager
def phase(label: str, enabled: bool = True, stream=None, interval: float = 0.5):
    stream = sys.stderr if stream is None else stream
    if not enabled or not stream.isatty():
        yield
        return
    stop = threading.Event()
    t0 = time.perf_counter()

    def tick():
        while not stop.wait(interval):
            stream.write(f"\r{label}... {time.perf_counter() - t0:.0f} s")
            stream.flush()

    thread = threading.Thread(target=tick, name="progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        stream.write("\r\x1b[K")  # erase the line so the summary that follows starts clean
        stream.flush()
