"""A built page's `<head>`: what it says (`read_head`: title, description, language, canonical URL, icons, meta
tags by name, where each tag stands, whether it is a document at all) and the social card's meta tags written into it
(`card_tags`, `meta_html`, `edit_head`) without changing one byte outside the tags it writes.

Pages are read the way a browser tokenises them (Python's HTML parser, which never fails on malformed input),
and only as far as the end of the head: a page's body is never parsed.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser

# Elements that may stand in a head; any other start tag (or text) begins the body, as in a browser.
_HEAD_TAGS = frozenset({"base", "link", "meta", "noscript", "script", "style", "template", "title"})
_HEAD_END = re.compile(r"</head\s*>", re.I)
# What the parser need not see of a head: script and style bodies, and links other than the canonical one and icons.
# Blanked to spaces of the same length (so offsets hold), they cost it nothing; a generator's head is mostly
# these (Material's: ~30 of them).
_SKIPPED = re.compile(r"(<(script|style)\b[^>]*>).*?(</\2\s*>)|<link\b[^>]*>", re.I | re.S)
_BODY_START = re.compile(r"<body[\s>/]", re.I)


@dataclass
class Meta:
    """One `<meta>` tag: its key (`property` or `name`, lower-cased), its content, and where it stands."""

    key: str
    content: str
    start: int
    end: int


@dataclass
class Head:
    """What a page's head says. Offsets are into the page's text; ``insert_at`` is where new tags go (before
    `</head>`, or before the body when the page has no `</head>`)."""

    title: str = ""
    lang: str = ""
    dir: str = ""
    canonical: str = ""
    refresh: bool = False  # a redirect stub (meta http-equiv=refresh)
    icons: list[tuple[str, str]] = field(default_factory=list)  # (rel, href) of each icon link, apple-touch-icon too
    # A document: a doctype, <html>, <head> or <title> before its body. A template fragment in a site (a theme's
    # overrides/main.html, `{% extends "base.html" %}` and blocks) has none: it is not a page. Nor is a template
    # that starts with template syntax or has it in its title (`<title>{{ page.title }}</title>`).
    document: bool = False
    metas: list[Meta] = field(default_factory=list)
    insert_at: int = 0

    def get(self, key: str) -> str | None:
        """The content of the first meta tag with this key, or None."""
        return next((m.content for m in self.metas if m.key == key), None)


class _HeadParser(HTMLParser):
    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.text = text
        self.line_starts = [0, *(m.end() for m in re.finditer("\n", text))]
        self.head = Head(insert_at=len(text))
        self.in_title = False
        self.title: list[str] = []
        self.done = False
        self.after = 0  # the end of the last head element's tag seen
        self.title_at = 0
        self.raw_at: int | None = None  # the start of a script or style element not closed (yet)

    def position(self) -> int:
        line, col = self.getpos()
        return self.line_starts[line - 1] + col

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.done:
            return
        if self.in_title:  # a title's content is text, tags included (RCDATA), as a browser reads it
            self.title.append(self.get_starttag_text() or "")
            return
        self.after = self.position() + len(self.get_starttag_text() or "")
        a = {k.lower(): v or "" for k, v in attrs}
        self.head.document = self.head.document or tag in ("html", "head", "title")
        if tag == "html":
            self.head.lang, self.head.dir = a.get("lang", ""), a.get("dir", "")
        elif tag == "meta":
            self._meta(a)
        elif tag == "link":
            self._link(a)
        elif tag == "title":
            self.in_title, self.title_at = True, self.position()
        elif tag in self.CDATA_CONTENT_ELEMENTS and not (self.get_starttag_text() or "").endswith("/>"):
            self.raw_at = self.position()
        elif tag not in _HEAD_TAGS and tag != "head":
            self._end()  # the body begins

    handle_startendtag = handle_starttag

    def _link(self, a: dict[str, str]) -> None:
        rel = a.get("rel", "").lower().split()
        if "canonical" in rel:
            self.head.canonical = a.get("href", "")
        icon = next((r for r in rel if r in ("icon", "apple-touch-icon", "apple-touch-icon-precomposed")), None)
        if icon and a.get("href"):
            self.head.icons.append((icon, a["href"]))

    def _meta(self, a: dict[str, str]) -> None:
        start = self.position()
        end = start + len(self.get_starttag_text() or "")
        key = (a.get("property") or a.get("name") or "").strip().lower()
        if key:
            self.head.metas.append(Meta(key, a.get("content", ""), start, end))
        if a.get("http-equiv", "").lower() == "refresh":
            self.head.refresh = True

    def handle_decl(self, decl: str) -> None:
        if not self.done and decl.lower().startswith("doctype"):
            self.head.document = True

    def handle_endtag(self, tag: str) -> None:
        if self.in_title and tag != "title":
            self.title.append(f"</{tag}>")
            return
        if not self.done:  # an end tag runs to its first ">" (`</head >`, `</HEAD foo>`), as HTMLParser reads it
            self.after = self.text.find(">", self.position()) + 1 or len(self.text)
        if tag == "title":
            self.in_title = False
        elif tag in self.CDATA_CONTENT_ELEMENTS:
            self.raw_at = None
        elif tag == "head" and not self.done:
            self._end()

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)

    def _end(self) -> None:
        self.head.insert_at = self.position()
        self.done = True


def read_head(text: str) -> Head:
    """The head of a page's text: parsed up to its `</head>`, or to `<body>` when it has none. A `</head>` or
    `<body>` in a comment, a script or an attribute ends nothing: the parse goes on to the next one."""
    parser, fed = _HeadParser(text), 0
    while not parser.done and fed < len(text):
        stop = _HEAD_END.search(text, fed) or _BODY_START.search(text, fed)
        end = stop.end() if stop else len(text)
        parser.feed(_SKIPPED.sub(_blank, text[fed:end]))
        fed = end
    # What HTMLParser holds back at the end is a tag, comment or declaration never closed: a browser reads all
    # that follows as part of it (HTMLParser's close() would read tags in it), so the head ends before it.
    held = len(parser.rawdata) if parser.rawdata.startswith("<") else 0
    if not held:
        parser.close()
    head = parser.head
    if not parser.done:  # neither </head> nor a body element: after the last tag of the head
        at = parser.title_at if parser.in_title else parser.after if parser.raw_at is None else parser.raw_at
        head.insert_at = min(at, fed - held)
    head.title = " ".join("".join(parser.title).split())
    if _TEMPLATE.search(head.title) or _TEMPLATE.match(text.lstrip()):  # a theme's template left in the site
        head.document = False
    return head


# Jinja2, Liquid (Jekyll) and Go (Hugo) template syntax: a built page's title or first characters never hold it.
_TEMPLATE = re.compile(r"\{\{|\{%|\{#")


def _blank(m: re.Match[str]) -> str:
    """A script or style element kept as its tags around blank content; a link other than the canonical one and
    icons blanked whole."""
    if m.group(2):
        return m.group(1) + re.sub(r"[^\n]", " ", m.group(0)[len(m.group(1)) : len(m.group(0)) - len(m.group(3))]) + m.group(3)
    tag = m.group(0).lower()
    return m.group(0) if "canonical" in tag or "icon" in tag else re.sub(r"[^\n]", " ", m.group(0))


def card_tags(
    title: str, description: str, page_url: str, image_url: str, mime: str, pixels: tuple[int, int], site_name: str = ""
) -> dict[str, str]:
    """The og:/twitter: tags of a page with a card, in the order they are written (og:site_name last, when
    given)."""
    tags = {
        "og:type": "website",
        "og:title": title,
        "og:description": description,
        "og:url": page_url,
        "og:image": image_url,
        "og:image:type": mime,
        "og:image:width": str(pixels[0]),
        "og:image:height": str(pixels[1]),
        "og:image:alt": title,
        "twitter:card": "summary_large_image",
        "twitter:title": title,
        "twitter:description": description,
        "twitter:image": image_url,
    }
    if site_name:
        tags["og:site_name"] = site_name
    return tags


def meta_html(tags: Mapping[str, str], present: Iterable[str] = ()) -> str:
    """The tags as `<meta>` lines (twitter: ones by `name`, og: ones by `property`), values escaped; those in
    ``present`` and empty ones left out."""
    skip = set(present)
    lines = []
    for key, value in tags.items():
        if key in skip or value == "":
            continue
        attr = "name" if key.startswith("twitter:") else "property"
        lines.append(f'<meta {attr}="{key}" content="{html.escape(value, quote=True)}">')
    return "\n".join(lines) + "\n" if lines else ""


def edit_head(text: str, head: Head, tags: Mapping[str, str], replace: Iterable[str]) -> str:
    """The page with one tag of each of ``tags``: those named in ``replace`` rewritten where they stand (or added),
    the others added only where the page has none; second copies removed. Nothing else in the text changes, and
    a page edited once is not changed by the same edit again."""
    replaced = set(replace)
    edits: list[tuple[int, int, str]] = []
    seen: set[str] = set()
    for m in head.metas:
        if m.key not in tags:
            continue
        if m.key in seen:
            edits.append((*tag_span(text, m), ""))  # a second copy
        elif m.key in replaced:
            edits.append((m.start, m.end, meta_html({m.key: tags[m.key]}).rstrip("\n")))
        seen.add(m.key)
    new = meta_html({k: v for k, v in tags.items() if k not in seen})
    if new:
        at = head.insert_at
        line_start = text.rfind("\n", 0, at) + 1
        if not text[line_start:at].strip():  # `  </head>` stays as it is, the tags on the lines before it
            at = line_start
        edits.append((at, at, new if at == 0 or text[at - 1] == "\n" else "\n" + new))
    out, pos = [], 0
    for start, end, value in sorted(edits):
        out.append(text[pos:start] + value)
        pos = end
    return "".join(out) + text[pos:]


def tag_span(text: str, m: Meta) -> tuple[int, int]:
    """A tag's span, widened to its whole line when it stands alone on it."""
    line_start = text.rfind("\n", 0, m.start) + 1
    nl = text.find("\n", m.end)
    line_end = len(text) if nl < 0 else nl + 1
    if text[line_start : m.start].strip() or text[m.end : line_end].strip():
        return m.start, m.end
    return line_start, line_end
