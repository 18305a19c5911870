"""Creation parameters and the image query as frozen, validated values, in the hosted API's words.

One model serves every surface (CLI flags, directives, magic, plugin, server JSON): values may arrive as
strings (query strings, CLI flags) or as JSON types, and are validated here once.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any
from urllib.parse import parse_qsl

from .errors import BadRequestError, UnsupportedFormatError

FORMATS = {"png": "png", "jpg": "jpg", "jpeg": "jpg", "webp": "webp", "pdf": "pdf"}
MIME = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp", "pdf": "application/pdf"}


# Each parameter documented once, for every surface that lists them (CLI flags, %%hcti help).
PARAM_HELP = {
    "css": "CSS for the image.",
    "url": "A URL to screenshot (overrides the HTML, as in the API).",
    "google_fonts": "Font families, '|'-separated (resolved from installed fonts; no network).",
    "selector": "CSS selector of the element to capture.",
    "ms_delay": "Wait this many ms after the page is ready (0-20000).",
    "max_wait_ms": "Deadline for the page to become ready (1-30000, default 10000).",
    "device_scale": "Pixel ratio (0.1-3; default 2 for HTML, 1 for a URL).",
    "render_when_ready": "Wait until the page calls ScreenshotReady() (#HCTIReadyNow exists).",
    "viewport_width": "Viewport width in px (with viewport_height; disables auto-crop).",
    "viewport_height": "Viewport height in px (with viewport_width).",
    "full_screen": "Capture the full page height.",
    "color_scheme": "light or dark.",
    "media_type": "screen or print.",
    "timezone": "IANA time zone, e.g. Europe/Paris.",
    "transparent_background": "Transparent instead of white page background.",
    "pdf_options": "JSON object of Chromium PDF options for .pdf output.",
    "format": "png (default), jpg, webp or pdf.",
    "width": "Resize to this width in px (1-5000; alone it keeps the aspect ratio).",
    "height": "Resize to this height in px (1-5000; alone it keeps the aspect ratio).",
    "dpi": "DPI written into the image's metadata (30-600).",
    "dl": "Serve as a download (attachment).",
    "aspect_ratio": "Crop to this aspect ratio, W_H (e.g. 16_9).",
    "x_origin": "Crop origin x: px or %, negative from the right.",
    "y_origin": "Crop origin y: px or %, negative from the bottom.",
    "x_1": "Crop left edge: px or %, negative from the right.",
    "x_2": "Crop right edge: px or %, negative from the right.",
    "y_1": "Crop top edge: px or %, negative from the bottom.",
    "y_2": "Crop bottom edge: px or %, negative from the bottom.",
    "crop_width": "Crop width: px or %.",
    "crop_height": "Crop height: px or %.",
}
# Limits checked before the browser is touched. The input cap can be changed with HCTI_MAX_INPUT_MB.
MAX_PIXELS = 100_000_000  # output pixels of one render (e.g. 5000x5000 at device_scale 2)
MAX_SIDE = 16384  # device pixels per side Chromium can capture in one screenshot
WEBP_MAX_SIDE = 16383  # the WebP format's own limit


def max_input_bytes() -> int:
    try:
        return int(float(os.environ.get("HCTI_MAX_INPUT_MB", "10")) * 1024 * 1024)
    except ValueError:
        return 10 * 1024 * 1024


def _human(n: int, spec: str) -> str:
    return f"{n / 2**20:{spec}} MB" if n >= 2**20 else f"{n / 2**10:{spec}} KB"


FLAG_PARAMS = frozenset({"render_when_ready", "full_screen", "transparent_background", "dl"})


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
        return value.strip().lower() in ("true", "1", "yes", "on")
    raise BadRequestError(f"{name} must be true or false", param=name)


def _number(name: str, value: Any, lo: float, hi: float, *, integer: bool) -> float:
    if isinstance(value, bool):
        raise BadRequestError(f"{name} must be a number between {lo:g} and {hi:g}", param=name)
    try:
        num = float(value.strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        num = math.nan
    if math.isnan(num) or not lo <= num <= hi or (integer and num != int(num)):
        kind = "an integer" if integer else "a number"
        raise BadRequestError(f"{name} must be {kind} between {lo:g} and {hi:g}", param=name)
    return num


def _int(name: str, value: Any, lo: int, hi: int) -> int:
    return int(_number(name, value, lo, hi, integer=True))


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.strip().lower() not in choices:
        raise BadRequestError(f"{name} must be one of: {', '.join(choices)}", param=name)
    return value.strip().lower()


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise BadRequestError(f"{name} must be a string", param=name)
    if "\x00" in value:
        raise BadRequestError(f"{name} must not contain NUL bytes", param=name)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\udcff" in JSON): U+FFFD, as a JavaScript server encodes it
        value = re.sub("[\ud800-\udfff]", "\ufffd", value)
    return value


# Parameters of the hosted API that have no effect offline: accepted (and checked) so existing clients work
# unchanged, and left out of the id. There is no network for consent banners, and emoji always come from the
# installed colour emoji font (Twemoji would be a download).
COMPAT_PARAMS = frozenset({"block_consent_banners", "disable_twemoji"})


class _Errors:
    """Collects the BadRequestError of each field checked in a ``with`` block, to report them all at once."""

    def __init__(self) -> None:
        self.items: list[BadRequestError] = []

    def add(self, exc: BadRequestError) -> None:
        self.items.append(exc)

    def __enter__(self) -> _Errors:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool:
        if isinstance(exc, BadRequestError):
            self.items.append(exc)
            return True
        return False

    def raise_any(self) -> None:
        if not self.items:
            return
        first = self.items[0]
        message = "; ".join(e.message for e in self.items)
        raise BadRequestError(message, param=first.param, errors=list(self.items))


@dataclass(frozen=True)
class CreateOptions:
    """The API's creation parameters. ``canonical_json()`` is the form that is hashed into an image's id."""

    html: str | None = None
    css: str | None = None
    url: str | None = None
    google_fonts: str | None = None
    selector: str | None = None
    ms_delay: int = 0
    max_wait_ms: int = 10000
    device_scale: float | None = None
    render_when_ready: bool = False
    viewport_width: int | None = None
    viewport_height: int | None = None
    full_screen: bool = False
    color_scheme: str | None = None
    media_type: str | None = None
    timezone: str | None = None
    transparent_background: bool = False
    pdf_options: Mapping[str, Any] | None = field(default=None, hash=False)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> CreateOptions:
        """Validate API-style input (JSON values or strings) and return frozen options.

        Every bad field is checked, not only the first: the error's ``errors`` name them all.
        """
        errs = _Errors()
        known = {f.name for f in fields(cls)}
        for name in sorted(k for k in data if k not in known and k not in COMPAT_PARAMS):
            errs.add(BadRequestError(f"Unknown parameter: {name}", param=name))
        v: dict[str, Any] = {k: val for k, val in data.items() if k in known and val is not None and val != ""}
        for name in sorted(COMPAT_PARAMS & set(data)):
            with errs:  # accepted from API clients and checked, but they change nothing here (see COMPAT_PARAMS)
                if data[name] is not None and data[name] != "":
                    _bool(name, data[name])
        out: dict[str, Any] = {}
        for name in ("html", "css", "url", "google_fonts", "selector", "timezone"):
            if name in v:
                with errs:
                    out[name] = _text(name, v[name])
        size, cap = sum(len(out.get(name, "").encode("utf-8", "surrogatepass")) for name in ("html", "css")), max_input_bytes()
        if size > cap:
            errs.add(
                BadRequestError(
                    f"html and css must be at most {_human(cap, '.3g')} together, got {_human(size, '.1f')}",
                    param="html",
                )
            )
        with errs:
            if "url" in out:
                if not re.match(r"^https?://[^\s/]+", out["url"]):
                    raise BadRequestError("url must be a fully qualified http(s) URL", param="url")
                out.pop("html", None)  # the API: url overrides html
            elif not any(name in v and name not in out for name in ("url", "html")):  # (a bad one is reported)
                if not out.get("html", "").strip():  # whitespace renders nothing: as good as missing
                    raise BadRequestError("HTML is Required", param="html")
        for name, lo, hi in (("ms_delay", 0, 20000), ("max_wait_ms", 1, 30000)):
            if name in v:
                with errs:
                    out[name] = _int(name, v[name], lo, hi)
        if "device_scale" in v:
            with errs:
                out["device_scale"] = _number("device_scale", v["device_scale"], 0.1, 3, integer=False)
        for name in ("render_when_ready", "full_screen", "transparent_background"):
            if name in v:
                with errs:
                    out[name] = _bool(name, v[name])
        has_w, has_h = "viewport_width" in v, "viewport_height" in v
        if has_w != has_h:
            given = "viewport_width" if has_w else "viewport_height"
            errs.add(BadRequestError("viewport_width and viewport_height must be used together", param=given))
        elif has_w:
            for name in ("viewport_width", "viewport_height"):
                with errs:
                    out[name] = _int(name, v[name], 1, 5000)
        for name, choices in (("color_scheme", ("light", "dark")), ("media_type", ("screen", "print"))):
            if name in v:
                with errs:
                    out[name] = _choice(name, v[name], choices)
        if "timezone" in out:
            with errs:
                _check_timezone(out["timezone"])
        if "pdf_options" in v:
            with errs:
                pdf = v["pdf_options"]
                if isinstance(pdf, str):
                    try:
                        pdf = json.loads(pdf)
                    except ValueError:
                        pdf = None
                if not isinstance(pdf, Mapping):
                    raise BadRequestError("pdf_options must be a JSON object", param="pdf_options")
                out["pdf_options"] = dict(pdf)
        if "viewport_width" in out and "viewport_height" in out:
            scale = out.get("device_scale") or (1.0 if "url" in out else 2.0)
            w, h = round(out["viewport_width"] * scale), round(out["viewport_height"] * scale)
            if w * h > MAX_PIXELS or max(w, h) > MAX_SIDE:
                errs.add(
                    BadRequestError(
                        f"viewport_width x viewport_height at device_scale {scale:g} is {w}x{h} pixels; the limit is "
                        f"{MAX_PIXELS // 1_000_000} megapixels and {MAX_SIDE} px per side",
                        param="device_scale" if "device_scale" in out else "viewport_width",
                    )
                )
        errs.raise_any()
        if out.get("device_scale") == (1.0 if "url" in out else 2.0):
            del out["device_scale"]  # the default said out loud is the same request: the same id
        return cls(**out)

    @property
    def scale(self) -> float:
        """The effective device scale: 2 for HTML and 1 for a URL unless set, as on the hosted API."""
        if self.device_scale is not None:
            return self.device_scale
        return 1.0 if self.url else 2.0

    def to_dict(self) -> dict[str, Any]:
        """Only the parameters that were set, in the API's names (and html always, null for a url render)."""
        return {
            name: _plain(val)
            for name, default in _defaults(CreateOptions).items()
            if (val := getattr(self, name)) != default or name == "html"
        }

    def canonical_json(self) -> str:
        """Computed once per instance (it is hashed several times per request; the options are frozen)."""
        cached: str | None = self.__dict__.get("_canonical")
        if cached is None:
            cached = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            object.__setattr__(self, "_canonical", cached)
        return cached


