"""One render, as a chain of short steps on a page of the pool: emulate the device, clear what the last render
stored, load the document (in place when it can), wait until it is ready, measure what to capture, capture it
(a PNG, or a PDF). Playwright's errors become hcti-build's at one boundary, `playwright_errors`.

Imported by the engine when it first renders (Playwright and asyncio load with it, not with the package).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import posixpath
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from ..errors import BadRequestError, RenderError, RenderTimeoutError
from ..network import Policy, origin_of
from ..options import MAX_PIXELS, MAX_SIDE, CreateOptions, pdf_arguments
from ..renderer import Capture
from .chromium import missing_google_fonts
from .sandbox import DOC_PATH, ORIGIN, Folder, Slot, Visit, open_url

log = logging.getLogger("hcti_build.browser")
T = TypeVar("T")
MAX_PDF_PAGE = 19200  # CSS px (200 in): the largest page PDF readers take
KEPT_NAVIGATING = "The page kept navigating (a meta refresh or a script setting location) until max_wait_ms"
# What a page can write and a later render could read ("all" also drops shader and other caches: slower).
STORAGE_TYPES = "cookies,local_storage,indexeddb,cache_storage,file_systems,websql,service_workers"
# The union of the body's element children with their margins: the API's snippet auto-crop.
MEASURE_JS = """([selector, full]) => {
  if (selector) { let el; try { el = document.querySelector(selector); } catch (e) { return 'invalid'; }
    if (!el) return null;
    const r = el.getBoundingClientRect(); return [r.left + scrollX, r.top + scrollY, r.width, r.height]; }
  const de = document.documentElement;
  if (full) return [0, 0, Math.max(de.scrollWidth, innerWidth), Math.max(de.scrollHeight, innerHeight)];
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const el of document.body.children) {
    if (el.id === 'HCTIReadyNow' || el.tagName === 'SCRIPT' || el.tagName === 'STYLE') continue;
    const r = el.getBoundingClientRect(); const s = getComputedStyle(el);
    if (s.display === 'none') continue;
    x0 = Math.min(x0, r.left - parseFloat(s.marginLeft)); y0 = Math.min(y0, r.top - parseFloat(s.marginTop));
    x1 = Math.max(x1, r.right + parseFloat(s.marginRight)); y1 = Math.max(y1, r.bottom + parseFloat(s.marginBottom));
  }
  if (x0 === Infinity) { const r = document.body.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; }
  x0 = Math.max(0, x0); y0 = Math.max(0, y0);
  return [x0 + scrollX, y0 + scrollY, x1 - x0, y1 - y0];
}"""


# What makes a document more than static HTML and CSS: scripts (elements, event handler attributes, javascript:
# URLs), nested browsing contexts, meta refresh, declarative shadow roots. Such a document is always navigated to,
# in a fresh window; a match in plain text only costs that navigation.
DYNAMIC = re.compile(
    r"<\s*(?:script|iframe|frame|frameset|object|embed|applet|portal|fencedframe)\b"
    r"|(?:^|[^a-z0-9_:.-])on[a-z]+\s*=|javascript:|http-equiv|shadowroot",
    re.I,
)


# A snippet's or an element's PDF is one page: the document's forced page breaks do not apply (the screen has
# none). Only those: a column break is layout, the same on screen.
NO_PAGE_BREAKS = """() => {
  const paged = new Set(['page', 'left', 'right', 'recto', 'verso', 'always']);
  for (const el of document.querySelectorAll('*')) {
    const s = getComputedStyle(el);
    if (paged.has(s.breakBefore)) el.style.setProperty('break-before', 'auto', 'important');
    if (paged.has(s.breakAfter)) el.style.setProperty('break-after', 'auto', 'important');
  }
}"""


class CrashedError(RenderError):
    """The page's renderer or the whole browser died mid-render: retried once, then a RenderError."""


@contextlib.contextmanager
def playwright_errors(timeout: Callable[[], str]) -> Iterator[None]:
    """Playwright's errors as hcti-build's, the one place they are translated: its timeout is a
    RenderTimeoutError saying what ran out (``timeout()``), any other of its errors a RenderError."""
    try:
        yield
    except PlaywrightTimeoutError as exc:
        raise RenderTimeoutError(timeout()) from exc
    except PlaywrightError as exc:
        raise RenderError(f"Render failed: {exc}") from exc


