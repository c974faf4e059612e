"""Read and operate: ``jobs``, ``job``, ``cancel``, ``workers``, ``dead-letters``, ``drain``,
``callback-secret``, ``usage``."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import click

from imgproc_cli.context import Context, pass_context
from imgproc_cli.tables import (
    dead_letters_table,
    job_table,
    jobs_table,
    queue_line,
    workers_table,
)

JOB_STATUSES = ["queued", "running", "completed", "completed_with_errors", "failed",
                "cancelled"]


def seg(value: str) -> str:
    """One path segment of a URL: a user's id can never step into another route."""
    return quote(value, safe="")


@click.command()
@click.option("--status", type=click.Choice(JOB_STATUSES))
@click.option("--mode", type=click.Choice(["threading", "multiprocessing", "distributed"]))
@click.option("--limit", type=click.IntRange(1, 200), default=20, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0)
@pass_context
def jobs(ctx: Context, status: str | None, mode: str | None, limit: int, offset: int) -> None:
    """List jobs, newest first."""
    params = {"limit": limit, "offset": offset, "status": status, "mode": mode}
    page = ctx.client.get_json("/api/jobs/", params={k: v for k, v in params.items()
                                                     if v is not None})
    if ctx.json:
        ctx.ui.print_json(page)
        return
    ctx.ui.print_table(jobs_table(page))
    if page.get("distributed_unavailable"):
        ctx.ui.note("Redis is unavailable: distributed jobs are not listed", style="yellow")


@click.command()
@click.argument("job_id")
@pass_context
def job(ctx: Context, job_id: str) -> None:
    """Show one job with its per-image results."""
    detail = ctx.client.get_json(f"/api/jobs/{seg(job_id)}/")
    if ctx.json:
        ctx.ui.print_json(detail)
    else:
        ctx.ui.print_table(job_table(detail))


@click.command()
@click.argument("job_id")
@pass_context
def cancel(ctx: Context, job_id: str) -> None:
    """Cancel a distributed job's tasks that have not started."""
    answer = ctx.client.post_json(f"/api/jobs/{seg(job_id)}/cancel/")
    if ctx.json:
        ctx.ui.print_json(answer)
    else:
        ctx.ui.print(f"{job_id}: {answer.get('cancelled')} tasks cancelled, "
                     f"status {answer.get('status')}")


@click.command()
@pass_context
def workers(ctx: Context) -> None:
    """The workers, their health and the queue."""
    status = ctx.client.get_json("/api/workers/status/")
    if ctx.json:
        ctx.ui.print_json(status)
        return
    ctx.ui.print_table(workers_table(status))
    ctx.ui.print(queue_line(status))
    for alert in status.get("alerts") or []:
        ctx.ui.print(f"{alert.get('severity', 'alert')}: {alert.get('message')}",
                     style="bold red" if alert.get("severity") == "critical" else "yellow")


@click.command("dead-letters")
@click.argument("action", type=click.Choice(["list", "requeue", "discard"]), default="list")
@click.argument("task_ids", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Requeue or discard every dead letter.")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0)
@pass_context
def dead_letters(ctx: Context, action: str, task_ids: tuple[str, ...], all_: bool,
                 limit: int, offset: int) -> None:
    """List dead-lettered tasks, or requeue / discard some (TASK_IDS) or --all."""
    if action == "list":
        if task_ids or all_:
            raise click.UsageError("list takes no TASK_IDS and no --all")
        page = ctx.client.get_json("/api/dead-letters/",
                                   params={"limit": limit, "offset": offset})
        if ctx.json:
            ctx.ui.print_json(page)
        else:
            ctx.ui.print_table(dead_letters_table(page))
        return
    if bool(task_ids) == all_:
        raise click.UsageError(f"{action} takes either TASK_IDS or --all")
    body = {"action": action, "all": True} if all_ else {"action": action,
                                                          "task_ids": list(task_ids)}
    answer = ctx.client.post_json("/api/dead-letters/", body)
    if ctx.json:
        ctx.ui.print_json(answer)
    else:
        verb = "requeued" if action == "requeue" else "discarded"
        ctx.ui.print(f"{answer.get('changed')} dead letters {verb}")


@click.command()
@click.argument("worker_id")
@pass_context
def drain(ctx: Context, worker_id: str) -> None:
    """Ask a worker to finish its task in hand, stop fetching and exit."""
    answer = ctx.client.post_json(f"/api/workers/{seg(worker_id)}/drain/")
    if ctx.json:
        ctx.ui.print_json(answer)
    else:
        ctx.ui.print(f"{answer.get('worker_id', worker_id)}: draining (it finishes its task "
                     "in hand, then exits)")


@click.command("callback-secret")
@pass_context
def callback_secret(ctx: Context) -> None:
    """Print your key's secret for checking job-finished callbacks (--callback-url)."""
    answer = ctx.client.get_json("/api/callbacks/secret/")
    if ctx.json:
        ctx.ui.print_json(answer)
        return
    click.echo(answer["secret"])
    ctx.ui.note(f"tenant {answer.get('tenant')}: {answer.get('scheme')}")


def _mib(value: Any) -> str:
    return f"{int(value) / (1024 * 1024):.1f} MiB"


@click.command()
@pass_context
def usage(ctx: Context) -> None:
    """Your storage usage against your quota, and your limits."""
    answer = ctx.client.get_json("/api/usage/")
    if ctx.json:
        ctx.ui.print_json(answer)
        return
    storage, space = answer["storage"], answer["free_space"]
    quota = storage.get("quota_bytes")
    ctx.ui.print(f"storage: {_mib(storage['used_bytes'])} of "
                 f"{_mib(quota) + ' quota' if quota else 'no quota'}"
                 + (" (over quota: delete images or jobs)" if storage.get("over_quota") else ""),
                 style="bold red" if storage.get("over_quota") else "")
    if space.get("below_floor"):
        ctx.ui.print("the server's storage is below its free-space floor: uploads are refused",
                     style="bold red")
    rate = answer.get("rate_limit", {}).get("rate")
    ctx.ui.print(f"rate limit: {rate or 'none'}")
    for name, value in answer.get("limits", {}).items():
        ctx.ui.print(f"{name}: {value}")
