"""docs/settings.md is generated from the settings declarations and must not go stale."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from common.settingsdoc import DOC_PATH, render, rows

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "common.settingsdoc", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)


def test_docs_settings_md_is_what_the_command_generates() -> None:
    # If this fails: run `make docs` (python -m common.settingsdoc) and commit the file.
    assert DOC_PATH.read_text(encoding="utf-8") == render()


def test_the_check_option_passes_on_the_committed_file() -> None:
    result = run("--check")
    assert result.returncode == 0, result.stderr


def test_the_command_rewrites_a_stale_file_and_then_the_check_passes(tmp_path: Path) -> None:
    stale = tmp_path / "settings.md"
    stale.write_text("# Settings\n\n| `HEARTBEAT_INTERVAL` | `2` |\n", encoding="utf-8")
    checked = run("--check", "--output", str(stale))
    assert checked.returncode == 1
    assert "out of date" in checked.stderr
    assert run("--output", str(stale)).returncode == 0
    assert stale.read_text(encoding="utf-8") == render()
    assert run("--check", "--output", str(stale)).returncode == 0


def test_each_variable_has_one_row_with_its_readers_unit_and_old_name() -> None:
    table = {row.var.name: row for row in rows()}
    assert len(table) == len(rows())
    heartbeat = table["HEARTBEAT_INTERVAL_SECONDS"]
    assert heartbeat.readers == ["API", "workers"]
    assert heartbeat.var.aliases == ("HEARTBEAT_INTERVAL",)
    assert table["MEDIA_ROOT"].readers == ["API", "workers"]
    assert table["SHUTDOWN_GRACE_SECONDS"].readers == ["workers", "make run"]
    line = next(line for line in render().splitlines()
                if line.startswith("| `HEARTBEAT_INTERVAL_SECONDS` |"))
    assert line == (
        "| `HEARTBEAT_INTERVAL_SECONDS` | `2` | seconds (number) | API, workers | time between "
        "worker heartbeats; a worker silent for 3 intervals is dead | `HEARTBEAT_INTERVAL` |"
    )


def test_the_table_does_not_depend_on_the_machine_it_was_generated_on() -> None:
    text = render()
    assert str(ROOT) not in text
    assert "CPU count" in text and "`<hostname>-<pid>`" in text
