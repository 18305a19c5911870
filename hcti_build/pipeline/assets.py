"""Images as a page uses them: an `Asset` (a stored image's final bytes for a query, its file name and pixel
size), made by `produce` from a resolved directive, and the HTML that shows it (an `<img>` at its display size,
a link for a PDF, a data: URI). `rewrite_markdown` is the whole pipeline for one Markdown text.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html as htmllib
import io
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import HctiError
from ..files import link, write_if_changed
from ..options import MIME, CreateOptions, ImageQuery
from ..store.store import Store
from .directives import Directive, replace_spans, scan_markdown
from .resolve import Resolved, resolve
from .templates import Templates


@dataclass
class Asset:
    """A final image: its file name (by id), bytes, and pixel size (None for a PDF)."""

    image_id: str
    name: str
    data: bytes
    pixels: tuple[int, int] | None
    rendered: bool = False  # False when the store already had the image
    source: Path | None = None  # the store's file holding exactly these bytes (checked): linked, not copied

    @classmethod
    def render(cls, store: Store, options: CreateOptions, query: ImageQuery, *, base: str = "") -> Asset:
        """The image of ``options`` (rendered, or found unchanged in the store) with its bytes for ``query``."""
        image_id, rendered = store.ensure(options, base=base)
        return cls.load(store, image_id, query, rendered=rendered)

    @classmethod
    def load(cls, store: Store, image_id: str, query: ImageQuery, *, rendered: bool = False) -> Asset:
        """A stored image's final bytes for ``query`` (checked, derived if missing), with their pixel size."""
        data = store.get(image_id, query)
        return cls.of(image_id, query, data, rendered=rendered, source=store.stored_path(image_id, query))

    @classmethod
    def of(cls, image_id: str, query: ImageQuery, data: bytes, *, rendered: bool = False, source: Path | None = None) -> Asset:
        """The image ``image_id`` whose final bytes for ``query`` are ``data``, with their pixel size (read from
        them: raises OSError when they are no image)."""
        pixels = None
        if len(data) >= 24 and data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":  # a PNG's size is in its first chunk
            pixels = struct.unpack(">II", data[16:24])
        elif query.format != "pdf":
            from PIL import Image  # only when needed: see docs/performance.md

            with Image.open(io.BytesIO(data)) as im:
                pixels = im.size
        return cls(image_id, asset_name(image_id, query), data, pixels, rendered, source)

    @classmethod
    def checked(cls, store: Store, image_id: str, query: ImageQuery, pixels: tuple[int, int]) -> Asset:
        """A stored image whose bytes the caller has checked against `Store.digest` itself, without its bytes
        in memory (see `slim`)."""
        return cls(image_id, asset_name(image_id, query), b"", pixels, False, store.stored_path(image_id, query))

    @property
    def format(self) -> str:
        return self.name.rsplit(".", 1)[-1]

    @property
    def mime(self) -> str:
        return MIME[self.format]

    def write(self, path: Path) -> bool:
        """Put the image at ``path`` (a hard link to the store's file where possible); True when it changed."""
        if not self.data and self.source is not None:  # a slim asset: link its source, or copy it
            linked = link(self.source, path)
            return linked if linked is not None else write_if_changed(path, self.source.read_bytes())
        return write_if_changed(path, self.data, self.source)

    def slim(self) -> Asset:
        """The same asset without its bytes in memory, when the store holds them (a site's build keeps hundreds
        of cards between reading its pages and writing them): `write` links or copies the store's file."""
        return replace(self, data=b"") if self.source is not None else self


@functools.cache
def _plain_query(fmt: str) -> ImageQuery:
    return ImageQuery(format=fmt)


def asset_name(image_id: str, query: ImageQuery) -> str:
    """`<id>.<ext>`; a crop, resize or DPI adds a short hash of the query: `<id>-<hash>.<ext>`."""
    if query.cache_key() == _plain_query(query.format).cache_key():
        return f"{image_id}.{query.format}"
    return f"{image_id}-{hashlib.sha256(query.cache_key().encode()).hexdigest()[:10]}.{query.format}"


def produce(store: Store, r: Resolved, d: Directive | None = None, *, image_id: str | None = None) -> Asset:
    """Create (or reuse) the image of a resolved directive and derive its final bytes, errors located at the
    directive. Pass ``image_id`` when the caller already created the image, so its inputs are not looked up and
    hashed a second time."""
    try:
        if image_id is None:
            return Asset.render(store, r.options, r.query, base=r.base)
        return Asset.load(store, image_id, r.query)
    except HctiError as exc:
        raise (d.error(exc) if d else exc) from None


def data_uri(asset: Asset, fmt: str) -> str:
    return f"data:{MIME[fmt]};base64,{base64.b64encode(asset.data).decode()}"


def display_size(pixels: tuple[int, int], r: Resolved) -> tuple[int, int]:
    """The size to show an image at: the width/height the directive asked for, else its pixels divided by the
    device scale (a 2x render shows at its CSS size, crisp on high-density screens)."""
    w, h = pixels
    if r.query.width or r.query.height:
        return w, h
    scale = r.options.scale
    return max(1, round(w / scale)), max(1, round(h / scale))


def img_tag(src: str, width: int | None, height: int | None, r: Resolved, extra: Mapping[str, str] | None = None) -> str:
    """The `<img>` that replaces a directive. width/height are CSS pixels (see `display_size`)."""
    attrs: dict[str, str | None] = {"src": src, "alt": r.alt}
    if width and height:
        attrs["width"], attrs["height"] = str(width), str(height)
    if r.cls:
        attrs["class"] = r.cls
    if r.title:
        attrs["title"] = r.title
    for k, v in (extra or {}).items():
        attrs.setdefault(k, v)
    parts = [k if v is None else f'{k}="{htmllib.escape(v, quote=True)}"' for k, v in attrs.items()]
    return "<img " + " ".join(parts) + ">"


def link_tag(src: str, r: Resolved) -> str:
    """A PDF cannot be an <img>: a link to it."""
    return f'<a href="{htmllib.escape(src, quote=True)}">{htmllib.escape(r.alt or "PDF")}</a>'


def reference_html(src: str, asset: Asset, r: Resolved, extra: Mapping[str, str] | None = None) -> str:
    """What replaces a directive: an `<img>` at its display size, or a link for a PDF."""
    if asset.pixels is None:
        return link_tag(src, r)
    return img_tag(src, *display_size(asset.pixels, r), r, extra)


def in_place(d: Directive, html: str) -> str:
    """A fence is a block: its lines become one line (indentation kept) holding the reference."""
    return d.indent + html + "\n" if d.kind == "fence" else html


def rewrite_markdown(
    text: str,
    *,
    path: str,
    source: str,
    store: Store,
    templates: Templates,
    reference: Callable[[Asset], str],
    first_line: int = 1,
    default_format: str | None = None,
) -> tuple[str, list[Asset]]:
    """Render every directive of one Markdown text and replace it with an `<img>` (or a PDF link).

    ``path`` is how messages name the file, ``source`` its path relative to the store's root (relative URLs
    resolve from its folder), ``reference(asset)`` the src to write. Returns the new text and its assets.
    """
    reps, assets = [], []
    for d in scan_markdown(text, path, first_line=first_line):
        r = resolve(d, templates.root, source, templates, default_format=default_format)
        asset = produce(store, r, d)
        reps.append((d.start, d.end, in_place(d, reference_html(reference(asset), asset, r))))
        assets.append(asset)
    return replace_spans(text, reps), assets
