"""Downloading a job's outputs into a folder under their original names, each file written
whole or not at all (see :func:`imgproc_cli.files.atomic_output`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import requests

from imgproc_cli.client import Client
from imgproc_cli.errors import LocalError, Unreachable
from imgproc_cli.files import atomic_output, safe_name, unique_name
from imgproc_cli.ui import Ui

EXTENSIONS = {"jpeg": ".jpg", "png": ".png", "webp": ".webp"}
BLOCK_BYTES = 64 * 1024
DOWNLOAD_TIMEOUT_S = 60.0


@dataclass
class Downloaded:
    files: list[Path] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)  # results with no output


def disposition_filename(header: str | None) -> str | None:
    """The ``filename`` (or RFC 5987 ``filename*``) of a Content-Disposition header."""
    if not header:
        return None
    message = Message()
    message["Content-Disposition"] = header
    return message.get_filename()


def download_outputs(client: Client, job: dict[str, Any], out_dir: Path, ui: Ui,
                     names: dict[int, str] | None = None) -> Downloaded:
    """Download every completed output of ``job`` (a job detail) into ``out_dir``. A file is
    named as the server names it (the uploaded file's name with the output's extension), or
    ``names[index]`` with that extension; a repeated name becomes ``name (2).ext``. Existing
    files of the same name are replaced whole."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LocalError(f"cannot create the output folder {out_dir}: {exc}") from exc
    results = sorted(job.get("results") or [], key=lambda r: int(r.get("index") or 0))
    done = Downloaded()
    wanted = [r for r in results if r.get("status") == "completed" and r.get("output_url")]
    done.failed = [r for r in results if r not in wanted]
    taken: set[str] = set()
    with ui.counter() as bar:
        task = bar.add_task("downloading", total=len(wanted), extra="")
        for result in wanted:
            path = _download_one(client, result, out_dir, taken, names or {})
            done.files.append(path)
            bar.update(task, advance=1, extra=path.name)
    return done


def _download_one(client: Client, result: dict[str, Any], out_dir: Path, taken: set[str],
                  names: dict[int, str]) -> Path:
    index = int(result.get("index") or 0)
    with client.request("GET", result["output_url"], stream=True,
                        timeout_s=DOWNLOAD_TIMEOUT_S) as response:
        ext = EXTENSIONS.get(str(result.get("format")), "")
        local = names.get(index)
        fallback = f"{Path(local).stem}{ext}" if local else f"output-{index}{ext}"
        name = safe_name(disposition_filename(response.headers.get("Content-Disposition")),
                         fallback)
        target = out_dir / unique_name(name, taken)
        try:
            with atomic_output(target) as handle:
                for block in response.iter_content(chunk_size=BLOCK_BYTES):
                    handle.write(block)
        except requests.RequestException as exc:
            raise Unreachable(f"the download of output {index} broke off: {exc}") from exc
        except OSError as exc:
            raise LocalError(f"cannot write {target}: {exc}") from exc
    return target
