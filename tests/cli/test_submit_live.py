"""``imgproc submit`` against a live server: folders walked, outputs under their original
names with the same pixels as the pipeline run here, reruns that submit nothing new."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from imaging.codecs import decode_image
from imaging.pipeline import parse_pipeline, run_pipeline
from tests.cli.conftest import cli_env, serve_api
from tests.support.workers import ROOT, wait_until

FILTERS = ["-f", "sharpen:intensity=3", "-f", "edges:threshold1=50,threshold2=150"]
STEPS = {"steps": [{"filter": "sharpen", "params": {"intensity": 3}},
                   {"filter": "edges", "params": {"threshold1": 50, "threshold2": 150}}]}


def expected_pixels(source: Path) -> np.ndarray:
    pixels, _ = run_pipeline(decode_image(source.read_bytes(), max_pixels=10**7),
                             parse_pipeline(STEPS))
    return pixels


def jobs_of(api_url: str, mode: str) -> list[str]:
    page = requests.get(f"{api_url}/api/jobs/", params={"mode": mode, "limit": 200},
                        timeout=10).json()
    return [job["id"] for job in page["items"]]


def test_a_folder_is_processed_in_threading_mode_under_its_original_names(
        imgproc, live_api, photo_folder, tmp_path):
    out = tmp_path / "out"
    run = imgproc("--json", "submit", str(photo_folder), *FILTERS, "--mode", "threading",
                  "--out", str(out))
    assert run.returncode == 0, run.stderr
    answer = json.loads(run.stdout)
    assert answer["status"] == "completed" and answer["not_completed"] == []
    # The text file was skipped, and said so
    assert "skipped 1 files that are not images" in run.stderr and "notes.txt" in run.stderr
    # Each output carries its input's name; the second a.png (trip/) became "a (2).png"
    assert sorted(p.name for p in out.iterdir()) == ["a (2).png", "a.png", "b.jpg"]
    with Image.open(out / "a (2).png") as image:
        assert image.size == (40, 30)  # trip/a.png, not the top-level a.png
    for name, source in [("a.png", photo_folder / "a.png"),
                         ("a (2).png", photo_folder / "trip" / "a.png")]:
        got = decode_image((out / name).read_bytes(), max_pixels=10**7)
        assert np.array_equal(got, expected_pixels(source)), name  # PNG: lossless
    assert answer["outputs"] == [str(out / n) for n in ("a.png", "b.jpg", "a (2).png")]


def test_a_rerun_submits_nothing_new_and_uploads_nothing(imgproc, live_api, photo_folder,
                                                          tmp_path):
    args = ("--json", "submit", str(photo_folder), *FILTERS, "--mode", "threading",
            "--out", str(tmp_path / "out"))
    first = imgproc(*args)
    assert first.returncode == 0, first.stderr
    before = jobs_of(live_api.url, "threading")
    uploads = len(list((live_api.media_root / "uploads").glob("img_*.json")))
    # When the same command runs again
    again = imgproc(*args)
    # Then it answers the same job, made no new one and uploaded nothing
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["job"] == json.loads(first.stdout)["job"]
    assert json.loads(again.stdout)["duplicate"] is True
    assert "already submitted as" in again.stderr
    assert jobs_of(live_api.url, "threading") == before
    assert len(list((live_api.media_root / "uploads").glob("img_*.json"))) == uploads
    # And other options are another request: a new job, the uploads reused
    other = imgproc("--json", "submit", str(photo_folder), "-f", "grayscale", "--mode",
                    "threading", "--out", str(tmp_path / "gray"))
    assert other.returncode == 0, other.stderr
    assert json.loads(other.stdout)["job"] != json.loads(first.stdout)["job"]
    assert "3 of 3 images already uploaded" in other.stderr
    assert len(list((live_api.media_root / "uploads").glob("img_*.json"))) == uploads


@pytest.mark.slow
def test_a_folder_is_processed_by_workers_and_a_rerun_is_the_same_job(
        imgproc, live_api, photo_folder, tmp_path, start_worker):
    start_worker("w1", media_root=live_api.media_root)
    out = tmp_path / "out"
    args = ("--json", "submit", str(photo_folder), *FILTERS, "--priority", "high",
            "--format", "png", "--chunk-files", "2", "--out", str(out))
    first = imgproc(*args)
    assert first.returncode == 0, first.stderr
    answer = json.loads(first.stdout)
    assert answer["status"] == "completed" and answer["duplicate"] is False
    # b.jpg came back as PNG (--format png), under its own name
    assert sorted(p.name for p in out.iterdir()) == ["a (2).png", "a.png", "b.png"]
    got = decode_image((out / "a.png").read_bytes(), max_pixels=10**7)
    assert np.array_equal(got, expected_pixels(photo_folder / "a.png"))
    job = requests.get(f"{live_api.url}/api/jobs/{answer['job']}/", timeout=10).json()
    assert job["priority"] == "high" and {r["worker"] for r in job["results"]} == {"w1"}
    # The progress came from the event stream: "processing 3/3" on the bar
    assert "processing" in first.stderr and "3/3" in first.stderr
    # When this machine forgets the job (its uploads remembered), the server's
    # Idempotency-Key check still answers the first job: nothing is queued again
    cache = next(imgproc.cache_dir.glob("server-*.json"))
    state = json.loads(cache.read_text())
    state["jobs"] = {}
    cache.write_text(json.dumps(state))
    before = jobs_of(live_api.url, "distributed")
    again = imgproc(*args)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["job"] == answer["job"]
    assert json.loads(again.stdout)["duplicate"] is True
    assert "submitted before" in again.stderr
    assert jobs_of(live_api.url, "distributed") == before


@pytest.mark.slow
def test_a_full_queue_429_is_retried_until_the_workers_make_room(
        live_config, photo_folder, tmp_path, start_worker):
    # Given a server whose queue holds 2 open tasks, full with another job's 2 tasks
    config = dataclasses.replace(live_config, prefix="cap", max_queued_tasks=2)
    with serve_api(config, tmp_path / "capped", MAX_QUEUED_TASKS="2") as api:
        first = requests.post(f"{api.url}/api/process-batch/distributed/",
                              json={"filters": ["grayscale"], "images": [
                                  "sample-landscape", "sample-portrait"]}, timeout=30)
        assert first.status_code == 202, first.text
        out = tmp_path / "out"
        proc = subprocess.Popen(
            [sys.executable, "-m", "imgproc_cli", "--retries", "60", "submit",
             str(photo_folder / "a.png"), "-f", "invert", "--out", str(out)],
            cwd=ROOT, env=cli_env(api.url, tmp_path / "cache"), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            # When the CLI's submission has been refused at least once (its upload is stored,
            # no job of its own yet, a Retry-After of 1 s waited)...
            wait_until(lambda: list((api.media_root / "uploads").glob("img_*.json")), 30,
                       message="the CLI's upload")
            time.sleep(2.5)
            assert len(requests.get(f"{api.url}/api/jobs/", timeout=10).json()["items"]) == 1
            # ...and a worker then empties the queue
            start_worker("w-cap", media_root=api.media_root, REDIS_PREFIX="cap")
            _, stderr = proc.communicate(timeout=90)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    # Then the retried submission went through and the output is there
    assert proc.returncode == 0, stderr
    assert "server busy (queue_full): retrying in 1 s (retry 1 of 60)" in stderr
    assert [p.name for p in out.iterdir()] == ["a.png"]


def test_a_callback_url_gets_the_finished_job_signed_from_the_servers_sender(
        imgproc, live_api, photo_folder, tmp_path, start_worker, receiver):
    # Given a receiver whose first answer is a 503, and a worker
    receiver.statuses = [503]
    start_worker("w1", media_root=live_api.media_root)
    # When a folder is submitted with a callback URL
    done = imgproc("--json", "submit", str(photo_folder), *FILTERS, "--new-job",
                   "--callback-url", f"{receiver.url}/hooks/done", "--out", str(tmp_path / "o"))
    assert done.returncode == 0, done.stderr
    job_id = json.loads(done.stdout)["job"]
    # Then the API process's sender thread POSTs the finished job, and retries the 503
    first, second = receiver.wait_for(2, timeout_s=30)
    assert first.path == second.path == "/hooks/done"
    assert (first.headers["X-Imgproc-Attempt"], second.headers["X-Imgproc-Attempt"]) == ("1", "2")
    body = second.json()
    assert body["job"]["id"] == job_id and body["job"]["status"] == "completed"
    assert body["job"]["results"][0]["output_url"].startswith(live_api.url)
    # signed with the secret `imgproc callback-secret` prints
    secret = imgproc("callback-secret").stdout.strip()
    stamp = second.headers["X-Imgproc-Timestamp"]
    mac = hmac.new(secret.encode(), stamp.encode() + b"." + second.body, hashlib.sha256)
    assert second.headers["X-Imgproc-Signature"] == f"sha256={mac.hexdigest()}"
    # and the job shows both attempts
    wait_until(lambda: json.loads(imgproc("--json", "job", job_id).stdout)["callback"]["state"]
               == "delivered", 15, message="the delivery to be recorded")
    callback = json.loads(imgproc("--json", "job", job_id).stdout)["callback"]
    assert [a["status_code"] for a in callback["attempts"]] == [503, 200]
    assert "delivered, 2 attempts (last: 200)" in imgproc("job", job_id).stdout
