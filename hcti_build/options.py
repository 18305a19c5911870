"""Creation parameters and the image query as frozen, validated values, in the hosted API's words.

Each parameter is declared once, as a field of `CreateOptions` or `ImageQuery` made by `param` (its kind,
range, default and help). Every surface reads that declaration: validation (`from_mapping`), CLI flags, the
`%%hcti` arguments, `PARAM_HELP` and JSON schemas (`json_schema`). Values may arrive as strings (query strings,
flags) or as JSON types, and are validated here once.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .errors import BadRequestError
from .params import (
    FORMATS,
    MAX_SIDE,
    Errors,
    Length,
    Param,
    json_schema,
    param,
    params_of,
    parse_format,
    printable,
    read_declared,
    read_json,
)

__all__ = [
    # the options, their limits and their helpers
    "COMPAT_PARAMS", "CREATE_PARAMS", "CROP_PARAMS", "FLAG_PARAMS", "IMAGE_FORMATS", "LIST_PARAMS", "MAX_PAGE_PX",
    "MAX_PIXELS", "MIME", "PAPER_INCHES", "PARAM_HELP", "QUERY_PARAMS", "WEBP_MAX_SIDE", "CreateOptions", "ImageQuery",
    "ListQuery", "PdfMargins", "PdfOptions", "batch_options", "canonical", "max_input_bytes", "pdf_arguments",
    "split_params", "validate",
    # re-exported from `params`, where parameters are declared and read
    "FORMATS", "MAX_SIDE", "Errors", "Length", "Param", "json_schema", "param", "params_of", "parse_format", "printable",
    "read_json",
]  # fmt: skip
MIME = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp", "pdf": "application/pdf"}
IMAGE_FORMATS = tuple(name for name, fmt in FORMATS.items() if fmt != "pdf")  # what an <img> can show
# Limits checked before the browser is touched. The input cap can be changed with HCTI_MAX_INPUT_MB.
MAX_PIXELS = 100_000_000  # output pixels of one render (e.g. 5000x5000 at device_scale 2)
WEBP_MAX_SIDE = 16383  # the WebP format's own limit
# Parameters of the hosted API that have no effect offline: accepted (and checked) so existing clients work
# unchanged, and left out of the id. There is no network for consent banners, and emoji always come from the
# installed colour emoji font (Twemoji would be a download).
COMPAT_PARAMS = frozenset({"block_consent_banners", "disable_twemoji"})


def max_input_bytes() -> int:
    try:
        return int(float(os.environ.get("HCTI_MAX_INPUT_MB", "10")) * 1024 * 1024)
    except ValueError:
        return 10 * 1024 * 1024


def _human(n: int, spec: str) -> str:
    return f"{n / 2**20:{spec}} MB" if n >= 2**20 else f"{n / 2**10:{spec}} KB"


# Playwright's paper formats, in inches (its crPdf.ts), and the largest page a PDF reader opens: 200 inches a side
# (the format's default user unit), in CSS px.
PAPER_INCHES = {
    "letter": (8.5, 11), "legal": (8.5, 14), "tabloid": (11, 17), "ledger": (17, 11), "a0": (33.1, 46.8),
    "a1": (23.4, 33.1), "a2": (16.54, 23.4), "a3": (11.7, 16.54), "a4": (8.27, 11.7), "a5": (5.83, 8.27),
    "a6": (4.13, 5.83),
}  # fmt: skip
MAX_PAGE_PX = 200 * 96


@dataclass(frozen=True)
class PdfMargins:
    """pdf_options.margin: each side a length as Playwright takes it."""

    top: float | None = param(None, "page_length", "Top margin", lo=0, hi=MAX_PAGE_PX)
    right: float | None = param(None, "page_length", "Right margin", lo=0, hi=MAX_PAGE_PX)
    bottom: float | None = param(None, "page_length", "Bottom margin", lo=0, hi=MAX_PAGE_PX)
    left: float | None = param(None, "page_length", "Left margin", lo=0, hi=MAX_PAGE_PX)


@dataclass(frozen=True)
class PdfOptions:
    """pdf_options: the arguments of Playwright's `page.pdf` a .pdf of the render may set, in Playwright's names
    or Puppeteer's (`printBackground`). Not the header and footer templates: HTML printed outside the sandbox."""

    format: str | None = param(None, "choice", "Paper format (instead of width and height)", choices=tuple(PAPER_INCHES))
    width: float | None = param(None, "page_length", "Page width: px, or with a unit (8.5in, 21cm)", lo=1, hi=MAX_PAGE_PX)
    height: float | None = param(None, "page_length", "Page height: px, or with a unit", lo=1, hi=MAX_PAGE_PX)
    margin: Mapping[str, float] | None = param(None, "object", "Page margins: top, right, bottom, left", of=PdfMargins)
    landscape: bool | None = param(None, "bool", "Landscape orientation")
    scale: float | None = param(None, "number", "Scale of the page's rendering", lo=0.1, hi=2)
    print_background: bool | None = param(None, "bool", "Print backgrounds (default true)", alias="printBackground")
    prefer_css_page_size: bool | None = param(None, "bool", "The page's CSS @page size wins", alias="preferCSSPageSize")
    page_ranges: str | None = param(None, "page_ranges", "Pages to print, e.g. 1-5, 8, 11-13", alias="pageRanges")
    display_header_footer: bool | None = param(None, "bool", "Chromium's header and footer", alias="displayHeaderFooter")


