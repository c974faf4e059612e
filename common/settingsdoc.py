"""``python -m common.settingsdoc``: write docs/settings.md from the settings declarations.

The table is generated from ``common/settings.py`` (``make docs``), so it lists exactly the
variables the code reads, with their defaults, units, readers and old names.
``--check`` writes nothing and exits 1 when the file is out of date.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from common.env import Declaration, Var, declarations
from common.settings import BASE_DIR, PROCESSES

DOC_PATH = BASE_DIR / "docs" / "settings.md"

HEADER = """\
# Settings

<!-- Generated from common/settings.py by `python -m common.settingsdoc` (`make docs`).
     Do not edit by hand: tests/common/test_settingsdoc.py fails when this file is stale. -->

Every setting is an environment variable, read once when a process starts into a typed,
frozen object (the API: `ApiSettings`, a worker: `WorkerSettings`, `make run`:
`ClusterSettings`; all in `common/settings.py`) that is then passed on; nothing else reads
the environment.

- An empty value counts as unset.
- A value that does not parse (`TASK_LEASE_SECONDS=abc`) or is out of range stops the process
  at startup with a message naming the variable.
- A variable set under its deprecated name still works, and the process warns once, naming
  the new one.
- The queue settings (those read by both the API and the workers) must have the same values
  on both sides: they agree on leases, liveness and retries through them.
"""

_TYPE_NAMES = {bool: "boolean", int: "integer", float: "number", str: "text", Path: "path"}


@dataclass
class Row:
    var: Var
    type: Any
    default: str
    readers: list[str] = field(default_factory=list)


def describe_type(var: Var, hint: Any) -> str:
    if get_origin(hint) is Literal:
        return "one of " + ", ".join(f"`{choice}`" for choice in get_args(hint))
    if get_origin(hint) is tuple:
        return "comma-separated list"
    name = _TYPE_NAMES.get(hint, str(hint))
    if not var.unit:
        return name
    if hint in (str, Path):  # text with a meaning: "URL", "path"
        return var.unit
    return f"{var.unit} ({name})"


def describe_default(declaration: Declaration) -> str:
    var, value = declaration.var, declaration.default
    if var.default_doc:
        return var.default_doc
    if value is dataclasses.MISSING or isinstance(value, Path):
        # Computed or machine-dependent: the declaration must say it in words.
        raise ValueError(f"{var.name}: declare its default in words (Var.default_doc)")
    if value == "" or value == ():
        return "unset"
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = f"{value:g}"
    elif isinstance(value, tuple):
        text = ",".join(value)
    else:
        text = str(value)
    return f"`{text}`"


def rows() -> list[Row]:
    """One row per variable, in declaration order; a variable read by several processes is
    declared with the same Var and default everywhere, or this raises."""
    table: dict[str, Row] = {}
    for process, cls in PROCESSES:
        for declaration in declarations(cls):
            var = declaration.var
            default = describe_default(declaration)
            row = table.setdefault(var.name, Row(var, declaration.type, default))
            if (row.var, row.default, describe_type(row.var, row.type)) != (
                var, default, describe_type(var, declaration.type)
            ):
                raise ValueError(f"{var.name} is declared differently by {process}")
            if process not in row.readers:
                row.readers.append(process)
    return list(table.values())


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    lines = [
        HEADER,
        "| Variable | Default | Unit / type | Read by | Description | Deprecated name |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows():
        var = row.var
        readers = ", ".join(row.readers + ([var.also_read_by] if var.also_read_by else []))
        cells = [
            f"`{var.name}`",
            row.default,
            describe_type(var, row.type),
            readers,
            var.help,
            ", ".join(f"`{alias}`" for alias in var.aliases),
        ]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m common.settingsdoc", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the file differs from what would be generated")
    parser.add_argument("--output", type=Path, default=DOC_PATH, help=f"default: {DOC_PATH}")
    args = parser.parse_args(argv)
    text = render()
    current = args.output.read_text(encoding="utf-8") if args.output.exists() else None
    if args.check:
        if current != text:
            print(f"{args.output} is out of date: run `make docs`", file=sys.stderr)
            return 1
        return 0
    if current != text:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
