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
    kind: str  # text, int, number, bool, choice, timezone, object, ratio, length, format, page_length, page_ranges
    help: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()
    of: type | None = None  # an object whose keys are declared too (pdf_options): that options class
    alias: str | None = None  # a second spelling accepted (pdf_options' camelCase, as in Puppeteer)

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

    def schema(self) -> dict[str, Any]:
        """Its JSON Schema, as the reader of its kind takes it (a reader may take more: numbers as strings)."""
        k, lo, hi = self.kind, self.lo, self.hi
        if k in ("int", "number"):
            kind: dict[str, Any] = {"type": "integer" if k == "int" else "number", "minimum": lo, "maximum": hi}
        elif k in ("bool", "choice", "format"):
            kind = {"type": "boolean"} if k == "bool" else {"type": "string", "enum": list(self.choices or sorted(FORMATS))}
        elif k == "object":
            kind = json_schema(self.of) if self.of else {"type": "object"}
        elif k == "length":  # pixels, or a string: "50%", "-120px"
            hi = hi or MAX_SIDE
            kind = {"type": ["integer", "string"], "minimum": -hi, "maximum": hi, "pattern": r"^-?[0-9]+(\.[0-9]+)?(px|%)?$"}
        elif k == "ratio":
            kind = {"type": "string", "pattern": "^[1-9][0-9]{0,3}_[1-9][0-9]{0,3}$"}
        elif k == "page_length":
            unit = r"^[0-9]{1,4}(\.[0-9]+)?(px|in|cm|mm)$"
            kind = {"type": ["number", "string"], "minimum": lo, "maximum": hi, "pattern": unit}
        elif k == "page_ranges":
            page = "[1-9][0-9]{0,2}(-[1-9][0-9]{0,2})?"
            kind = {"type": "string", "pattern": f"^{page}(, ?{page})*$"}
        else:
            kind = {"type": "string"}
        return {"description": self.describe(), **kind}


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


def json_schema(cls: type) -> dict[str, Any]:
    """A JSON Schema of an options class's parameters, from their declarations (tools and clients read it)."""
    props: dict[str, Any] = {}
    once: dict[str, Any] = {}  # a name and its alias are one option: one of them at most
    for name, p in params_of(cls).items():
        props[name] = p.schema()
        if p.alias:
            props[p.alias] = {**props[name], "description": f"{name}, spelled as in Puppeteer."}
            once[p.alias] = {"not": {"required": [name]}}
    schema = {"type": "object", "properties": props, "additionalProperties": False}
    return {**schema, "dependentSchemas": once} if once else schema


# -- the two readers every value passes through: numbers, and JSON text --------------------------------
# Each digit can be read one way only: `\d+\.?\d*` backtracks quadratically on 100,000 digits that end in a letter.
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
MAX_JSON_DEPTH = 32  # a request is a few levels deep (a batch's variation's pdf_options' margin: 5)
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_INNERMOST = re.compile(r"\[\]|\{\}")


def number_of(value: Any) -> float | None:
    """The one number reader: a JSON number (not a boolean) or a decimal string in ASCII digits, as a finite
    float; None for anything else. It never raises: 400 digits are a number out of range, not an OverflowError,
    and `²` or `١` (digits to Python's str.isdigit or int()) are not numbers."""
    if isinstance(value, str):
        value = value.strip()
        if not _NUMBER.fullmatch(value):
            return None
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        num = float(value)
    except OverflowError:  # an integer beyond any float
        return None
    return num if math.isfinite(num) else None


def read_json(raw: str | bytes, param: str, what: str) -> Any:
    """The one JSON reader (request bodies, JSON in a string, page tokens); any failure is a BadRequestError
    naming ``param``. The depth is bounded before parsing, so 50,000 nested brackets are a 400, not Python's
    RecursionError; an integer too long for int() (4,300 digits) reads as infinite, out of every range."""
    try:
        text = raw.decode(json.detect_encoding(raw), "surrogatepass") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise BadRequestError(f"{what} is not valid JSON: {exc}", param=param) from None
    if _too_deep(text):
        raise BadRequestError(f"{what} is not valid JSON: nested deeper than {MAX_JSON_DEPTH} levels", param=param)
    try:
        return json.loads(text, parse_int=_json_int)
    except (ValueError, RecursionError) as exc:
        raise BadRequestError(f"{what} is not valid JSON: {exc}", param=param) from None