def pdf_arguments(
    pdf_options: Mapping[str, Any] | None, width: float | None = None, height: float | None = None
) -> dict[str, Any]:
    """Playwright's `page.pdf` arguments for read pdf_options (`PdfOptions`), for a capture of ``width`` x
    ``height`` CSS px: a page that size with no margins unless the options size it, backgrounds printed unless
    they say. Margins that leave no room on the page are a 400 (Chromium's "content area is empty"): checked at
    create when the options size the page, else when the capture's size is known."""
    given = dict(pdf_options or {})
    kwargs: dict[str, Any] = {"print_background": True}
    sized = any(k in given for k in ("format", "width", "height"))
    if not sized and width is not None and height is not None:
        kwargs.update(width=width, height=height, margin={"top": 0, "right": 0, "bottom": 0, "left": 0})
    kwargs.update(given)
    if sized or width is not None:
        _check_room(kwargs)
    return kwargs


def _check_room(kwargs: Mapping[str, Any]) -> None:
    fmt = kwargs.get("format")
    page = [d * 96 for d in PAPER_INCHES[fmt]] if fmt else [kwargs.get("width") or 816, kwargs.get("height") or 1056]
    across, down = page[::-1] if kwargs.get("landscape") else page  # Letter when a side is not given, as Playwright
    m = kwargs.get("margin") or {}
    if m.get("left", 0) + m.get("right", 0) >= across or m.get("top", 0) + m.get("bottom", 0) >= down:
        message = f"pdf_options: the margins leave no room on a page {across:g} x {down:g} px"
        raise BadRequestError(message, param="pdf_options.margin")


@dataclass(frozen=True)
class CreateOptions:
    """The API's creation parameters. ``canonical_json()`` is the form that is hashed into an image's id."""

    html: str | None = param(None, "text", "HTML to render (a snippet is auto-cropped; a full page renders the viewport)")
    css: str | None = param(None, "text", "CSS for the image")
    url: str | None = param(None, "text", "A URL to screenshot (overrides the HTML, as in the API)")
    google_fonts: str | None = param(None, "text", "Font families, '|'-separated (resolved from installed fonts; no network)")
    selector: str | None = param(None, "text", "CSS selector of the element to capture")
    ms_delay: int = param(0, "int", "Wait this many ms after the page is ready", lo=0, hi=20000)
    max_wait_ms: int = param(10000, "int", "Deadline for the page to become ready, default 10000", lo=1, hi=30000)
    device_scale: float | None = param(None, "number", "Pixel ratio, default 2 for HTML and 1 for a URL", lo=0.1, hi=3)
    render_when_ready: bool = param(False, "bool", "Wait until the page calls ScreenshotReady() (#HCTIReadyNow exists)")
    viewport_width: int | None = param(
        None, "int", "Viewport width in px, with viewport_height; disables auto-crop", lo=1, hi=5000
    )
    viewport_height: int | None = param(None, "int", "Viewport height in px, with viewport_width", lo=1, hi=5000)
    full_screen: bool = param(False, "bool", "Capture the full page height")
    color_scheme: str | None = param(None, "choice", "light or dark", choices=("light", "dark"))
    media_type: str | None = param(None, "choice", "screen or print", choices=("screen", "print"))
    timezone: str | None = param(None, "timezone", "IANA time zone, e.g. Europe/Paris")
    transparent_background: bool = param(False, "bool", "Transparent instead of white page background")
    pdf_options: Mapping[str, Any] | None = param(
        None, "object", "Page options of the .pdf output, as Playwright's page.pdf takes them", of=PdfOptions
    )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> CreateOptions:
        """Validate API-style input (JSON values or strings) and return frozen options.

        Every bad field is checked, not only the first: the error's ``errors`` name them all.
        """
        errs = Errors()
        out = read_declared(cls, data, errs, "Unknown parameter", COMPAT_PARAMS)
        for name in sorted(COMPAT_PARAMS & set(data)):
            if data[name] is not None and data[name] != "":
                with errs:  # accepted from API clients and checked, but they change nothing here (see COMPAT_PARAMS)
                    Param(name, "bool", "").read(data[name])
        _check_document(data, out, errs)
        _check_viewport(data, out, errs)
        if "pdf_options" in out:
            with errs:
                pdf_arguments(out["pdf_options"])  # margins that leave no room on a page the options size
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
            cached = canonical(self.to_dict())
            object.__setattr__(self, "_canonical", cached)
        return cached


