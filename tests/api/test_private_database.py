"""The default SQLite database (API key hashes, tenants, local jobs) is readable by its owner
only: 0600 once `manage.py migrate` has created it, and narrowed when an older install left it
wider (image_api/apps.py)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.workers import ROOT

pytestmark = pytest.mark.slow


def migrate(var_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABASE_URL", "REDIS_", "DJANGO_SETTINGS_MODULE"))}
    env["VAR_DIR"] = str(var_dir)
    done = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr


def test_migrate_creates_the_database_for_its_owner_only_and_narrows_an_old_one(
    tmp_path: Path,
) -> None:
    previous = os.umask(0o022)  # a shell's usual umask: new files 0644
    try:
        migrate(tmp_path / "var")
        database = tmp_path / "var" / "db.sqlite3"
        assert stat.S_IMODE(database.stat().st_mode) == 0o600
        # Given the database of an older install, readable by everyone
        database.chmod(0o644)
        # When the next process connects, then it is the owner's alone again
        migrate(tmp_path / "var")
        assert stat.S_IMODE(database.stat().st_mode) == 0o600
    finally:
        os.umask(previous)
