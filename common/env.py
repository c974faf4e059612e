"""Typed, immutable settings from environment variables: one small loader for frozen dataclasses.

A setting is a dataclass field that carries its variable::

    @dataclass(frozen=True)
    class WorkerSettings:
        concurrency: int = setting(Var("WORKER_CONCURRENCY", "tasks at once", minimum=1), 1)

:func:`load` reads each declared variable once, parses it by the field's annotation (``str``,
``int``, ``float``, ``bool``, ``Path``, ``tuple[str, ...]`` as a comma-separated list, or a
``Literal`` of choices) and returns the frozen object. An empty value counts as unset. A value
that does not parse raises :class:`SettingsError` naming the variable, so a process fails at
startup rather than at first use. A variable set under an old name (``Var.aliases``) still
works and emits one :class:`DeprecatedSettingWarning` naming the new one.

:func:`declarations` walks the same fields, so the settings table (docs/settings.md) is
generated from them and cannot drift from the code.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

T = TypeVar("T")

_VAR = "common.env.var"
_DERIVE = "common.env.derive"
_NESTED = "common.env.nested"

TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})


class SettingsError(ValueError):
    """A variable's value does not parse or is out of range; the message names the variable."""


class DeprecatedSettingWarning(FutureWarning):
    """A variable was set under its old name.

    A FutureWarning, which Python shows by default, rather than a DeprecationWarning, which it
    hides outside ``__main__``: the reader is whoever deploys the service."""


@dataclass(frozen=True)
class Var:
    """One environment variable: its name, what it means, its unit and its old names."""

    name: str
    help: str
    unit: str = ""
    aliases: tuple[str, ...] = ()
    minimum: float | None = None
    # The default as the docs state it, when the code computes it (CPU count, $VAR_DIR/media).
    default_doc: str = ""
    # Readers outside the Python settings objects (the Makefile, docker/entrypoint.sh).
    also_read_by: str = ""


def setting(
    var: Var,
    default: Any = dataclasses.MISSING,
    *,
    factory: Callable[[], Any] | None = None,
    derive: Callable[[Mapping[str, Any]], Any] | None = None,
) -> Any:
    """A dataclass field read from ``var``.

    ``factory`` computes the default when the object is built (the CPU count); ``derive``
    computes it from the fields loaded before this one (MEDIA_ROOT under VAR_DIR), when the
    variable is unset."""
    metadata = {_VAR: var, _DERIVE: derive}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def nested(factory: Callable[[], Any], fields: Mapping[str, Var] | None = None) -> Any:
    """A field holding a frozen dataclass of settings: one declared elsewhere without
    environment metadata (``distributed.config.QueueConfig``), ``fields`` mapping its field
    names to variables; or, without ``fields``, a group whose own fields are ``setting()``s
    (``common.throttle_settings.ThrottleSettings``)."""
    spec = None if fields is None else dict(fields)
    return dataclasses.field(default_factory=factory, metadata={_NESTED: spec})


def load(
    cls: type[T],
    env: Mapping[str, str] | None = None,
    *,
    fields: Mapping[str, Var] | None = None,
    **overrides: Any,
) -> T:
    """``cls`` built from ``env`` (default: the process environment).

    ``fields`` maps field names to variables for a class without metadata of its own.
    ``overrides`` (command-line flags) replace top-level fields; None means "not given"."""
    source: Mapping[str, str] = os.environ if env is None else env
    given = {name: value for name, value in overrides.items() if value is not None}
    return _Loader(source).build(cls, fields, given)


@dataclass(frozen=True)
class Declaration:
    """One declared variable, for the settings table."""

    var: Var
    type: Any
    default: Any  # dataclasses.MISSING when computed (see Var.default_doc)


def declarations(cls: type) -> Iterator[Declaration]:
    """Every variable ``cls`` reads, nested settings included, in field order."""
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        spec = f.metadata.get(_NESTED)
        if _NESTED in f.metadata and spec is None:  # a group declaring its own settings
            yield from declarations(hints[f.name])
        elif spec is not None:
            inner = hints[f.name]
            inner_hints = get_type_hints(inner)
            _check_spec(inner, spec)
            for g in dataclasses.fields(inner):
                if g.name in spec:
                    yield Declaration(spec[g.name], inner_hints[g.name], g.default)
        elif (var := f.metadata.get(_VAR)) is not None:
            derived = f.metadata.get(_DERIVE) is not None
            yield Declaration(var, hints[f.name], dataclasses.MISSING if derived else f.default)


