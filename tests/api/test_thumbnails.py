"""Thumbnails: every completed output gets a WebP preview (longest side at most 256 px),
served at /api/jobs/<id>/thumbnails/<index>/ and linked from the job's results, in every mode."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from imaging.thumbnails import make_thumbnail
from tests.support.workers import wait_until

pytestmark = pytest.mark.django_db
RESIZE = {"steps": [{"filter": "sharpen", "params": {"intensity": 1}}]}


def upload(api, data: bytes, name: str) -> str:
    response = api.post("/api/images/", {"files": [SimpleUploadedFile(name, data)]},
                        format="multipart")
    assert response.status_code == 201, response.json()
    return response.json()["images"][0]["id"]


def thumbnail_of(api, url: str) -> Image.Image:
    response = api.get(url)
    assert response.status_code == 200, url
    assert response["Content-Type"] == "image/webp"
    data = b"".join(response.streaming_content)
    image = Image.open(io.BytesIO(data))
    assert image.format == "WEBP"
    image.load()
    return image


def check_thumbnails(api, job: dict, sizes: list[tuple[int, int]]) -> None:
    """Each result links a WebP preview of the expected size."""
    assert [(r["width"], r["height"]) for r in job["results"]] == sizes
    for result, (width, height) in zip(job["results"], sizes, strict=True):
        assert result["thumbnail_url"].endswith(
            f"/api/jobs/{job['id']}/thumbnails/{result['index']}/")
        image = thumbnail_of(api, result["thumbnail_url"])
        scale = min(1.0, 256 / max(width, height))
        assert image.size == (max(1, round(width * scale)), max(1, round(height * scale)))


@pytest.mark.parametrize("mode", ["threading", "multiprocessing"])
def test_local_modes_make_a_webp_preview_of_each_output(api, png_bytes, jpeg_bytes, mode):
    ids = [upload(api, png_bytes(640, 480, seed=1), "big.png"),
           upload(api, jpeg_bytes(100, 300, seed=2), "tall.jpg"),
           upload(api, png_bytes(40, 30, seed=3), "small.png")]

    response = api.post(f"/api/process-batch/{mode}/", {**RESIZE, "images": ids},
                        format="json")

    assert response.status_code == 200, response.content
    job = response.json()
    check_thumbnails(api, job, [(640, 480), (100, 300), (40, 30)])
    # The detail links the same previews.
    detail = api.get(f"/api/jobs/{job['id']}/").json()
    assert [r["thumbnail_url"] for r in detail["results"]] == \
        [r["thumbnail_url"] for r in job["results"]]


def test_a_distributed_worker_makes_the_preview(
    api, png_bytes, start_worker, settings, queue_config, redis_client
):
    settings.DISTRIBUTED = queue_config
    start_worker("w1")
    image = upload(api, png_bytes(600, 200, seed=4), "wide.png")
    body = api.post("/api/process-batch/distributed/", {**RESIZE, "images": [image]},
                    format="json").json()
    job = wait_until(lambda: (lambda j: j if j["status"] == "completed" else None)(
        api.get(f"/api/jobs/{body['id']}/").json()), 30, message="the job to complete")
    check_thumbnails(api, job, [(600, 200)])


def test_failed_results_have_no_thumbnail_and_unknown_ones_answer_404(api, png_bytes):
    good = upload(api, png_bytes(50, 50, seed=5), "ok.png")
    job = api.post("/api/process-batch/threading/",
                   {**RESIZE, "images": [good], "output_format": "png"}, format="json").json()
    base = f"/api/jobs/{job['id']}/thumbnails"

    for url in (f"{base}/1/", f"{base}/99999/", "/api/jobs/nosuchjob/thumbnails/0/",
                "/api/jobs/..%2F..%2Fetc/thumbnails/0/"):
        response = api.get(url)
        assert response.status_code == 404, url
        assert response.json()["error"] in ("thumbnail_not_found", "job_not_found",
                                              "not_found")


def test_a_missing_preview_file_answers_404_and_a_null_url(api, png_bytes, media_root):
    image = upload(api, png_bytes(50, 50, seed=6), "ok.png")
    job = api.post("/api/process-batch/threading/", {**RESIZE, "images": [image]},
                   format="json").json()
    [thumb] = list(media_root.glob(f"outputs/{job['id']}/*.thumb.webp"))
    thumb.unlink()

    assert api.get(f"/api/jobs/{job['id']}/thumbnails/0/").status_code == 404
    assert api.get(f"/api/jobs/{job['id']}/").json()["results"][0]["thumbnail_url"] is None


@pytest.mark.parametrize("shape", [(1080, 1920, 3), (1080, 1920), (300, 100, 4), (10, 5, 3)])
def test_make_thumbnail_keeps_the_aspect_ratio_and_never_enlarges(shape):
    frame = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)

    image = Image.open(io.BytesIO(make_thumbnail(frame)))

    height, width = shape[:2]
    scale = min(1.0, 256 / max(width, height))
    assert image.format == "WEBP"
    assert image.size == (max(1, round(width * scale)), max(1, round(height * scale)))
