"""A project build: scan sources for directives, render what the store lacks, write assets, rewrite references.

Incremental by content: a directive whose inputs did not change is a store hit (one hash, no browser), and
output files are only written when their bytes change, so a second build of an unchanged tree writes nothing
and launches nothing. A build with any error reports every error and writes no output at all.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import functools
import hashlib
import html as htmllib
import io
import json
import logging
import os
import posixpath
import shutil
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .directives import (
    MARKDOWN_SUFFIXES,
    NOTEBOOK_SUFFIXES,
    TEMPLATE_SUFFIXES,
    Directive,
    Resolved,
    Templates,
    display_size,
    img_tag,
    link_tag,
    prepare_magic,
    replace_spans,
    resolve,
    scan_markdown,
    scan_notebook,
    scan_template,
)
from .errors import DirectiveError, HctiError
from .options import MIME, ImageQuery
from .store import Store, atomic_write, sweep

log = logging.getLogger("hcti_build.build")
SKIP_DIRS = frozenset({"__pycache__", "node_modules", "_hcti_build"})
MANIFEST = ".hcti-build.json"


# -- assets ---------------------------------------------------------------------------------------
@dataclass
class Asset:
    """A final image: its file name (by id), bytes, and pixel size (None for a PDF)."""

    image_id: str
    name: str
    data: bytes
    pixels: tuple[int, int] | None
    rendered: bool = False  # False when the store already had the image
    source: Path | None = None  # the store's file holding exactly these bytes (checked): linked, not copied

    def write(self, path: Path) -> bool:
        if not self.data and self.source is not None:  # a slim asset: link its source, or copy it
            linked = _link(self.source, path)
            return linked if linked is not None else write_if_changed(path, self.source.read_bytes())
        return write_if_changed(path, self.data, self.source)

    def slim(self) -> Asset:
        """The same asset without its bytes in memory, when the store holds them (a site's build keeps hundreds
        of cards between reading its pages and writing them): `write` links or copies the store's file."""
        return replace(self, data=b"") if self.source is not None else self


def write_if_changed(path: Path, data: bytes, source: Path | None = None) -> bool:
    """Write a derived output unless the file already holds these bytes (so mtimes stay); True when written.
    No fsync: the store keeps the durable copy, and readers still never see a partial file.

    With ``source`` (a store file holding ``data``), the output is a hard link to it: no bytes are copied (a
    site's cards cost a link each). Where links are not possible (another filesystem) the bytes are written.
    A tool that edits the output in place edits the store's copy too; the store notices (its hash is checked
    on every read) and renders it again.
    """
    linked = _link(source, path) if source is not None else None
    if linked is not None:
        return linked
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except OSError:
        pass
    atomic_write(path, data, durable=False)
    return True


@functools.cache
def _plain_query(fmt: str) -> ImageQuery:
    return ImageQuery(format=fmt)


def asset_name(image_id: str, query: ImageQuery) -> str:
    """`<id>.<ext>`; a crop, resize or DPI adds a short hash of the query: `<id>-<hash>.<ext>`."""
    if query.cache_key() == _plain_query(query.format).cache_key():
        return f"{image_id}.{query.format}"
    return f"{image_id}-{hashlib.sha256(query.cache_key().encode()).hexdigest()[:10]}.{query.format}"


def produce(store: Store, r: Resolved, d: Directive | None = None, *, image_id: str | None = None) -> Asset:
    """Create (or reuse) the image of a resolved directive and derive its final bytes. Pass ``image_id`` when the
    caller already created the image, so its inputs are not looked up and hashed a second time."""
    rendered = False
    try:
        if image_id is None:
            image_id, rendered = store.ensure(r.options, base=r.base)
        return asset_for(store, image_id, r.query, rendered=rendered)
    except HctiError as exc:
        raise (d.error(exc) if d else exc) from None