class _Loader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.warned: set[str] = set()  # one warning per old name and process start

    def build(self, cls: type[T], spec: Mapping[str, Var] | None, overrides: dict[str, Any]) -> T:
        hints = get_type_hints(cls)
        if spec is not None:
            _check_spec(cls, spec)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            var = spec.get(f.name) if spec is not None else f.metadata.get(_VAR)
            if f.name in overrides:
                value = overrides.pop(f.name)
                if var is not None:
                    _check_minimum(var, var.name, value)
                values[f.name] = value
            elif _NESTED in f.metadata:
                values[f.name] = self.build(hints[f.name], f.metadata[_NESTED], {})
            elif var is not None and (found := self.read(var)) is not None:
                values[f.name] = self.parse(var, hints[f.name], *found)
            elif (derive := f.metadata.get(_DERIVE)) is not None:
                values[f.name] = derive(values)
            elif f.default is not dataclasses.MISSING:
                values[f.name] = f.default  # so that a later field can derive from it
            elif f.default_factory is not dataclasses.MISSING:
                values[f.name] = f.default_factory()
        if overrides:
            raise TypeError(f"{cls.__name__} has no field {', '.join(sorted(overrides))}")
        return cls(**values)

    def read(self, var: Var) -> tuple[str, str] | None:
        """(the name it was found under, its value), or None when unset or empty."""
        for name in (var.name, *var.aliases):
            raw = self.env.get(name, "").strip()
            if not raw:
                continue
            if name != var.name and name not in self.warned:
                self.warned.add(name)
                warnings.warn(
                    f"{name} is deprecated: set {var.name} instead",
                    DeprecatedSettingWarning,
                    stacklevel=2,
                )
            return name, raw
        return None

    def parse(self, var: Var, hint: Any, name: str, raw: str) -> Any:
        label = name if name == var.name else f"{name} (old name of {var.name})"
        try:
            value = parse_value(hint, raw)
        except ValueError as exc:
            raise SettingsError(f"{label}={raw!r}: {exc}") from None
        _check_minimum(var, label, value)
        return value


def parse_value(hint: Any, raw: str) -> Any:
    """``raw`` as the type ``hint`` names; ValueError says what was expected."""
    if get_origin(hint) is Literal:
        for choice in get_args(hint):
            if raw.lower() == str(choice).lower():
                return choice
        raise ValueError(f"expected one of {', '.join(map(str, get_args(hint)))}")
    if get_origin(hint) is tuple:
        return tuple(item.strip() for item in raw.split(",") if item.strip())
    parser = _PARSERS.get(hint)
    if parser is None:
        raise TypeError(f"no parser for settings of type {hint!r}")
    return parser(raw)


def _parse_bool(raw: str) -> bool:
    if raw.lower() in TRUE:
        return True
    if raw.lower() in FALSE:
        return False
    raise ValueError("expected true or false (or 1/0, yes/no, on/off)")


def _parse_int(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError("expected a whole number") from None


def _parse_float(raw: str) -> float:
    try:
        number = float(raw)
    except ValueError:
        raise ValueError("expected a number") from None
    if not math.isfinite(number):
        raise ValueError("expected a finite number")
    return number


_PARSERS: dict[Any, Callable[[str], Any]] = {
    bool: _parse_bool,
    int: _parse_int,
    float: _parse_float,
    Path: Path,
    str: str,
}


def _check_minimum(var: Var, label: str, value: Any) -> None:
    if (
        var.minimum is not None
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and value < var.minimum
    ):
        raise SettingsError(f"{label}={value!r}: must be at least {var.minimum:g}")


def _check_spec(cls: Any, spec: Mapping[str, Var]) -> None:
    unknown = set(spec) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise TypeError(f"{cls.__name__} has no field {', '.join(sorted(unknown))}")