@dataclass
class Clip:
    """The part of the page to capture, in CSS pixels snapped to the device-pixel grid."""

    x: float
    y: float
    width: float
    height: float
    full: bool  # the whole page, not an element or the auto-crop
    beyond: bool  # reaches past the viewport


@dataclass
class Render:
    """One render of ``opts`` on ``slot``: `run` is the whole chain. ``shared``: the engine's pages share one
    context (`Engine(isolate=False)`), so a static document may replace the static one before it in place."""

    slot: Slot
    opts: CreateOptions
    folder: Folder
    policy: Policy
    shared: bool
    in_place: bool = False  # set by `run`: the document replaced the one before without a navigation
    deadline: float = 0.0  # the event loop's time at which max_wait_ms runs out (set by `load`)

    @property
    def viewport(self) -> tuple[int, int]:
        o = self.opts
        return (o.viewport_width, o.viewport_height or 1080) if o.viewport_width else (1920, 1080)

    async def run(self, as_pdf: bool = False) -> Capture | bytes:
        with playwright_errors(lambda: f"Render did not finish within max_wait_ms={self.opts.max_wait_ms}"):
            await self.emulate()
            await self.clear_storage()
            target = await self.prepare_document()
            await self.load(target)
            if self.opts.ms_delay:
                await asyncio.sleep(self.opts.ms_delay / 1000)
            clip = self.clip(await self.measure())
            return await (self.pdf(clip) if as_pdf else self.capture(clip))

    async def emulate(self) -> None:
        """The device the page sees: viewport and scale, media, time zone, background. Each is sent only when it
        differs from what the page has (most renders of a build share them)."""
        slot, opts = self.slot, self.opts
        metrics = (*self.viewport, opts.scale)
        if slot.metrics != metrics:
            vw, vh, scale = metrics
            params = {"width": vw, "height": vh, "deviceScaleFactor": scale, "mobile": False}
            await slot.cdp.send("Emulation.setDeviceMetricsOverride", params)
            slot.metrics = metrics
        if slot.media != (opts.media_type, opts.color_scheme):
            await emulate_media(slot, opts.media_type, opts.color_scheme)
            slot.media = (opts.media_type, opts.color_scheme)
        if slot.timezone != opts.timezone:
            await slot.cdp.send("Emulation.setTimezoneOverride", {"timezoneId": opts.timezone or ""})
            slot.timezone = opts.timezone
        if slot.transparent != opts.transparent_background:
            color = {"color": {"r": 0, "g": 0, "b": 0, "a": 0}} if opts.transparent_background else {}
            await slot.cdp.send("Emulation.setDefaultBackgroundColorOverride", color)
            slot.transparent = opts.transparent_background
        for family in missing_google_fonts(opts.google_fonts):
            # No network at render time: Google Fonts are resolved from installed fonts only.
            log.warning("google_fonts: %r is not installed; install it (e.g. a fonts-* package) or a fallback is used", family)

    async def clear_storage(self) -> None:
        """Renders share no state: what the last one stored (cookies, local storage, IndexedDB, caches) is
        cleared for every origin it reached; sessionStorage is cleared by the ready script. Each slot has its own
        browser context (or shares one with the engine's other pages, of one author), and the pool retired the
        last document before lending the page (`hcti_build.pool`), so nothing writes again after this."""
        slot = self.slot
        if slot.reusable:  # the last document was static (no script could store anything) and loaded nothing
            return
        current = origin_of(self.opts.url) if self.opts.url else None
        for origin in sorted({ORIGIN, *slot.origins, current} - {None}):  # type: ignore[type-var]
            await slot.cdp.send("Storage.clearDataForOrigin", {"origin": origin, "storageTypes": STORAGE_TYPES})
        slot.origins.clear()

    async def prepare_document(self) -> str:
        """The slot set up for this document; returns where the page goes. Decides whether it replaces the one
        before in place: a static document, at the same address, after one that loaded nothing."""
        slot, opts = self.slot, self.opts
        doc_path = _doc_path(self.folder.base)
        in_place = self.shared and slot.reusable and doc_path == slot.doc_path
        slot.visit = Visit(self.folder, origin_of(opts.url) if opts.url else None)  # nothing of the last render's
        slot.doc_path = doc_path
        if opts.url is not None:
            slot.origins.add(origin_of(opts.url))
            slot.reusable = self.in_place = False
            return await open_url(slot, opts.url, self.policy)
        slot.html = _document(opts)
        slot.reusable = not opts.render_when_ready and DYNAMIC.search(slot.html) is None
        self.in_place = in_place and slot.reusable
        return ORIGIN + slot.doc_path

    async def load(self, target: str) -> None:
        """The document loaded and ready (fonts, ScreenshotReady() when asked), or a timeout saying whether the
        page was still loading or kept navigating itself."""
        slot, opts = self.slot, self.opts
        timeout = opts.max_wait_ms
        self.deadline = asyncio.get_running_loop().time() + timeout / 1000

        def expired() -> str:
            if slot.visit.navigations > (0 if self.in_place else 1):  # not only our own
                return KEPT_NAVIGATING
            return f"Page did not become ready within max_wait_ms={timeout}"

        try:
            with playwright_errors(expired):
                if self.in_place:  # document.open/write/close: no navigation, same window (which never ran a script)
                    await slot.page.set_content(slot.html, wait_until="load", timeout=timeout)
                else:
                    await slot.page.goto(target, wait_until="load", timeout=timeout)
                # Bounded too: a script that starts an endless loop right after load blocks every evaluate.
                left = max(self.deadline - asyncio.get_running_loop().time(), 0.001)
                await asyncio.wait_for(on_final_document(slot, self.ready, self.deadline), left)
        except TimeoutError:
            raise RenderTimeoutError(f"Page scripts did not yield within max_wait_ms={timeout} (an endless loop?)") from None
        except RenderError as exc:
            if slot.visit.blocked_redirect and not isinstance(exc, RenderTimeoutError):
                raise BadRequestError(
                    f"url redirected to {slot.visit.blocked_redirect}, which a render may not reach (another site, or a local "
                    "or private address); allow it with HCTI_ALLOW_HOSTS",
                    param="url",
                ) from None
            raise

    async def ready(self) -> None:
        """The document's own readiness: a url render's CSS added, its fonts loaded, ScreenshotReady() if asked."""
        page, opts = self.slot.page, self.opts
        if opts.url and opts.css:
            await page.add_style_tag(content=opts.css)
        await page.evaluate("document.fonts.ready.then(() => true)")
        if opts.render_when_ready:
            await page.wait_for_selector("#HCTIReadyNow", state="attached", timeout=opts.max_wait_ms)

    @property
    def full(self) -> bool:
        """The whole page is captured: asked for, or a full document or URL without a selector."""
        opts = self.opts
        return opts.full_screen or ((opts.url is not None or _is_full_document(opts.html or "")) and not opts.selector)

    async def measure(self) -> list[float]:
        """The box to capture: the selector's element, the whole page, or the auto-crop of a snippet. A page
        script that never yields (an endless loop after load) is cut off at the deadline too."""
        slot, opts = self.slot, self.opts
        timeout = opts.max_wait_ms
        deadline = self.deadline + opts.ms_delay / 1000
        measure = lambda: slot.page.evaluate(MEASURE_JS, [opts.selector, self.full])  # noqa: E731
        try:
            box = await asyncio.wait_for(on_final_document(slot, measure, deadline), timeout / 1000)
        except TimeoutError as exc:
            raise RenderTimeoutError(f"Page scripts did not yield within max_wait_ms={timeout} (an endless loop?)") from exc
        # Navigated away: another document was requested and the page shows it (history.pushState changes the
        # address without leaving the document, and is not a navigation).
        navigated = slot.visit.navigations > (0 if self.in_place else 1)
        if opts.url is None and navigated and _same_document(slot.page.url) != ORIGIN + slot.doc_path:
            raise BadRequestError(
                f"html navigated away from its document, to {slot.visit.navigated_to or slot.page.url} (a meta refresh or a "
                "script setting location): a render captures the document it is given; render that page as url instead",
                param="html",
            )
        if box is None:
            raise BadRequestError(f"selector {opts.selector!r} matched no element", param="selector")
        if box == "invalid":
            raise BadRequestError(f"selector {opts.selector!r} is not a valid CSS selector", param="selector")
        return list(box)

    def clip(self, box: list[float]) -> Clip:
        """The box snapped to the device-pixel grid, so the output is exactly round(css size * scale), and
        checked against the pixel limits before anything is captured."""
        opts, scale = self.opts, self.opts.scale
        vw, vh = self.viewport
        x, y, w, h = box
        if (self.full and not opts.full_screen) or (opts.viewport_width and not opts.selector and not opts.full_screen):
            x, y, w, h = 0, 0, vw, vh  # the viewport: a full page, or an explicit viewport (no auto-crop)
        x0, y0 = int(x * scale) / scale, int(y * scale) / scale
        x1, y1 = -int(-(x + w) * scale) / scale, -int(-(y + h) * scale) / scale
        w, h = max(x1 - x0, 1 / scale), max(y1 - y0, 1 / scale)
        pw, ph = round(w * scale), round(h * scale)
        if pw * ph > MAX_PIXELS or max(pw, ph) > MAX_SIDE:
            raise BadRequestError(
                f"The rendered image would be {pw}x{ph} pixels; the limit is {MAX_PIXELS // 1_000_000} megapixels and "
                f"{MAX_SIDE} px per side (lower device_scale, or crop with selector)",
                param="full_screen" if opts.full_screen else "device_scale",
            )
        return Clip(x0, y0, w, h, self.full, x1 > vw or y1 > vh)

    async def capture(self, clip: Clip) -> Capture:
        """The master PNG of the clip, with the files the page read and those it missed."""
        slot, scale = self.slot, self.opts.scale
        box = {"x": clip.x, "y": clip.y, "width": clip.width, "height": clip.height, "scale": 1}
        params = {"format": "png", "optimizeForSpeed": True, "captureBeyondViewport": clip.beyond, "clip": box}
        result = await slot.cdp.send("Page.captureScreenshot", params)
        png = base64.b64decode(result["data"])
        width, height = round(clip.width * scale), round(clip.height * scale)
        return Capture(png, width, height, dict(slot.visit.files), frozenset(slot.visit.missing))

    async def pdf(self, clip: Clip) -> bytes:
        """A vector PDF of the document (Chromium's print), sized to the clip unless pdf_options say. The options
        were checked at create; their Playwright arguments are the options layer's (`pdf_arguments`)."""
        slot, opts = self.slot, self.opts
        kwargs = pdf_arguments(opts.pdf_options, clip.width, clip.height)
        if not opts.media_type:
            await emulate_media(slot, "screen", opts.color_scheme)
            slot.media = ("screen", opts.color_scheme)
        cut = not clip.full and kwargs.get("width") == clip.width
        if cut:
            # An element or a snippet is one page of its own size, laid out as on screen: printed on one page as
            # wide as the viewport (print lays a document out at the paper's width) and as tall as the whole
            # document (a line that does not fit a page moves to the next one whole, its box with it), then cut
            # to the box.
            tall = await slot.page.evaluate("Math.max(document.documentElement.scrollHeight, document.body.scrollHeight)")
            height = min(max(float(tall), clip.y + clip.height) + 1, MAX_PDF_PAGE)
            kwargs.update(width=self.viewport[0], height=height, page_ranges=kwargs.get("page_ranges", "1"))
            # A forced page break (break-before: page) would push the rest of the box to a page the cut drops.
            await slot.page.evaluate(NO_PAGE_BREAKS)
        try:
            data: bytes = await slot.page.pdf(**kwargs)
        except PlaywrightError as exc:
            # What only the document tells (its page count; a CSS @page size its margins overfill) is the caller's
            # input that does not fit it, not a failed render: a 400 naming pdf_options.
            found = next((m for m in ("Page range exceeds page count", "content area is empty") if m in str(exc)), None)
            if found is None:
                raise
            raise BadRequestError(f"pdf_options do not fit this document: {found}", param="pdf_options") from None
        return _cut(data, clip) if cut else data


