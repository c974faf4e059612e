"""``imgproc submit`` and ``imgproc download``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click

from imgproc_cli.admin_cmd import seg
from imgproc_cli.context import Context, pass_context
from imgproc_cli.download import download_outputs
from imgproc_cli.errors import JobIncomplete
from imgproc_cli.files import walk
from imgproc_cli.state import State
from imgproc_cli.submit import SubmitOptions, run_submit

_FILTER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_INT = re.compile(r"[+-]?\d+")


def parse_value(text: str) -> Any:
    """A parameter value as the API wants it: int, float, true/false, else the string."""
    if _INT.fullmatch(text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        pass
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    return text


def parse_filter(spec: str) -> dict[str, Any]:
    """``edges:threshold1=50,threshold2=150`` -> ``{"filter": "edges", "params": {...}}``."""
    name, _, rest = spec.partition(":")
    name = name.strip()
    if not _FILTER_NAME.fullmatch(name):
        raise click.BadParameter(f"{spec!r}: expected NAME or NAME:PARAM=VALUE,... "
                                 "(e.g. sharpen:intensity=3)", param_hint="--filter")
    params: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise click.BadParameter(f"{spec!r}: {item!r} is not PARAM=VALUE",
                                     param_hint="--filter")
        params[key.strip()] = parse_value(value.strip())
    return {"filter": name, "params": params}


@click.command()
@click.argument("paths", nargs=-1, required=True,
                type=click.Path(exists=True, path_type=Path))
@click.option("-f", "--filter", "filters", multiple=True, metavar="NAME[:P=V,...]",
              help="A pipeline step, in order (repeat for more): sharpen:intensity=3. "
              "`GET /api/filters/` lists them.")
@click.option("--mode", type=click.Choice(["threading", "multiprocessing", "distributed"]),
              default="distributed", show_default=True)
@click.option("--priority", type=click.Choice(["high", "normal", "low"]),
              help="Distributed mode only (default normal).")
@click.option("--format", "output_format", type=click.Choice(["png", "jpeg", "webp"]),
              help="Output format (default: each input's own).")
@click.option("--quality", type=click.IntRange(1, 100), help="JPEG/WebP quality.")
@click.option("-o", "--out", "out_dir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the outputs (created if needed).")
@click.option("--chunk-files", type=click.IntRange(1, 500), default=20, show_default=True,
              help="Most files per upload request.")
@click.option("--chunk-mb", type=click.IntRange(1, 256), default=32, show_default=True,
              help="Most MiB per upload request (a larger file goes alone).")
@click.option("--new-job", is_flag=True,
              help="Submit again even if the same request was submitted before.")
@click.option("--callback-url", metavar="URL",
              help="The server POSTs the finished job there, signed (see `imgproc "
              "callback-secret`).")
@pass_context
def submit(ctx: Context, paths: tuple[Path, ...], filters: tuple[str, ...], mode: str,
           priority: str | None, output_format: str | None, quality: int | None,
           out_dir: Path, chunk_files: int, chunk_mb: int, new_job: bool,
           callback_url: str | None) -> None:
    """Process images (files, or folders walked for images) and download the outputs.

    Rerunning the same command follows the first job instead of submitting a new one, and
    never uploads the same file twice to a server."""
    if priority and mode != "distributed":
        raise click.UsageError("--priority applies to --mode distributed only")
    steps = [parse_filter(spec) for spec in filters]
    found = walk(list(paths), exclude=out_dir)
    if found.skipped:
        shown = ", ".join(str(p) for p in found.skipped[:5])
        more = f" and {len(found.skipped) - 5} more" if len(found.skipped) > 5 else ""
        ctx.ui.note(f"skipped {len(found.skipped)} files that are not images (by their "
                    f"extension): {shown}{more}", style="yellow")
    if not found.images:
        raise click.UsageError("no image found in " + ", ".join(str(p) for p in paths))
    options = SubmitOptions(steps=steps, mode=mode, priority=priority,
                            output_format=output_format, quality=quality,
                            chunk_files=chunk_files, chunk_bytes=chunk_mb * 1024 * 1024,
                            new_job=new_job, callback_url=callback_url)
    state = State.for_server(ctx.client.base_url, ctx.api_key)
    ctx.interrupt_hint.append("Nothing half-written was left in the output folder. Rerun the "
                              "same command to resume: uploads are not repeated and a job "
                              "already submitted is followed, not submitted again.")
    done = run_submit(ctx.client, state, found.images, options, out_dir, ctx.ui)
    failed = [{"index": r.get("index"), "image": r.get("image"),
               "status": r.get("state") or r.get("status"), "error": r.get("error")}
              for r in done.downloaded.failed]
    if ctx.json:
        ctx.ui.print_json({"job": done.job_id, "status": done.final.status,
                           "duplicate": done.duplicate,
                           "outputs": [str(p) for p in done.downloaded.files],
                           "not_completed": failed})
    else:
        ctx.ui.print(f"{done.job_id} {done.final.status}: {len(done.downloaded.files)} "
                     f"outputs in {out_dir}")
        for item in failed:
            error = item["error"] or {}
            ctx.ui.print(f"  #{item['index']} {paths_name(found.images, item['index'])}: "
                         f"{item['status']} {error.get('code', '')} {error.get('message', '')}"
                         .rstrip(), style="red")
    if failed:
        raise JobIncomplete(f"{len(failed)} of {done.final.total} images did not complete")


def paths_name(images: list[Path], index: Any) -> str:
    try:
        return str(images[int(index)])
    except (TypeError, ValueError, IndexError):
        return "?"


@click.command()
@click.argument("job_id")
@click.option("-o", "--out", "out_dir", required=True,
              type=click.Path(file_okay=False, path_type=Path))
@pass_context
def download(ctx: Context, job_id: str, out_dir: Path) -> None:
    """Download the completed outputs of a job under their original names."""
    job = ctx.client.get_json(f"/api/jobs/{seg(job_id)}/")
    ctx.interrupt_hint.append("Nothing half-written was left in the output folder.")
    done = download_outputs(ctx.client, job, out_dir, ctx.ui)
    if ctx.json:
        ctx.ui.print_json({"job": job_id, "status": job.get("status"),
                           "outputs": [str(p) for p in done.files]})
    else:
        ctx.ui.print(f"{job_id} {job.get('status')}: {len(done.files)} outputs in {out_dir}")
