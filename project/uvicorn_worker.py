"""gunicorn's worker class for the API (``worker_class`` in project/gunicorn_conf.py)."""

from __future__ import annotations

import logging
from typing import Any

from uvicorn_worker import UvicornWorker


class ApiWorker(UvicornWorker):
    """uvicorn under gunicorn: h11 with a bounded header size, no lifespan (Django has none),
    and uvicorn's access lines off (project/asgi_middleware.py writes the structured ones)."""

    CONFIG_KWARGS: dict[str, Any] = {
        "loop": "asyncio",
        "http": "h11",
        "lifespan": "off",
        "access_log": False,
        # Headers of one request: at most this much buffered before it is refused.
        "h11_max_incomplete_event_size": 64 * 1024,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # UvicornWorker gives uvicorn's loggers gunicorn's handlers directly; ours go through
        # the root handler like every other line.
        for name in ("uvicorn.error", "uvicorn.access"):
            logger = logging.getLogger(name)
            logger.handlers = []
            logger.propagate = True
