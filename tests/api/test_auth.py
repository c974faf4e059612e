"""API keys, tenants and admin rights: who may call, who sees what, who may delete what."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from rest_framework.test import APIClient

from distributed.jobs import get_job
from image_api.auth import create_key, digest
from image_api.models import ApiKey
from tests.support.redis import assert_counts_add_up

pytestmark = pytest.mark.django_db

SEED = {"filters": ["grayscale"]}


def client(secret: str | None = None, *, header: str = "bearer") -> APIClient:
    api = APIClient()
    if secret is not None:
        if header == "bearer":
            api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        else:
            api.credentials(HTTP_X_API_KEY=secret)
    return api


@pytest.fixture
def tenants(settings):
    """Auth required; two tenants and an admin, each with its own client."""
    settings.AUTH_REQUIRED = True
    _, a = create_key("tenant A")
    _, b = create_key("tenant B")
    _, admin = create_key("ops", admin=True)
    return {"a": client(a), "b": client(b), "admin": client(admin, header="x-api-key")}


def upload(api: APIClient, data: bytes, name: str = "a.png") -> str:
    response = api.post("/api/images/", {"files": [SimpleUploadedFile(name, data)]},
                        format="multipart")
    assert response.status_code == 201, response.json()
    return response.json()["images"][0]["id"]


# --- keys ------------------------------------------------------------------------------------


def test_createapikey_prints_a_working_key_once_and_stores_only_its_digest(settings, capsys):
    settings.AUTH_REQUIRED = True
    call_command("createapikey", "ci robot", "--admin")
    secret = capsys.readouterr().out.strip()
    key = ApiKey.objects.get(name="ci robot")
    assert key.admin and key.digest == digest(secret)
    stored = [str(value) for value in ApiKey.objects.values_list().get(pk=key.pk)]
    assert all(secret not in value for value in stored)
    assert client(secret).get("/api/jobs/").status_code == 200


def test_revoked_key_is_refused(settings, capsys):
    settings.AUTH_REQUIRED = True
    key, secret = create_key("leaked")
    assert client(secret).get("/api/jobs/").status_code == 200
    call_command("createapikey", "--revoke", key.id)
    response = client(secret).get("/api/jobs/")
    assert response.status_code == 401 and response.json()["error"] == "invalid_api_key"


def test_without_a_key_a_server_that_requires_one_answers_401_json(settings):
    settings.AUTH_REQUIRED = True
    for method, path in (("get", "/api/jobs/"), ("get", "/api/images/"),
                         ("post", "/api/process-batch/threading/"),
                         ("get", "/api/workers/status/"), ("post", "/api/dead-letters/")):
        response = getattr(APIClient(), method)(path, {}, format="json")
        assert response.status_code == 401, (method, path)
        assert response.json()["error"] == "authentication_required"
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_wrong_key_is_401_even_when_keys_are_optional(settings):
    settings.AUTH_REQUIRED = False
    for secret in ("imgp_" + "x" * 43, "nonsense", "imgp_short"):
        response = client(secret).get("/api/jobs/")
        assert response.status_code == 401 and response.json()["error"] == "invalid_api_key"
    assert APIClient().get("/api/jobs/").status_code == 200  # no key: the anonymous tenant


def test_health_probes_need_no_key(settings):
    settings.AUTH_REQUIRED = True
    assert APIClient().get("/api/health/live/").status_code == 200
    assert APIClient().get("/api/health/").status_code in (200, 503)
    assert client("imgp_" + "y" * 43).get("/api/health/live/").status_code == 200


# --- tenants: local modes and uploads ---------------------------------------------------------


def test_another_tenants_upload_does_not_exist_for_you(tenants, png_bytes):
    image = upload(tenants["a"], png_bytes())
    assert tenants["a"].get(f"/api/images/{image}/").status_code == 200
    assert tenants["b"].get(f"/api/images/{image}/").status_code == 404
    listed_b = [i["id"] for i in tenants["b"].get("/api/images/").json()["images"]]
    listed_admin = [i["id"] for i in tenants["admin"].get("/api/images/").json()["images"]]
    assert image not in listed_b and image in listed_admin
    # ... nor can it be named in a batch
    response = tenants["b"].post("/api/process-batch/threading/", {**SEED, "images": [image]},
                                 format="json")
    assert response.status_code == 400 and response.json()["error"] == "unknown_image"
    # samples are everyone's
    sample = tenants["b"].get("/api/images/").json()["images"][-1]["id"]
    assert sample.startswith("sample-")
    assert tenants["b"].get(f"/api/images/{sample}/").status_code == 200


def test_a_local_job_its_outputs_and_zip_are_the_owners(tenants, png_bytes):
    image = upload(tenants["a"], png_bytes())
    job = tenants["a"].post("/api/process-batch/threading/", {**SEED, "images": [image]},
                            format="json").json()
    paths = (f"/api/jobs/{job['id']}/", f"/api/jobs/{job['id']}/outputs/0/",
             f"/api/jobs/{job['id']}/results.zip")
    for path in paths:
        assert tenants["a"].get(path).status_code == 200, path
        assert tenants["admin"].get(path).status_code == 200, path
        response = tenants["b"].get(path)
        assert response.status_code == 404 and response.json()["error"] == "job_not_found"
    assert [j["id"] for j in tenants["a"].get("/api/jobs/").json()["items"]] == [job["id"]]
    assert tenants["b"].get("/api/jobs/").json()["items"] == []
    assert tenants["b"].post(f"/api/jobs/{job['id']}/cancel/").status_code == 404


def test_delete_a_local_job_removes_its_outputs_for_the_owner_only(
    tenants, png_bytes, media_root: Path
):
    job = tenants["a"].post("/api/process-batch/threading/",
                            {**SEED, "images": [upload(tenants["a"], png_bytes())]},
                            format="json").json()
    outputs = media_root / "outputs" / job["id"]
    assert any(outputs.iterdir())
    assert tenants["b"].delete(f"/api/jobs/{job['id']}/").status_code == 404
    assert outputs.is_dir()
    assert tenants["a"].delete(f"/api/jobs/{job['id']}/").status_code == 204
    assert not outputs.exists()
    assert tenants["a"].get(f"/api/jobs/{job['id']}/").status_code == 404
    assert tenants["a"].delete(f"/api/jobs/{job['id']}/").status_code == 404


def test_delete_an_upload_for_the_owner_only(tenants, png_bytes, media_root: Path):
    image = upload(tenants["a"], png_bytes())
    files = sorted(p.name for p in (media_root / "uploads").iterdir())
    assert len(files) == 2  # the bytes and the metadata
    assert tenants["b"].delete(f"/api/images/{image}/").status_code == 404
    assert tenants["a"].delete(f"/api/images/{image}/").status_code == 204
    assert list((media_root / "uploads").iterdir()) == []
    assert tenants["a"].get(f"/api/images/{image}/").status_code == 404
    sample = tenants["a"].get("/api/images/").json()["images"][0]["id"]
    response = tenants["a"].delete(f"/api/images/{sample}/")
    assert response.status_code == 409 and response.json()["error"] == "image_not_deletable"


def test_with_auth_off_everyone_is_the_one_anonymous_admin(settings, png_bytes):
    settings.AUTH_REQUIRED = False
    api = APIClient()
    image = upload(api, png_bytes())
    job = api.post("/api/process-batch/threading/", {**SEED, "images": [image]},
                   format="json").json()
    other = APIClient()
    assert other.get(f"/api/jobs/{job['id']}/").status_code == 200
    assert other.post("/api/dead-letters/", {"action": "discard", "all": True},
                      format="json").status_code != 403


# --- tenants: the distributed mode --------------------------------------------------------------


@pytest.fixture
def distributed(settings, queue_config, redis_client):
    settings.DISTRIBUTED = queue_config
    return queue_config


def kill_all(queue, count: int) -> None:
    for delivery in queue.fetch(consumer="c", owner="c/1", count=count):
        queue.fail(delivery, kind="boom", message="boom", permanent=True, retry_in_s=0)


def test_distributed_jobs_dead_letters_and_admin_actions_per_tenant(
    tenants, distributed, queue, redis_client, png_bytes
):
    url = "/api/process-batch/distributed/"
    job_a = tenants["a"].post(url, SEED, format="json").json()["id"]
    job_b = tenants["b"].post(url, SEED, format="json").json()["id"]
    assert tenants["b"].get(f"/api/jobs/{job_a}/").status_code == 404
    assert tenants["admin"].get(f"/api/jobs/{job_a}/").status_code == 200
    assert [j["id"] for j in tenants["a"].get("/api/jobs/").json()["items"]] == [job_a]
    assert {j["id"] for j in tenants["admin"].get("/api/jobs/").json()["items"]} == {job_a, job_b}
    listed = tenants["a"].get("/api/jobs/?status=queued").json()["items"]
    assert [j["id"] for j in listed] == [job_a]
    # a tenant cannot cancel another's job
    assert tenants["b"].post(f"/api/jobs/{job_a}/cancel/").status_code == 404
    # every task dies: each tenant sees its own dead letters only
    kill_all(queue, 100)
    dead_a = tenants["a"].get("/api/dead-letters/").json()
    dead_b = tenants["b"].get("/api/dead-letters/").json()
    dead_all = tenants["admin"].get("/api/dead-letters/").json()
    assert {i["job_id"] for i in dead_a["items"]} == {job_a}
    assert {i["job_id"] for i in dead_b["items"]} == {job_b}
    assert dead_all["total"] == dead_a["total"] + dead_b["total"]
    # only an admin may requeue or discard
    for action in ("requeue", "discard"):
        response = tenants["a"].post("/api/dead-letters/", {"action": action, "all": True},
                                     format="json")
        assert response.status_code == 403 and response.json()["error"] == "admin_required"
    assert tenants["admin"].get("/api/dead-letters/").json()["total"] == dead_all["total"]
    # the owner deletes its finished job: its records and dead letters go, the counters add up
    assert tenants["b"].delete(f"/api/jobs/{job_a}/").status_code == 404
    assert tenants["a"].delete(f"/api/jobs/{job_a}/").status_code == 204
    assert get_job(redis_client, distributed, job_a) is None
    assert tenants["a"].get("/api/dead-letters/").json()["total"] == 0
    assert tenants["b"].get("/api/dead-letters/").json()["total"] == dead_b["total"]
    assert not [k for k in redis_client.keys(f"{distributed.prefix}:*") if job_a.encode() in k]
    assert_counts_add_up(redis_client, distributed)
    response = tenants["admin"].post("/api/dead-letters/", {"action": "discard", "all": True},
                                     format="json")
    assert response.json()["changed"] == dead_b["total"]


def test_an_unfinished_distributed_job_is_not_deleted(tenants, distributed, redis_client):
    job = tenants["a"].post("/api/process-batch/distributed/", SEED, format="json").json()["id"]
    response = tenants["a"].delete(f"/api/jobs/{job}/")
    assert response.status_code == 409 and response.json()["error"] == "job_not_finished"
    assert get_job(redis_client, distributed, job) is not None
    tenants["a"].post(f"/api/jobs/{job}/cancel/")
    assert tenants["a"].delete(f"/api/jobs/{job}/").status_code == 204
    assert_counts_add_up(redis_client, distributed)


def test_idempotency_keys_are_per_tenant(tenants, distributed):
    url = "/api/process-batch/distributed/"
    first = tenants["a"].post(url, SEED, format="json", HTTP_IDEMPOTENCY_KEY="k-1").json()
    again = tenants["a"].post(url, SEED, format="json", HTTP_IDEMPOTENCY_KEY="k-1").json()
    other = tenants["b"].post(url, SEED, format="json", HTTP_IDEMPOTENCY_KEY="k-1").json()
    assert again["id"] == first["id"] and again["duplicate"]
    assert other["id"] != first["id"] and not other["duplicate"]


def test_hostnames_and_pids_are_for_admins(tenants, distributed, start_worker):
    start_worker("w-seen")
    mine = tenants["a"].get("/api/workers/status/").json()["workers"]
    ops = tenants["admin"].get("/api/workers/status/").json()["workers"]
    assert [w["id"] for w in mine] == [w["id"] for w in ops] == ["w-seen"]
    assert mine[0]["hostname"] is None and mine[0]["pid"] is None
    assert ops[0]["hostname"] and ops[0]["pid"]


def test_zip_of_another_tenant_is_404_not_an_empty_archive(tenants, png_bytes):
    job = tenants["a"].post("/api/process-batch/threading/",
                            {**SEED, "images": [upload(tenants["a"], png_bytes())]},
                            format="json").json()
    archive = tenants["a"].get(f"/api/jobs/{job['id']}/results.zip")
    with zipfile.ZipFile(io.BytesIO(b"".join(archive.streaming_content))) as zf:
        assert zf.namelist() == ["a.png"]
    assert tenants["b"].get(f"/api/jobs/{job['id']}/results.zip").status_code == 404
