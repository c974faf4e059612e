"""The storage's free-space floor (MIN_FREE_DISK_MB): uploads that would take the filesystem
below it are refused 507 before anything is written. Low space is simulated the honest way:
a floor above the real free space of the test's filesystem (statvfs)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

pytestmark = pytest.mark.django_db
MIB = 1024 * 1024


def free_mib(path: Path) -> int:
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize // MIB


@pytest.fixture
def floor_above_free_space(settings, media_root: Path) -> int:
    settings.MIN_FREE_DISK_MB = free_mib(media_root) + 1024
    return settings.MIN_FREE_DISK_MB


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and "samples" not in p.parts]


def test_an_upload_below_the_floor_is_507_and_nothing_is_stored(
    api, png_bytes, media_root, floor_above_free_space
):
    response = api.post("/api/images/", {"files": [SimpleUploadedFile("a.png", png_bytes())]},
                        format="multipart")
    assert response.status_code == 507
    body = response.json()
    assert body["error"] == "insufficient_storage" and "MIN_FREE_DISK_MB" in body["message"]
    assert files_under(media_root) == []
    usage = api.get("/api/usage/").json()
    assert usage["storage"]["used_bytes"] == 0
    assert usage["free_space"]["below_floor"] is True


@pytest.mark.parametrize("mode", ["threading", "multiprocessing"])
def test_a_local_batch_below_the_floor_is_507_before_it_runs(
    api, png_bytes, media_root, floor_above_free_space, mode
):
    options = json.dumps({"filters": ["grayscale"]})
    uploads = api.post(f"/api/process-batch/{mode}/",
                       {"files": [SimpleUploadedFile("a.png", png_bytes())], "options": options},
                       format="multipart")
    samples = api.post(f"/api/process-batch/{mode}/", {"filters": ["grayscale"]}, format="json")
    assert uploads.status_code == samples.status_code == 507
    assert files_under(media_root) == []
    assert api.get("/api/jobs/").json()["total"] == 0


def test_above_the_floor_uploads_are_stored(api, png_bytes, media_root, settings):
    settings.MIN_FREE_DISK_MB = max(1, free_mib(media_root) - 1024)  # 1 GiB of headroom
    response = api.post("/api/images/", {"files": [SimpleUploadedFile("a.png", png_bytes())]},
                        format="multipart")
    assert response.status_code == 201
    assert len(files_under(media_root)) == 2  # the bytes and their metadata
