#!/usr/bin/env python
"""Throughput of the execution modes on one batch of 1920x1080 JPEGs.

    python bench/bench_batch.py --start-server     # one command: starts and stops gunicorn
    python bench/bench_batch.py --url http://127.0.0.1:8000   # against a running server

Modes (one function each, registered in MODES; add e.g. "distributed" there):
  plain            a single-process loop calling imaging.processing.process_image
  pool             a bare multiprocessing.Pool(N) over the same images, same function
  threading        POST /api/process-batch/threading/ of a running server
  multiprocessing  POST /api/process-batch/multiprocessing/ of a running server

Every mode runs sharpen(intensity 3) then edges(50, 150) with JPEG output, and OpenCV
limited to one thread per worker (limit_native_threads(1)) so N workers use N cores.
Every mode (plain loop, pool, server executors) is warmed up first. For the HTTP modes the
images are uploaded beforehand (upload time excluded) and the batch POST is timed end to end.
The modes run round-robin for --repeat rounds; the table shows the median images/s.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from imaging.codecs import encode_image, inspect_image  # noqa: E402
from imaging.processing import Limits, limit_native_threads, process_image  # noqa: E402
from imaging.samples import make_scene  # noqa: E402
from imaging.storage import Storage  # noqa: E402

CACHE_DIR = ROOT / "var" / "bench" / "images"
RESULTS_DIR = ROOT / "bench" / "results"
WIDTH, HEIGHT = 1920, 1080
PIPELINE = {
    "filters": ["sharpen", "edges"],
    "filter_params": {"sharpen": {"intensity": 3}, "edges": {"threshold1": 50, "threshold2": 150}},
}
STEPS_JSON = [
    {"filter": "sharpen", "params": {"intensity": 3}},
    {"filter": "edges", "params": {"threshold1": 50, "threshold2": 150}},
]
OUTPUT_FORMAT = "jpeg"
QUALITY = 90
MAX_PIXELS = 40_000_000
UPLOAD_CHUNK = 20
WARMUP_PER_WORKER = 4


@dataclass
class Context:
    """What every mode needs: the image files, worker count, and the server (HTTP modes)."""

    files: list[Path]
    workers: int
    repeat: int
    url: str | None
    media_root: Path | None = None  # local storage for the in-process modes
    local_ids: list[str] = field(default_factory=list)
    server_ids: list[str] = field(default_factory=list)


# --- images ------------------------------------------------------------------------------------


def build_images(count: int) -> list[Path]:
    """`count` synthetic 1920x1080 JPEG scenes, built once and cached under var/bench/."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    files = []
    for seed in range(count):
        path = CACHE_DIR / f"scene-{WIDTH}x{HEIGHT}-{seed:03d}.jpg"
        if not path.exists():
            data = encode_image(make_scene(WIDTH, HEIGHT, seed), "jpeg", quality=90)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        files.append(path)
    return files


def store_locally(files: list[Path], media_root: Path) -> list[str]:
    storage = Storage(media_root)
    ids = []
    for path in files:
        data = path.read_bytes()
        info = inspect_image(data, max_bytes=len(data), max_pixels=MAX_PIXELS)
        ids.append(storage.save_upload(data, info, path.name))
    return ids


def task_kwargs(media_root: Path, image_id: str, job_id: str, index: int) -> dict[str, Any]:
    return {
        "media_root": str(media_root),
        "image_id": image_id,
        "steps_json": STEPS_JSON,
        "job_id": job_id,
        "index": index,
        "output_format": OUTPUT_FORMAT,
        "quality": QUALITY,
        "limits": Limits(max_pixels=MAX_PIXELS),
    }


def _run_task(kwargs: dict[str, Any]) -> int:
    return process_image(**kwargs).bytes


# --- modes: each returns the seconds one batch of len(ctx.files) images took ---------------------


def warmup_count(ctx: Context) -> int:
    # A few images per worker before timing: the first images a process handles are slower
    # (lazy codec set-up, malloc growing its heap for 6 MB frames), for every mode alike.
    return min(len(ctx.files), WARMUP_PER_WORKER * ctx.workers)


