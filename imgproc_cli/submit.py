"""``imgproc submit``: hash, upload in chunks (each content once per server), submit with an
Idempotency-Key, follow the job, download the outputs."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imgproc_cli.client import Client
from imgproc_cli.download import Downloaded, download_outputs
from imgproc_cli.errors import ApiError, LocalError
from imgproc_cli.files import LocalImage, chunks, sha256_of
from imgproc_cli.follow import Progress, follow
from imgproc_cli.state import State
from imgproc_cli.ui import Ui

LOCAL_MODES = ("threading", "multiprocessing")
# A threading or multiprocessing batch is processed before its POST answers.
LOCAL_SUBMIT_TIMEOUT_S = 3600.0
UPLOAD_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class SubmitOptions:
    steps: list[dict[str, Any]]
    mode: str = "distributed"
    priority: str | None = None
    output_format: str | None = None
    quality: int | None = None
    chunk_files: int = 20
    chunk_bytes: int = 32 * 1024 * 1024
    new_job: bool = False
    callback_url: str | None = None


@dataclass
class Submitted:
    job_id: str
    duplicate: bool  # the first job of this key was found (by this machine or the server)
    final: Progress
    downloaded: Downloaded


def hash_images(paths: list[Path], ui: Ui) -> list[LocalImage]:
    images = []
    with ui.counter() as bar:
        task = bar.add_task("hashing", total=len(paths), extra="")
        for path in paths:
            try:
                digest, size = sha256_of(path)
            except OSError as exc:
                raise LocalError(f"cannot read {path}: {exc}") from exc
            images.append(LocalImage(path=path, name=path.name, size=size, sha256=digest))
            bar.update(task, advance=1)
    return images


def idempotency_key(images: list[LocalImage], options: SubmitOptions) -> str:
    """Derived from what makes the request: each image's content and name, in order, and the
    options. The same command on the same files gives the same key."""
    request = {
        "images": [[image.sha256, image.name] for image in images],
        "steps": options.steps, "mode": options.mode, "priority": options.priority,
        "output_format": options.output_format, "quality": options.quality,
    }
    if options.callback_url:  # only then: the keys of earlier versions stay the same
        request["callback_url"] = options.callback_url
    digest = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()
    return f"imgproc-cli-{digest[:40]}"


def upload(client: Client, state: State, images: list[LocalImage], options: SubmitOptions,
           ui: Ui) -> list[str]:
    """Image ids for ``images``, in order: those this machine uploaded before (by content
    and name) are reused, the others uploaded in chunks of bounded files and bytes."""
    ids: dict[int, str] = {}
    missing = []
    for index, image in enumerate(images):
        known = state.uploads.get(State.upload_key(image.sha256, image.name))
        if known:
            ids[index] = known
        else:
            missing.append((index, image))
    if ids:
        ui.note(f"{len(ids)} of {len(images)} images already uploaded to this server: reused")
    if missing:
        todo = [image for _, image in missing]
        with ui.transfer() as bar:
            task = bar.add_task(f"uploading {len(todo)} images",
                                total=sum(i.size for i in todo))
            position = 0
            for group in chunks(todo, options.chunk_files, options.chunk_bytes):
                for image, image_id in zip(group, _upload_chunk(client, group), strict=True):
                    ids[missing[position][0]] = image_id
                    state.remember_upload(image.sha256, image.name, image_id)
                    position += 1
                state.save()  # an interrupted run keeps what it uploaded
                bar.update(task, advance=sum(i.size for i in group))
    return [ids[index] for index in range(len(images))]


def _upload_chunk(client: Client, group: list[LocalImage]) -> list[str]:
    files = []
    for image in group:
        try:
            data = image.path.read_bytes()
        except OSError as exc:
            raise LocalError(f"cannot read {image.path}: {exc}") from exc
        files.append(("files", (image.name, data, "application/octet-stream")))
    body = client.post_json("/api/images/", files=files, timeout_s=UPLOAD_TIMEOUT_S)
    stored = [str(item.get("id")) for item in (body or {}).get("images", [])]
    if len(stored) != len(group):
        raise ApiError(502, "unexpected_answer", f"the upload of {len(group)} files "
                       f"answered {len(stored)} image ids")
    return stored


def _submit(client: Client, image_ids: list[str], options: SubmitOptions, key: str
            ) -> dict[str, Any]:
    body: dict[str, Any] = {"steps": options.steps, "images": image_ids}
    if options.output_format:
        body["output_format"] = options.output_format
    if options.quality is not None:
        body["quality"] = options.quality
    if options.callback_url:
        body["callback_url"] = options.callback_url
    if options.mode == "distributed":
        body["priority"] = options.priority or "normal"
        return dict(client.post_json("/api/process-batch/distributed/", body,
                                     headers={"Idempotency-Key": key}))
    return dict(client.post_json(f"/api/process-batch/{options.mode}/", body,
                                 timeout_s=LOCAL_SUBMIT_TIMEOUT_S))


def _existing_job(client: Client, state: State, key: str) -> str | None:
    job_id = state.jobs.get(key)
    if not job_id:
        return None
    try:
        client.get_json(f"/api/jobs/{job_id}/")
    except ApiError as error:
        if error.status == 404:
            return None  # expired or deleted: submit again
        raise
    return job_id


def submit_images(client: Client, state: State, images: list[LocalImage],
                  options: SubmitOptions, ui: Ui) -> tuple[str, bool]:
    """(job id, duplicate?): upload what the server lacks and submit, or find the job this
    same request made before."""
    key = idempotency_key(images, options)
    if options.new_job:
        key = f"{key}-{secrets.token_hex(6)}"  # a new request: never the first job
    found = _existing_job(client, state, key)
    if found:
        ui.note(f"already submitted as {found}: following it (--new-job submits again)")
        return found, True
    image_ids = upload(client, state, images, options, ui)
    try:
        answer = _submit(client, image_ids, options, key)
    except ApiError as error:
        if error.code == "unknown_image":
            # Uploads this machine remembered are gone (retention): upload them again.
            ui.note("some earlier uploads expired on the server: uploading them again")
            for image in images:
                state.forget_upload(image.sha256, image.name)
            image_ids = upload(client, state, images, options, ui)
            answer = _submit(client, image_ids, options, key)
        elif error.code == "idempotency_key_reused":
            error.message += (" The first submission of these files used other uploads; "
                              "pass --new-job to submit them as a new job.")
            raise
        else:
            raise
    job_id = str(answer["id"])
    state.remember_job(key, job_id)
    state.save()
    duplicate = bool(answer.get("duplicate"))
    ui.note(f"job {job_id} ({options.mode}): "
            + ("the same request was submitted before: following that job" if duplicate
               else f"{answer.get('total', len(images))} images submitted"))
    return job_id, duplicate


def run_submit(client: Client, state: State, paths: list[Path], options: SubmitOptions,
               out_dir: Path, ui: Ui) -> Submitted:
    images = hash_images(paths, ui)
    job_id, duplicate = submit_images(client, state, images, options, ui)
    final = follow_with_bar(client, job_id, ui)
    job = client.get_json(f"/api/jobs/{job_id}/")
    names = {index: image.name for index, image in enumerate(images)}
    downloaded = download_outputs(client, job, out_dir, ui, names)
    return Submitted(job_id=job_id, duplicate=duplicate, final=final, downloaded=downloaded)


def follow_with_bar(client: Client, job_id: str, ui: Ui) -> Progress:
    with ui.counter() as bar:
        task = bar.add_task("processing", total=None, extra="")

        def update(progress: Progress) -> None:
            extra = progress.status
            if progress.failed or progress.cancelled:
                extra += f" ({progress.failed} failed, {progress.cancelled} cancelled)"
            bar.update(task, total=progress.total or None, completed=progress.done, extra=extra)

        final = follow(client, job_id, update)
    return final
