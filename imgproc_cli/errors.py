"""The CLI's errors and the exit code of each.

| code | meaning |
|---|---|
| 0 | success (a submitted job completed and every output was downloaded) |
| 1 | a local problem (a file could not be read or written) or an unexpected error |
| 2 | bad arguments (usage), or no image found in the paths given |
| 3 | the server is unreachable (connection refused, DNS, timeout) |
| 4 | the server refused the request (4xx; its message is shown), 429 after the retries |
| 5 | the server failed (5xx, or an answer that is not what the API sends) |
| 6 | the job finished but not every image completed (failed or cancelled ones) |
| 130 | interrupted (Ctrl+C): no half-written file is left behind |
"""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_LOCAL = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_CLIENT_ERROR = 4
EXIT_SERVER_ERROR = 5
EXIT_JOB_INCOMPLETE = 6
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """An error the CLI reports in one message and exits with ``exit_code``."""

    exit_code = EXIT_LOCAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class LocalError(CliError):
    exit_code = EXIT_LOCAL


class Unreachable(CliError):
    exit_code = EXIT_UNREACHABLE


class ApiError(CliError):
    """A 4xx or 5xx answer: ``code`` and ``message`` are the server's own when it sent its
    JSON error body."""

    def __init__(self, status: int, code: str, message: str, body: dict[str, Any] | None = None,
                 method: str = "", url: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.body = body or {}
        self.method = method
        self.url = url

    @property
    def exit_code(self) -> int:  # type: ignore[override]
        # A 2xx that is not what the API sends (no JSON) is the server's fault too.
        return EXIT_CLIENT_ERROR if 400 <= self.status < 500 else EXIT_SERVER_ERROR

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


class JobIncomplete(CliError):
    exit_code = EXIT_JOB_INCOMPLETE
