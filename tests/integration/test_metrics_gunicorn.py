"""/metrics through a real gunicorn with two worker processes (its uvicorn workers, and the
WSGI gthread workers), a real Redis and a real worker that ran a job: every process's HTTP
samples are added up (prometheus-client's multiprocess mode), whichever process answers the
scrape, and they outlive a process that gunicorn replaces."""

from __future__ import annotations

import io
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from tests.support.server import ApiServer
from tests.support.workers import wait_until

LIVE = (("method", "GET"), ("route", "api/health/live/"), ("status", "2xx"))


class Server:
    def __init__(self, api: ApiServer, metrics_dir: Path) -> None:
        self.api, self.base, self.metrics_dir = api, api.url, metrics_dir

    def workers(self) -> set[int]:
        return self.api.children()

    def scrape(self) -> dict[tuple[str, tuple], float]:
        response = requests.get(f"{self.base}/metrics", timeout=10)
        assert response.status_code == 200, response.text
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(response.text)
                for s in family.samples}


@pytest.fixture(params=["asgi", "wsgi"])
def gunicorn_api(request, api_server, queue_config, redis_client, tmp_path: Path,
                 start_worker) -> Server:
    """gunicorn with 2 processes (tests/support/server.py waits until both are up): its
    uvicorn workers (asgi), or gthread workers of 2 threads serving project.wsgi (wsgi)."""
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    stale = metrics_dir / "histogram_4242.db"
    stale.write_bytes(b"left by an earlier server")
    api = api_server(queue_config=queue_config, app=request.param, workers=2, threads=2,
                     media_root=start_worker.media_root,
                     env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})
    assert len(api.children()) == 2
    assert not stale.exists()  # the directory was emptied when the server started
    return Server(api, metrics_dir)


def png() -> bytes:
    pixels = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def test_two_processes_add_up_and_the_cluster_figures_come_from_redis(
    gunicorn_api: Server, start_worker
):
    base = gunicorn_api.base
    # Given a job of two images run by a real worker
    start_worker("w1")
    image = requests.post(f"{base}/api/images/", files={"files": ("a.png", png())},
                          timeout=30).json()["images"][0]["id"]
    job = requests.post(f"{base}/api/process-batch/distributed/",
                        json={"filters": ["blur", "grayscale"], "images": [image, image]},
                        timeout=30).json()
    wait_until(lambda: requests.get(f"{base}/api/jobs/{job['id']}/", timeout=10)
               .json()["status"] == "completed", 60, message="the job to complete")
    # And requests answered by both gunicorn processes (new connections until each has
    # written samples of its own)
    before = gunicorn_api.scrape().get(("imgproc_http_request_duration_seconds_count", LIVE), 0)
    sent = 0

    def both_processes_served() -> bool:
        nonlocal sent
        for _ in range(10):
            response = requests.get(f"{base}/api/health/live/", timeout=10,
                                    headers={"Connection": "close"})
            assert response.ok
            sent += 1
        pids = gunicorn_api.workers()
        written = {int(p.stem.rsplit("_", 1)[1]) for p in
                   gunicorn_api.metrics_dir.glob("histogram_*.db")}
        return pids <= written
    wait_until(both_processes_served, 60, interval_s=0, message="both processes to serve")
    # When Prometheus scrapes (twice: either process may answer)
    for _ in range(2):
        m = gunicorn_api.scrape()
        # Then the HTTP count is every request, whichever process served it
        assert m[("imgproc_http_request_duration_seconds_count", LIVE)] == before + sent
        # And the cluster's figures are the job's
        assert m[("imgproc_redis_up", ())] == 1
        assert m[("imgproc_tasks_completed_total", ())] == 2
        for name in ("blur", "grayscale"):
            assert m[("imgproc_filter_duration_seconds_count", (("filter", name),))] == 2
        assert m[("imgproc_task_duration_seconds_count", ())] == 2
    # When gunicorn replaces one of its processes, what that process counted stays
    victim = min(gunicorn_api.workers())
    os.kill(victim, signal.SIGTERM)
    wait_until(lambda: len(gunicorn_api.workers() - {victim}) == 2, 60,
               message="gunicorn to replace its worker")
    m = gunicorn_api.scrape()
    assert m[("imgproc_http_request_duration_seconds_count", LIVE)] == before + sent
