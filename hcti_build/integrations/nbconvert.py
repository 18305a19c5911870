"""nbconvert: `HctiPreprocessor` and the `hcti-markdown` / `hcti-html` exporters.

The preprocessor renders `%%hcti` code cells and `hcti` directives in Markdown cells from their source, with no
kernel, through the same store as the magic (an unchanged cell is one hash), and shows every image as an <img>
of its own (the cell's alt text, class and display size): `jupyter nbconvert --to hcti-markdown nb.ipynb` writes
`nb.md` with `<img src="nb_files/hcti-<id>.png" ...>`, and `--to hcti-html` embeds the images. Its errors are
one line in nbconvert's log. nbconvert is imported here only.
"""

from __future__ import annotations

import base64
import html as htmllib
import logging
import os
import posixpath
import re
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

from nbconvert.exporters import HTMLExporter, MarkdownExporter
from nbconvert.preprocessors import Preprocessor
from nbconvert.utils.exceptions import ConversionException
from traitlets import Bool, List, Unicode
from traitlets.config import Config

from ..errors import DirectiveError, HctiError
from ..options import MIME
from ..pipeline.assets import Asset, data_uri, produce, reference_html
from ..pipeline.directives import Directive, scan_cells
from ..pipeline.notebook import notebook_output, prepare_magic, rewrite_cells
from ..pipeline.resolve import Resolved, resolve
from ..pipeline.templates import Templates
from ..store.store import Store, default_store_path


class HctiConversionError(ConversionException, HctiError):
    """A directive that cannot be rendered (`nb.ipynb#cell3:1:1: message`) or a store that cannot be opened
    (`nb.ipynb: message`), in the API's words."""

    def __init__(self, exc: HctiError, notebook: str) -> None:
        said = str(exc) if isinstance(exc, DirectiveError) else f"{notebook}: {exc.message}"
        HctiError.__init__(self, said, param=exc.param)


class _OneLine(logging.Filter):
    """nbconvert's app logs a ConversionException as "Error while converting 'nb.ipynb'" with the traceback of
    its own frames. Ours is a user's error, already logged as the one line that names the notebook, the cell and
    the parameter: that record is dropped, unless the log shows debug messages (`--debug`: traitlets' logger
    takes every level, its handler the app's log_level)."""

    def __init__(self, log: logging.Logger) -> None:
        super().__init__()
        self.log = log

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HctiConversionError):
            return True
        return self.log.isEnabledFor(logging.DEBUG) and any(h.level <= logging.DEBUG for h in self.log.handlers)


def _no_traceback(log: Any) -> None:
    """Before raising an HctiConversionError: its host's log (nbconvert's app, by traitlets' parents) says it in
    one line."""
    if isinstance(log, logging.Logger) and not any(isinstance(f, _OneLine) for f in log.filters):
        log.addFilter(_OneLine(log))