def _cut(pdf: bytes, clip: Clip) -> bytes:
    """The first page of ``pdf`` cut to ``clip`` (CSS px from its top left; its media and crop boxes: the drawing
    stays vector)."""
    import io

    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    page = writer.add_page(PdfReader(io.BytesIO(pdf)).pages[0])
    left, top = float(page.mediabox.left), float(page.mediabox.top)
    box = (left + clip.x * 0.75, top - (clip.y + clip.height) * 0.75, left + (clip.x + clip.width) * 0.75, top - clip.y * 0.75)
    page.mediabox.lower_left = page.cropbox.lower_left = box[:2]  # 96 CSS px are 72 pt
    page.mediabox.upper_right = page.cropbox.upper_right = box[2:]
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


async def on_final_document(slot: Slot, step: Callable[[], Awaitable[T]], deadline: float) -> T:
    """``step`` on the page's document. A page that navigates itself (a meta refresh, a script setting location)
    destroys the document a step runs in: the step runs again on the one it lands on, until ``deadline``."""
    loop = asyncio.get_running_loop()
    while True:
        seen = (slot.visit.navigations, slot.visit.commits)
        try:
            return await step()
        except Exception as exc:
            # The document is still there: a failure of the step itself. (A navigation refused by the sandbox is
            # one request, counted before the step; the error page it commits can land during the step.) Playwright
            # may answer the step before the navigation's events reach us (the full chromium under load): its own
            # words for a document gone count too.
            if (slot.visit.navigations, slot.visit.commits) == seen and not _document_gone(exc):
                raise
        left = deadline - loop.time()
        if left <= 0:
            raise RenderTimeoutError(KEPT_NAVIGATING)
        with playwright_errors(lambda: KEPT_NAVIGATING):
            await asyncio.sleep(0.01)  # the next document may not have committed yet
            await slot.page.wait_for_load_state("load", timeout=left * 1000)


