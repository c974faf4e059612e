"""POST /api/process-batch/<threading|multiprocessing>/ and the job endpoints."""

from __future__ import annotations

import io
import json
import zipfile

import cv2
import numpy as np
import pytest

from image_api.models import Job
from imaging.codecs import decode_image
from imaging.pipeline import parse_pipeline, run_pipeline, steps_to_json
from imaging.storage import Storage

pytestmark = pytest.mark.django_db

MODES = ["threading", "multiprocessing"]
SEED = {
    "filters": ["sharpen", "edges"],
    "filter_params": {"sharpen": {"intensity": 3}, "edges": {"threshold1": 50, "threshold2": 150}},
}
COLOUR_STEPS = {
    "steps": [
        {"filter": "blur", "params": {"radius": 1.5}},
        {"filter": "sharpen", "params": {"intensity": 2}},
        {"filter": "rotate", "params": {"degrees": 90}},
        {"filter": "sepia"},
        {"filter": "contrast", "params": {"factor": 1.4}},
    ]
}


def batch(api, mode: str, body: dict | None = None, **kwargs):
    return api.post(f"/api/process-batch/{mode}/", body, format="json", **kwargs)


def fetch(api, url: str) -> bytes:
    response = api.get(url)
    assert response.status_code == 200, url
    return b"".join(response.streaming_content)


def decode_png(data: bytes) -> np.ndarray:
    assert data.startswith(b"\x89PNG")
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)


@pytest.mark.parametrize("mode", MODES)
def test_outputs_are_pixel_identical_to_a_direct_pipeline_run(
    api, upload, png_bytes, jpeg_bytes, mode
) -> None:
    inputs = [png_bytes(80, 60, seed=1), jpeg_bytes(64, 48, seed=2), png_bytes(33, 17, seed=3)]
    ids = upload(*((f"in-{i}", data) for i, data in enumerate(inputs)))

    response = batch(api, mode, {**COLOUR_STEPS, "images": ids, "output_format": "png"})

    assert response.status_code == 200, response.content
    job = response.json()
    assert (job["mode"], job["status"], job["total"]) == (mode, "completed", 3)
    steps = parse_pipeline(COLOUR_STEPS)
    for data, result in zip(inputs, job["results"], strict=True):
        expected, _ = run_pipeline(decode_image(data, max_pixels=10**6), steps)
        actual = decode_png(fetch(api, result["output_url"]))
        assert actual.shape == expected.shape
        assert np.array_equal(actual, expected)
        assert (result["width"], result["height"]) == (expected.shape[1], expected.shape[0])
        assert [t["filter"] for t in result["timings"]] == [s.filter for s in steps]


@pytest.mark.parametrize("mode", MODES)
def test_seed_request_without_images_processes_the_sample_set(api, media_root, mode) -> None:
    response = batch(api, mode, SEED)

    assert response.status_code == 200, response.content
    job = response.json()
    sample_ids = Storage(media_root).sample_ids()
    assert job["id"].startswith("job_") and len(job["id"]) == 4 + 32
    assert [r["image"] for r in job["results"]] == sample_ids
    assert job["status"] == "completed"
    assert job["pipeline"] == steps_to_json(parse_pipeline(SEED))
    assert job["output_format"] is None
    assert job["stats"]["wall_seconds"] > 0
    assert job["stats"]["images_per_second"] > 0
    assert job["created_at"] <= job["finished_at"]
    for result in job["results"]:
        assert result["error"] is None
        assert result["output_url"].startswith("http://testserver/api/jobs/")
        assert result["total_ms"] >= sum(t["ms"] for t in result["timings"])


def test_job_is_stored_and_get_returns_the_same_json(api, upload, png_bytes) -> None:
    ids = upload(("a.png", png_bytes()))
    created = batch(api, "threading", {**SEED, "images": ids}).json()

    response = api.get(f"/api/jobs/{created['id']}/")

    assert response.status_code == 200
    assert response.json() == created
    stored = Job.objects.get(pk=created["id"])
    assert (stored.mode, stored.status, stored.total) == ("threading", "completed", 1)


