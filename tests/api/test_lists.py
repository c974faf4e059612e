"""GET /api/jobs/ (every mode, newest first, filters, pages) and GET /api/images/ (pages),
with the real Redis of the test session."""

from __future__ import annotations

import pytest

from distributed.listing import TRIM_OLDEST
from imaging.storage import Storage
from tests.support.workers import wait_until

pytestmark = pytest.mark.django_db

GREY = {"filters": ["grayscale"]}


@pytest.fixture(autouse=True)
def _distributed_settings(settings, queue_config, redis_client):
    settings.DISTRIBUTED = queue_config


def submit(api, mode: str, images: list[str], **extra) -> dict:
    response = api.post(f"/api/process-batch/{mode}/", {**GREY, "images": images, **extra},
                        format="json")
    assert response.status_code in (200, 202), response.json()
    return response.json()


def listed(api, query: str = "") -> dict:
    response = api.get(f"/api/jobs/{query}")
    assert response.status_code == 200, response.json()
    return response.json()


@pytest.fixture
def jobs_of_every_mode(api, upload, png_bytes, media_root) -> list[dict]:
    """Oldest first: a local threading job, a queued distributed job, a multiprocessing job, a
    cancelled distributed job, a failed threading job."""
    ok = upload(("a.png", png_bytes()))
    broken = upload(("b.png", png_bytes(seed=2)))
    Storage(media_root).image_path(broken[0]).write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    jobs = [submit(api, "threading", ok), submit(api, "distributed", ok * 2),
            submit(api, "multiprocessing", ok)]
    cancelled = submit(api, "distributed", ok, priority="low")
    assert api.post(f"/api/jobs/{cancelled['id']}/cancel/").status_code == 200
    jobs += [cancelled, submit(api, "threading", broken)]
    return jobs


def test_jobs_of_every_mode_are_listed_newest_first_with_their_counts(api, jobs_of_every_mode):
    body = listed(api)

    assert [item["id"] for item in body["items"]] == [j["id"] for j in jobs_of_every_mode][::-1]
    assert body["total"] == 5 and body["distributed_unavailable"] is False
    by_id = {item["id"]: item for item in body["items"]}
    local, queued, _, cancelled, failed = (by_id[j["id"]] for j in jobs_of_every_mode)
    assert (local["mode"], local["status"], local["total"]) == ("threading", "completed", 1)
    assert local["progress"] == {"completed": 1, "failed": 0, "cancelled": 0, "open": 0,
                                 "pending": 0, "running": 0}
    assert (queued["mode"], queued["status"], queued["priority"]) == (
        "distributed", "queued", "normal")
    assert queued["progress"] == {"completed": 0, "failed": 0, "cancelled": 0, "open": 2,
                                  "pending": 2, "running": 0}
    assert cancelled["status"] == "cancelled" and cancelled["progress"]["cancelled"] == 1
    assert failed["status"] == "failed" and failed["progress"]["failed"] == 1
    assert queued["url"].endswith(f"/api/jobs/{queued['id']}/")
    assert "results" not in queued


def test_a_listed_job_links_to_its_detail(api, jobs_of_every_mode):
    for item in listed(api)["items"]:
        detail = api.get(item["url"]).json()
        assert (detail["id"], detail["status"], detail["total"]) == (
            item["id"], item["status"], item["total"])


@pytest.mark.parametrize("query, expected", [
    ("mode=threading", [4, 0]),
    ("mode=multiprocessing", [2]),
    ("mode=distributed", [3, 1]),
    ("status=completed", [2, 0]),
    ("status=queued", [1]),
    ("status=cancelled", [3]),
    ("status=failed", [4]),
    ("status=running", []),
    ("status=completed_with_errors", []),
    ("status=queued&mode=threading", []),
    ("status=cancelled&mode=distributed", [3]),
])
def test_each_filter_keeps_the_matching_jobs_only(api, jobs_of_every_mode, query, expected):
    body = listed(api, f"?{query}")

    assert [item["id"] for item in body["items"]] == [
        jobs_of_every_mode[i]["id"] for i in expected]
    assert body["total"] == len(expected)


def test_pages_of_the_merged_list_follow_each_other_without_gaps_or_repeats(
    api, jobs_of_every_mode
):
    everything = [item["id"] for item in listed(api)["items"]]

    for limit in (1, 2, 3):
        for offset in range(7):
            page = listed(api, f"?offset={offset}&limit={limit}")
            assert [item["id"] for item in page["items"]] == everything[offset:offset + limit]
            assert (page["offset"], page["limit"], page["total"]) == (offset, limit, 5)


@pytest.mark.parametrize("query", [
    "limit=0", "limit=201", "limit=-1", "limit=x", "offset=-1", f"offset={2**32 + 1}",
    "offset=1.5", "limit=" + "9" * 500,
])
@pytest.mark.parametrize("path", ["/api/jobs/", "/api/images/"])
def test_pagination_out_of_bounds_is_a_400(api, path, query):
    response = api.get(f"{path}?{query}")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_pagination"


