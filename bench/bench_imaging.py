#!/usr/bin/env python
"""The imaging engine beside a hand-written OpenCV reference, in one run, on the same inputs.

  throughput  60 JPEGs of 1920x1080 (photograph-like), sharpen then Canny 50/150, PNG out:
              the reference function in a Pool(2); the project's pipeline in a Pool(2); the
              distributed mode with 2 workers; the threading mode through HTTP (gunicorn).
  steps       per-step milliseconds (decode, each filter, encode), project beside reference.
  thumbnail   a 320 px thumbnail of a 24 Mpx JPEG: full decode + resize vs shrink-on-load.
  memory      peak RSS of a task process running sharpen on a 40 Mpx RGBA PNG.
  scanbomb    CPU time to refuse a 2,000-scan progressive JPEG (6000x6000).

    python bench/bench_imaging.py                   # everything (about 3 minutes on 2 cores)
    python bench/bench_imaging.py --only steps thumbnail

Every process runs one native thread (OpenCV, BLAS). Targets (bench/README.md): project
pipeline in-task <= 0.7x the reference's time; distributed with 2 workers >= 1.3x the reference
Pool(2) in images/s; thumbnail >= 4x faster with shrink-on-load; peak <= 600 MB; scan-bomb
refusal <= 1 s of CPU.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from imaging import colour, geometry  # noqa: E402
from imaging.codecs import decode_image, encode_image, inspect_image, read_header  # noqa: E402
from imaging.pipeline import parse_pipeline, steps_to_json  # noqa: E402
from imaging.processing import Limits, configure_process, process_image  # noqa: E402
from imaging.scenes import make_scene  # noqa: E402
from imaging.storage import Storage  # noqa: E402

WIDTH, HEIGHT, COUNT = 1920, 1080, 60
PIPELINE = {"filters": ["sharpen", "edges"],
            "filter_params": {"sharpen": {"intensity": 3}, "edges": {"threshold1": 50,
                                                                     "threshold2": 150}}}
STEPS_JSON = steps_to_json(parse_pipeline(PIPELINE))
LIMITS = Limits(max_pixels=100_000_000)
# The reference's sharpen: the classic 3x3 kernel (centre 5, cross -1).
SHARPEN_3X3 = np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], np.float32)


# --- inputs --------------------------------------------------------------------------------------


def photo(seed: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """A synthetic scene with sensor-like noise and a little blur: photograph-like to the
    codecs (smooth areas, fine texture, no flat runs)."""
    image = make_scene(width, height, seed).astype(np.int16)
    rng = np.random.default_rng(seed)
    image += rng.normal(0, 6, image.shape).astype(np.int16)
    return cv2.GaussianBlur(np.clip(image, 0, 255).astype(np.uint8), (0, 0), 0.6)


def build_inputs(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in range(COUNT):
        path = directory / f"photo-{seed:03d}.jpg"
        if not path.exists():
            path.write_bytes(encode_image(photo(seed), "jpeg", quality=90))
        paths.append(path)
    return paths


# --- the reference: ten lines of hand-written OpenCV ------------------------------------------


def reference(job: tuple[str, str]) -> int:
    source, target = job
    image = cv2.imdecode(np.fromfile(source, np.uint8), cv2.IMREAD_COLOR)
    sharp = cv2.filter2D(image, -1, SHARPEN_3X3)
    edges = cv2.Canny(cv2.cvtColor(sharp, cv2.COLOR_BGR2GRAY), 50, 150)
    _, buffer = cv2.imencode(".png", edges)
    buffer.tofile(target)
    return len(buffer)


def project(job: tuple[str, str, int]) -> int:
    media, image_id, index = job
    return process_image(media_root=media, image_id=image_id, steps_json=STEPS_JSON,
                         job_id="job_" + "b" * 32, index=index, output_format="png",
                         quality=90, limits=LIMITS).bytes


def one_thread() -> None:
    """The reference's process set-up: what a user would write."""
    cv2.setNumThreads(1)


def project_process() -> None:
    """The project's process set-up (imaging.processing.configure_process), as its workers,
    task processes and pools do: one OpenCV thread, frames kept on the heap."""
    configure_process(1)


# --- throughput ----------------------------------------------------------------------------------


def pool_rate(func: Any, jobs: list[Any], pool: Any) -> float:
    pool.map(func, jobs[:4])  # warm the processes
    started = time.perf_counter()
    pool.map(func, jobs, chunksize=1)
    return len(jobs) / (time.perf_counter() - started)