def test_output_format_defaults_to_the_input_format_or_png(
    api, upload, jpeg_bytes, bmp_bytes, png_bytes
) -> None:
    ids = upload(("a.jpg", jpeg_bytes()), ("b.bmp", bmp_bytes()), ("c.png", png_bytes()))

    job = batch(api, "threading", {**SEED, "images": ids}).json()

    assert [r["format"] for r in job["results"]] == ["jpeg", "png", "png"]
    output = api.get(job["results"][0]["output_url"])
    assert output["Content-Type"] == "image/jpeg"


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_requested_output_format_and_quality_are_used(api, upload, png_bytes, fmt) -> None:
    ids = upload(("a.png", png_bytes(200, 150)))

    low = batch(api, "threading", {**SEED, "images": ids, "output_format": fmt, "quality": 5})
    high = batch(api, "threading", {**SEED, "images": ids, "output_format": fmt, "quality": 95})

    assert low.json()["results"][0]["format"] == fmt
    assert low.json()["quality"] == 5
    assert low.json()["results"][0]["bytes"] < high.json()["results"][0]["bytes"]
    assert api.get(low.json()["results"][0]["output_url"])["Content-Type"] == f"image/{fmt}"


@pytest.mark.parametrize("mode", MODES)
def test_multipart_batch_stores_the_uploads_and_processes_them(
    api, make_file, png_bytes, mode
) -> None:
    files = [make_file("one.png", png_bytes(seed=1)), make_file("two.png", png_bytes(seed=2))]
    options = json.dumps({**COLOUR_STEPS, "output_format": "png"})

    response = api.post(f"/api/process-batch/{mode}/", {"files": files, "options": options},
                        format="multipart")

    assert response.status_code == 200, response.content
    job = response.json()
    assert job["status"] == "completed"
    uploaded = [i["id"] for i in api.get("/api/images/").json()["images"] if i["kind"] == "upload"]
    assert sorted(r["image"] for r in job["results"]) == sorted(uploaded)
    steps = parse_pipeline(COLOUR_STEPS)
    expected, _ = run_pipeline(decode_image(png_bytes(seed=1), max_pixels=10**6), steps)
    assert np.array_equal(decode_png(fetch(api, job["results"][0]["output_url"])), expected)


def test_multipart_batch_combines_named_images_and_uploaded_files(
    api, upload, make_file, png_bytes
) -> None:
    (named,) = upload(("named.png", png_bytes(seed=1)))
    options = json.dumps({**SEED, "images": [named]})

    response = api.post(
        "/api/process-batch/threading/",
        {"files": [make_file("fresh.png", png_bytes(seed=2))], "options": options},
        format="multipart",
    )

    images = [r["image"] for r in response.json()["results"]]
    assert images[0] == named and len(images) == 2 and images[1] != named


@pytest.mark.parametrize("mode", MODES)
def test_one_corrupt_image_fails_alone_and_the_others_complete(
    api, media_root, upload, png_bytes, mode
) -> None:
    ids = upload(("a.png", png_bytes(seed=1)), ("b.png", png_bytes(seed=2)),
                 ("c.png", png_bytes(seed=3)))
    # Given the second image got damaged on disk after it was accepted
    path = Storage(media_root).image_path(ids[1])
    path.write_bytes(path.read_bytes()[:200])

    job = batch(api, mode, {**SEED, "images": ids}).json()

    assert job["status"] == "completed_with_errors"
    assert [r["status"] for r in job["results"]] == ["completed", "failed", "completed"]
    failed = job["results"][1]
    assert failed["error"]["code"] == "corrupt_image"
    assert failed["output_url"] is None and failed["width"] is None
    assert api.get(f"/api/jobs/{job['id']}/outputs/1/").status_code == 404
    assert api.get(job["results"][2]["output_url"]).status_code == 200