@pytest.mark.parametrize("path", ["/api/jobs/", "/api/images/"])
def test_pagination_bounds_themselves_are_accepted(api, path):
    assert api.get(f"{path}?limit=200&offset={2**32}").status_code == 200
    assert api.get(f"{path}?limit=1&offset=0").status_code == 200


@pytest.mark.parametrize("query", ["status=done", "mode=celery", "status=QUEUED", "mode=local"])
def test_an_unknown_status_or_mode_is_a_400(api, query):
    response = api.get(f"/api/jobs/?{query}")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_a_job_whose_redis_record_expired_leaves_the_list_and_the_index(
    api, upload, png_bytes, redis_client, queue_config
):
    ids = upload(("a.png", png_bytes()))
    kept, expiring = submit(api, "distributed", ids), submit(api, "distributed", ids)
    keys = queue_config.keys
    redis_client.pexpire(keys.job(expiring["id"]), 1)
    wait_until(lambda: not redis_client.exists(keys.job(expiring["id"])), 10,
               message="the job hash to expire")

    body = listed(api)

    assert [item["id"] for item in body["items"]] == [kept["id"]]
    assert body["total"] == 1
    assert redis_client.zrange(keys.jobs(), 0, -1) == [kept["id"].encode()]


def test_expired_jobs_beyond_the_page_are_trimmed_from_the_oldest_end(
    api, upload, png_bytes, redis_client, queue_config
):
    ids = upload(("a.png", png_bytes()))
    jobs = [submit(api, "distributed", ids)["id"] for _ in range(4)]
    keys = queue_config.keys
    for job_id in jobs[:3]:
        redis_client.delete(keys.job(job_id))  # what the expiry of its hash does

    body = listed(api, "?limit=1")

    assert [item["id"] for item in body["items"]] == [jobs[3]]
    assert body["total"] == 1
    assert redis_client.zcard(keys.jobs()) == 1 <= TRIM_OLDEST


def test_a_redis_outage_still_lists_the_local_jobs_and_says_so(
    api, upload, png_bytes, redis_server
):
    ids = upload(("a.png", png_bytes()))
    local = submit(api, "threading", ids)
    submit(api, "distributed", ids)
    redis_server.stop()

    body = listed(api)

    assert body["distributed_unavailable"] is True
    assert [item["id"] for item in body["items"]] == [local["id"]] and body["total"] == 1
    assert listed(api, "?mode=distributed")["items"] == []


def test_the_index_entry_is_written_with_the_job(api, upload, png_bytes, redis_client,
                                                  queue_config):
    job = submit(api, "distributed", upload(("a.png", png_bytes())))

    created = int(redis_client.hget(queue_config.keys.job(job["id"]), "created_at"))
    assert redis_client.zscore(queue_config.keys.jobs(), job["id"]) == created


def test_images_are_listed_in_pages_uploads_first_then_samples(api, upload, png_bytes):
    first = upload(("a.png", png_bytes(seed=1)))
    second = upload(("b.png", png_bytes(seed=2)))
    everything = api.get("/api/images/").json()
    kinds = [image["kind"] for image in everything["images"]]

    # (upload times have a resolution of one second: two within it may come in either order)
    assert {image["id"] for image in everything["images"][:2]} == {*first, *second}
    assert kinds == sorted(kinds, reverse=True)  # uploads, then samples
    assert everything["total"] == len(everything["images"]) > 2
    page = api.get("/api/images/?offset=1&limit=2").json()
    assert page["images"] == everything["images"][1:3]
    assert (page["total"], page["offset"], page["limit"]) == (everything["total"], 1, 2)
    assert api.get(f"/api/images/?offset={everything['total']}").json()["images"] == []


def test_deep_pages_of_an_uneven_mix_match_the_whole_list(api, upload, png_bytes):
    ids = upload(("a.png", png_bytes()))
    modes = ["distributed"] * 5 + ["threading"] * 2 + ["distributed"] * 3 + ["threading"] * 3
    made = [submit(api, mode, ids)["id"] for mode in modes][::-1]

    whole = listed(api, "?limit=200")
    assert [item["id"] for item in whole["items"]] == made
    created = [item["created_at"] for item in whole["items"]]
    assert created == sorted(created, reverse=True)
    for limit in (1, 4, 5):
        pages = [listed(api, f"?offset={offset}&limit={limit}")["items"]
                 for offset in range(0, len(made), limit)]
        assert [item["id"] for page in pages for item in page] == made


def test_a_status_filter_reads_a_bounded_number_of_distributed_jobs_and_says_so(
    api, upload, png_bytes, monkeypatch
):
    from image_api.jobs import selectors

    monkeypatch.setattr(selectors, "STATUS_SCAN_LIMIT", 4)
    monkeypatch.setattr(selectors, "SCAN_BATCH", 2)
    ids = upload(("a.png", png_bytes()))
    made = [submit(api, "distributed", ids)["id"] for _ in range(6)][::-1]

    assert listed(api, "?status=queued")["distributed_truncated"] is True
    assert [item["id"] for item in listed(api, "?status=queued")["items"]] == made[:4]
    assert listed(api)["distributed_truncated"] is False and listed(api)["total"] == 6