def _too_deep(text: str) -> bool:
    """Brackets outside strings nested deeper than MAX_JSON_DEPTH, or more left open: one C-speed substitution a
    level (the innermost pairs removed), so a 16 MB body is checked in milliseconds."""
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    for _ in range(MAX_JSON_DEPTH):
        brackets, found = _INNERMOST.subn("", brackets)
        if not found:
            break
    return bool(_INNERMOST.search(brackets)) or brackets.count("[") + brackets.count("{") > MAX_JSON_DEPTH


def _json_int(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:  # over int()'s 4,300 digits: infinite, which no parameter's range admits
        return -math.inf if text.startswith("-") else math.inf


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
    num = number_of(value)
    if num is None or not p.lo <= num <= p.hi or (integer and not num.is_integer()):
        kind = "an integer" if integer else "a number"
        raise BadRequestError(f"{p.name} must be {kind} between {p.lo:g} and {p.hi:g}", param=p.name)
    return num


def _int(p: Param, value: Any) -> int:
    return int(_number(p, value, integer=True))


def _choice(p: Param, value: Any) -> str:
    if not isinstance(value, str) or value.strip().lower() not in p.choices:
        raise BadRequestError(f"{p.name} must be one of: {', '.join(p.choices)}", param=p.name)
    return value.strip().lower()


def printable(name: Any, limit: int = 100) -> str:
    """A name the caller sent, as an error may echo it: no lone surrogate (a JSON key "\\udcff", which no UTF-8
    response can carry) and not a megabyte of it."""
    text = re.sub("[\ud800-\udfff]", "\ufffd", str(name))
    return text if len(text) <= limit else text[:limit] + "..."


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
    tz = _text(p, value)
    if tz not in _time_zones():
        raise BadRequestError(f"timezone must be an IANA time zone name, got {tz[:60]!r}", param=p.name)
    return tz


@functools.cache
def _time_zones() -> frozenset[str]:
    """The IANA names installed. Not whatever `ZoneInfo` opens: it reads `posixrules` and `right/UTC` too, files
    that are not zones, and Chromium refuses them (a failed render)."""
    from zoneinfo import available_timezones

    return frozenset(available_timezones())


def _object(p: Param, value: Any) -> dict[str, Any]:
    """A JSON object (or its JSON text, from a form or a query string). One whose keys are declared (``of``)
    comes back read: its values checked and converted, each bad one named ``pdf_options.format``."""
    if isinstance(value, str):
        value = read_json(value, p.name, p.name)
    if not isinstance(value, Mapping):
        raise BadRequestError(f"{p.name} must be a JSON object", param=p.name)
    if p.of is None:
        return dict(value)
    errs = Errors()
    out = read_declared(p.of, value, errs, "Unknown option")
    inner = Errors()
    for e in errs.items:
        inner.add(BadRequestError(f"{p.name}: {e.message}", param=f"{p.name}.{e.param}"))
    inner.raise_any()
    return out


_RATIO = re.compile(r"(\d{1,9})[_:](\d{1,9})", re.ASCII)


def _ratio(p: Param, value: Any) -> tuple[int, int]:
    m = _RATIO.fullmatch(value.strip()) if isinstance(value, str) else None
    w, h = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    if not (w and h) or max(w, h) > (p.hi or math.inf):
        each = f", each 1-{p.hi:g}" if p.hi else ""
        raise BadRequestError(f"{p.name} must be width_height, e.g. 16_9 or 1_1{each}", param=p.name)
    return w, h


def _length(p: Param, value: Any) -> Length:
    return Length.parse(p.name, value, p.hi or MAX_SIDE)


def _format(p: Param, value: Any) -> str:
    return parse_format(value)


# Playwright's units for page sizes and margins (its `convertPrintParameterToInches`), in CSS px.
PX_PER_UNIT = {"px": 1.0, "in": 96.0, "cm": 37.8, "mm": 3.78}
_PAGE_LENGTH = re.compile(r"(\d+(?:\.\d+)?|\.\d+) *(px|in|cm|mm)?", re.ASCII | re.I)


def _page_length(p: Param, value: Any) -> float:
    """A PDF page's width, height or margin as Playwright takes it (a number of px, or a string in px, in, cm
    or mm), in px: Playwright reads " 12px " as nothing, so it is given the number."""
    m = _PAGE_LENGTH.fullmatch(value.strip()) if isinstance(value, str) else None
    px = float(m.group(1)) * PX_PER_UNIT[(m.group(2) or "px").lower()] if m else number_of(value)
    assert p.lo is not None and p.hi is not None
    if px is None or not p.lo <= px <= p.hi:
        message = f"{p.name} must be {p.lo:g}-{p.hi:g} px (a number), or a string in px, in, cm or mm (up to {p.hi / 96:g}in)"
        raise BadRequestError(message, param=p.name)
    return px


_PAGE = r"[1-9]\d{0,5}"
_PAGE_RANGE = re.compile(rf" *(?:{_PAGE}(?: *- *(?:{_PAGE})?)?|- *{_PAGE}) *", re.ASCII)


def _page_ranges(p: Param, value: Any) -> str:
    """Chromium's page ranges ("1-5, 8, 11-"): each a page, a range whose start is not after its end, or open."""
    for item in value.split(",") if isinstance(value, str) else [""]:
        start, _, end = item.partition("-")
        if not _PAGE_RANGE.fullmatch(item) or (start.strip() and end.strip() and int(start) > int(end)):
            raise BadRequestError(f"{p.name} must be pages and ranges, e.g. 1-5, 8, 11-13", param=p.name)
    return str(value).strip()


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
    "page_length": _page_length,
    "page_ranges": _page_ranges,
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
    """Each declared parameter present in ``data`` read by its kind (under its name or its alias); unknown names
    (not ``accepted``) first."""
    declared = params_of(cls)
    aliases = {p.alias: name for name, p in declared.items() if p.alias}
    for name in sorted(k for k in data if k not in declared and k not in accepted and k not in aliases):
        errs.add(BadRequestError(f"{unknown}: {printable(name)}", param=printable(name)))
    for alias, name in aliases.items():
        if alias in data and name in data:
            errs.add(BadRequestError(f"{name} and {alias} are one option: give it once", param=name))
    data = {aliases.get(k, k): v for k, v in data.items()} if aliases else data
    out: dict[str, Any] = {}
    for name, p in declared.items():
        value = data.get(name)
        if value is not None and value != "":
            with errs:
                out[name] = p.read(value)
    return out


_LENGTH = re.compile(r"(-)?(\d+(?:\.\d+)?)(px|%)?", re.ASCII)
MAX_SIDE = 16384  # device pixels per side Chromium can capture in one screenshot: no image is larger


@dataclass(frozen=True)
class Length:
    """A crop coordinate: pixels or percent, negative meaning "from the far edge"."""

    value: float
    percent: bool
    negative: bool

    @classmethod
    def parse(cls, name: str, raw: Any, limit: float = MAX_SIDE) -> Length:
        """``100``, ``100px``, ``-33%`` (or a JSON number of pixels): at most ``limit`` px, or 100%."""
        m = _LENGTH.fullmatch(raw.strip()) if isinstance(raw, str) else None
        num = (-1 if m.group(1) else 1) * float(m.group(2)) if m else number_of(raw)
        if num is None:
            raise BadRequestError(f"{name} must be pixels (100 or 100px) or a percentage (33%), optionally negative", param=name)
        percent = m is not None and m.group(3) == "%"
        if percent and abs(num) > 100:
            raise BadRequestError(f"{name} must be a percentage between -100% and 100%", param=name)
        if not percent and abs(num) > limit:
            raise BadRequestError(f"{name} must be at most {limit:g} px either way (no image is larger)", param=name)
        return cls(abs(num), percent, num < 0 or (m is not None and bool(m.group(1))))

    def size(self, extent: int) -> float:
        """As a size (crop_width/crop_height): the magnitude only."""
        return extent * self.value / 100 if self.percent else self.value

    def position(self, extent: int) -> float:
        """As a coordinate: negative values count back from the far edge."""
        mag = self.size(extent)
        return extent - mag if self.negative else mag


def parse_format(fmt: Any) -> str:
    """A format or file extension (`jpeg`, `.PNG`) as the API names it; anything else is the API's 422."""
    key = fmt.strip().lower().lstrip(".") if isinstance(fmt, str) else ""
    if key not in FORMATS:
        raise UnsupportedFormatError(key[:20])
    return FORMATS[key]