def _check_document(data: Mapping[str, Any], out: dict[str, Any], errs: Errors) -> None:
    """What to render: a url (which wins over html, as in the API) or HTML that is not blank, within the cap."""
    size = sum(len(out.get(name, "").encode("utf-8", "surrogatepass")) for name in ("html", "css"))
    cap = max_input_bytes()
    if size > cap:
        message = f"html and css must be at most {_human(cap, '.3g')} together, got {_human(size, '.1f')}"
        errs.add(BadRequestError(message, param="html"))
    given = {name for name in ("url", "html") if data.get(name) is not None and data.get(name) != ""}
    with errs:
        if "url" in out:
            if not re.match(r"^https?://[^\s/]+", out["url"]) or not _host_of(out["url"]):
                raise BadRequestError("url must be a fully qualified http(s) URL", param="url")
            out.pop("html", None)  # the API: url overrides html
        elif given <= out.keys() and not out.get("html", "").strip():  # (a bad one is reported already)
            raise BadRequestError("HTML is Required", param="html")  # whitespace renders nothing: as good as none


def _host_of(url: str) -> str:
    """The URL's host, as every later reader of it (the network policy, the sandbox) parses it; "" if it cannot."""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:  # "http://[::1": an IPv6 host never closed
        return ""


def _check_viewport(data: Mapping[str, Any], out: dict[str, Any], errs: Errors) -> None:
    """viewport_width and viewport_height come together, and with the device scale stay within what one
    screenshot can hold."""
    has_w, has_h = data.get("viewport_width") not in (None, ""), data.get("viewport_height") not in (None, "")
    if has_w != has_h:
        given = "viewport_width" if has_w else "viewport_height"
        out.pop(given, None)
        errs.add(BadRequestError("viewport_width and viewport_height must be used together", param=given))
    if "viewport_width" not in out or "viewport_height" not in out:
        return
    scale = out.get("device_scale") or (1.0 if "url" in out else 2.0)
    w, h = round(out["viewport_width"] * scale), round(out["viewport_height"] * scale)
    if w * h > MAX_PIXELS or max(w, h) > MAX_SIDE:
        message = (
            f"viewport_width x viewport_height at device_scale {scale:g} is {w}x{h} pixels; the limit is "
            f"{MAX_PIXELS // 1_000_000} megapixels and {MAX_SIDE} px per side"
        )
        errs.add(BadRequestError(message, param="device_scale" if "device_scale" in out else "viewport_width"))


CROP_PARAMS = ("aspect_ratio", "x_origin", "y_origin", "x_1", "x_2", "y_1", "y_2", "crop_width", "crop_height")


_EDGE = "px or %, negative from the "


