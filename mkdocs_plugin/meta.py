"""A page's og:/twitter: meta tags: which tags a card gets (`card_tags`), and how they reach the page's head.

The theme's template renders them (`HeadLoader` adds `{{ hcti_head }}` before its `</head>`); `finish_page`
checks the built page has them once, and edits it only when the template did not render them or the theme
wrote some of them itself.
"""

from __future__ import annotations

import html
import re
from typing import Any

import jinja2

HEAD_VAR = "hcti_head"  # the context variable with a page's meta tags (see HeadLoader)


def card_tags(title: str, description: str, page_url: str, image_url: str, mime: str, pixels: tuple[int, int]) -> dict[str, str]:
    """The tags of a page with a card, in the order they are written."""
    return {
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


def finish_page(output: str, head: str, tags: dict[str, str]) -> str | None:
    """The built page with the tags in its head once, or None when it already is (the common case: the page is
    written as its template made it, not copied)."""
    head_end = output.find("</head>")
    start = head_end - len(head)
    if head_end < 0 or not output.startswith(head, start):  # the template did not render them
        return insert_meta(output, tags)
    theirs = present(output, 0, start)  # what the theme wrote before them
    if not theirs.intersection(tags):
        return None
    return output[:start] + meta_html(tags, theirs) + output[head_end:]


_HEAD_END = re.compile(r"</head\s*>", re.I)
_META = re.compile(r"<meta\b[^>]*?\b(?:property|name)\s*=\s*[\"']([^\"']+)[\"']", re.I)


def present(output: str, start: int, end: int) -> set[str]:
    """The og:/twitter: meta tag names (lower-case) in ``output[start:end]``; most heads have none, and a search
    is cheaper than the regex."""
    if output.find("og:", start, end) < 0 and output.find("twitter:", start, end) < 0:
        return set()
    return {m.group(1).lower() for m in _META.finditer(output, start, end)}


def meta_html(tags: dict[str, str], present: set[str]) -> str:
    lines = []
    for key, value in tags.items():
        if key in present or value == "":
            continue
        attr = "name" if key.startswith("twitter:") else "property"
        lines.append(f'<meta {attr}="{key}" content="{html.escape(value, quote=True)}">')
    return "\n".join(lines) + "\n" if lines else ""


def insert_meta(output: str, tags: dict[str, str]) -> str:
    """Add the tags the theme did not already write, just before </head>."""
    head_end = output.find("</head>")
    if head_end < 0:  # an upper-case tag: rare, and lower-casing a whole page is not free
        found = _HEAD_END.search(output)
        if found is None:
            return output
        head_end = found.start()
    tags_html = meta_html(tags, present(output, 0, head_end))
    if not tags_html:
        return output
    if output.startswith("</head>", head_end):  # one copy of the page, no slices of it (pages are large)
        return output.replace("</head>", tags_html + "</head>", 1)
    return output[:head_end] + tags_html + output[head_end:]


class HeadLoader(jinja2.BaseLoader):
    """The theme's template loader, with `{{ hcti_head }}` (the page's card meta tags) added before the first
    `</head>` of a template. The page then comes out of its template with its tags: copying every built page to
    add them cost more than the rest of a warm build's card work (MkDocs' pages are large strings; see
    docs/performance.md). Only a `</head>` in the template's text counts: one inside a Jinja string, comment or
    raw block is left as it is, and `finish_page` adds the tags to the built page."""

    def __init__(self, inner: jinja2.BaseLoader) -> None:
        self.inner = inner

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str | None, Any]:
        source, filename, uptodate = self.inner.get_source(environment, template)
        at = source.find("</head>")
        if at < 0:
            return source, filename, uptodate
        changed = f"{source[:at]}{{{{ {HEAD_VAR} if {HEAD_VAR} is defined else '' }}}}{source[at:]}"
        try:  # the lexer sees the variable only where it landed in the template's text
            if any(kind == "name" and value == HEAD_VAR for _, kind, value in environment.lex(changed)):
                return changed, filename, uptodate
        except jinja2.TemplateSyntaxError:
            pass  # Jinja reports the template's own error when it compiles it
        return source, filename, uptodate

    def list_templates(self) -> list[str]:
        return self.inner.list_templates()