def bench_plain(ctx: Context, run: int) -> float:
    assert ctx.media_root is not None
    limit_native_threads(1)
    if run == 0:
        for i in range(warmup_count(ctx)):
            _run_task(task_kwargs(ctx.media_root, ctx.local_ids[i], "job_plain_warmup", i))
    tasks = [task_kwargs(ctx.media_root, image_id, f"job_plain_{run}", i)
             for i, image_id in enumerate(ctx.local_ids)]
    started = time.perf_counter()
    for task in tasks:
        _run_task(task)
    return time.perf_counter() - started


_POOL: Any = None


def bench_pool(ctx: Context, run: int) -> float:
    global _POOL
    assert ctx.media_root is not None
    if _POOL is None:  # created and warmed up once, like the server's executor
        # forkserver like the server: never fork a process whose OpenCV threads already run
        context = multiprocessing.get_context("forkserver")
        _POOL = context.Pool(ctx.workers, initializer=limit_native_threads, initargs=(1,))
        warm = [task_kwargs(ctx.media_root, ctx.local_ids[i], "job_pool_warmup", i)
                for i in range(warmup_count(ctx))]
        _POOL.map(_run_task, warm, chunksize=1)
    tasks = [task_kwargs(ctx.media_root, image_id, f"job_pool_{run}", i)
             for i, image_id in enumerate(ctx.local_ids)]
    started = time.perf_counter()
    _POOL.map(_run_task, tasks, chunksize=1)
    return time.perf_counter() - started


def _post_batch(ctx: Context, mode: str, image_ids: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = {
        **PIPELINE, "images": image_ids, "output_format": OUTPUT_FORMAT, "quality": QUALITY
    }
    response = requests.post(f"{ctx.url}/api/process-batch/{mode}/", json=body, timeout=900)
    response.raise_for_status()
    job = response.json()
    if job["status"] != "completed":
        raise RuntimeError(f"{mode} batch ended {job['status']}: {job['results'][:3]}")
    return job


def _bench_endpoint(ctx: Context, mode: str, run: int) -> float:
    if run == 0:  # warm up the server's executor (pool start-up is not throughput)
        _post_batch(ctx, mode, ctx.server_ids[: warmup_count(ctx)])
    started = time.perf_counter()
    _post_batch(ctx, mode, ctx.server_ids)
    return time.perf_counter() - started


def bench_threading(ctx: Context, run: int) -> float:
    return _bench_endpoint(ctx, "threading", run)


def bench_multiprocessing(ctx: Context, run: int) -> float:
    return _bench_endpoint(ctx, "multiprocessing", run)


# name -> (function, needs a server)
MODES: dict[str, tuple[Callable[[Context, int], float], bool]] = {
    "plain": (bench_plain, False),
    "pool": (bench_pool, False),
    "threading": (bench_threading, True),
    "multiprocessing": (bench_multiprocessing, True),
}
RATIOS = [
    # (label, numerator mode, denominator mode, target)
    ("multiprocessing endpoint / bare pool", "multiprocessing", "pool", 0.9),
    ("threading endpoint / plain loop", "threading", "plain", 1.3),
]


# --- server ------------------------------------------------------------------------------------


def upload_images(url: str, files: list[Path]) -> list[str]:
    ids: list[str] = []
    for start in range(0, len(files), UPLOAD_CHUNK):
        chunk = files[start:start + UPLOAD_CHUNK]
        parts = [("files", (p.name, p.read_bytes(), "image/jpeg")) for p in chunk]
        response = requests.post(f"{url}/api/images/", files=parts, timeout=300)
        response.raise_for_status()
        ids.extend(image["id"] for image in response.json()["images"])
    return ids


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, process: subprocess.Popen, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}")
        try:
            if requests.get(f"{url}/api/health/", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server at {url} not healthy after {timeout_s:.0f}s")


@contextmanager
def own_server(workers: int, threads: int) -> Iterator[str]:
    """gunicorn (1 worker process, `threads` threads) on a free port with a temp MEDIA_ROOT/DB."""
    var_dir = Path(tempfile.mkdtemp(prefix="bench-server-"))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "VAR_DIR": str(var_dir),
        "MEDIA_ROOT": str(var_dir / "media"),
        "DATABASE_URL": f"sqlite:///{var_dir / 'db.sqlite3'}",
        "THREAD_POOL_SIZE": str(workers),
        "PROCESS_POOL_SIZE": str(workers),
        "LOG_LEVEL": "WARNING",
    }
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env,
                   check=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        python, "-m", "gunicorn", "project.wsgi:application", "--bind", f"127.0.0.1:{port}",
        "--workers", "1", "--threads", str(threads), "--worker-class", "gthread",
        "--timeout", "600", "--log-level", "warning",
    ]
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        wait_healthy(url, process)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(var_dir, ignore_errors=True)


