"""What a remote's bucket holds, read as untrusted input. Anyone who can write to the bucket (a pull request's
build, a compromised runner) can put anything there, so an image's metadata (`Meta`) and a request's record
(`Known`) are parsed field by field before anything uses them: an id is this project's UUID form and the name of
the object it was read from, a file name obeys the file rules (`hcti_build.files.plain_name`), times and sizes
are typed and bounded, parameters are the API's own (`CreateOptions`). Anything else parses to None: a
malformed object is a miss, never an error, a crash or a path outside the store.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from dataclasses import dataclass
from typing import Any

from ..errors import HctiError
from ..files import plain_name
from ..options import MAX_PIXELS, MAX_SIDE, CreateOptions, max_input_bytes
from .ids import is_id

_SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_NAMES = 10_000  # files one render read: a page with more is not a page
MAX_RECORD_BYTES = 4 << 20  # a request's record: its file names
SKEW = 86_400  # seconds a remote's clock may run ahead of ours


def max_meta_bytes() -> int:
    """An image's metadata carries its request's parameters, so its HTML and CSS (HCTI_MAX_INPUT_MB)."""
    return 2 * max_input_bytes() + (1 << 20)


def max_master_bytes() -> int:
    """The largest master a store takes from a remote (HCTI_REMOTE_MAX_MB, default 256): its size is checked before
    and while it is read, so a planted giant costs a listing, not the runner's memory."""
    try:
        return int(float(os.environ.get("HCTI_REMOTE_MAX_MB", "256")) * (1 << 20))
    except ValueError:
        return 256 << 20


class Malformed(ValueError):
    """An object of the bucket that is not what this project writes there; the message says which field."""


def _field(raw: dict[str, Any], name: str) -> Any:
    if name not in raw:
        raise Malformed(f"no {name}")
    return raw[name]


def checked_id(value: Any, expected: str | None = None) -> str:
    if not is_id(value) or (expected is not None and value != expected):
        raise Malformed("an id that is not the object's own name" if is_id(value) else "an id that is not one")
    return str(value)


def checked_int(value: Any, name: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise Malformed(f"{name} is not an integer between {lo} and {hi}")
    return value


def checked_sha(value: Any) -> str:
    if not isinstance(value, str) or _SHA256.fullmatch(value) is None:
        raise Malformed("sha256 is not 64 hex digits")
    return value


def checked_time(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Malformed(f"{name} is not a time")
    try:
        stamp = float(value)
    except OverflowError:
        stamp = math.inf
    if not 0 <= stamp <= time.time() + SKEW:  # NaN and infinity fail too
        raise Malformed(f"{name} is not a time")
    return stamp


def checked_text(value: Any, name: str, limit: int = 256) -> str:
    if not isinstance(value, str) or len(value) > limit or "\x00" in value:
        raise Malformed(f"{name} is not text of at most {limit} characters")
    return value


def checked_names(value: Any, name: str) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_NAMES or any(plain_name(n) is None for n in value):
        raise Malformed(f"{name} is not a list of file names under the root")
    return [str(n) for n in value]


def checked_params(value: Any) -> dict[str, Any]:
    """The API's creation parameters, as this project would store them."""
    if not isinstance(value, dict):
        raise Malformed("params is not an object")
    try:
        return CreateOptions.from_mapping(value).to_dict()
    except (HctiError, ArithmeticError, TypeError, ValueError, RecursionError) as exc:
        raise Malformed(f"params are not the API's: {getattr(exc, 'message', exc)}") from None


def checked_base(value: Any) -> str:
    if value != "" and plain_name(value) is None:
        raise Malformed("base is not a folder under the root")
    return str(value)


def _object(data: bytes) -> dict[str, Any]:
    try:
        raw = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise Malformed(f"not JSON ({type(exc).__name__})") from None
    if not isinstance(raw, dict):
        raise Malformed("not a JSON object")
    return raw


@dataclass
class Made:
    """The image a request's last render stored, as its record names it: enough to check the master's bytes."""

    id: str
    sha256: str
    size: int
    width: int
    height: int

    @classmethod
    def checked(cls, raw: dict[str, Any], expected: str | None = None) -> Made:
        width = checked_int(_field(raw, "width"), "width", 1, MAX_SIDE)
        height = checked_int(_field(raw, "height"), "height", 1, MAX_SIDE)
        if width * height > MAX_PIXELS:
            raise Malformed("width x height is over the pixel limit")
        size = checked_int(_field(raw, "size"), "size", 1, max_master_bytes())
        return cls(checked_id(_field(raw, "id"), expected), checked_sha(_field(raw, "sha256")), size, width, height)


@dataclass
class Meta:
    """What is kept beside a remote master: enough for a runner with an empty store to serve, list and derive."""

    id: str
    sha256: str
    size: int
    width: int
    height: int
    params: dict[str, Any]
    base: str
    engine: str
    created_at: float
    format: str = "png"

    @classmethod
    def parse(cls, data: bytes, image_id: str) -> Meta:
        """The metadata of ``image_id`` (the object's name) as ``data`` gives it, every field checked; raises
        Malformed."""
        raw = _object(data)
        made = Made.checked(raw, image_id)
        if raw.get("format", "png") != "png":
            raise Malformed("format is not png")
        return cls(
            made.id, made.sha256, made.size, made.width, made.height, checked_params(_field(raw, "params")),
            checked_base(_field(raw, "base")), checked_text(_field(raw, "engine"), "engine"),
            checked_time(_field(raw, "created_at"), "created_at"),
        )  # fmt: skip

    def dumps(self) -> bytes:
        return json.dumps(self.__dict__, sort_keys=True).encode()


@dataclass
class Known:
    """A request as the remote knows it: the files its last render read and missed, and the image that render
    stored (None if the record does not say)."""

    read: list[str]
    missing: list[str]
    made: Made | None

    @classmethod
    def parse(cls, data: bytes) -> Known:
        """A request's record, every name and the image checked; raises Malformed. A record whose image does not
        check out is still a record of its files (the image's metadata is then read for itself)."""
        raw = _object(data)
        read, missing = checked_names(_field(raw, "read"), "read"), checked_names(_field(raw, "missing"), "missing")
        made = raw.get("made")
        try:
            image = Made.checked(made) if isinstance(made, dict) and made else None
        except Malformed:
            image = None
        return cls(read, missing, image)

    def said(self) -> str:
        """What the record says, to compare with what a render found (`said`)."""
        return said(self.read, self.missing, self.made.id if self.made else None)

    def meta(self, image_id: str, params: dict[str, Any], base: str, engine: str) -> Meta | None:
        """The metadata of ``image_id`` if it is the image the record names (else None: read it)."""
        m = self.made
        if m is None or m.id != image_id:
            return None
        return Meta(image_id, m.sha256, m.size, m.width, m.height, params, base, engine, time.time())


def said(read: list[str], missing: list[str], image_id: str | None) -> str:
    """What a request's record says, to compare with what a render found: its files, and its image."""
    return json.dumps([sorted(read), sorted(missing), image_id])
