"""DATABASE_URL with a real PostgreSQL server (the one at 127.0.0.1:5432 on these machines):
migrations apply and a threading batch's job is stored and read back through the API.

Runs in a subprocess with its own throw-away database, so the rest of the suite keeps SQLite.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOST, PORT = "127.0.0.1", 5432

SCRIPT = """
import django, json
django.setup()
from django.db import connection
from rest_framework.test import APIClient
assert connection.vendor == "postgresql", connection.vendor
api = APIClient()
body = {"filters": ["grayscale"], "images": ["sample-test-chart"]}
job = api.post("/api/process-batch/threading/", body, format="json").json()
again = api.get(f"/api/jobs/{job['id']}/").json()
print(json.dumps({"status": again["status"], "total": again["total"], "id": again["id"]}))
"""


def postgres_reachable() -> bool:
    try:
        with socket.create_connection((HOST, PORT), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not postgres_reachable(), reason=f"no PostgreSQL server at {HOST}:{PORT}")
def test_database_url_with_postgresql_stores_and_reads_jobs(tmp_path):
    import psycopg

    name = f"imgproc_test_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(f"postgresql://postgres@{HOST}:{PORT}/postgres", autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        env = {**os.environ, "DATABASE_URL": f"postgres://postgres@{HOST}:{PORT}/{name}",
               "DJANGO_SETTINGS_MODULE": "project.settings", "VAR_DIR": str(tmp_path),
               "MEDIA_ROOT": str(tmp_path / "media"), "THREAD_POOL_SIZE": "2"}
        env.pop("REDIS_URL", None)
        migrate = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT,
                                 env=env, capture_output=True, text=True, timeout=120)
        assert migrate.returncode == 0, migrate.stderr
        run = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        result = run.stdout.strip().splitlines()[-1]
        assert '"status": "completed"' in result and '"total": 1' in result
        assert not (tmp_path / "db.sqlite3").exists()
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
