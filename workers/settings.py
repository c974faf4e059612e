"""Worker settings: one frozen dataclass built once from the environment (and CLI flags).

Declared in ``common/settings.py`` with every other setting, so that the settings table is
generated from one place; re-exported here for the worker runtime."""

from common.settings import WorkerSettings, default_worker_id

__all__ = ["WorkerSettings", "default_worker_id"]
