"""Running a task where it can be stopped for real: a child process per work thread.

The child runs one task at a time. Its address space is capped by the kernel
(``RLIMIT_AS`` at its start-up size plus ``WORKER_MEMORY_LIMIT_MB``), so an allocation past the
budget fails inside the child (``memory_limit_exceeded``) instead of taking the worker, or the
machine, down. A task still running at ``TASK_TIME_LIMIT_SECONDS`` is stopped with SIGKILL
(``time_limit_exceeded``); the next task gets a fresh child. A child killed by someone else
(the kernel's OOM killer under a cgroup limit) is reported as ``memory_limit_exceeded``; any
other death as ``task_process_died`` (transient: retried). The child dies with its worker
(``PR_SET_PDEATHSIG``), so a SIGKILLed worker leaves nothing behind.

The child ignores SIGTERM and SIGINT: the worker decides. A stop signal sent to the whole
process group (supervisord's ``stopasgroup``, ``kill -TERM -<pgid>``, Ctrl+C) reaches the
worker, which finishes the task in hand and then stops its child itself with SIGKILL, as it
does at a time limit, a cold shutdown or the end of the grace period.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import resource
import signal
import threading
import time
from multiprocessing import resource_tracker
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

logger = logging.getLogger("workers.runtime")

_PR_SET_PDEATHSIG = 1
_STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})
_POLL_S = 0.05
_STARTUP_S = 120.0  # importing NumPy and OpenCV on a loaded machine


class SandboxError(Exception):
    """The task did not finish in its child; ``code`` names why."""

    code = "task_process_died"
    permanent = False


class TimeLimitExceeded(SandboxError):
    code = "time_limit_exceeded"
    permanent = True


class MemoryLimitExceeded(SandboxError):
    code = "memory_limit_exceeded"
    permanent = True


class TaskFailed(Exception):
    """The task raised in the child: its error kind, message and permanence, as data."""

    def __init__(self, kind: str, message: str, permanent: bool) -> None:
        super().__init__(message)
        self.code = kind
        self.permanent = permanent


class Cancelled(Exception):
    """A cold shutdown stopped the task: its lease expires and it is redelivered."""


def _die_with_parent(parent_pid: int) -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except OSError:  # not Linux: the child then outlives a SIGKILLed worker until it ends
        pass
    if os.getppid() != parent_pid:  # the worker died before the line above: follow it now
        os._exit(1)


def _limit_memory(extra_mb: int) -> None:
    if extra_mb <= 0:
        return
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[0])
    limit = pages * resource.getpagesize() + extra_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _is_out_of_memory(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, MemoryError) or (
        type(exc).__name__ == "error"  # cv2.error
        and ("Insufficient memory" in text or "Failed to allocate" in text
             or "OutOfMemory" in text)
    )


def _child_main(conn: Connection, memory_limit_mb: int, parent_pid: int) -> None:
    _die_with_parent(parent_pid)
    # The worker decides when a task stops. The child was started with these blocked (see
    # Sandbox._start): one that came while it booted is pending, and dropped here.
    for signum in _STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    from imaging.processing import configure_process
    from workers.tasks import PERMANENT_ERRORS, error_kind, run_in_child

    configure_process(1)
    _limit_memory(memory_limit_mb)  # after the imports: they are not the task's
    conn.send(("ready",))  # a task's time starts now, not while this process boots
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        try:
            conn.send(("ok", run_in_child(**request)))
        except BaseException as exc:
            if _is_out_of_memory(exc):
                reply = ("error", "memory_limit_exceeded",
                         f"the task needed more than WORKER_MEMORY_LIMIT_MB={memory_limit_mb}"
                         f" MB ({type(exc).__name__})", True)
            else:
                reply = ("error", error_kind(exc), str(exc) or type(exc).__name__,
                         isinstance(exc, PERMANENT_ERRORS))
            try:
                conn.send(reply)
            except MemoryError:
                conn.send(("error", "memory_limit_exceeded", "out of memory", True))


class Sandbox:
    """One child process, started on first use and replaced after a kill or a death."""

    def __init__(self, *, memory_limit_mb: int, name: str) -> None:
        self.memory_limit_mb = memory_limit_mb
        self.name = name
        self._context = multiprocessing.get_context("spawn")
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._lock = threading.Lock()
        self._abandoned = False

    def _start(self) -> tuple[BaseProcess, Connection]:
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=_child_main, args=(child, self.memory_limit_mb, os.getpid()),
            name=f"{self.name}-task", daemon=True,
        )
        # Blocked in this thread while the child is started, so it is born with them blocked
        # (the signal mask survives fork and exec): a group SIGTERM during its boot cannot
        # kill it. This thread is not the main one, which still gets the worker's signals.
        # multiprocessing's resource tracker is started first: starting it unblocks them.
        resource_tracker.ensure_running()
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        child.close()
        return process, parent

    def _ensure(self) -> tuple[BaseProcess, Connection]:
        if self._process is None or not self._process.is_alive() or self._conn is None:
            self._discard()
            process, parent = self._start()
            self._process, self._conn = process, parent
            if self._abandoned:  # the worker is exiting: abandon() came while it started
                self._kill()
                raise SandboxError("the worker is exiting")
            if not parent.poll(_STARTUP_S):
                self._kill()
                raise SandboxError(f"the task process did not start in {_STARTUP_S:g} s")
            try:
                parent.recv()  # ("ready",)
            except (EOFError, OSError):
                raise self._death(process) from None
        return self._process, self._conn

    def run(self, request: dict[str, Any], *, time_limit_s: float,
            cancel: threading.Event) -> Any:
        """Run ``workers.tasks.run_in_child(**request)`` in the child; its result. Raises
        :class:`TaskFailed`, :class:`TimeLimitExceeded`, :class:`MemoryLimitExceeded`,
        :class:`SandboxError` or :class:`Cancelled`."""
        with self._lock:
            try:
                process, conn = self._ensure()
            except SandboxError:
                if cancel.is_set():  # killed by abandon() while it started: no verdict
                    raise Cancelled("cold shutdown") from None
                raise
            conn.send(request)
            deadline = time.monotonic() + time_limit_s
            while not conn.poll(_POLL_S):
                if cancel.is_set():
                    self._kill()
                    raise Cancelled("cold shutdown")
                if time.monotonic() >= deadline:
                    self._kill()
                    raise TimeLimitExceeded(
                        f"the task ran past TASK_TIME_LIMIT_SECONDS={time_limit_s:g} and was "
                        "stopped")
                if not process.is_alive():
                    break
            try:
                reply = conn.recv()
            except (EOFError, OSError):
                if cancel.is_set():  # killed by abandon(): the task's verdict is not its own
                    self._discard()
                    raise Cancelled("cold shutdown") from None
                raise self._death(process) from None
        if reply[0] == "ok":
            return reply[1]
        _, kind, message, permanent = reply
        raise TaskFailed(kind, message, permanent)

    def _death(self, process: BaseProcess) -> SandboxError:
        process.join(5)
        code = process.exitcode
        self._discard()
        if code == -signal.SIGKILL:
            return MemoryLimitExceeded(
                "the task's process was killed (SIGKILL), as the kernel does at the memory "
                "limit")
        return SandboxError(f"the task's process died (exit code {code})")

    def _kill(self) -> None:
        if self._process is not None and self._process.is_alive():
            self._process.kill()
            self._process.join(5)
        self._discard()

    def _discard(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._process = None

    def close(self) -> None:
        """Stop the child (end of the worker)."""
        with self._lock:
            self._kill()

    def abandon(self) -> None:
        """Kill the child now, from any thread, even while a task runs in it (the worker is
        exiting with a task in hand: set the task's ``cancel`` first, so that :meth:`run`
        raises :class:`Cancelled` rather than a verdict on the task). Starts no new child."""
        self._abandoned = True
        process = self._process
        if process is not None:
            process.kill()  # a no-op once it has been reaped
