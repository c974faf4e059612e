"""The executors of the in-process modes: created lazily, once per API process, then reused.

The process pool uses the forkserver start method (spawn where it is missing): forking a
Django process that already runs threads can deadlock the child. Its children import only
`image_api.jobs.runner` and `imaging` (preloaded into the fork server), never Django.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import threading
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor

from django.conf import settings

from image_api.jobs.runner import init_pool_worker

logger = logging.getLogger(__name__)

THREADING = "threading"
MULTIPROCESSING = "multiprocessing"
MODES = (THREADING, MULTIPROCESSING)

_lock = threading.Lock()
_thread_pool: ThreadPoolExecutor | None = None
_process_pool: ProcessPoolExecutor | None = None


def _mp_context() -> multiprocessing.context.BaseContext:
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        # Import numpy/OpenCV once in the fork server instead of in every child.
        context.set_forkserver_preload(["image_api.jobs.runner"])
        return context
    return multiprocessing.get_context("spawn")


def thread_pool() -> ThreadPoolExecutor:
    """The shared thread pool (THREAD_POOL_SIZE threads)."""
    global _thread_pool
    with _lock:
        if _thread_pool is None:
            size = max(1, int(settings.THREAD_POOL_SIZE))
            gate = threading.BoundedSemaphore(int(settings.LOCAL_MAX_CONCURRENT_IMAGES))
            _thread_pool = ThreadPoolExecutor(
                max_workers=size, thread_name_prefix="image-batch", initializer=init_pool_worker,
                initargs=(gate,),
            )
            logger.info("thread pool started size=%d", size)
        return _thread_pool


def process_pool() -> ProcessPoolExecutor:
    """The shared process pool (PROCESS_POOL_SIZE processes)."""
    global _process_pool
    with _lock:
        if _process_pool is None:
            size = max(1, int(settings.PROCESS_POOL_SIZE))
            context = _mp_context()
            gate = context.BoundedSemaphore(int(settings.LOCAL_MAX_CONCURRENT_IMAGES))
            _process_pool = ProcessPoolExecutor(
                max_workers=size, mp_context=context, initializer=init_pool_worker,
                initargs=(gate,),
            )
            logger.info("process pool started size=%d", size)
        return _process_pool


def executor_for(mode: str) -> Executor:
    if mode == THREADING:
        return thread_pool()
    if mode == MULTIPROCESSING:
        return process_pool()
    raise ValueError(f"unknown mode {mode!r}")


def discard_pool(broken: Executor) -> None:
    """Forget a pool that broke (a child died, an initializer failed); the next batch gets a
    fresh one."""
    global _thread_pool, _process_pool
    with _lock:
        if _process_pool is broken:
            _process_pool = None
        if _thread_pool is broken:
            _thread_pool = None
    logger.warning("%s broken; it will be recreated", type(broken).__name__)
    broken.shutdown(wait=False, cancel_futures=True)


def shutdown_pools(wait: bool = True) -> None:
    """Stop both pools (at interpreter exit, and at the end of the test session)."""
    global _thread_pool, _process_pool
    with _lock:
        pools = [p for p in (_thread_pool, _process_pool) if p is not None]
        _thread_pool = _process_pool = None
    for pool in pools:
        pool.shutdown(wait=wait, cancel_futures=True)


atexit.register(shutdown_pools)
