"""The package layout holds: imports point one way, Redis stays behind distributed/, and no
module grows past 400 lines (split it by concept instead)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("imaging", "distributed", "workers", "image_api", "common", "devcluster", "project",
            "imgproc_cli")
MAX_LINES = 400

# package -> top-level modules it must never import
FORBIDDEN = {
    "imaging": {"django", "rest_framework", "redis", "distributed", "workers", "image_api",
                "common", "devcluster", "project"},
    "distributed": {"django", "rest_framework", "imaging", "workers", "image_api", "common",
                    "devcluster", "project"},
    "workers": {"django", "rest_framework", "redis", "image_api", "devcluster", "project"},
    "image_api": {"redis", "workers", "devcluster"},
    "common": {"django", "rest_framework", "redis", "imaging", "workers", "image_api",
               "devcluster", "project"},
    "devcluster": {"django", "rest_framework", "redis", "imaging", "workers", "image_api",
                   "project"},
    # The command-line client is a pure HTTP client: installed alone, it has none of these.
    "imgproc_cli": {"django", "rest_framework", "redis", "numpy", "cv2", "PIL", "imaging",
                    "distributed", "workers", "image_api", "common", "devcluster", "project"},
}


# manage.py's commands are entry points, like `python -m workers`: `runcluster` is a thin
# command over devcluster, `runworker` over the worker's own main.
ENTRY_POINTS = {"image_api/management/commands/runcluster.py",
                "image_api/management/commands/runworker.py"}


def modules(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts)


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_one_way(package: str) -> None:
    offending = {
        str(path.relative_to(ROOT)): sorted(imported_roots(path) & FORBIDDEN[package])
        for path in modules(package)
        if str(path.relative_to(ROOT)) not in ENTRY_POINTS
    }
    assert {path: names for path, names in offending.items() if names} == {}


def test_the_checker_sees_imports_inside_functions(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    import redis\n    from django.conf import settings\n")
    assert imported_roots(sample) == {"redis", "django"}


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_is_over_400_lines(package: str) -> None:
    long = {str(p.relative_to(ROOT)): n for p in modules(package)
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}
