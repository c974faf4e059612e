"""The console in a real headless Chromium, against a real API server (uvicorn), a real Redis
and real worker processes: a job moves through the list and its page shows every thumbnail,
the buttons cancel a job, re-queue a dead letter and drain a worker. Each page is saved as a
screenshot under var/screenshots/."""

from __future__ import annotations

import signal
import time

import pytest
import requests

from distributed.history import record_sample
from distributed.ids import new_job_id
from distributed.jobs import get_job
from distributed.registry import Registry
from distributed.status import cluster_status
from tests.support.browser import screenshot
from tests.support.tasks import noop_tasks
from tests.support.workers import wait_until

pytestmark = pytest.mark.slow

# Large sample images through an expensive pipeline (a few seconds of work in all).
HEAVY = {"steps": [{"filter": "blur", "params": {"radius": 25}},
                   {"filter": "rotate", "params": {"degrees": 17, "expand": True}},
                   {"filter": "sharpen", "params": {"intensity": 2}}],
         "images": ["sample-landscape", "sample-city-night"] * 8}


def submit(server, body: dict) -> dict:
    response = requests.post(f"{server.url}/api/process-batch/distributed/", json=body,
                             timeout=30)
    assert response.status_code == 202, response.text
    return response.json()


def test_a_job_moves_through_the_list_and_its_page_shows_every_thumbnail(
    console_server, console_queue, page, start_worker, receiver
):
    # Given the jobs page, and a job (with a callback) submitted through the API while no
    # worker runs
    page.goto(f"{console_server.url}/console/jobs/")
    job = submit(console_server, {**HEAVY, "callback_url": f"{receiver.url}/done"})
    row = page.locator(f'tr[data-job="{job["id"]}"]')
    row.wait_for()
    bar = row.locator(".progress")
    assert bar.get_attribute("data-done") == "0"
    assert bar.get_attribute("data-total") == str(job["total"]) == "16"
    # When a worker starts on it, the bar moves: part-way (the worker is frozen a moment
    # after its first results, so that the list shows the job half done on any machine),
    # then full
    worker = start_worker("w-jobs", media_root=console_server.media_root)

    def completed() -> int:
        return get_job(console_queue.client, console_queue.config, job["id"])["counts"][
            "completed"]

    wait_until(lambda: completed() >= 1, 60, interval_s=0.01, message="a first result")
    worker.signal(signal.SIGSTOP)
    try:
        frozen = completed()
        assert 0 < frozen < job["total"]
        page.wait_for_function(
            f"() => document.querySelector('tr[data-job=\"{job['id']}\"] .progress')"
            f".dataset.done === '{frozen}'")
        part = row.locator(".progress .ok").evaluate("el => parseFloat(el.style.width)")
        assert part == pytest.approx(100 * frozen / job["total"], abs=0.1)
        screenshot(page, "jobs-running")
    finally:
        worker.signal(signal.SIGCONT)
    page.locator(f'tr[data-job="{job["id"]}"][data-status="completed"]').wait_for()
    width = row.locator(".progress .ok").evaluate("el => parseFloat(el.style.width)")
    assert width == 100
    screenshot(page, "jobs")

    # Then its page shows a thumbnail per image, each loaded, from the thumbnail endpoint,
    # and the callback's delivery
    receiver.wait_for(1, timeout_s=30)
    wait_until(lambda: requests.get(f"{console_server.url}/api/jobs/{job['id']}/", timeout=10)
               .json()["callback"]["state"] == "delivered", 15, message="the callback")
    page.goto(f"{console_server.url}/console/jobs/{job['id']}/")
    page.locator("#status.completed").wait_for()
    images = page.locator("#thumbs img")
    wait_until(lambda: images.count() == job["total"], 20, message="every thumbnail tile")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#thumbs img')].every("
        "img => img.complete && img.naturalWidth > 0)")
    sources = images.evaluate_all("imgs => imgs.map(img => img.getAttribute('src'))")
    assert all("/thumbnails/" in src for src in sources), sources
    widths = images.evaluate_all("imgs => imgs.map(img => img.naturalWidth)")
    assert all(0 < w <= 256 for w in widths), widths
    assert page.locator("#tasks tr").count() == job["total"]
    assert page.locator("#tasks td.completed").count() == job["total"]
    assert page.locator("#download").get_attribute("href").endswith("/results.zip")
    assert page.locator("#callback").inner_text() == (
        f"Callback to {receiver.url}/done: delivered, 1 attempt (last: 200)")
    screenshot(page, "job")

    # and the worker's page shows those tasks on its timeline
    page.goto(f"{console_server.url}/console/workers/w-jobs/")
    wait_until(lambda: page.locator("#timeline rect").count() == job["total"], 20,
               message="the timeline bars")
    screenshot(page, "worker")
    assert page.errors == []


