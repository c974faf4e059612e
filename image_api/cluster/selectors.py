"""Reads: the cluster status from the registry and the queue."""

from __future__ import annotations

from typing import Any

from image_api.broker import broker


def workers_status() -> dict[str, Any]:
    return broker().cluster_status()
