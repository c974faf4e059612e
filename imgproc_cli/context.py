"""What every command gets: the API client, the UI and the output mode."""

from __future__ import annotations

from dataclasses import dataclass, field

import click

from imgproc_cli.client import Client
from imgproc_cli.ui import Ui


@dataclass
class Context:
    client: Client
    ui: Ui
    json: bool = False
    api_url: str = ""
    api_key: str | None = None
    # Said after "interrupted" when Ctrl+C stops a command (e.g. how to resume a job).
    interrupt_hint: list[str] = field(default_factory=list)


pass_context = click.make_pass_decorator(Context)