def _document_gone(exc: Exception) -> bool:
    """Playwright's error for a step whose document was replaced by a navigation."""
    return isinstance(exc, PlaywrightError) and any(
        words in str(exc) for words in ("Execution context was destroyed", "because of a navigation", "Frame was detached")
    )


async def emulate_media(slot: Slot, media_type: str | None, color_scheme: str | None) -> None:
    """Media type and colour scheme, through the slot's own DevTools session like every other emulation of ours:
    Chromium replaces a page's frame on most navigations (RenderDocument) and each session then sends its whole
    emulation state again, so an override made through Playwright's session (`page.emulate_media`) was undone
    by ours, which had none (media_type=print rendered as screen)."""
    features = [{"name": "prefers-color-scheme", "value": color_scheme or ""}]
    await slot.cdp.send("Emulation.setEmulatedMedia", {"media": media_type or "", "features": features})


def _same_document(url: str) -> str:
    """A URL without its fragment: `location.hash` moves within one document."""
    return url.partition("#")[0]


def _is_full_document(html: str) -> bool:
    head = html.lstrip()[:2000].lower()
    return head.startswith("<!doctype") or "<html" in head or "<body" in head


def _doc_path(base: str) -> str:
    """Where the document lives on the synthetic origin: ``/<base>/__hcti_document__.html``."""
    folder = posixpath.normpath("/" + base.strip("/")) if base.strip("/") else "/"
    return posixpath.join(folder, DOC_PATH.lstrip("/"))


def _document(opts: CreateOptions) -> str:
    html = opts.html or ""
    css = f"<style>{opts.css}</style>" if opts.css else ""
    if _is_full_document(html):
        if not css:
            return html
        idx = html.lower().find("</head>")
        return html[:idx] + css + html[idx:] if idx >= 0 else css + html
    return f'<!DOCTYPE html><html><head><meta charset="utf-8">{css}</head><body>{html}</body></html>'
