"""What the user sees: notes and progress bars on stderr, results on stdout."""

from __future__ import annotations

import json
import os
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text


class Ui:
    def __init__(self, *, quiet: bool = False) -> None:
        self.quiet = quiet
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)
        self.out = Console(highlight=False)
        if not self.out.is_terminal and "COLUMNS" not in os.environ:
            # Piped: a file or a program reads it, so tables are not cut to 80 columns.
            self.out = Console(highlight=False, width=200)

    def note(self, text: str, style: str = "") -> None:
        """One line for the user on stderr (server text is printed as it is, no markup)."""
        if not self.quiet:
            self.err.print(Text(text, style=style))

    def error(self, text: str) -> None:
        self.err.print(Text(f"error: {text}", style="bold red"))

    def counter(self) -> Progress:
        """A bar counting items (images processed, files downloaded)."""
        return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[extra]}"), TimeElapsedColumn(),
                        console=self.err, disable=self.quiet)

    def transfer(self) -> Progress:
        """A bar counting bytes (uploads)."""
        return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                        TransferSpeedColumn(), TimeElapsedColumn(), console=self.err,
                        disable=self.quiet)

    def print_json(self, data: Any) -> None:
        # Plain print: rich would wrap long lines of a document meant for a program.
        print(json.dumps(data, indent=2, sort_keys=True, default=str))

    def print_table(self, table: Table) -> None:
        self.out.print(table)

    def print(self, text: str, style: str = "") -> None:
        self.out.print(Text(text, style=style))