def _check_timezone(tz: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise BadRequestError(f"timezone must be an IANA time zone name, got {tz!r}", param="timezone") from exc


_LENGTH = re.compile(r"^(-)?(\d+(?:\.\d+)?)(px|%)?$")
CROP_PARAMS = ("aspect_ratio", "x_origin", "y_origin", "x_1", "x_2", "y_1", "y_2", "crop_width", "crop_height")


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


@dataclass(frozen=True)
class ImageQuery:
    """The query applied to a stored render: crop, then resize, then encode, then DPI."""

    format: str = "png"
    width: int | None = None
    height: int | None = None
    dpi: int | None = None
    dl: bool = False
    aspect_ratio: tuple[int, int] | None = None
    x_origin: Length | None = None
    y_origin: Length | None = None
    x_1: Length | None = None
    x_2: Length | None = None
    y_1: Length | None = None
    y_2: Length | None = None
    crop_width: Length | None = None
    crop_height: Length | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], fmt: str | None = None) -> ImageQuery:
        errs = _Errors()
        known = {f.name for f in fields(cls)}
        for name in sorted(k for k in data if k not in known):
            errs.add(BadRequestError(f"Unknown query parameter: {name}", param=name))
        v = {k: val for k, val in data.items() if k in known and val is not None and val != ""}
        out: dict[str, Any] = {"format": parse_format(fmt or v.get("format") or "png")}  # 422, not a 400
        for name, lo, hi in (("width", 1, 5000), ("height", 1, 5000), ("dpi", 30, 600)):
            if name in v:
                with errs:
                    out[name] = _int(name, v[name], lo, hi)
        if "dl" in v:
            with errs:
                out["dl"] = _bool("dl", v["dl"])
        if "aspect_ratio" in v:
            m = re.match(r"^(\d+)[_:](\d+)$", str(v["aspect_ratio"]).strip())
            if not m or int(m.group(1)) == 0 or int(m.group(2)) == 0:
                errs.add(BadRequestError("aspect_ratio must be width_height, e.g. 16_9 or 1_1", param="aspect_ratio"))
            else:
                out["aspect_ratio"] = (int(m.group(1)), int(m.group(2)))
        for name in CROP_PARAMS[1:]:
            if name in v:
                with errs:
                    out[name] = Length.parse(name, v[name])
        for a, b, size in (("x_1", "x_2", "crop_width"), ("y_1", "y_2", "crop_height")):
            if b in out and a not in v:
                errs.add(BadRequestError(f"{b} must be used with {a}", param=b))
            if b in out and size in out:
                errs.add(BadRequestError(f"{b} and {size} cannot be used together", param=size))
        if "aspect_ratio" in out and "crop_width" in out and "crop_height" in out:
            errs.add(BadRequestError("aspect_ratio cannot be used with both crop_width and crop_height", param="aspect_ratio"))
        errs.raise_any()
        return cls(**out)

    @classmethod
    def parse(cls, spec: str) -> tuple[str, ImageQuery]:
        """Parse the API's GET form ``ID[.ext][?query]`` into the id and the query."""
        path, _, qs = spec.partition("?")
        image_id, dot, ext = path.rpartition(".") if "." in path else (path, "", "")
        pairs = parse_qsl(qs, keep_blank_values=True)
        return image_id, cls.from_mapping(dict(pairs), ext if dot else None)

    @property
    def has_crop(self) -> bool:
        return any(getattr(self, n) is not None for n in CROP_PARAMS)

    @functools.cached_property  # asked once per image read: a site's build asks it for every card
    def is_identity(self) -> bool:
        """True when the stored master PNG can be served as it is."""
        return self.format == "png" and not self.has_crop and self.width is None and self.height is None and self.dpi is None

    def cache_key(self) -> str:
        """Canonical form of everything that changes the output bytes (``dl`` does not); computed once."""
        cached: str | None = self.__dict__.get("_cache_key")
        if cached is None:
            d = {name: _plain(getattr(self, name)) for name in _defaults(ImageQuery) if name != "dl"}
            cached = json.dumps(d, sort_keys=True, separators=(",", ":"))
            object.__setattr__(self, "_cache_key", cached)
        return cached