def test_cancel_a_job_with_the_button(console_server, console_queue, page):
    # Given a queued job (no worker takes it: each test starts its own)
    job = submit(console_server, {"filters": ["grayscale"], "images": []})
    page.goto(f"{console_server.url}/console/jobs/{job['id']}/")
    page.locator("#status.queued").wait_for()
    # When the Cancel button is pressed
    page.locator("#cancel").click()
    # Then the page shows the job cancelled, and so does the API
    page.locator("#status.cancelled").wait_for()
    assert page.locator("#cancel").is_disabled()
    body = requests.get(f"{console_server.url}/api/jobs/{job['id']}/", timeout=10).json()
    assert body["status"] == "cancelled" and body["progress"]["cancelled"] == job["total"]
    screenshot(page, "job-cancelled")
    assert page.errors == []


def test_requeue_a_dead_letter_with_the_button(console_server, console_queue, page):
    # Given a task that failed for good
    job_id = new_job_id()
    console_queue.submit(job_id=job_id, priority="normal", messages=noop_tasks(job_id, 1),
                         job_fields={"mode": "distributed"})
    [delivery] = console_queue.fetch(consumer="c", owner="c/1", count=1)
    console_queue.fail(delivery, kind="corrupt_image", message="not an image", permanent=True,
                       retry_in_s=0)
    page.goto(f"{console_server.url}/console/dead-letters/")
    row = page.locator(f'tr[data-task="{delivery.task_id}"]')
    row.wait_for()
    assert "corrupt_image: not an image" in row.inner_text()
    screenshot(page, "dead-letters")
    # When its Requeue button is pressed
    row.locator('button[data-act="requeue"]').click()
    # Then it leaves the list and is pending again
    row.wait_for(state="detached")
    assert "requeue: 1 changed" in page.locator("#flash").inner_text()
    task = get_job(console_queue.client, console_queue.config, job_id)["tasks"][0]
    assert task["state"] == "pending"
    assert console_queue.cancel_job(job_id) == 1  # leave no open task for the next test
    assert page.errors == []


def test_drain_a_worker_with_the_button_and_watch_it_leave(
    console_server, console_queue, page, start_worker
):
    # Given two workers on the overview, and three samples of history
    keys = console_queue.config.keys
    console_queue.client.delete(keys.history(), keys.history_last())  # earlier tests' samples
    now = int(time.time() * 1000)
    for seconds_ago in (30, 20, 10):
        assert record_sample(console_queue.client, console_queue.config,
                             now=now - seconds_ago * 1000)
    leaving = start_worker("w-drain", media_root=console_server.media_root)
    staying = start_worker("w-stay", media_root=console_server.media_root)
    page.goto(f"{console_server.url}/console/")
    button = page.locator('tr[data-worker="w-drain"] button[data-drain]')
    button.wait_for()
    # When its Drain button is pressed
    button.click()
    # Then the worker leaves: the row turns stopped, the process exits 0, the other stays
    page.locator('tr[data-worker="w-drain"][data-status="stopped"]').wait_for()
    assert leaving.wait(30) == 0, leaving.log()
    assert "draining" in page.locator("#flash").inner_text()
    assert page.locator('tr[data-worker="w-drain"] button[data-drain]').count() == 0
    assert page.locator('tr[data-worker="w-stay"] button[data-drain]').count() == 1
    views = {w["id"]: w for w in cluster_status(console_queue.client,
                                                console_queue.config)["workers"]}
    assert views["w-drain"]["state"] == "drained" and staying.proc.poll() is None
    # The charts are drawn from the history endpoint (a line through its samples)
    for chart in ("depth", "tput", "fail"):
        # attached, not visible: a flat line at 0 has no height
        page.locator(f"#chart-{chart} polyline").wait_for(state="attached")
        assert int(page.locator(f"#chart-{chart}").get_attribute("data-points")) >= 2, chart
    assert Registry(console_queue.client, console_queue.config).request_drain("w-drain").value \
        == "gone"
    screenshot(page, "overview")
    assert page.errors == []
