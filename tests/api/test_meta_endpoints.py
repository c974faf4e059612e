"""Health, filters, JSON errors outside views, OpenAPI schema, docs pages, admin."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core.management import call_command

import project
from imaging.filters import FILTERS

pytestmark = pytest.mark.django_db


def test_health_reports_database_storage_and_unconfigured_redis(api, media_root: Path) -> None:
    response = api.get("/api/health/")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "version": project.__version__,
        "dependencies": {
            "database": {"status": "ok"},
            "storage": {"status": "ok"},
            "redis": {"status": "not_configured"},
        },
    }


def test_health_shows_no_file_system_path(api, settings, media_root: Path, tmp_path: Path) -> None:
    assert str(media_root) not in api.get("/api/health/").content.decode()
    settings.MEDIA_ROOT = tmp_path / "a-file" / "media"
    (tmp_path / "a-file").write_text("not a directory")
    assert str(tmp_path) not in api.get("/api/health/").content.decode()


def test_health_answers_503_when_storage_is_not_usable(api, settings, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    settings.MEDIA_ROOT = blocker / "media"

    response = api.get("/api/health/")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["dependencies"]["storage"]["status"] == "error"
    assert body["dependencies"]["database"] == {"status": "ok"}


def test_filters_lists_every_registered_filter_with_its_params(api) -> None:
    response = api.get("/api/filters/")

    assert response.status_code == 200
    filters = response.json()["filters"]
    assert [f["name"] for f in filters] == list(FILTERS)
    sharpen = next(f for f in filters if f["name"] == "sharpen")
    intensity = next(p for p in sharpen["params"] if p["name"] == "intensity")
    assert intensity["type"] == "float"
    assert (intensity["minimum"], intensity["maximum"]) == (0, 10)


def test_unknown_api_path_answers_json_404(api) -> None:
    response = api.get("/api/no-such-endpoint/")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == "not_found"


def test_wrong_method_answers_json_405(api) -> None:
    response = api.delete("/api/filters/")

    assert response.status_code == 405
    assert response.json() == {
        "error": "method_not_allowed",
        "message": 'Method "DELETE" not allowed.',
    }


def test_openapi_schema_generates_and_validates_without_warnings(tmp_path: Path) -> None:
    out = tmp_path / "schema.yaml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))

    schema = out.read_text()
    for route in ("/api/process-batch/threading/", "/api/process-batch/multiprocessing/",
                  "/api/jobs/{job_id}/results.zip", "/api/images/{image_id}/"):
        assert route in schema


def test_schema_endpoint_serves_openapi_json(api) -> None:
    response = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    assert response.json()["openapi"].startswith("3.")


@pytest.mark.parametrize("page", ["/api/docs/", "/api/redoc/"])
def test_docs_pages_load_their_assets_from_local_static_files_not_a_cdn(client, page) -> None:
    response = client.get(page)

    assert response.status_code == 200
    html = response.content.decode()
    assert "cdn." not in html and "unpkg.com" not in html
    assets = re.findall(r'(?:src|href)="(/static/drf_spectacular_sidecar/[^"]+)"', html)
    assert assets, html
    for asset in assets:
        assert client.get(asset).status_code == 200, asset


def test_browsable_api_renders_html_for_browsers(client) -> None:
    response = client.get("/api/filters/", HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert b"sharpen" in response.content


def test_admin_lists_jobs(admin_client) -> None:
    response = admin_client.get("/admin/image_api/job/")

    assert response.status_code == 200


def test_api_paths_work_without_their_trailing_slash_even_for_posts(api) -> None:
    assert api.get("/api/filters").status_code == 200

    response = api.post("/api/process-batch/threading", {"filters": ["nope"]}, format="json")

    # Routed to the view (which rejects the pipeline), not redirected with the body dropped.
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_pipeline"


def test_site_root_leads_to_the_console_which_renders(api) -> None:
    response = api.get("/")

    assert response.status_code == 302
    assert response["Location"] == "/console/"
    assert api.get(response["Location"]).status_code == 200


def test_api_root_lists_entry_points_that_all_exist(api, media_root: Path) -> None:
    response = api.get("/api/")

    assert response.status_code == 200
    endpoints = response.json()["endpoints"]
    assert {"docs", "health", "process_batch_distributed", "workers_status"} <= set(endpoints)
    for name, entry in endpoints.items():
        assert entry["url"].startswith("http://testserver/"), name
        path = entry["url"].removeprefix("http://testserver")
        # GET on a POST-only endpoint is a 405, never a 404: every listed URL is routed.
        assert api.get(path).status_code != 404, name


def test_liveness_answers_while_readiness_fails(api, settings, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    settings.MEDIA_ROOT = blocker / "media"

    assert api.get("/api/health/").status_code == 503
    live = api.get("/api/health/live/")
    assert live.status_code == 200
    assert live.json() == {"status": "ok"}