# --- report ------------------------------------------------------------------------------------


def run_modes(ctx: Context, modes: list[str]) -> dict[str, dict[str, Any]]:
    """Run the modes round-robin (`repeat` rounds) so load bursts hit every mode alike."""
    seconds: dict[str, list[float]] = {name: [] for name in modes}
    for run in range(ctx.repeat):
        figures = []
        for name in modes:
            func, _ = MODES[name]
            seconds[name].append(func(ctx, run))
            figures.append(f"{name} {len(ctx.files) / seconds[name][-1]:.2f}")
        print(f"  round {run + 1}: " + ", ".join(figures) + " images/s", flush=True)
    results = {}
    for name, runs in seconds.items():
        rates = [len(ctx.files) / s for s in runs]
        results[name] = {
            "images_per_second": statistics.median(rates), "runs": rates, "seconds": runs
        }
    return results


def print_table(results: dict[str, dict[str, Any]], images: int, workers: int) -> None:
    print(f"\n{images} images {WIDTH}x{HEIGHT} JPEG, sharpen(3) + edges(50,150) -> JPEG, "
          f"N = {workers}\n")
    print(f"  {'mode':<16} {'images/s':>9}")
    for name, result in results.items():
        print(f"  {name:<16} {result['images_per_second']:9.2f}")
    print()
    for label, top, bottom, target in RATIOS:
        if top in results and bottom in results:
            ratio = results[top]["images_per_second"] / results[bottom]["images_per_second"]
            verdict = "meets" if ratio >= target else "MISSES"
            print(f"  {label:<40} {ratio:5.2f}  (target >= {target}: {verdict})")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="a running server")
    parser.add_argument("--start-server", action="store_true",
                        help="start (and stop) a private gunicorn instead of using --url")
    parser.add_argument("--images", type=int, default=60, help="batch size (default 60)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                        help="N: pool processes / threads (default: CPU count)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per mode (median shown)")
    parser.add_argument("--modes", default=",".join(MODES),
                        help=f"comma-separated subset of {','.join(MODES)}")
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "bench_batch.json",
                        help="where to write the figures as JSON")
    return parser.parse_args(argv)


def run_all(ctx: Context, modes: list[str]) -> dict[str, dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="bench-media-") as media:
        ctx.media_root = Path(media)
        ctx.local_ids = store_locally(ctx.files, ctx.media_root)
        if any(MODES[m][1] for m in modes):
            assert ctx.url is not None
            ctx.server_ids = upload_images(ctx.url, ctx.files)
        results = run_modes(ctx, modes)
    if _POOL is not None:
        _POOL.close()
        _POOL.join()
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = set(modes) - set(MODES)
    if unknown:
        raise SystemExit(f"unknown modes: {', '.join(sorted(unknown))}")
    files = build_images(args.images)
    ctx = Context(files=files, workers=args.workers, repeat=args.repeat, url=args.url)
    print(f"{len(files)} images, modes {', '.join(modes)}, {args.repeat} rounds:", flush=True)
    if args.start_server and any(MODES[m][1] for m in modes):
        with own_server(args.workers, threads=max(4, args.workers)) as url:
            ctx.url = url
            results = run_all(ctx, modes)
    else:
        results = run_all(ctx, modes)
    print_table(results, len(files), args.workers)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(
        {"images": len(files), "size": [WIDTH, HEIGHT], "workers": args.workers,
         "pipeline": PIPELINE, "output_format": OUTPUT_FORMAT, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
