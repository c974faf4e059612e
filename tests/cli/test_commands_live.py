"""The read and operate commands against a live server, and how the CLI reports errors:
the server's 4xx message, an unreachable server, bad arguments, Ctrl+C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
import requests

from distributed.embedded import free_port
from imaging.storage import Storage
from tests.cli.conftest import cli_env, write_image
from tests.support.workers import ROOT, wait_until


def test_jobs_and_job_show_a_submitted_job(imgproc, live_api, photo_folder, tmp_path):
    done = imgproc("--json", "submit", str(photo_folder), "-f", "blur:radius=2", "--mode",
                   "multiprocessing", "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    job_id = json.loads(done.stdout)["job"]
    # jobs --json: the API's page, this job in it
    listing = imgproc("--json", "jobs", "--mode", "multiprocessing", "--limit", "200")
    assert listing.returncode == 0, listing.stderr
    [item] = [j for j in json.loads(listing.stdout)["items"] if j["id"] == job_id]
    assert item["status"] == "completed" and item["total"] == 3
    # jobs: a table with a row for it
    table = imgproc("jobs", "--status", "completed", "--limit", "200")
    assert table.returncode == 0, table.stderr
    [row] = [line for line in table.stdout.splitlines() if job_id in line]
    assert "multiprocessing" in row and "3/3" in row
    # job ID: each image's row, the pipeline in the caption
    detail = imgproc("job", job_id)
    assert detail.returncode == 0, detail.stderr
    images = [r["image"] for r in requests.get(f"{live_api.url}/api/jobs/{job_id}/",
                                               timeout=10).json()["results"]]
    assert all(image in detail.stdout for image in images)
    assert "blur(radius=2" in detail.stdout


def test_usage_shows_the_tenants_storage_against_its_quota(imgproc, live_api, photo_folder):
    image = next(photo_folder.iterdir())
    with image.open("rb") as handle:
        assert requests.post(f"{live_api.url}/api/images/", files={"files": handle},
                             timeout=10).status_code == 201
    figures = requests.get(f"{live_api.url}/api/usage/", timeout=10).json()
    assert figures["storage"]["used_bytes"] >= image.stat().st_size
    as_json = imgproc("--json", "usage")
    assert as_json.returncode == 0, as_json.stderr
    shown = json.loads(as_json.stdout)
    for body in (shown, figures):  # the disk's free bytes move between two requests
        body["free_space"].pop("free_bytes")
    assert shown == figures
    text = imgproc("usage")
    assert text.returncode == 0, text.stderr
    used_mib = figures["storage"]["used_bytes"] / (1024 * 1024)
    assert f"storage: {used_mib:.1f} MiB of 1024.0 MiB quota" in text.stdout
    assert "max_batch_images: 500" in text.stdout


@pytest.mark.slow
def test_workers_and_dead_letters_list_requeue_and_drain(imgproc, live_api, start_worker,
                                                         tmp_path):
    # Given a task dead-lettered because its upload vanished from the storage
    source = write_image(tmp_path / "gone.png", seed=9)
    with source.open("rb") as handle:
        uploaded = requests.post(f"{live_api.url}/api/images/", files={"files": handle},
                                 timeout=10).json()["images"][0]["id"]
    path = Storage(live_api.media_root).image_path(uploaded)
    saved = path.read_bytes()
    path.unlink()
    start_worker("w-dl", media_root=live_api.media_root)
    job_id = requests.post(f"{live_api.url}/api/process-batch/distributed/",
                           json={"filters": ["grayscale"], "images": [uploaded]},
                           timeout=10).json()["id"]

    def dead_letter() -> dict | None:
        items = requests.get(f"{live_api.url}/api/dead-letters/", timeout=10).json()["items"]
        return next((i for i in items if i["job_id"] == job_id), None)
    item = wait_until(dead_letter, 30, message="the dead letter")
    # workers: the live worker in the table
    status = imgproc("workers")
    assert status.returncode == 0, status.stderr
    assert any("w-dl" in line and "healthy" in line for line in status.stdout.splitlines())
    # dead-letters: listed with its error
    listed = imgproc("dead-letters")
    assert listed.returncode == 0, listed.stderr
    assert item["task_id"] in listed.stdout
    # requeue without ids nor --all is a usage error (2), before any request
    assert imgproc("dead-letters", "requeue").returncode == 2
    # When the file is back and the dead letter is re-queued with the CLI
    path.write_bytes(saved)
    requeued = imgproc("dead-letters", "requeue", item["task_id"])
    assert requeued.returncode == 0, requeued.stderr
    assert "1 dead letters requeued" in requeued.stdout
    wait_until(lambda: requests.get(f"{live_api.url}/api/jobs/{job_id}/", timeout=10)
               .json()["status"] == "completed", 30, message="the requeued task to complete")
    # drain of a worker the server does not know: a 4xx, its message shown
    drained = imgproc("drain", "no-such-worker")
    assert drained.returncode == 4, drained.stderr
    assert "error: 404" in drained.stderr


def test_a_refused_request_shows_the_servers_message_and_exits_4(imgproc, photo_folder,
                                                                 tmp_path):
    run = imgproc("submit", str(photo_folder), "-f", "nope:x=1", "--mode", "threading",
                  "--out", str(tmp_path / "out"))
    assert run.returncode == 4
    assert "400 invalid_pipeline" in run.stderr and "unknown filter 'nope'" in run.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    missing = imgproc("job", "job_" + "0" * 32)
    assert missing.returncode == 4 and "404 job_not_found" in missing.stderr


def test_an_unreachable_server_exits_3_with_a_clear_message(tmp_path):
    port = free_port()  # nothing listens there
    run = subprocess.run([sys.executable, "-m", "imgproc_cli", "jobs"], cwd=ROOT,
                         env=cli_env(f"http://127.0.0.1:{port}", tmp_path),
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 3
    assert f"cannot reach the server at http://127.0.0.1:{port}" in run.stderr
    assert "connection refused" in run.stderr


@pytest.mark.parametrize("args", [
    ["submit", "photos", "-f", "sharpen:intensity", "--out", "out"],  # not PARAM=VALUE
    ["submit", "photos", "--mode", "threading", "--priority", "high", "--out", "out"],
    ["submit", "empty", "--out", "out"],  # no image in it
    ["submit", "no-such-folder", "--out", "out"],
    ["submit", "photos"],  # no --out
    ["jobs", "--limit", "0"],
])
def test_bad_arguments_exit_2_before_any_request(args, photo_folder, tmp_path):
    (tmp_path / "empty").mkdir()
    port = free_port()  # nothing listens: a request would exit 3, not 2
    run = subprocess.run([sys.executable, "-m", "imgproc_cli", *args], cwd=tmp_path,
                         env={**cli_env(f"http://127.0.0.1:{port}", tmp_path / "c"),
                              "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2, run.stderr
    assert "Error" in run.stderr or "error" in run.stderr


@pytest.mark.slow
def test_ctrl_c_while_following_exits_130_and_leaves_no_file(live_api, photo_folder,
                                                             tmp_path, imgproc):
    # Given a distributed job that no worker runs, followed by the CLI
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "imgproc_cli", "submit", str(photo_folder), "-f", "grayscale",
         "--out", str(out)], cwd=ROOT, env=cli_env(live_api.url, tmp_path / "cache"),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        job_id = wait_until(lambda: _submitted_job(live_api.url, "grayscale"), 60,
                            message="the job to be submitted")
        time.sleep(0.5)  # following it
        # When Ctrl+C reaches it
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    # Then it exits 130, says how to resume, and wrote nothing
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Rerun the same command" in stderr
    assert not out.exists() or list(out.iterdir()) == []
    # The job is still there; cancel it with the CLI
    cancelled = imgproc("cancel", job_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert "3 tasks cancelled" in cancelled.stdout


def _submitted_job(api_url: str, filter_name: str) -> str | None:
    page = requests.get(f"{api_url}/api/jobs/", params={"mode": "distributed",
                                                        "status": "queued"}, timeout=10).json()
    for job in page["items"]:
        detail = requests.get(job["url"], timeout=10).json()
        if [s["filter"] for s in detail["pipeline"]] == [filter_name]:
            return str(job["id"])
    return None


@pytest.mark.slow
def test_a_job_with_failed_images_downloads_the_rest_and_exits_6(
        live_api, tmp_path, start_worker):
    # Given two images, one of which vanishes from the storage before a worker runs it
    folder = tmp_path / "two"
    write_image(folder / "keep.png", seed=4)
    write_image(folder / "lose.png", seed=5)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "imgproc_cli", "submit", str(folder), "-f", "invert",
         "--out", str(out)], cwd=ROOT, env=cli_env(live_api.url, tmp_path / "cache"),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        job_id = wait_until(lambda: _submitted_job(live_api.url, "invert"), 60,
                            message="the job to be submitted")
        detail = requests.get(f"{live_api.url}/api/jobs/{job_id}/", timeout=10).json()
        Storage(live_api.media_root).image_path(detail["results"][1]["image"]).unlink()
        start_worker("w-six", media_root=live_api.media_root)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 6, stderr
    assert [p.name for p in out.iterdir()] == ["keep.png"]
    assert "1 of 2 images did not complete" in stderr
    assert "lose.png" in stdout and "failed" in stdout