def asset_for(store: Store, image_id: str, query: ImageQuery, *, rendered: bool = False) -> Asset:
    """The final bytes of a stored image for ``query`` (checked, derived if missing), with their pixel size."""
    data = store.get(image_id, query)
    pixels = None
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":  # a PNG's size is in its first chunk
        pixels = struct.unpack(">II", data[16:24])
    elif query.format != "pdf":
        from PIL import Image  # imported when needed: see store.py

        with Image.open(io.BytesIO(data)) as im:
            pixels = im.size
    return Asset(image_id, asset_name(image_id, query), data, pixels, rendered, store.stored_path(image_id, query))


def _link(source: Path, path: Path) -> bool | None:
    """Make ``path`` a hard link to ``source`` (atomically replacing what was there): True; False when it already
    is one; None when linking is not possible here."""
    for _ in range(2):
        try:
            os.link(source, path)  # the common case, a site that was cleaned: nothing there yet
            return True
        except FileExistsError:
            break
        except FileNotFoundError:  # no folder yet (or no source: then the link below fails too)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError:
                return None
        except OSError:  # another filesystem, or no hard links here
            return None
    try:
        if os.path.samefile(source, path):
            return False
    except OSError:
        pass
    tmp = path.with_name(f".tmp-link-{os.getpid()}-{threading.get_ident()}-{path.name}")
    try:
        os.link(source, tmp)
        os.replace(tmp, path)
        return True
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return None


def data_uri(asset: Asset, fmt: str) -> str:
    return f"data:{MIME[fmt]};base64,{base64.b64encode(asset.data).decode()}"


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


def _in_place(d: Directive, html: str) -> str:
    """A fence is a block: its lines become one line (indentation kept) holding the reference."""
    return d.indent + html + "\n" if d.kind == "fence" else html


def reference_html(src: str, asset: Asset, r: Resolved, extra: Mapping[str, str] | None = None) -> str:
    """What replaces a directive: an `<img>` at its display size, or a link for a PDF."""
    if asset.pixels is None:
        return link_tag(src, r)
    return img_tag(src, *display_size(asset.pixels, r), r, extra)


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
        new = reference_html(reference(asset), asset, r)
        reps.append((d.start, d.end, _in_place(d, new)))
        assets.append(asset)
    return replace_spans(text, reps), assets


# -- the build ------------------------------------------------------------------------------------
@dataclass
class Source:
    rel: str  # posix, relative to the source root
    kind: str  # "markdown", "template", "notebook"
    text: str
    directives: list[Directive]
    notebook: dict[str, Any] | None = None
    resolved: list[Resolved] = field(default_factory=list)


@dataclass
class BuildReport:
    files: int = 0
    directives: int = 0
    rendered: int = 0
    reused: int = 0
    seconds: float = 0.0
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    errors: list[DirectiveError] = field(default_factory=list)
    deps: dict[str, set[str]] = field(default_factory=dict)  # source -> files its directives read (watchers)

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        head = "hcti build failed" if self.errors else "hcti build"
        return (
            f"{head}: {self.files} files scanned, {self.directives} directives, {self.rendered} rendered, "
            f"{self.reused} reused, {len(self.written)} files written in {self.seconds:.2f} s"
        )


def _kind(path: str) -> str | None:
    suffix = posixpath.splitext(path)[1].lower()
    if suffix in MARKDOWN_SUFFIXES:
        return "markdown"
    if suffix in TEMPLATE_SUFFIXES:
        return "template"
    if suffix in NOTEBOOK_SUFFIXES:
        return "notebook"
    return None


