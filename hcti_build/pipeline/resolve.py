"""From a directive as found to a request ready to render: its values split into creation parameters, image
query and the `<img>`'s own attributes, its template rendered (`hcti:card.html?...`), its `css_file` read, and
everything checked against the API's parameters at once, every error located at the directive.
"""

from __future__ import annotations

import html as htmllib
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BadRequestError, HctiError
from ..files import Tree, read_utf8
from ..options import CreateOptions, ImageQuery, split_params, validate
from .directives import TAG_KEYS, Directive
from .templates import Templates


@dataclass(frozen=True)
class Resolved:
    """A directive ready to render: validated options, the document folder, and how to show the image."""

    options: CreateOptions
    query: ImageQuery
    base: str  # folder of the HTML relative to the root: its relative URLs resolve from there
    alt: str
    cls: str | None
    title: str | None
    deps: tuple[str, ...] = ()  # templates read (root-relative), for watchers


def resolve(d: Directive, root: Path, source: str, templates: Templates, *, default_format: str | None = None) -> Resolved:
    """Validate a directive against the API's parameters. ``source`` is the host file, relative to root."""
    if d.problem:
        raise d.problem
    src_dir = posixpath.dirname(source)
    attrs = {k: v for k, v in d.attrs.items() if not k.startswith("_")}
    create, query, rest = split_params(attrs)
    tag = {k: v for k, v in rest.items() if k in TAG_KEYS}
    deps: tuple[str, ...] = ()
    if "css_file" in rest:
        create["css"] = _read_local(d, root, src_dir, str(rest["css_file"]))
        deps += (posixpath.normpath(posixpath.join(src_dir, str(rest["css_file"]))),)
    base = src_dir
    try:
        if d.template is None:
            create.update((k, v) for k, v in rest.items() if k not in TAG_KEYS and k != "css_file")  # reported
            if d.body is not None and "html" not in create and "url" not in create:
                create["html"] = d.body
        else:
            # A template's values are its own: only parameters among them are taken from it (alt, class and title
            # come from the reference itself: ![alt](... "title"), <img alt class title>).
            from_values = split_params({k: v for k, v in d.values.items() if k not in TAG_KEYS})
            create.update(from_values[0])
            query.update(from_values[1])
            name, html, read = _render_template(d, src_dir, templates, attrs)
            create["html"], base, deps = html, posixpath.dirname(name), deps + read
        if "format" not in query and default_format:
            query["format"] = default_format
        opts, q = validate(create, query)
    except HctiError as exc:
        raise d.error(exc) from None
    alt = tag.get("alt")
    if alt is None:
        alt = _text_of(opts.html or "") if opts.html else ""
    return Resolved(opts, q, base, str(alt), tag.get("class"), tag.get("title"), deps)


def _render_template(d: Directive, src_dir: str, templates: Templates, attrs: dict[str, Any]) -> tuple[str, str, tuple[str, ...]]:
    """The template a reference names (relative to its source, or to the root with a leading /), rendered with
    its values: its root-relative name, the HTML and the templates it read."""
    assert d.template is not None
    name = posixpath.normpath(posixpath.join(src_dir, d.template)) if not d.template.startswith("/") else d.template[1:]
    if name.startswith("../"):
        raise BadRequestError(f"template {d.template} is outside the source folder {templates.root}", param="template")
    html, read = templates.render(name, {**d.values, **attrs})
    return name, html, read


def _read_local(d: Directive, root: Path, src_dir: str, name: str) -> str:
    """A `css_file`, next to its source, by the file rules (`Tree`): inside the root, no hidden part."""
    path = Tree.of(root).file(posixpath.normpath(posixpath.join(src_dir, name)))
    if path is None:
        raise d.error(BadRequestError(f"css_file {name} not found under the project root", param="css_file"))
    try:
        return read_utf8(path, "css_file")
    except HctiError as exc:
        raise d.error(exc) from None


def _text_of(html: str) -> str:
    """Visible text of an HTML snippet (a fallback alt text)."""
    text = re.sub(r"<(script|style)\b.*?</\1\s*>", " ", html, flags=re.S | re.I)
    text = htmllib.unescape(re.sub(r"<[^>]+>", " ", text))
    text = " ".join(text.split())
    return text if len(text) <= 125 else text[:124].rsplit(" ", 1)[0] + "…"
