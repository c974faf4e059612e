"""common/files.py: local state readable by its owner only, whatever the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from common.files import make_private, private_dir, write_private


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def lax_umask():
    """The umask of a shell that makes files 0666 and directories 0777."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def test_a_private_directory_is_0700_new_or_old(tmp_path: Path, lax_umask) -> None:
    fresh = private_dir(tmp_path / "var" / "redis")
    assert fresh == tmp_path / "var" / "redis" and mode(fresh) == 0o700
    old = tmp_path / "old"
    old.mkdir(mode=0o755)
    private_dir(old)
    assert mode(old) == 0o700


def test_private_files_are_readable_by_their_owner_only(tmp_path: Path, lax_umask) -> None:
    path = tmp_path / "run" / "secret.conf"
    path.parent.mkdir()
    path.write_text("old")
    path.chmod(0o644)
    write_private(path, "requirepass x\n")
    assert path.read_text() == "requirepass x\n"
    assert mode(path) == 0o600
    new = tmp_path / "run" / "new.conf"
    write_private(new, "x")
    assert mode(new) == 0o600


@pytest.mark.parametrize(("before", "after", "changed"), [
    (0o644, 0o600, True), (0o666, 0o600, True), (0o640, 0o600, True), (0o444, 0o400, True),
    (0o600, 0o600, False), (0o400, 0o400, False),
])
def test_an_existing_file_is_narrowed_to_its_owner_never_widened(
    tmp_path: Path, before: int, after: int, changed: bool
) -> None:
    path = tmp_path / "db.sqlite3"
    path.write_bytes(b"")
    path.chmod(before)
    assert make_private(path) is changed
    assert mode(path) == after
