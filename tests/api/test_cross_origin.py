"""A page on another origin cannot change anything here through a visitor's browser: every
state-changing request a browser marks as cross-site is refused before its body is read. A
body declared over the cap is refused before it is read, too."""

from __future__ import annotations

import dataclasses

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from image_api.models import Job

pytestmark = pytest.mark.django_db

EVIL = "http://evil.example"
SEED = {"filters": ["invert"], "images": ["sample-shapes"]}


@pytest.fixture(autouse=True)
def _redis(settings, queue_config, redis_client) -> None:
    settings.DISTRIBUTED = queue_config


def accepted(redis_client, queue_config) -> int:
    return int(redis_client.hget(queue_config.keys.stats(), "accepted") or 0)


def test_a_cross_origin_form_post_to_the_dead_letters_is_refused(api, client):
    response = client.post("/api/dead-letters/", {"action": "discard", "all": "true"},
                           HTTP_ORIGIN=EVIL)

    assert response.status_code == 403
    assert response.json()["error"] == "cross_origin_refused"


def test_a_cross_origin_multipart_submission_is_refused_and_nothing_changes(
    api, media_root, png_bytes, redis_client, queue_config
):
    files = [SimpleUploadedFile("a.png", png_bytes())]
    response = api.post("/api/process-batch/distributed/",
                        {"files": files, "options": '{"filters": ["invert"]}'},
                        format="multipart", HTTP_ORIGIN=EVIL, HTTP_SEC_FETCH_SITE="cross-site")

    assert response.status_code == 403
    assert accepted(redis_client, queue_config) == 0
    assert not (media_root / "uploads").exists()


@pytest.mark.parametrize("path", ["/api/process-batch/threading/", "/api/images/",
                                  f"/api/jobs/job_{'0' * 32}/cancel/"])
@pytest.mark.parametrize("headers", [{"HTTP_ORIGIN": EVIL}, {"HTTP_ORIGIN": "null"},
                                     {"HTTP_SEC_FETCH_SITE": "cross-site"},
                                     {"HTTP_SEC_FETCH_SITE": "same-site"}])
def test_every_state_change_from_another_site_is_refused(api, path, headers):
    response = api.post(path, SEED, format="json", **headers)

    assert response.status_code == 403, response.content
    assert response.json()["error"] == "cross_origin_refused"
    assert not Job.objects.exists()


@pytest.mark.parametrize("headers", [
    {},  # curl, the CLI, server-to-server
    {"HTTP_ORIGIN": "http://testserver"},  # a page of this site
    {"HTTP_ORIGIN": "http://testserver", "HTTP_SEC_FETCH_SITE": "same-origin"},
    {"HTTP_SEC_FETCH_SITE": "none"},  # typed by the user
])
def test_same_origin_and_non_browser_requests_go_through(api, headers):
    response = api.post("/api/process-batch/threading/", SEED, format="json", **headers)

    assert response.status_code == 200, response.content


def test_reads_from_another_origin_are_not_affected(api):
    assert api.get("/api/health/", HTTP_ORIGIN=EVIL).status_code == 200


def test_url_encoded_forms_are_not_parsed_anywhere(api):
    response = api.post("/api/process-batch/threading/", "filters=invert",
                        content_type="application/x-www-form-urlencoded")

    assert response.status_code == 415


def test_a_body_declared_over_the_cap_is_refused_before_it_is_read(api, settings):
    api_settings = settings.API_SETTINGS
    settings.API_SETTINGS = dataclasses.replace(api_settings, bodies=dataclasses.replace(
        api_settings.bodies, max_request_bytes=1_000_000))
    # 100 bytes sent, 2 GiB declared: only an answer from the declared size can be a 413.

    response = api.post("/api/images/", b"x" * 100, content_type="multipart/form-data; "
                        "boundary=b", CONTENT_LENGTH=str(2 * 1024**3))

    assert response.status_code == 413
    assert response.json()["error"] == "request_too_large"
    assert response.json()["limit"] == 1_000_000