class Builder:
    """`hcti build SRC`: copies SRC to `out` with every directive replaced by a reference to its asset.

    Keep one Builder for repeated builds (watch mode): the store, its warm browser and its hash cache stay.
    """

    def __init__(
        self,
        src: str | os.PathLike[str],
        out: str | os.PathLike[str] | None = None,
        *,
        assets_dir: str = "assets/hcti",
        store: Store | None = None,
        default_format: str | None = None,
        jobs: int | None = None,
        in_place: bool = False,
    ) -> None:
        self.src = Path(src).resolve()
        if not self.src.is_dir():
            raise HctiError(f"{src} is not a folder", param="src")
        self.in_place = in_place
        self.out = self.src if in_place else Path(out or "_hcti_build").resolve()
        if not in_place and (self.out == self.src or self.src.is_relative_to(self.out)):
            raise HctiError("--out must not be the source folder or contain it (use --in-place)", param="out")
        self.assets_dir = posixpath.normpath(assets_dir.strip("/")) or "assets/hcti"
        self.store = store or Store(root=self.src)
        self.default_format = default_format
        self.jobs = jobs
        self.templates = Templates(self.src)
        self._ids: dict[tuple[str, str], str] = {}  # per build: each distinct image is looked up once
        # Kept between builds for incremental ones: each source's outputs, and the files its directives read.
        self._state: dict[str, dict[str, bytes | Path]] | None = None
        self.deps: dict[str, set[str]] = {}

    # -- scanning
    def _walk(self, top: Path | None = None) -> Iterator[str]:
        skip = {self.out, self.store.path}
        for folder, dirs, files in os.walk(top or self.src):
            here = Path(folder)
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS and (here / d).resolve() not in skip)
            for name in sorted(files):
                if not name.startswith("."):
                    yield (here / name).relative_to(self.src).as_posix()

    def _display(self, rel: str) -> str:
        path = self.src / rel
        try:
            return os.path.relpath(path)
        except ValueError:
            return str(path)

    def scan(self, rel: str) -> Source | None:
        kind = _kind(rel)
        if kind is None:
            return None
        try:
            text = (self.src / rel).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            return None  # not a text source: copied as it is
        shown = self._display(rel)
        if kind == "markdown":
            return Source(rel, kind, text, scan_markdown(text, shown))
        if kind == "template":
            return Source(rel, kind, text, scan_template(text, shown))
        nb, found = scan_notebook(text, shown)
        return Source(rel, kind, text, found, notebook=nb)

    def _resolve(self, source: Source, d: Directive) -> Resolved | None:
        """None for a `--jinja` cell that needs the kernel and already has the kernel's output (kept)."""
        cells = source.notebook["cells"] if source.notebook else []
        has_output = d.cell is not None and bool(cells[d.cell].get("outputs"))
        if not prepare_magic(d, self.templates, has_output=has_output):
            return None
        return resolve(d, self.src, source.rel, self.templates, default_format=self.default_format)

    # -- the whole build
    def build(
        self, on_progress: Callable[[int, int], None] | None = None, *, changed: Iterable[str] | None = None
    ) -> BuildReport:
        """Build SRC. ``changed`` (paths relative to SRC: edited, created, deleted or renamed files) makes it
        incremental after a first build: only the sources among them, and the sources whose directives read one
        of them (a template, an include, a stylesheet, a font, an image), are scanned and rewritten."""
        t0 = time.perf_counter()
        report = BuildReport()
        if changed is None and not self.in_place and self.out.is_dir():
            sweep(self.out, recursive=True)  # what a build killed while it wrote its output left behind
        self._build(report, on_progress, None if changed is None else set(changed))
        report.seconds = time.perf_counter() - t0
        return report

    def _affected(self, changed: set[str]) -> tuple[list[str], set[str]]:
        """The files to build again and the files that are gone, for a set of changed paths."""
        assert self._state is not None
        skip = {self.out, self.store.path}
        todo: set[str] = set()
        gone: set[str] = set()
        for rel in changed:
            path = self.src / rel
            if any(part.startswith(".") or part in SKIP_DIRS for part in Path(rel).parts) or any(
                path == s or path.is_relative_to(s) for s in skip
            ):
                continue
            if path.is_file():
                todo.add(rel)
            elif path.is_dir():  # a folder moved in: its files are new to us
                todo.update(f for f in self._walk(path) if not (self.src / f).is_dir())
            else:  # a file or a whole folder is gone
                gone.update(k for k in self._state if k == rel or k.startswith(rel.rstrip("/") + "/"))
        todo |= {rel for rel, deps in self.deps.items() if deps & changed and rel not in gone}
        return sorted(todo), gone

    def _build(self, report: BuildReport, on_progress: Callable[[int, int], None] | None, changed: set[str] | None) -> None:
        gone: set[str] = set()
        if changed is None or self._state is None or self.in_place:
            rels, full = list(self._walk()), True
        else:
            (rels, gone), full = self._affected(changed), False
        sources: list[Source] = []
        plain: list[str] = []
        deps: dict[str, set[str]] = {}
        for rel in rels:
            try:
                source = self.scan(rel)
            except DirectiveError as exc:
                report.errors.append(exc)
                continue
            report.files += source is not None
            if source is None or not source.directives:
                plain.append(rel)
                continue
            sources.append(source)
            deps[rel] = set()
            kept: list[Directive] = []
            for d in source.directives:
                try:
                    r = self._resolve(source, d)
                except DirectiveError as exc:
                    report.errors.append(exc)
                    continue
                if r is None:
                    kept.append(d)
                    continue
                source.resolved.append(r)
                deps[rel].update(r.deps)
            source.directives = [d for d in source.directives if d not in kept]
            report.directives += len(source.directives)
        if report.errors:
            return

        # Render each distinct image once; misses run concurrently on the engine's page pool.
        def key(r: Resolved) -> tuple[str, str]:
            return r.options.canonical_json(), r.base

        unique: dict[tuple[str, str], Resolved] = {}
        for source in sources:
            for r in source.resolved:
                unique.setdefault(key(r), r)
        self._ids.clear()
        misses = []
        for k, r in unique.items():
            hit = self.store.lookup(r.options, base=r.base)
            if hit:
                self._ids[k] = hit
            else:
                misses.append(k)
        if misses:
            workers = self.jobs or self.store.engine.pool_size
            with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="hcti-build") as pool:
                futures = {pool.submit(self.store.ensure, unique[k].options, base=unique[k].base): k for k in misses}
                for done, fut in enumerate(concurrent.futures.as_completed(futures), 1):
                    if on_progress:
                        on_progress(done, len(misses))
                    failure = fut.exception()
                    if failure is None:
                        self._ids[futures[fut]] = fut.result()[0]
                    elif isinstance(failure, HctiError):
                        for source in sources:
                            for d, r in zip(source.directives, source.resolved, strict=True):
                                if key(r) == futures[fut]:
                                    report.errors.append(d.error(failure))
                    else:
                        raise failure
        report.rendered = len(misses)
        report.reused = report.directives - len(misses)
        if report.errors:
            return

        # What a watcher must follow: templates (in deps already) and the local files each image's render read.
        inputs = {k: self.store.inputs(r.options, base=r.base) for k, r in unique.items()}
        # Each source's outputs: its rewritten text and its assets (or, for a plain file, its copy).
        produced: dict[str, dict[str, bytes | Path]] = {}
        for source in sources:
            outs: dict[str, bytes | Path] = {}
            try:
                outs[source.rel] = self._rewrite(source, outs)
            except DirectiveError as exc:
                report.errors.append(exc)
            produced[source.rel] = outs
            for r in source.resolved:
                deps[source.rel].update(inputs[key(r)])
        if report.errors:
            return
        for rel in plain:
            produced[rel] = {} if self.in_place else {rel: self.src / rel}
        state = {} if full else {k: v for k, v in (self._state or {}).items() if k not in gone}
        state.update(produced)
        self.deps = {} if full else {k: v for k, v in self.deps.items() if k not in gone and k not in produced}
        self.deps.update(deps)
        report.deps = {k: set(v) for k, v in self.deps.items()}
        outputs: dict[str, bytes | Path] = {}
        for outs in state.values():
            outputs.update(outs)
        self._write(outputs, report, None if full else {rel for outs in produced.values() for rel in outs})
        self._state = state

    def _asset_ref(self, source_rel: str, asset: Asset, outputs: dict[str, bytes | Path]) -> str:
        rel = posixpath.join(self.assets_dir, asset.name)
        outputs[rel] = asset.data
        return posixpath.relpath(rel, posixpath.dirname(source_rel) or ".")

    def _produce(self, d: Directive, r: Resolved) -> Asset:
        return produce(self.store, r, d, image_id=self._ids[(r.options.canonical_json(), r.base)])

    def _reference(self, source: Source, d: Directive, r: Resolved, outputs: dict[str, bytes | Path]) -> str:
        asset = self._produce(d, r)
        return reference_html(self._asset_ref(source.rel, asset, outputs), asset, r, d.attrs.get("_html_attrs"))

    def _replacement(self, source: Source, d: Directive, r: Resolved, outputs: dict[str, bytes | Path]) -> str:
        return _in_place(d, self._reference(source, d, r, outputs))

    def _rewrite(self, source: Source, outputs: dict[str, bytes | Path]) -> bytes:
        if source.notebook is None:
            reps = []
            for d, r in zip(source.directives, source.resolved, strict=True):
                reps.append((d.start, d.end, self._replacement(source, d, r, outputs)))
            return replace_spans(source.text, reps).encode("utf-8")
        nb = source.notebook
        by_cell: dict[int, list[tuple[Directive, Resolved]]] = {}
        for d, r in zip(source.directives, source.resolved, strict=True):
            assert d.cell is not None
            by_cell.setdefault(d.cell, []).append((d, r))
        for index, pairs in by_cell.items():
            cell = nb["cells"][index]
            if cell["cell_type"] == "code":
                d, r = pairs[0]
                cell["outputs"] = [self._notebook_output(source, r, d, outputs)]
                continue
            text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            reps = [(d.start, d.end, self._replacement(source, d, r, outputs)) for d, r in pairs]
            new = replace_spans(text, reps)
            cell["source"] = new.splitlines(keepends=True) if isinstance(cell["source"], list) else new
        return (json.dumps(nb, indent=1, ensure_ascii=False) + "\n").encode("utf-8")

    def _notebook_output(self, source: Source, r: Resolved, d: Directive, outputs: dict[str, bytes | Path]) -> dict[str, Any]:
        asset = self._produce(d, r)
        return notebook_output(asset, r, self._asset_ref(source.rel, asset, outputs))

    def _write(self, outputs: dict[str, bytes | Path], report: BuildReport, only: set[str] | None = None) -> None:
        """Write what changed (``only``: the outputs this build produced; None: all), then remove what a previous
        build wrote that no source produces any more."""
        for rel in sorted(outputs if only is None else only & outputs.keys()):
            target = self.out / rel
            value = outputs[rel]
            if isinstance(value, Path):
                if _same_file(value, target):
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(f".tmp-{target.name}")
                shutil.copy2(value, tmp)
                os.replace(tmp, target)
            elif not write_if_changed(target, value):
                continue
            report.written.append(rel)
        if self.in_place:
            return
        # Files a previous build wrote that this one did not (deleted sources, stale assets) are removed.
        manifest = self.out / MANIFEST
        try:
            previous = set(json.loads(manifest.read_text()))
        except (OSError, ValueError):
            previous = set()
        for rel in sorted(previous - set(outputs)):
            path = self.out / rel
            if path.is_file():
                path.unlink()
                report.removed.append(rel)
        listing = (json.dumps(sorted(outputs), indent=0) + "\n").encode()
        if not manifest.is_file() or manifest.read_bytes() != listing:
            atomic_write(manifest, listing)


def _same_file(src: Path, dst: Path) -> bool:
    try:
        a, b = src.stat(), dst.stat()
    except OSError:
        return False
    return a.st_size == b.st_size and a.st_mtime_ns == b.st_mtime_ns
