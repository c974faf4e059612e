"""What this machine already sent to a server: uploads by content (so a rerun uploads nothing
twice) and jobs by Idempotency-Key (so a rerun follows the first job instead of a new one).

One JSON file per server and key, under ``$IMGPROC_CACHE_DIR`` (default
``$XDG_CACHE_HOME/imgproc`` or ``~/.cache/imgproc``), rewritten whole through a temporary
file. The server stays the judge: an upload it no longer has is uploaded again, and the
Idempotency-Key makes the server answer the first distributed job even without this file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

# Entries kept per file (oldest dropped first): the file stays small whatever is sent.
MAX_UPLOADS = 20_000
MAX_JOBS = 2_000


def cache_dir(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("IMGPROC_CACHE_DIR"):
        return Path(env["IMGPROC_CACHE_DIR"])
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "imgproc"


class State:
    """The cache of one (server, API key) pair; ``save()`` writes it back."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.uploads: dict[str, str] = {}  # "<sha256>/<name>" -> image id
        self.jobs: dict[str, str] = {}  # idempotency key -> job id
        with contextlib.suppress(FileNotFoundError, ValueError, OSError):
            data = json.loads(path.read_text("utf-8"))
            if isinstance(data, dict):
                self.uploads = {str(k): str(v) for k, v in dict(data.get("uploads", {})).items()}
                self.jobs = {str(k): str(v) for k, v in dict(data.get("jobs", {})).items()}

    @classmethod
    def for_server(cls, api_url: str, api_key: str | None, directory: Path | None = None
                   ) -> State:
        # The key is hashed into the name, never stored: another key is another tenant,
        # whose uploads this one cannot use.
        ident = hashlib.sha256(f"{api_url}\n{api_key or ''}".encode()).hexdigest()[:20]
        return cls((directory or cache_dir()) / f"server-{ident}.json")

    @staticmethod
    def upload_key(sha256: str, name: str) -> str:
        return f"{sha256}/{name}"

    def remember_upload(self, sha256: str, name: str, image_id: str) -> None:
        key = self.upload_key(sha256, name)
        self.uploads.pop(key, None)
        self.uploads[key] = image_id
        _trim(self.uploads, MAX_UPLOADS)

    def forget_upload(self, sha256: str, name: str) -> None:
        self.uploads.pop(self.upload_key(sha256, name), None)

    def remember_job(self, idempotency_key: str, job_id: str) -> None:
        self.jobs.pop(idempotency_key, None)
        self.jobs[idempotency_key] = job_id
        _trim(self.jobs, MAX_JOBS)

    def save(self) -> None:
        """Write the file whole (a temporary file renamed over it). A cache that cannot be
        written only costs a re-upload next time, so errors are ignored."""
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".state-", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump({"uploads": self.uploads, "jobs": self.jobs}, handle)
                os.replace(temp, self.path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp)
                raise


def _trim(entries: dict[str, Any], limit: int) -> None:
    while len(entries) > limit:
        entries.pop(next(iter(entries)))
