"""How a page's og:/twitter: meta tags (`hcti_build.card_tags`) reach the head of a page MkDocs builds.

The theme's template renders them (`HeadLoader` adds `{{ hcti_head }}` before its `</head>`); `finish_page`
checks the built page has them once, and edits it only when the template did not render them or the theme
wrote some of them itself.
"""

from __future__ import annotations

import re
from typing import Any

import jinja2

from hcti_build import meta_html

HEAD_VAR = "hcti_head"  # the context variable with a page's meta tags (see HeadLoader)


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
