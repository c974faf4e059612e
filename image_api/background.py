"""The background threads of an API process (retention janitor, callback sender): started
once per process, from gunicorn's ``post_worker_init``."""

from __future__ import annotations

import threading
from collections.abc import Callable


def start_once(name: str, started: threading.Event, interval_s: float,
               run: Callable[[float, threading.Event], None]) -> threading.Event | None:
    """Run ``run(interval_s, stop)`` in a daemon thread called ``name``, unless ``started``
    says it runs already or ``interval_s`` is 0 (turned off): the event that stops it, or
    None."""
    if interval_s <= 0 or started.is_set():
        return None
    started.set()
    stop = threading.Event()
    threading.Thread(target=run, args=(interval_s, stop), name=name, daemon=True).start()
    return stop