def test_a_resize_past_the_pixel_cap_for_any_image_refuses_the_whole_batch_before_running(
    api, settings, upload, png_bytes
) -> None:
    small, large = upload(("small.png", png_bytes(20, 16)), ("large.png", png_bytes(64, 48)))
    settings.MAX_IMAGE_PIXELS = 100_000
    body = {"steps": [{"filter": "resize", "params": {"scale": 10}}], "images": [small, large]}

    response = batch(api, "multiprocessing", body)

    assert response.status_code == 400
    error = response.json()
    assert (error["error"], error["step"], error["filter"]) == ("intermediate_too_large", 0,
                                                                "resize")
    assert large in error["image"] and "100000" in error["message"]
    assert not Job.objects.exists()


def test_job_whose_every_image_fails_is_failed(api, media_root, upload, png_bytes) -> None:
    ids = upload(("a.png", png_bytes()))
    Storage(media_root).image_path(ids[0]).write_bytes(b"\x89PNG\r\n\x1a\n garbage")

    job = batch(api, "threading", {**SEED, "images": ids}).json()

    assert job["status"] == "failed"
    assert Job.objects.get(pk=job["id"]).status == "failed"


def test_results_zip_holds_every_completed_output(api, media_root, upload, png_bytes) -> None:
    ids = upload(("a.png", png_bytes(seed=1)), ("b.png", png_bytes(seed=2)),
                 ("c.png", png_bytes(seed=3)))
    Storage(media_root).image_path(ids[1]).write_bytes(b"broken")
    job = batch(api, "threading", {**SEED, "images": ids, "output_format": "png"}).json()

    response = api.get(job["results_url"])

    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert f'{job["id"]}-results.zip' in response["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert archive.namelist() == ["a.png", "c.png"]  # the user's names, not storage ids
    assert archive.read("a.png") == fetch(api, job["results"][0]["output_url"])


def test_outputs_keep_the_original_names_safely_and_uniquely(
    api, media_root, upload, png_bytes
) -> None:
    ids = upload(("../holiday.PNG", png_bytes(seed=1)), ("holiday.png", png_bytes(seed=2)),
                 ("Holiday.png", png_bytes(seed=3)))
    job = batch(api, "threading", {**SEED, "images": ids, "output_format": "jpeg"}).json()

    archive = zipfile.ZipFile(io.BytesIO(b"".join(api.get(job["results_url"]).streaming_content)))

    assert archive.namelist() == ["holiday.jpg", "holiday (2).jpg", "Holiday (3).jpg"]
    single = api.get(job["results"][1]["output_url"])
    assert 'filename="holiday.jpg"' in single["Content-Disposition"]


def test_unknown_job_answers_json_404_everywhere(api) -> None:
    job_id = "job_" + "0" * 32
    for url in (f"/api/jobs/{job_id}/", f"/api/jobs/{job_id}/outputs/0/",
                f"/api/jobs/{job_id}/results.zip"):
        response = api.get(url)
        assert response.status_code == 404, url
        assert response.json()["error"] == "job_not_found"


def test_output_index_past_the_end_answers_404(api, upload, png_bytes) -> None:
    job = batch(api, "threading", {**SEED, "images": upload(("a.png", png_bytes()))}).json()

    response = api.get(f"/api/jobs/{job['id']}/outputs/1/")

    assert response.status_code == 404
    assert response.json()["error"] == "output_not_found"


# --- invalid requests: 4xx JSON, nothing runs, nothing is stored -------------------------------


@pytest.fixture
def nothing_happened(stored_files):
    def check() -> None:
        assert Job.objects.count() == 0
        assert stored_files() == []

    return check


def test_malformed_json_body_is_rejected_with_400(api, nothing_happened) -> None:
    response = api.post("/api/process-batch/threading/", '{"filters": [',
                        content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"] == "parse_error"
    nothing_happened()


def test_json_body_that_is_not_an_object_is_rejected(api, nothing_happened) -> None:
    response = batch(api, "threading", ["sharpen"])

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    nothing_happened()


@pytest.mark.parametrize(
    ("options", "code"),
    [(None, "missing_options"), ("{not json", "invalid_options"), ("[1, 2]", "invalid_options")],
)
def test_bad_multipart_options_are_rejected_with_400(
    api, make_file, png_bytes, nothing_happened, options, code
) -> None:
    body = {"files": [make_file("a.png", png_bytes())]}
    if options is not None:
        body["options"] = options

    response = api.post("/api/process-batch/multiprocessing/", body, format="multipart")

    assert response.status_code == 400
    assert response.json()["error"] == code
    nothing_happened()


def test_multipart_batch_with_a_bad_file_stores_and_runs_nothing(
    api, make_file, png_bytes, gif_bytes, nothing_happened
) -> None:
    files = [make_file("ok.png", png_bytes()), make_file("bad.gif", gif_bytes)]

    response = api.post("/api/process-batch/threading/",
                        {"files": files, "options": json.dumps(SEED)}, format="multipart")

    assert response.status_code == 415
    assert response.json()["file"] == {"index": 1, "name": "bad.gif"}
    nothing_happened()


def test_multipart_batch_with_an_oversized_file_is_rejected_with_413(
    api, settings, make_file, png_bytes, nothing_happened
) -> None:
    settings.MAX_UPLOAD_BYTES = 100

    response = api.post(
        "/api/process-batch/threading/",
        {"files": [make_file("a.png", png_bytes())], "options": json.dumps(SEED)},
        format="multipart",
    )

    assert response.status_code == 413
    assert response.json()["error"] == "file_too_large"
    nothing_happened()


def test_unknown_image_id_is_rejected_with_400_naming_it(
    api, upload, png_bytes, nothing_happened
) -> None:
    (known,) = upload(("a.png", png_bytes()))
    unknown = "img_" + "f" * 32
    Job.objects.all().delete()

    response = batch(api, "threading", {**SEED, "images": [known, unknown]})

    assert response.status_code == 400
    body = response.json()
    assert (body["error"], body["image"], body["index"]) == ("unknown_image", unknown, 1)
    assert unknown in body["message"]
    assert Job.objects.count() == 0


@pytest.mark.parametrize(
    ("pipeline", "expected"),
    [
        ({"filters": ["sharpen", "melt"]},
         {"step": 1, "filter": "melt"}),
        ({"filters": ["blur"], "filter_params": {"blur": {"radius": 99}}},
         {"step": 0, "filter": "blur", "param": "radius",
          "allowed": {"minimum": 0, "maximum": 50}}),
        ({"steps": [{"filter": "flip", "params": {"direction": "sideways"}}]},
         {"step": 0, "filter": "flip", "param": "direction"}),
        ({"steps": [{"filter": "blur", "params": {"sigma": 2}}]},
         {"step": 0, "filter": "blur", "param": "sigma"}),
        ({}, {}),
    ],
)
def test_invalid_pipeline_is_rejected_with_step_and_param_details(
    api, nothing_happened, pipeline, expected
) -> None:
    response = batch(api, "multiprocessing", pipeline)

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_pipeline"
    assert body["message"]
    assert {key: body[key] for key in expected} == expected
    nothing_happened()


@pytest.mark.parametrize("quality", [0, 101, "high", 50.5])
def test_quality_out_of_range_or_not_an_integer_is_rejected(
    api, nothing_happened, quality
) -> None:
    response = batch(api, "threading", {**SEED, "quality": quality})

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_request"
    assert "quality" in body["fields"]
    assert body["message"].startswith("quality: ")
    nothing_happened()


@pytest.mark.parametrize("fmt", ["gif", "bmp", "", 7])
def test_unsupported_output_format_is_rejected(api, nothing_happened, fmt) -> None:
    response = batch(api, "threading", {**SEED, "output_format": fmt})

    assert response.status_code == 400
    assert "output_format" in response.json()["fields"]
    nothing_happened()


def test_more_images_than_max_batch_images_is_rejected(
    api, settings, upload, png_bytes
) -> None:
    ids = upload(("a.png", png_bytes()), ("b.png", png_bytes(seed=2)))
    settings.MAX_BATCH_IMAGES = 2

    response = batch(api, "threading", {**SEED, "images": [*ids, ids[0]]})

    assert response.status_code == 400
    assert response.json()["error"] == "too_many_images"
    assert response.json()["limit"] == 2
    assert Job.objects.count() == 0
