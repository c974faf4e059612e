"""Per-tenant storage quotas through the API: uploads refused past the quota with nothing
stored, outputs counted, bytes given back on delete and on expiry, submissions refused at or
over the quota; on both ledgers (the database without Redis, Redis with REDIS_URL)."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from image_api import retention
from image_api.auth import create_key
from image_api.models import Job, TenantUsage
from image_api.usage.errors import StorageQuotaExceeded
from image_api.usage.ledger import LocalLedger

pytestmark = pytest.mark.django_db
MIB = 1024 * 1024
SHARPEN = {"filters": ["sharpen"], "output_format": "png"}


def noise_png(side: int, seed: int = 0) -> bytes:
    """A PNG of random pixels: it does not compress, so its size is about 3 x side² bytes."""
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    ok, data = cv2.imencode(".png", pixels)
    assert ok
    return data.tobytes()


@pytest.fixture(params=["database", "redis"])
def ledger_kind(request, settings) -> str:
    """Each test runs on the database ledger (no REDIS_URL) and on the Redis one."""
    if request.param == "redis":
        settings.DISTRIBUTED = request.getfixturevalue("queue_config")
        request.getfixturevalue("redis_client")  # flushed around the test
    else:
        settings.DISTRIBUTED = dataclasses.replace(settings.DISTRIBUTED, redis_url="")
    return request.param


@pytest.fixture
def quota(settings) -> Callable[[int], int]:
    def set_quota(mib: int) -> int:
        settings.TENANT_STORAGE_QUOTA_MB = mib
        return mib * MIB
    return set_quota


def post_upload(api: APIClient, *blobs: bytes):
    files = [SimpleUploadedFile(f"{i}.png", blob) for i, blob in enumerate(blobs)]
    return api.post("/api/images/", {"files": files}, format="multipart")


def used(api: APIClient) -> int:
    response = api.get("/api/usage/")
    assert response.status_code == 200, response.content
    return response.json()["storage"]["used_bytes"]


def stored_uploads(media_root: Path) -> list[Path]:
    return sorted((media_root / "uploads").glob("img_*.png"))


def output_bytes(media_root: Path, job_id: str) -> int:
    """What a job's outputs and thumbnails take on disk (the test's own count)."""
    return sum(p.stat().st_size for p in (media_root / "outputs" / job_id).iterdir()
               if p.name != ".tenant")


def test_an_upload_past_the_quota_is_413_with_the_usage_and_nothing_is_stored(
    api, ledger_kind, quota, media_root
):
    limit = quota(1)
    a, b, c = noise_png(340, 1), noise_png(340, 2), noise_png(340, 3)  # ~347 kB each
    assert post_upload(api, a).status_code == 201
    assert post_upload(api, b).status_code == 201
    assert used(api) == len(a) + len(b)

    response = post_upload(api, c, noise_png(100, 4))

    assert response.status_code == 413
    body = response.json()
    assert body["error"] == "storage_quota_exceeded"
    assert body["usage"] == {"used_bytes": len(a) + len(b), "quota_bytes": limit}
    assert body["requested_bytes"] == len(c) + len(noise_png(100, 4))
    assert len(stored_uploads(media_root)) == 2
    assert used(api) == len(a) + len(b)


# The distributed mode needs Redis, whose ledger is then Redis's.
@pytest.mark.parametrize("ledger_kind, mode", [
    ("database", "threading"), ("redis", "threading"), ("redis", "distributed"),
], indirect=["ledger_kind"])
def test_a_multipart_batch_whose_second_file_would_pass_the_quota_stores_none(
    api, ledger_kind, quota, media_root, mode
):
    # Given a tenant with 400 kB stored under a 1 MiB quota
    quota(1)
    first = noise_png(365, 1)
    assert post_upload(api, first).status_code == 201
    # When a batch uploads two more files of 400 kB: the first fits, the second does not
    files = [SimpleUploadedFile("x.png", noise_png(365, 2)),
             SimpleUploadedFile("y.png", noise_png(365, 3))]
    response = api.post(f"/api/process-batch/{mode}/",
                        {"files": files, "options": json.dumps(SHARPEN)}, format="multipart")
    # Then it is refused and none of it is stored: no upload, no job, no output
    assert response.status_code == 413, response.content
    assert response.json()["usage"]["used_bytes"] == len(first)
    assert len(stored_uploads(media_root)) == 1
    assert not (media_root / "outputs").exists()
    assert api.get("/api/jobs/").json()["total"] == 0
    assert used(api) == len(first)


@pytest.mark.parametrize("mode", ["threading", "multiprocessing"])
def test_outputs_are_counted_and_deletes_give_every_byte_back(
    api, ledger_kind, media_root, mode
):
    image = noise_png(120)
    [meta] = post_upload(api, image).json()["images"]
    job = api.post(f"/api/process-batch/{mode}/", {**SHARPEN, "images": [meta["id"]] * 2},
                   format="json").json()
    assert job["status"] == "completed"
    outputs = output_bytes(media_root, job["id"])
    assert len(list((media_root / "outputs" / job["id"]).glob("*.png"))) == 2
    assert outputs > len(image)  # two outputs of about the input's size, two previews
    assert used(api) == len(image) + outputs

    assert api.delete(f"/api/jobs/{job['id']}/").status_code == 204
    assert used(api) == len(image)
    assert api.delete(f"/api/images/{meta['id']}/").status_code == 204
    assert used(api) == 0


def test_expiry_gives_the_bytes_back(api, ledger_kind, settings, media_root):
    settings.RETENTION_DAYS = 1
    image = noise_png(100)
    [meta] = post_upload(api, image).json()["images"]
    job = api.post("/api/process-batch/threading/", {**SHARPEN, "images": [meta["id"]]},
                   format="json").json()
    assert used(api) == len(image) + output_bytes(media_root, job["id"])
    long_ago = time.time() - 2 * 86400
    for path in [*(media_root / "uploads").glob(f"{meta['id']}.*"),
                 media_root / "outputs" / job["id"]]:
        os.utime(path, (long_ago, long_ago))

    removed = retention.sweep()

    assert removed["uploads"] == 1 and removed["outputs"] == 1
    assert used(api) == 0


def test_at_the_quota_every_mode_is_refused_and_outputs_may_overshoot_by_one_batch(
    api, ledger_kind, quota, media_root
):
    # Given 900 kB of uploads under a 1 MiB quota
    limit = quota(1)
    image = noise_png(548)
    [meta] = post_upload(api, image).json()["images"]
    assert limit - len(image) < 200_000
    # When a batch's outputs take the tenant past it, the batch still completes
    job = api.post("/api/process-batch/threading/", {**SHARPEN, "images": [meta["id"]]},
                   format="json").json()
    assert job["status"] == "completed" and job["results"][0]["status"] == "completed"
    now = len(image) + output_bytes(media_root, job["id"])
    assert now > limit and used(api) == now
    # Then the next submission of any mode, even of samples, is refused with the usage
    modes = ["threading", "multiprocessing"] + (["distributed"] if ledger_kind == "redis"
                                                else [])
    for mode in modes:
        response = api.post(f"/api/process-batch/{mode}/", {"filters": ["grayscale"]},
                            format="json")
        assert response.status_code == 413, (mode, response.content)
        assert response.json()["error"] == "storage_quota_exceeded"
        assert response.json()["usage"] == {"used_bytes": now, "quota_bytes": limit}
    assert post_upload(api, noise_png(10)).status_code == 413
    body = api.get("/api/usage/").json()["storage"]
    assert body == {"used_bytes": now, "quota_bytes": limit, "available_bytes": 0,
                    "over_quota": True}
    # And deleting the job brings the tenant back under it
    api.delete(f"/api/jobs/{job['id']}/")
    assert api.post("/api/process-batch/threading/", {"filters": ["grayscale"]},
                    format="json").status_code == 200


def test_each_tenant_has_its_own_usage(settings, ledger_kind, quota):
    settings.AUTH_REQUIRED = True
    quota(1)
    _, secret_a = create_key("tenant A")
    _, secret_b = create_key("tenant B")
    a, b = APIClient(), APIClient()
    a.credentials(HTTP_AUTHORIZATION=f"Bearer {secret_a}")
    b.credentials(HTTP_AUTHORIZATION=f"Bearer {secret_b}")
    big = noise_png(580)  # over 1 MB: most of the quota
    assert post_upload(a, big).status_code == 201
    assert post_upload(a, noise_png(150)).status_code == 413
    assert post_upload(b, noise_png(150)).status_code == 201  # b's quota is untouched
    assert used(a) == len(big) and used(b) == len(noise_png(150))


def test_no_quota_means_uploads_are_counted_but_never_refused(api, quota, media_root):
    quota(0)
    blobs = [noise_png(400, seed) for seed in range(3)]  # 1.4 MB
    assert post_upload(api, *blobs).status_code == 201
    body = api.get("/api/usage/").json()["storage"]
    assert body == {"used_bytes": sum(map(len, blobs)), "quota_bytes": None,
                    "available_bytes": None, "over_quota": False}


# --- the database ledger (no Redis) ------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_database_ledger_reserves_conditionally_and_never_goes_negative():
    book = LocalLedger()
    assert book.reserve("t1", 600, quota_bytes=1000) == 600
    with pytest.raises(StorageQuotaExceeded) as refused:
        book.reserve("t1", 401, quota_bytes=1000)
    assert (refused.value.used_bytes, refused.value.quota_bytes,
            refused.value.requested_bytes) == (600, 1000, 401)
    assert book.reserve("t1", 400, quota_bytes=1000) == 1000
    assert book.charge("t1", 250) == 1250  # outputs: past the quota
    assert book.release("t1", 5000) == 0
    assert book.used("t1") == 0 and book.used("nobody") == 0
    assert list(TenantUsage.objects.values_list("tenant", "used_bytes")) == [("t1", 0)]
    assert Job.objects.count() == 0


# --- Redis out of reach ------------------------------------------------------------------


def test_with_redis_down_uploads_are_refused_503_and_stored_images_still_run(
    api, settings, queue_config, redis_server, redis_client, media_root
):
    settings.DISTRIBUTED = queue_config
    redis_server.stop()
    try:
        response = post_upload(api, noise_png(50))
        assert response.status_code == 503 and response.json()["error"] == "usage_unavailable"
        assert stored_uploads(media_root) == []
        job = api.post("/api/process-batch/threading/", {"filters": ["grayscale"],
                                                         "images": ["sample-badge"]},
                       format="json")
        assert job.status_code == 200 and job.json()["status"] == "completed"
        assert api.get("/api/usage/").status_code == 503
    finally:
        redis_server.start()


# --- GET /api/usage/ ---------------------------------------------------------------------


def test_the_usage_endpoint_reports_the_quota_floor_rate_and_caps(settings, quota, media_root):
    settings.THROTTLE_RATE = "90/min"
    settings.MIN_FREE_DISK_MB = 3
    settings.MAX_BATCH_IMAGES = 7
    settings.AUTH_REQUIRED = True
    limit = quota(2)
    _, secret = create_key("tenant A")
    _, admin_secret = create_key("ops", admin=True)
    tenant, admin = APIClient(), APIClient()
    tenant.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    admin.credentials(HTTP_AUTHORIZATION=f"Bearer {admin_secret}")
    image = noise_png(60)
    assert post_upload(tenant, image).status_code == 201

    body = tenant.get("/api/usage/").json()

    assert body["storage"] == {"used_bytes": len(image), "quota_bytes": limit,
                               "available_bytes": limit - len(image), "over_quota": False}
    assert body["free_space"] == {"min_free_bytes": 3 * MIB, "below_floor": False,
                                  "free_bytes": None}  # how full the disk is: admins only
    assert body["rate_limit"] == {"rate": "90/min", "requests": 90, "period_s": 60,
                                  "burst": settings.THROTTLE_BURST}
    limits = body["limits"]
    assert limits["max_batch_images"] == 7
    assert limits["max_upload_bytes"] == settings.MAX_UPLOAD_BYTES
    assert limits["max_image_pixels"] == settings.MAX_IMAGE_PIXELS
    assert limits["tenant_max_open_tasks"] == settings.DISTRIBUTED.tenant_max_open_tasks
    assert body["tenant"] != "anonymous"
    seen = admin.get("/api/usage/").json()
    assert seen["storage"]["used_bytes"] == 0  # the admin's own usage, not the tenant's
    stat = os.statvfs(media_root)
    assert abs(seen["free_space"]["free_bytes"] - stat.f_bavail * stat.f_frsize) < 64 * MIB


def test_without_throttle_and_floor_they_read_as_null(api, settings):
    settings.THROTTLE_RATE = ""
    settings.MIN_FREE_DISK_MB = 0
    body = api.get("/api/usage/").json()
    assert body["rate_limit"] == {"rate": None, "requests": None, "period_s": None,
                                  "burst": None}
    assert body["free_space"]["min_free_bytes"] is None
    assert body["free_space"]["below_floor"] is False


def test_the_usage_endpoint_is_in_the_schema_and_the_api_root(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/usage/"]["get"]
    assert operation["operationId"] == "usage_retrieve"
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    fields = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]
    assert set(fields) == {"tenant", "storage", "free_space", "rate_limit", "limits"}
    assert api.get("/api/").json()["endpoints"]["usage"]["url"].endswith("/api/usage/")