_DEFAULTS: dict[type, dict[str, Any]] = {}


def _defaults(cls: type) -> dict[str, Any]:
    """Field name -> default value of an options dataclass (every field has one), in declaration order."""
    found = _DEFAULTS.get(cls)
    if found is None:
        found = _DEFAULTS[cls] = {f.name: getattr(cls(), f.name) for f in fields(cls)}
    return found


def _plain(value: Any) -> Any:
    """`dataclasses.asdict` for one field's value, without its deep copies of strings and numbers."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return asdict(value) if hasattr(value, "__dataclass_fields__") else copy.deepcopy(value)


def parse_format(fmt: str) -> str:
    key = str(fmt).strip().lower().lstrip(".")
    if key not in FORMATS:
        raise UnsupportedFormatError(key)
    return FORMATS[key]


def batch_options(default_options: Any, variations: Any) -> list[CreateOptions]:
    """POST /v1/image/batch's input: each of 1-25 variations merged over ``default_options`` and validated. Every
    bad field is reported, named by its place (``variations[2].width``)."""
    if default_options is not None and not isinstance(default_options, Mapping):
        raise BadRequestError("default_options must be an object", param="default_options")
    if not isinstance(variations, (list, tuple)) or not 1 <= len(variations) <= 25:
        raise BadRequestError("variations must be a list of 1 to 25 images", param="variations")
    errs = _Errors()
    out = []
    for i, variation in enumerate(variations):
        if not isinstance(variation, Mapping):
            errs.add(BadRequestError(f"variations[{i}] must be an object", param=f"variations[{i}]"))
            continue
        try:
            out.append(CreateOptions.from_mapping({**(default_options or {}), **variation}))
        except BadRequestError as exc:
            for e in exc.errors or [exc]:
                errs.add(BadRequestError(f"variations[{i}]: {e.message}", param=f"variations[{i}].{e.param}"))
    errs.raise_any()
    return out
