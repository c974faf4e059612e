"""Rich tables of the API's answers (jobs, one job, workers, dead letters)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

STATUS_STYLES = {"completed": "green", "completed_with_errors": "yellow", "failed": "red",
                 "cancelled": "magenta", "running": "cyan", "queued": "blue",
                 "healthy": "green", "degraded": "yellow", "unhealthy": "red", "dead": "red"}


def _s(value: Any) -> str:
    return "" if value is None else str(value)


def _styled(value: Any) -> str:
    text = _s(value)
    style = STATUS_STYLES.get(text)
    return f"[{style}]{text}[/{style}]" if style else text.replace("[", r"\[")


def _plain(value: Any) -> str:
    return _s(value).replace("[", r"\[")


def _when(value: Any) -> str:
    """An ISO timestamp to the second: 2026-11-25 09:05:37."""
    text = _s(value)
    return text[:19].replace("T", " ") if len(text) >= 19 else text


def jobs_table(page: dict[str, Any]) -> Table:
    table = Table(title=f"Jobs {page.get('offset', 0) + 1}-"
                  f"{page.get('offset', 0) + len(page.get('items', []))} of {page.get('total')}")
    for name in ("id", "mode", "status", "priority", "done", "failed", "created"):
        # An id is copied into the next command: never cut (job_ + 32 hex digits).
        table.add_column(name, overflow="fold", min_width=36 if name == "id" else None)
    for job in page.get("items", []):
        progress = job.get("progress") or {}
        done = sum(int(progress.get(k) or 0) for k in ("completed", "failed", "cancelled"))
        table.add_row(_plain(job.get("id")), _plain(job.get("mode")), _styled(job.get("status")),
                      _plain(job.get("priority")), f"{done}/{job.get('total')}",
                      _s(progress.get("failed")), _when(job.get("created_at")))
    return table


def job_table(job: dict[str, Any]) -> Table:
    distributed = job.get("mode") == "distributed"
    steps = ", ".join(
        step.get("filter", "?") + (
            "(" + ", ".join(f"{k}={v}" for k, v in (step.get("params") or {}).items()) + ")")
        for step in job.get("pipeline") or [])
    table = Table(title=f"{job.get('id')}  {job.get('mode')}  {job.get('status')}",
                  caption=f"pipeline: {steps or '(none)'}\ncreated {_when(job.get('created_at'))}"
                  f", finished {_when(job.get('finished_at')) or '-'}"
                  + callback_line(job.get("callback")))
    columns = ["#", "image", "status", "format", "size", "ms"]
    if distributed:
        columns += ["tries", "worker"]
    columns.append("error")
    for name in columns:
        table.add_column(name, overflow="fold", min_width=36 if name == "image" else None)
    for result in job.get("results") or []:
        size = (f"{result.get('width')}x{result.get('height')}"
                if result.get("width") else "")
        error = result.get("error") or {}
        row = [_s(result.get("index")), _plain(result.get("image")),
               _styled(result.get("state") if distributed else result.get("status")),
               _plain(result.get("format")), size,
               _s(round(result["total_ms"]) if result.get("total_ms") else "")]
        if distributed:
            row += [_s(result.get("attempts")), _plain(result.get("worker"))]
        row.append(_plain(f"{error.get('code')}: {error.get('message')}" if error else ""))
        table.add_row(*row)
    return table


def callback_line(callback: dict[str, Any] | None) -> str:
    """The job's callback in a line ('' without one): state, attempts, the last answer."""
    if not callback:
        return ""
    attempts = callback.get("attempts") or []
    line = f"\ncallback {_plain(callback.get('url'))}: {callback.get('state')}"
    if attempts:
        last = attempts[-1]
        answer = last.get("status_code") or last.get("error")
        line += f", {len(attempts)} attempt{'s' if len(attempts) > 1 else ''} (last: {answer})"
    if callback.get("next_attempt_at"):
        line += f", next at {_when(callback['next_attempt_at'])}"
    return line


def queue_line(status: dict[str, Any]) -> str:
    queue = status.get("queue") or {}
    pending = queue.get("pending") or {}
    return (f"queue: pending {queue.get('pending_total', 0)} (high {pending.get('high', 0)}, "
            f"normal {pending.get('normal', 0)}, low {pending.get('low', 0)}), "
            f"running {queue.get('in_progress', 0)}, delayed {queue.get('delayed', 0)}, "
            f"completed {queue.get('completed', 0)}, dead {queue.get('dead_lettered', 0)}")


def workers_table(status: dict[str, Any]) -> Table:
    table = Table(title="Workers")
    for name in ("id", "status", "state", "heartbeat", "task", "done", "failed", "host/pid"):
        table.add_column(name, overflow="fold")
    for worker in status.get("workers") or []:
        age = worker.get("seconds_since_heartbeat")
        host = "/".join(_s(worker.get(k)) for k in ("hostname", "pid") if worker.get(k))
        table.add_row(_plain(worker.get("id")), _styled(worker.get("status")),
                      _plain(worker.get("state")), f"{age:.1f}s ago" if age is not None else "",
                      _plain(worker.get("current_task")), _s(worker.get("tasks_completed")),
                      _s(worker.get("tasks_failed")), _plain(host))
    return table


def dead_letters_table(page: dict[str, Any]) -> Table:
    table = Table(title=f"Dead letters ({page.get('total', 0)})")
    for name in ("task", "image", "attempts", "error", "worker", "dead at"):
        table.add_column(name, overflow="fold")
    for item in page.get("items") or []:
        error = item.get("error") or {}
        table.add_row(_plain(item.get("task_id")), _plain(item.get("image")),
                      _s(item.get("attempts")),
                      _plain(f"{error.get('kind')}: {error.get('message')}" if error else ""),
                      _plain(item.get("worker")), _when(item.get("dead_at")))
    return table