@dataclass(frozen=True)
class ImageQuery:
    """The query applied to a stored render: crop, then resize, then encode, then DPI."""

    format: str = param("png", "format", "png (default), jpg, webp or pdf")
    width: int | None = param(None, "int", "Resize to this width in px; alone it keeps the aspect ratio", lo=1, hi=5000)
    height: int | None = param(None, "int", "Resize to this height in px; alone it keeps the aspect ratio", lo=1, hi=5000)
    dpi: int | None = param(None, "int", "DPI written into the image's metadata", lo=30, hi=600)
    dl: bool = param(False, "bool", "Serve as a download (attachment)")
    aspect_ratio: tuple[int, int] | None = param(None, "ratio", "Crop to this aspect ratio, W_H (e.g. 16_9)", hi=MAX_SIDE)
    x_origin: Length | None = param(None, "length", "Crop origin x: " + _EDGE + "right", hi=MAX_SIDE)
    y_origin: Length | None = param(None, "length", "Crop origin y: " + _EDGE + "bottom", hi=MAX_SIDE)
    x_1: Length | None = param(None, "length", "Crop left edge: " + _EDGE + "right", hi=MAX_SIDE)
    x_2: Length | None = param(None, "length", "Crop right edge: " + _EDGE + "right", hi=MAX_SIDE)
    y_1: Length | None = param(None, "length", "Crop top edge: " + _EDGE + "bottom", hi=MAX_SIDE)
    y_2: Length | None = param(None, "length", "Crop bottom edge: " + _EDGE + "bottom", hi=MAX_SIDE)
    crop_width: Length | None = param(None, "length", "Crop width: px or %", hi=MAX_SIDE)
    crop_height: Length | None = param(None, "length", "Crop height: px or %", hi=MAX_SIDE)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], fmt: str | None = None) -> ImageQuery:
        errs = Errors()
        given = {**data, "format": parse_format(fmt or data.get("format") or "png")}  # 422, not a 400
        out = read_declared(cls, given, errs, "Unknown query parameter")
        for a, b, size in (("x_1", "x_2", "crop_width"), ("y_1", "y_2", "crop_height")):
            if b in out and data.get(a) in (None, ""):
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


@dataclass(frozen=True)
class ListQuery:
    """GET /v1/images' query: a page of the stored images, newest first."""

    count: int = param(50, "int", "Images a page, default 50", lo=1, hi=50)
    page_token: str | None = param(None, "text", "next_page_token of the page before")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ListQuery:
        errs = Errors()
        out = read_declared(cls, data, errs, "Unknown query parameter")
        errs.raise_any()
        return cls(**out)


CREATE_PARAMS = params_of(CreateOptions)
QUERY_PARAMS = params_of(ImageQuery)  # includes `format`
LIST_PARAMS = params_of(ListQuery)
PARAM_HELP = {name: p.describe() for name, p in {**CREATE_PARAMS, **QUERY_PARAMS}.items()}
FLAG_PARAMS = frozenset(name for name, p in {**CREATE_PARAMS, **QUERY_PARAMS}.items() if p.flag)


def split_params(values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """One flat set of values (a query string, a directive's attributes) split into creation parameters, image
    query parameters and the rest (for the caller to use or report)."""
    create: dict[str, Any] = {}
    query: dict[str, Any] = {}
    rest: dict[str, Any] = {}
    for key, value in values.items():
        (query if key in QUERY_PARAMS else create if key in CREATE_PARAMS or key in COMPAT_PARAMS else rest)[key] = value
    return create, query, rest


def validate(create: Mapping[str, Any], query: Mapping[str, Any]) -> tuple[CreateOptions, ImageQuery]:
    """Creation options and image query checked together: one error names every bad field of both."""
    errs = Errors()
    opts = q = None
    with errs:
        opts = CreateOptions.from_mapping(create)
    try:
        q = ImageQuery.from_mapping(query)
    except BadRequestError as exc:
        if not errs.items:
            raise  # a 422 for the format stays a 422
        errs.add(exc)
    errs.raise_any()
    assert opts is not None and q is not None
    return opts, q


def canonical(params: Mapping[str, Any]) -> str:
    """Parameters as the one JSON text that is hashed and stored (`CreateOptions.canonical_json`)."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


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


def batch_options(default_options: Any, variations: Any) -> list[CreateOptions]:
    """POST /v1/image/batch's input: each of 1-25 variations merged over ``default_options`` and validated. Every
    bad field is reported, named by its place (``variations[2].width``)."""
    if default_options is not None and not isinstance(default_options, Mapping):
        raise BadRequestError("default_options must be an object", param="default_options")
    if not isinstance(variations, (list, tuple)) or not 1 <= len(variations) <= 25:
        raise BadRequestError("variations must be a list of 1 to 25 images", param="variations")
    errs = Errors()
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