def distributed_rate(tmp: Path, ids: list[str], media: Path, repeat: int) -> list[float]:
    from bench_distributed import cluster, wait_done

    from distributed.ids import new_job_id
    from distributed.messages import TaskMessage

    def messages(job_id: str, image_ids: list[str]) -> list[TaskMessage]:
        return [TaskMessage(kind="image", job_id=job_id, index=i, image_id=image_id,
                            steps=tuple(STEPS_JSON), output_format="png")
                for i, image_id in enumerate(image_ids)]

    rates = []
    with cluster(media, 2) as (queue, client, _):
        warm = new_job_id()
        queue.submit(job_id=warm, priority="normal", messages=messages(warm, ids[:8]),
                     job_fields={})
        wait_done(client, queue.config, [warm])
        for _ in range(repeat):
            job_id = new_job_id()
            started = time.perf_counter()
            queue.submit(job_id=job_id, priority="normal", messages=messages(job_id, ids),
                         job_fields={})
            rates.append(len(ids) / (wait_done(client, queue.config, [job_id]) - started))
    return rates


def threading_http_rate(paths: list[Path], repeat: int) -> list[float]:
    import requests
    from bench_batch import own_server, upload_images

    rates = []
    with own_server(workers=2, threads=4) as url:
        ids = upload_images(url, paths)
        body = {**PIPELINE, "images": ids, "output_format": "png"}
        requests.post(f"{url}/api/process-batch/threading/", json={**body, "images": ids[:4]},
                      timeout=600).raise_for_status()
        for _ in range(repeat):
            started = time.perf_counter()
            response = requests.post(f"{url}/api/process-batch/threading/", json=body,
                                     timeout=600)
            response.raise_for_status()
            assert response.json()["status"] == "completed", response.json()["status"]
            rates.append(len(ids) / (time.perf_counter() - started))
    return rates


def bench_throughput(tmp: Path, paths: list[Path], repeat: int) -> dict[str, float]:
    media = tmp / "media"
    storage = Storage(media)
    ids = []
    for path in paths:
        data = path.read_bytes()
        ids.append(storage.save_upload(data, inspect_image(data, max_bytes=len(data),
                                                           max_pixels=10**8), path.name))
    out_dir = tmp / "reference-out"
    out_dir.mkdir()
    ref_jobs = [(str(p), str(out_dir / f"{p.stem}.png")) for p in paths]
    proj_jobs = [(str(media), image_id, i) for i, image_id in enumerate(ids)]
    context = multiprocessing.get_context("spawn")
    ref, proj = [], []
    with context.Pool(2, initializer=one_thread) as ref_pool, \
            context.Pool(2, initializer=project_process) as proj_pool:
        for _ in range(repeat):  # interleaved, so load bursts hit both alike
            ref.append(pool_rate(reference, ref_jobs, ref_pool))
            proj.append(pool_rate(project, proj_jobs, proj_pool))
    dist = distributed_rate(tmp, ids, media, repeat)
    http = threading_http_rate(paths, repeat)
    figures = {"reference_pool2": statistics.median(ref), "project_pool2": statistics.median(proj),
               "distributed_2_workers": statistics.median(dist),
               "threading_http": statistics.median(http)}
    print(f"\nThroughput, images/s (median of {repeat} runs; 60 x 1920x1080 JPEG, sharpen + "
          "Canny, PNG out)")
    for name, value in figures.items():
        print(f"  {name:24} {value:7.2f}   {value / figures['reference_pool2']:.2f}x reference")
    return figures


# --- per step ------------------------------------------------------------------------------------


