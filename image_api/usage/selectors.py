"""Reads: the calling tenant's storage usage and every limit that applies to it."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from distributed.ratelimit import Limit
from image_api.broker import queue_config
from image_api.images.selectors import get_storage
from image_api.tenancy import Caller
from image_api.usage.ledger import ledger
from image_api.usage.services import min_free_bytes, quota_bytes


def _rate_limit() -> dict[str, Any]:
    rate, burst = settings.THROTTLE_RATE, int(settings.THROTTLE_BURST)
    if not rate:
        return {"rate": None, "requests": None, "period_s": None, "burst": None}
    limit = Limit.parse(rate, burst)  # the throttle's own parser
    return {"rate": rate, "requests": limit.count, "period_s": limit.period_s, "burst": burst}


def usage_get(viewer: Caller) -> dict[str, Any]:
    """``viewer``'s usage against its quota, the free-space floor's state (the free bytes
    themselves for an admin only), the rate limit and the per-request caps. Raises
    UsageUnavailable when the ledger is out of reach."""
    used = ledger().used(viewer.tenant)
    quota = quota_bytes()
    floor = min_free_bytes()
    free = get_storage().free_bytes()
    return {
        "tenant": viewer.tenant,
        "storage": {
            "used_bytes": used,
            "quota_bytes": quota or None,
            "available_bytes": max(0, quota - used) if quota else None,
            "over_quota": bool(quota) and used >= quota,
        },
        "free_space": {
            "min_free_bytes": floor or None,
            "below_floor": bool(floor) and free < floor,
            "free_bytes": free if viewer.admin else None,
        },
        "rate_limit": _rate_limit(),
        "limits": {
            "max_upload_bytes": int(settings.MAX_UPLOAD_BYTES),
            "max_request_bytes": settings.API_SETTINGS.bodies.max_request_bytes,
            "max_json_bytes": settings.API_SETTINGS.bodies.max_json_bytes,
            "max_batch_images": int(settings.MAX_BATCH_IMAGES),
            "max_image_pixels": int(settings.MAX_IMAGE_PIXELS),
            "max_jpeg_scans": int(settings.MAX_JPEG_SCANS),
            "max_task_cost_ms": float(settings.MAX_TASK_COST_MS),
            "task_time_limit_s": float(settings.TASK_TIME_LIMIT_SECONDS),
            "request_deadline_s": float(settings.REQUEST_DEADLINE_SECONDS),
            "tenant_max_open_tasks": queue_config().tenant_max_open_tasks,
        },
    }
