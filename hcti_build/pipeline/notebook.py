"""Notebooks without a kernel: the one rewriter of a notebook's cells (a `%%hcti` cell gets the image as its
output, a Markdown cell's directives are replaced), the display_data output a `%%hcti` cell shows, and how a
`%%hcti` cell is read where no kernel runs (a build, nbconvert): the magic's own arguments taken out, a
`--jinja` body rendered, or the kernel's output kept when the body reads the kernel's variables.
"""

from __future__ import annotations

import base64
import html as htmllib
import logging
from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

from ..errors import DirectiveError, HctiError
from ..options import MIME
from .assets import Asset, data_uri, display_size, reference_html
from .directives import Directive, magic_own_arguments, replace_spans
from .resolve import Resolved
from .templates import Templates

log = logging.getLogger("hcti_build.notebook")
Pair = tuple[Directive, Resolved]


def rewrite_cells(
    cells: Sequence[MutableMapping[str, Any]],
    pairs: Sequence[Pair],
    *,
    replacement: Callable[[Directive, Resolved], str],
    output: Callable[[Directive, Resolved], Any],
) -> None:
    """Rewrite, in place, the cells the directives of ``pairs`` were found in: a code cell's outputs become
    ``[output(d, r)]``, a Markdown cell's directives are replaced by ``replacement(d, r)``. Cells are JSON dicts
    or nbformat nodes; a list source stays a list of lines."""
    by_cell: dict[int, list[Pair]] = {}
    for d, r in pairs:
        assert d.cell is not None
        by_cell.setdefault(d.cell, []).append((d, r))
    for index, found in by_cell.items():
        cell = cells[index]
        if cell["cell_type"] == "code":
            cell["outputs"] = [output(*found[0])]
            continue
        source = cell["source"]
        text = "".join(source) if isinstance(source, list) else source
        new = replace_spans(text, [(d.start, d.end, replacement(d, r)) for d, r in found])
        cell["source"] = new.splitlines(keepends=True) if isinstance(source, list) else new


def notebook_output(asset: Asset, r: Resolved, src: str | None = None, *, inline: bool = True) -> dict[str, Any]:
    """The display_data output a `%%hcti` cell shows. PNG and JPEG are inline (unless ``inline`` is False),
    with the stable file name nbconvert extracts them under (`hcti-<id>.png`) and their alt text; WebP is an
    <img> and PDF a link, to ``src`` or else a data URI (front ends and nbconvert's templates have no WebP or
    PDF output of their own)."""
    fmt = r.query.format
    mime = MIME[fmt]
    meta: dict[str, Any] = {"filename": f"hcti-{asset.name}"}
    data = {"text/plain": f"<hcti image {asset.image_id}>"}
    if mime in ("image/png", "image/jpeg") and asset.pixels and (inline or src is None):
        width, height = display_size(asset.pixels, r)
        meta[mime] = {"width": width, "height": height, "alt": r.alt}
        data[mime] = base64.b64encode(asset.data).decode()
    elif src is None and asset.pixels is None:  # a data: link only downloads, under this name
        label = htmllib.escape(r.alt or "hcti-" + asset.name)
        data["text/html"] = (
            f'<a href="{data_uri(asset, fmt)}" download="hcti-{asset.name}">{label} (PDF, {len(asset.data) // 1024 + 1} KB)</a>'
        )
    else:
        data["text/html"] = reference_html(src or data_uri(asset, fmt), asset, r)
    return {"output_type": "display_data", "data": data, "metadata": meta}


class NeedsKernel(Exception):
    """A `--jinja` cell reads variables only the kernel has: keep the output the kernel made, if any."""

    def __init__(self, d: Directive, names: set[str]) -> None:
        super().__init__(f"--jinja reads {', '.join(sorted(names))}")
        self.directive = d

    def error(self) -> DirectiveError:
        return self.directive.error(f"{self}; no kernel here, so run the notebook first")


def jinja_body(d: Directive, templates: Templates) -> str:
    """A `--jinja` cell's body rendered with no kernel (literals and filters only). Raises NeedsKernel when it
    reads a variable, DirectiveError for a broken template."""
    try:
        names = templates.variables(d.body or "")
        if names:
            raise NeedsKernel(d, names)
        return templates.render_string(d.body or "", {})
    except HctiError as exc:
        raise d.error(exc.message) from None


def prepare_magic(d: Directive, templates: Templates, *, has_output: bool) -> bool:
    """Ready a directive for `resolve` where there is no kernel (a build, nbconvert): a `%%hcti` cell loses the
    magic's own arguments and gets its --jinja body rendered. False when that body reads the kernel's variables
    and the cell has the output the kernel made: keep that output. Raises DirectiveError when it has none."""
    if d.kind != "magic":
        return True
    try:
        own = magic_own_arguments(d.attrs)
    except HctiError as exc:
        raise d.error(exc) from None
    if not own.jinja or not d.body:
        return True
    try:
        d.body = jinja_body(d, templates)
    except NeedsKernel as exc:
        if has_output:
            log.debug("%s: %s, keeping the kernel's output", d.path, exc)
            return False
        raise exc.error() from None
    return True
