"""Local state only this user may read: the SQLite database, the embedded Redis's directory,
data and password, the local cluster's supervisord config (it holds ``REDIS_URL``).

Files are 0600 and directories 0700 from the moment they exist, and an existing one with a
wider mode (made by an earlier version) is narrowed. Media are not private: the processes
that serve and process them may run as other users.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """``path`` as a directory only this user can list or enter (created if missing, its
    parents as usual); returns ``path``."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    os.chmod(path, PRIVATE_DIR_MODE)
    return path


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by this user only (created 0600, never wider)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    os.fchmod(fd, PRIVATE_FILE_MODE)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def make_private(path: Path) -> bool:
    """Narrow the existing file ``path`` to 0600 if group or others may use it; True if its
    mode changed."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if not mode & 0o077:
        return False
    os.chmod(path, mode & PRIVATE_FILE_MODE)
    return True
