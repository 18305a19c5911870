"""How a parameter of the API is declared and read: `param` declares one as a field of an options class (its
kind, range, default and help), `Param.read` checks and converts a value of it (from a string or a JSON value),
`Errors` gathers every bad field of a request into one error. The options themselves are `hcti_build.options`.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from .errors import BadRequestError, UnsupportedFormatError

FORMATS = {"png": "png", "jpg": "jpg", "jpeg": "jpg", "webp": "webp", "pdf": "pdf"}


@dataclass(frozen=True)
class Param:
    """One parameter of the API: how its value is read (``kind``), its range or choices, and its help."""

    name: str
    kind: str  # text, int, number, bool, choice, timezone, object, ratio, length, format
    help: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()

    @property
    def flag(self) -> bool:
        """A switch on a command line (`--full-screen`), not an option that takes a value."""
        return self.kind == "bool"

    def describe(self) -> str:
        """The help text with the range, as every surface shows it."""
        if self.lo is not None and self.hi is not None:
            return f"{self.help} ({self.lo:g}-{self.hi:g})."
        return f"{self.help}."

    def read(self, value: Any) -> Any:
        """The value checked and converted, or a BadRequestError naming the parameter."""
        return _READERS[self.kind](self, value)


def param(default: Any, kind: str, help: str, **limits: Any) -> Any:
    """A field of an options class that is a parameter of the API: its default and its `Param`."""
    return field(default=default, metadata={"param": (kind, help, limits)}, hash=kind != "object")


@functools.cache
def params_of(cls: type) -> dict[str, Param]:
    """The parameters an options class declares (`param`), by name, in declaration order."""
    out = {}
    for f in fields(cls):
        if "param" in f.metadata:
            kind, help, limits = f.metadata["param"]
            out[f.name] = Param(f.name, kind, help, **limits)
    return out


# -- readers, one a kind ----------------------------------------------------------------------------
def _bool(p: Param, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
        return value.strip().lower() in ("true", "1", "yes", "on")
    raise BadRequestError(f"{p.name} must be true or false", param=p.name)


def _number(p: Param, value: Any, *, integer: bool = False) -> float:
    assert p.lo is not None and p.hi is not None
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool):
        raise BadRequestError(f"{p.name} must be {kind} between {p.lo:g} and {p.hi:g}", param=p.name)
    try:
        num = float(value.strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        num = math.nan
    if math.isnan(num) or not p.lo <= num <= p.hi or (integer and num != int(num)):
        raise BadRequestError(f"{p.name} must be {kind} between {p.lo:g} and {p.hi:g}", param=p.name)
    return num


def _int(p: Param, value: Any) -> int:
    return int(_number(p, value, integer=True))


def _choice(p: Param, value: Any) -> str:
    if not isinstance(value, str) or value.strip().lower() not in p.choices:
        raise BadRequestError(f"{p.name} must be one of: {', '.join(p.choices)}", param=p.name)
    return value.strip().lower()


def _text(p: Param, value: Any) -> str:
    if not isinstance(value, str):
        raise BadRequestError(f"{p.name} must be a string", param=p.name)
    if "\x00" in value:
        raise BadRequestError(f"{p.name} must not contain NUL bytes", param=p.name)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\udcff" in JSON): U+FFFD, as a JavaScript server encodes it
        value = re.sub("[\ud800-\udfff]", "\ufffd", value)
    return value


def _timezone(p: Param, value: Any) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    tz = _text(p, value)
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise BadRequestError(f"timezone must be an IANA time zone name, got {tz!r}", param=p.name) from exc
    return tz


def _object(p: Param, value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    if not isinstance(value, Mapping):
        raise BadRequestError(f"{p.name} must be a JSON object", param=p.name)
    return dict(value)


def _ratio(p: Param, value: Any) -> tuple[int, int]:
    m = re.match(r"^(\d+)[_:](\d+)$", str(value).strip())
    if not m or int(m.group(1)) == 0 or int(m.group(2)) == 0:
        raise BadRequestError(f"{p.name} must be width_height, e.g. 16_9 or 1_1", param=p.name)
    return int(m.group(1)), int(m.group(2))


def _length(p: Param, value: Any) -> Length:
    return Length.parse(p.name, value)


def _format(p: Param, value: Any) -> str:
    return parse_format(value)


_READERS: dict[str, Callable[[Param, Any], Any]] = {
    "text": _text,
    "int": _int,
    "number": _number,
    "bool": _bool,
    "choice": _choice,
    "timezone": _timezone,
    "object": _object,
    "ratio": _ratio,
    "length": _length,
    "format": _format,
}


class Errors:
    """Collects the BadRequestError of each check made in a ``with`` block, to report them all as one error
    whose ``errors`` name every bad field (each surface shows them: a JSON list, one line, a message)."""

    def __init__(self) -> None:
        self.items: list[BadRequestError] = []

    def add(self, exc: BadRequestError) -> None:
        self.items.extend(exc.errors or [exc])  # type: ignore[arg-type]

    def __enter__(self) -> Errors:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool:
        if isinstance(exc, BadRequestError):
            self.add(exc)
            return True
        return False

    def raise_any(self) -> None:
        if not self.items:
            return
        first = self.items[0]
        message = "; ".join(e.message for e in self.items)
        raise BadRequestError(message, param=first.param, errors=list(self.items))


def read_declared(
    cls: type, data: Mapping[str, Any], errs: Errors, unknown: str, accepted: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """Each declared parameter present in ``data`` read by its kind; unknown names (not ``accepted``) first."""
    declared = params_of(cls)
    for name in sorted(k for k in data if k not in declared and k not in accepted):
        errs.add(BadRequestError(f"{unknown}: {name}", param=name))
    out: dict[str, Any] = {}
    for name, p in declared.items():
        value = data.get(name)
        if value is not None and value != "":
            with errs:
                out[name] = p.read(value)
    return out


_LENGTH = re.compile(r"^(-)?(\d+(?:\.\d+)?)(px|%)?$")


@dataclass(frozen=True)
class Length:
    """A crop coordinate: pixels or percent, negative meaning "from the far edge"."""

    value: float
    percent: bool
    negative: bool

    @classmethod
    def parse(cls, name: str, raw: Any) -> Length:
        m = _LENGTH.match(str(raw).strip())
        if not m:
            raise BadRequestError(f"{name} must be pixels (100 or 100px) or a percentage (33%), optionally negative", param=name)
        value = float(m.group(2))
        percent = m.group(3) == "%"
        if percent and value > 100:
            raise BadRequestError(f"{name} must be a percentage between -100% and 100%", param=name)
        return cls(value, percent, bool(m.group(1)))

    def size(self, extent: int) -> float:
        """As a size (crop_width/crop_height): the magnitude only."""
        return extent * self.value / 100 if self.percent else self.value

    def position(self, extent: int) -> float:
        """As a coordinate: negative values count back from the far edge."""
        mag = self.size(extent)
        return extent - mag if self.negative else mag


def parse_format(fmt: str) -> str:
    key = str(fmt).strip().lower().lstrip(".")
    if key not in FORMATS:
        raise UnsupportedFormatError(key)
    return FORMATS[key]
