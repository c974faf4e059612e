"""The ``imgproc`` command: global options, the commands, and one exit code per kind of
error (see :mod:`imgproc_cli.errors`)."""

from __future__ import annotations

import os
import sys
import traceback

import click

from imgproc_cli import __version__
from imgproc_cli.admin_cmd import (
    callback_secret,
    cancel,
    dead_letters,
    drain,
    job,
    jobs,
    usage,
    workers,
)
from imgproc_cli.client import DEFAULT_API_URL, MAX_429_RETRIES, Client
from imgproc_cli.context import Context
from imgproc_cli.errors import (
    EXIT_INTERRUPTED,
    EXIT_LOCAL,
    EXIT_USAGE,
    ApiError,
    CliError,
)
from imgproc_cli.submit_cmd import download, submit
from imgproc_cli.ui import Ui

HINTS = {
    401: "Give an API key with --api-key or IMGPROC_API_KEY.",
    403: "This needs another key (an admin key for cluster actions).",
}


@click.group(context_settings={"help_option_names": ["-h", "--help"],
                               "max_content_width": 100})
@click.option("--api-url", envvar="IMGPROC_API_URL", default=DEFAULT_API_URL,
              show_default=True, show_envvar=True, help="The API server.")
@click.option("--api-key", envvar="IMGPROC_API_KEY", show_envvar=True,
              help="API key, sent as `Authorization: Bearer <key>`.")
@click.option("--retries", type=click.IntRange(0, 100), default=MAX_429_RETRIES,
              show_default=True, help="How often a 429 (server busy) is retried after its "
              "Retry-After (each wait at most 60 s).")
@click.option("--json", "json_", is_flag=True, help="Print JSON for programs.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or notes.")
@click.version_option(__version__, prog_name="imgproc")
@click.pass_context
def cli(ctx: click.Context, api_url: str, api_key: str | None, retries: int, json_: bool,
        quiet: bool) -> None:
    """Client of the image-processing API: submit folders of images and download the
    results, follow jobs, look after workers and dead letters.

    \b
    Exit codes: 0 ok; 1 local file error or unexpected error; 2 bad arguments;
    3 server unreachable; 4 request refused (4xx, the server's message is shown);
    5 server error (5xx); 6 job finished with images not completed; 130 interrupted."""
    ui = Ui(quiet=quiet)
    try:
        client = Client(api_url, api_key or None, max_429_retries=retries,
                        notify=lambda line: ui.note(line, "yellow"))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--api-url") from exc
    ctx.obj = Context(client=client, ui=ui, json=json_, api_url=client.base_url,
                      api_key=api_key or None)


for command in (submit, download, jobs, job, cancel, workers, dead_letters, drain,
                callback_secret, usage):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI and exit with the code of what happened."""
    sys.exit(run(argv))


def run(argv: list[str] | None = None) -> int:
    ui = Ui()
    ctx: click.Context | None = None
    try:
        ctx = cli.make_context("imgproc", list(sys.argv[1:] if argv is None else argv))
        with ctx:
            cli.invoke(ctx)
        return 0
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.ClickException as error:  # usage errors: exit 2 with click's message
        error.show()
        return error.exit_code
    except (KeyboardInterrupt, click.Abort):
        context = ctx.obj if ctx is not None and isinstance(ctx.obj, Context) else None
        ui.error("interrupted")
        for hint in context.interrupt_hint if context else []:
            ui.note(hint)
        return EXIT_INTERRUPTED
    except CliError as error:
        ui.error(str(error) if isinstance(error, ApiError) else error.message)
        if isinstance(error, ApiError) and error.status in HINTS:
            ui.note(HINTS[error.status])
        return error.exit_code
    except Exception as exc:  # a bug: say so, with the traceback on request
        ui.error(f"unexpected {type(exc).__name__}: {exc}")
        if os.environ.get("IMGPROC_DEBUG"):
            traceback.print_exc()
        else:
            ui.note("Set IMGPROC_DEBUG=1 to see the traceback.")
        return EXIT_LOCAL


__all__ = ["EXIT_USAGE", "cli", "main", "run"]
