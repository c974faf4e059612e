"""Every error code the API can answer is listed in docs/api.md's error table.

The codes are read from the code itself: every ``code="..."`` keyword (ApplicationError,
ImageError, PipelineError, DRF exceptions...), every ``code = "..."`` / ``default_code = "..."``
class attribute of an error class, and every ``{"error": "..."}`` body built by hand (the
middlewares and the ASGI front door), in the packages that answer HTTP requests or raise the
errors they convert. A new code that is not documented fails here."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("image_api", "imaging", "distributed", "common", "project")
DOC = ROOT / "docs" / "api.md"
# Codes of an image's result, never an HTTP answer: docs/api.md lists them in the table after
# the error table (checked below).
RESULT_CODES = frozenset({"time_limit_exceeded"})


def _str(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _is_code_attribute(node: ast.Assign) -> bool:
    target = node.targets[0] if len(node.targets) == 1 else None
    return isinstance(target, ast.Name) and target.id in ("code", "default_code")


def codes_in(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        value = None
        if (isinstance(node, ast.keyword) and node.arg == "code") or (
                isinstance(node, ast.Assign) and _is_code_attribute(node)):
            value = _str(node.value)
        elif isinstance(node, ast.Dict):
            value = next((_str(v) for k, v in zip(node.keys, node.values, strict=True)
                          if k is not None and _str(k) == "error"), None)
        if value and re.fullmatch(r"[a-z][a-z0-9_]*", value):
            found.add(value)
    return found


def answered_codes() -> dict[str, str]:
    codes: dict[str, str] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for code in codes_in(ast.parse(path.read_text(encoding="utf-8"))):
                codes.setdefault(code, str(path.relative_to(ROOT)))
    return codes


def documented_codes() -> set[str]:
    table = [line for line in DOC.read_text(encoding="utf-8").splitlines()
             if re.match(r"\| \d{3} \|", line)]
    return {code for line in table for code in re.findall(r"`([a-z][a-z0-9_]*)`",
                                                          line.split("|")[2])}


def test_every_error_code_in_the_code_is_in_the_api_docs_error_table() -> None:
    codes = answered_codes()
    missing = {code: where for code, where in codes.items()
               if code not in documented_codes() and code not in RESULT_CODES}

    assert len(codes) > 40  # the scan finds the codes (a broken scan would find none)
    assert not missing, f"error codes not in docs/api.md's error table: {missing}"


def test_the_scan_finds_codes_written_each_way() -> None:
    tree = ast.parse('raise E("m", code="one")\nclass X:\n    code = "two"\n'
                     'JsonResponse({"error": "three", "message": "m"})\n')

    assert codes_in(tree) == {"one", "two", "three"}


def test_the_result_codes_are_in_the_result_table() -> None:
    text = DOC.read_text(encoding="utf-8")
    for code in RESULT_CODES:
        assert f"| `{code}` |" in text