class HctiPreprocessor(Preprocessor):
    """Renders `%%hcti` cells and `hcti` Markdown directives into images, from the notebook's source."""

    store = Unicode("", help="Store folder (default: $HCTI_STORE, else .hcti beside the notebook).").tag(config=True)
    default_format = Unicode("", help="Format when a directive gives none (png, jpg, webp or pdf).").tag(config=True)
    embed_images = Bool(
        False,
        help="Embed every image as a data: URI (self-contained HTML) instead of files beside the output, "
        "referenced as <output_files_dir>/hcti-<id>.<ext>.",
    ).tag(config=True)

    def preprocess(self, nb: Any, resources: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        meta = resources.get("metadata") or {}
        root = Path(meta.get("path") or ".").resolve()
        shown = os.path.relpath(root / (str(meta.get("name") or "notebook") + ".ipynb"))
        try:
            store = Store(self.store or default_store_path(root), root=root)
        except HctiError as exc:  # a store folder that cannot be made or written: one line too
            raise self._said(exc, shown) from None
        templates = Templates(root)
        files_dir = str(resources.get("output_files_dir") or "")
        used: set[str] = set()  # file names already placed: an image shown twice is one file
        if not isinstance(resources.get("outputs"), dict):
            resources["outputs"] = {}
        try:
            pairs: list[tuple[Directive, Resolved]] = []
            for d in scan_cells(nb.cells, shown):
                r = self._resolve(d, root, templates, nb.cells[d.cell])
                if r is not None:
                    pairs.append((d, r))
                else:
                    self._rehome_kept(d, nb.cells[d.cell], store, root, templates, files_dir, used, resources)

            def replacement(d: Directive, r: Resolved) -> str:
                asset = produce(store, r, d)
                return reference_html(self._src(asset, r, files_dir, used, resources), asset, r)

            def output(d: Directive, r: Resolved) -> Any:
                return self._output(produce(store, r, d), r, files_dir, used, resources)

            rewrite_cells(nb.cells, pairs, replacement=replacement, output=output)
        except DirectiveError as exc:
            raise self._said(exc, shown) from None
        finally:
            store.close()
        return nb, resources

    def _said(self, exc: HctiError, notebook: str) -> HctiConversionError:
        """The error as one line in nbconvert's log, and the exception that stops the conversion."""
        error = HctiConversionError(exc, notebook)
        self.log.error("%s", error)
        _no_traceback(self.log)
        return error

    def _resolve(self, d: Directive, root: Path, templates: Templates, cell: Any) -> Resolved | None:
        """None for a `--jinja` cell that needs the kernel and has the kernel's output (kept as it is)."""
        if not prepare_magic(d, templates, has_output=bool(cell.get("outputs"))):
            return None
        return resolve(d, root, "", templates, default_format=self.default_format or None)

    def _rehome_kept(
        self,
        d: Directive,
        cell: Any,
        store: Store,
        root: Path,
        templates: Templates,
        files_dir: str,
        used: set[str],
        resources: dict[str, Any],
    ) -> None:
        """A kept `--jinja` output is placed like every other image, with the alt text the kernel gave it and the
        cell's class. Its query comes from the cell's line (--jinja leaves it); its bytes from the output itself
        (PNG, JPEG), else from the store (WebP, PDF: a data: URI or a link the kernel chose), else it is kept."""
        d.body = "<!-- the kernel's output -->"
        try:
            r = resolve(d, root, "", templates, default_format=self.default_format or None)
        except DirectiveError:
            return  # a line the kernel could not have run: its output is kept as it is
        for i, out in enumerate(cell.get("outputs", [])):
            m = re.fullmatch(r"<hcti image ([0-9a-f-]{36})>", str(out.get("data", {}).get("text/plain", "")))
            found = _kept_asset(out, m.group(1), r, store, d) if m else None
            if found is not None:
                asset, kept = found
                alt = _kernel_alt(out)
                cell.outputs[i] = self._output(asset, kept if alt is None else replace(kept, alt=alt), files_dir, used, resources)

    def _src(self, asset: Asset, r: Resolved, files_dir: str, used: set[str], resources: dict[str, Any]) -> str:
        """Where an image placed by us lives: a data: URI, or a file in the output's files folder."""
        if self.embed_images:
            return data_uri(asset, r.query.format)
        name = posixpath.join(files_dir, f"hcti-{asset.name}") if files_dir else f"hcti-{asset.name}"
        if name not in used:
            used.add(name)
            resources["outputs"][name] = asset.data
        return name

    def _output(self, asset: Asset, r: Resolved, files_dir: str, used: set[str], resources: dict[str, Any]) -> Any:
        """A `%%hcti` cell's output in the export: an <img> of our own (alt text, class, display size), to a file
        beside the output or a data: URI, rather than an image output: nbconvert's templates drop an image
        output's alt text (Markdown's `![png](...)`, HTML's "No description has been provided for this image")."""
        from nbformat import from_dict

        if self.embed_images and asset.pixels is None:
            return from_dict(notebook_output(asset, r))  # a PDF: a data: link that downloads under its name
        return from_dict(notebook_output(asset, r, self._src(asset, r, files_dir, used, resources), inline=False))


def _kept_asset(out: Any, image_id: str, r: Resolved, store: Store, d: Directive) -> tuple[Asset, Resolved] | None:
    """The image of a kept output, and its query: PNG and JPEG from the output's own bytes (in the kernel's
    format, whatever this store holds), WebP and PDF from the store. None when neither has it."""
    data = out.get("data", {})
    for fmt in ("png", "jpg"):
        if MIME[fmt] in data:
            kept = replace(r, query=replace(r.query, format=fmt))
            try:
                return Asset.of(image_id, kept.query, base64.b64decode(str(data[MIME[fmt]]))), kept
            except (ValueError, OSError):  # not base64, or not an image: the notebook's own business
                return None
    if "text/html" not in data:
        return None
    try:
        return produce(store, r, d, image_id=image_id), r
    except DirectiveError:
        return None  # not in this store (run elsewhere): kept as it is


def _kernel_alt(out: Any) -> str | None:
    """The alt text the kernel gave a `%%hcti` output (its --alt, else the text of the HTML it rendered): in an
    image output's metadata, or an <img>'s attribute. A kept cell's HTML needed the kernel: only it knows."""
    data, meta = out.get("data", {}), out.get("metadata", {})
    for mime in ("image/png", "image/jpeg"):
        if mime in data:
            alt = (meta.get(mime) or {}).get("alt")
            return alt if isinstance(alt, str) else None
    m = re.search(r'<img [^>]*?\balt="([^"]*)"', str(data.get("text/html", "")))
    return htmllib.unescape(m.group(1)) if m else None


def _before_extraction(exporter: type[Any]) -> list[Any]:
    """The exporter's default preprocessors with ours inserted before output extraction."""
    out = list(exporter.class_traits()["default_preprocessors"].default())
    extract = "nbconvert.preprocessors.ExtractOutputPreprocessor"
    at = out.index(extract) if extract in out else len(out)
    out.insert(at, "hcti_build.nbconvert.HctiPreprocessor")
    return out


class _RunsHcti:
    """Exporter mixin: HctiPreprocessor enabled, with `hcti_options` on top."""

    hcti_options: dict[str, Any] = {}

    @property
    def default_config(self) -> Config:
        c = cast(Any, super()).default_config.copy()
        c.merge(Config({"HctiPreprocessor": {"enabled": True, **self.hcti_options}}))
        return c


class HctiMarkdownExporter(_RunsHcti, MarkdownExporter):
    """`--to hcti-markdown`: Markdown with `%%hcti` images extracted as `<name>_files/hcti-<id>.<ext>`."""

    export_from_notebook = "Markdown with hcti images"
    default_preprocessors = List(_before_extraction(MarkdownExporter)).tag(config=True)


class HctiHTMLExporter(_RunsHcti, HTMLExporter):
    """`--to hcti-html`: HTML with `%%hcti` images embedded (data: URIs), one self-contained file."""

    export_from_notebook = "HTML with hcti images"
    default_preprocessors = List(_before_extraction(HTMLExporter)).tag(config=True)
    hcti_options = {"embed_images": True}


__all__ = ["HctiConversionError", "HctiHTMLExporter", "HctiMarkdownExporter", "HctiPreprocessor"]