def median_ms(func: Any, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        func()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def bench_steps(paths: list[Path], runs: int = 15) -> dict[str, dict[str, float]]:
    data = paths[0].read_bytes()
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    sharp_ref = cv2.filter2D(image, -1, SHARPEN_3X3)
    edges_ref = cv2.Canny(cv2.cvtColor(sharp_ref, cv2.COLOR_BGR2GRAY), 50, 150)
    sharp = colour.sharpen(image, 3.0)
    edges = colour.edges(sharp, 50, 150)
    reference_ms = {
        "decode": median_ms(lambda: cv2.imdecode(np.frombuffer(data, np.uint8),
                                                 cv2.IMREAD_COLOR), runs),
        "sharpen": median_ms(lambda: cv2.filter2D(image, -1, SHARPEN_3X3), runs),
        "edges": median_ms(lambda: cv2.Canny(cv2.cvtColor(sharp_ref, cv2.COLOR_BGR2GRAY),
                                             50, 150), runs),
        "encode": median_ms(lambda: cv2.imencode(".png", edges_ref), runs),
    }
    project_ms = {
        "decode": median_ms(lambda: decode_image(data, max_pixels=10**8), runs),
        "sharpen": median_ms(lambda: colour.sharpen(image, 3.0), runs),
        "edges": median_ms(lambda: colour.edges(sharp, 50, 150), runs),
        "encode": median_ms(lambda: encode_image(edges, "png"), runs),
    }
    reference_ms["total"] = sum(reference_ms.values())
    project_ms["total"] = sum(project_ms.values())
    print(f"\nPer step, ms (one 1920x1080 JPEG, median of {runs})")
    print(f"  {'step':10} {'reference':>10} {'project':>10}")
    for step in reference_ms:
        print(f"  {step:10} {reference_ms[step]:10.2f} {project_ms[step]:10.2f}")
    print(f"  project / reference: {project_ms['total'] / reference_ms['total']:.2f}")
    return {"reference": reference_ms, "project": project_ms}


# --- thumbnail -----------------------------------------------------------------------------------


def bench_thumbnail(tmp: Path, runs: int = 7) -> dict[str, float]:
    data = encode_image(cv2.resize(photo(3, 1500, 1000), (6000, 4000)), "jpeg", quality=90)
    header = read_header(data, max_pixels=10**8)
    target = (320, 213)

    def full() -> np.ndarray:
        return geometry.resize(decode_image(data, max_pixels=10**8), width=320)

    def shrink() -> np.ndarray:
        return geometry.resize(decode_image(data, max_pixels=10**8, reduce_to=target),
                               width=320)

    assert full().shape == shrink().shape, (full().shape, shrink().shape)
    figures = {"full_decode_ms": median_ms(full, runs), "shrink_on_load_ms": median_ms(shrink,
                                                                                       runs)}
    figures["speedup"] = figures["full_decode_ms"] / figures["shrink_on_load_ms"]
    print(f"\nThumbnail 320 px of a {header.width}x{header.height} JPEG: full decode + resize "
          f"{figures['full_decode_ms']:.1f} ms, shrink-on-load {figures['shrink_on_load_ms']:.1f}"
          f" ms: {figures['speedup']:.1f}x")
    return figures


# --- memory --------------------------------------------------------------------------------------

MEMORY_PROBE = r"""
import json, sys
from imaging.processing import Limits, limit_native_threads, process_image

def high_water_mb():  # VmHWM: this process's peak RSS (ru_maxrss would carry the parent's)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

limit_native_threads(1)
media, image_id = sys.argv[1], sys.argv[2]
before = high_water_mb()
process_image(media_root=media, image_id=image_id, steps_json=[{"filter": "sharpen",
              "params": {"intensity": 1.0}}], job_id="job_" + "c" * 32, index=0,
              output_format="png", quality=90, limits=Limits(max_pixels=100_000_000))
print(json.dumps({"baseline_mb": before, "peak_mb": high_water_mb()}))
"""


def bench_memory(tmp: Path) -> dict[str, float]:
    media = tmp / "memory"
    rgba = np.dstack((cv2.resize(photo(5, 800, 500), (8000, 5000)),
                      np.full((5000, 8000), 200, np.uint8)))
    data = encode_image(rgba, "png", effort="fast")
    image_id = Storage(media).save_upload(data, inspect_image(data, max_bytes=len(data),
                                                              max_pixels=10**8), "big.png")
    out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(media), image_id], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    figures = json.loads(out.stdout)
    print(f"\nPeak RSS, sharpen on a 8000x5000 RGBA PNG (40 Mpx): {figures['peak_mb']:.0f} MB "
          f"(after imports: {figures['baseline_mb']:.0f} MB)")
    return figures


# --- scan bomb -----------------------------------------------------------------------------------


def bench_scanbomb() -> dict[str, float]:
    from imaging.codecs import ImageError
    from tests.support.hostile import jpeg_scan_bomb

    bomb = jpeg_scan_bomb(6000, 6000, 2000)
    cpu = time.process_time()
    try:
        inspect_image(bomb, max_bytes=len(bomb), max_pixels=40_000_000)
    except ImageError as exc:
        code = exc.code
    else:
        code = "accepted"
    seconds = time.process_time() - cpu
    print(f"\nScan bomb ({len(bomb) // 1024} KiB, 2,000 scans, 6000x6000): {code} after "
          f"{seconds * 1000:.1f} ms of CPU")
    return {"cpu_ms": seconds * 1000, "bytes": len(bomb)}


# --- main ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=["throughput", "steps", "thumbnail",
                                                      "memory", "scanbomb"])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    parts = args.only or ["steps", "thumbnail", "memory", "scanbomb", "throughput"]
    one_thread()  # the per-step table runs here, for both sides alike
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-imaging-") as name:
        tmp = Path(name)
        paths = build_inputs(ROOT / "var" / "bench" / "photos")
        for part in parts:
            if part == "throughput":
                results[part] = bench_throughput(tmp, paths, args.repeat)
            elif part == "steps":
                results[part] = bench_steps(paths)
            elif part == "thumbnail":
                results[part] = bench_thumbnail(tmp)
            elif part == "memory":
                results[part] = bench_memory(tmp)
            else:
                results[part] = bench_scanbomb()
    print("\n" + json.dumps(results, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
