"""Every request is bounded before the work: decode cost (JPEG scans), pipeline cost and
intermediate sizes are refused with a 400 in every mode, and nothing is stored or queued; a
local image past its time limit fails with its own code. Per-request output options."""

from __future__ import annotations

import io
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from image_api.models import Job
from tests.support.hostile import jpeg_scan_bomb

pytestmark = pytest.mark.django_db

MODES = ("threading", "multiprocessing", "distributed")
BIG_BLUR = {"steps": [{"filter": "sharpen"}, {"filter": "blur", "params": {"radius": 50}}],
            "images": ["sample-landscape"]}


@pytest.fixture(autouse=True)
def _redis(settings, queue_config, redis_client) -> None:
    settings.DISTRIBUTED = queue_config


def stored_uploads(media_root) -> list:
    uploads = media_root / "uploads"
    return sorted(uploads.iterdir()) if uploads.exists() else []


def queued(redis_client, queue_config) -> int:
    return int(redis_client.hget(queue_config.keys.stats(), "accepted") or 0)


def test_a_scan_bomb_upload_is_refused_quickly_and_nothing_is_stored(api, media_root):
    bomb = jpeg_scan_bomb(6000, 6000, 2000)

    cpu = time.process_time()
    response = api.post("/api/images/", {"files": [SimpleUploadedFile("bomb.jpg", bomb)]},
                        format="multipart")

    assert time.process_time() - cpu < 10  # decoding it would cost about a minute
    assert response.status_code == 400
    assert response.json()["error"] == "too_many_scans"
    assert stored_uploads(media_root) == []


@pytest.mark.parametrize("mode", MODES)
def test_a_pipeline_over_the_cost_budget_is_refused_in_every_mode_before_anything_happens(
    api, settings, media_root, redis_client, queue_config, mode
):
    settings.MAX_TASK_COST_MS = 2_000  # blur(50) on 1920x1080 is estimated far above

    response = api.post(f"/api/process-batch/{mode}/", BIG_BLUR, format="json")

    assert response.status_code == 400, response.json()
    error = response.json()
    assert (error["error"], error["step"], error["filter"]) == ("pipeline_too_expensive", 1,
                                                                "blur")
    assert "sample-landscape" in error["image"]
    assert error["allowed"]["estimated_ms"] > 2_000
    assert not Job.objects.exists() and queued(redis_client, queue_config) == 0


@pytest.mark.parametrize("mode", MODES)
def test_a_refused_multipart_batch_stores_none_of_its_uploads(
    api, settings, media_root, png_bytes, redis_client, queue_config, mode
):
    settings.MAX_IMAGE_PIXELS = 10_000
    options = '{"steps": [{"filter": "resize", "params": {"scale": 4}}]}'
    files = [SimpleUploadedFile("a.png", png_bytes(40, 30)),
             SimpleUploadedFile("b.png", png_bytes(80, 60))]

    response = api.post(f"/api/process-batch/{mode}/", {"files": files, "options": options},
                        format="multipart")

    assert response.status_code == 400
    assert response.json()["error"] == "intermediate_too_large"
    assert stored_uploads(media_root) == []
    assert queued(redis_client, queue_config) == 0


@pytest.mark.parametrize("mode", ["threading", "multiprocessing"])
def test_a_local_image_past_its_time_limit_fails_with_that_code(api, settings, mode):
    settings.TASK_TIME_LIMIT_SECONDS = 0.001
    body = {"steps": [{"filter": "blur", "params": {"radius": 3}}] * 5,
            "images": ["sample-landscape", "sample-portrait"]}

    job = api.post(f"/api/process-batch/{mode}/", body, format="json").json()

    assert job["status"] == "failed"
    assert {r["error"]["code"] for r in job["results"]} == {"time_limit_exceeded"}


def test_keep_metadata_and_effort_reach_the_output(api, media_root):
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 100, 50)).save(buffer, "JPEG", exif=exif.tobytes())
    image_id = api.post("/api/images/", {"files": [SimpleUploadedFile("c.jpg",
                                                                      buffer.getvalue())]},
                        format="multipart").json()["images"][0]["id"]

    def output(**options) -> Image.Image:
        body = {"filters": ["invert"], "images": [image_id], **options}
        job = api.post("/api/process-batch/threading/", body, format="json").json()
        data = b"".join(api.get(job["results"][0]["output_url"]).streaming_content)
        return Image.open(io.BytesIO(data))

    assert not output().getexif()
    assert output(keep_metadata=True).getexif()[0x010F] == "TestCam"
    assert output(output_format="png", effort="small").format == "PNG"
    refused = api.post("/api/process-batch/threading/",
                       {"filters": ["invert"], "effort": "maximum"}, format="json")
    assert refused.status_code == 400
