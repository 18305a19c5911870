"""A project build: scan sources for directives, render what the store lacks, write assets, rewrite references.

Incremental by content: a directive whose inputs did not change is a store hit (one hash, no browser), and
output files are only written when their bytes change, so a second build of an unchanged tree writes nothing
and launches nothing. A build with any error reports every error and writes no output at all.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import posixpath
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BadRequestError, DirectiveError, HctiError
from ..files import Outputs, Tree, copy_file, sweep, write_if_changed
from ..store.store import Store
from .assets import Asset, in_place, produce, reference_html
from .directives import (
    MARKDOWN_SUFFIXES,
    NOTEBOOK_SUFFIXES,
    TEMPLATE_SUFFIXES,
    Directive,
    replace_spans,
    scan_markdown,
    scan_notebook,
    scan_template,
)
from .notebook import notebook_output, prepare_magic, rewrite_cells
from .resolve import Resolved, resolve
from .templates import Templates

SKIP_DIRS = frozenset({"__pycache__", "node_modules", "_hcti_build"})
MANIFEST = ".hcti-build.json"


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
    from_remote: str = ""  # " (N from <remote>)" when the store has a remote
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
            f"{self.reused} reused{self.from_remote}, {len(self.written)} files written in {self.seconds:.2f} s"
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
            raise BadRequestError(f"{src} is not a folder", param="src")
        self.in_place = in_place
        self.out = self.src if in_place else Path(out or "_hcti_build").resolve()
        if not in_place:
            _check_out(self.src, self.out)
        self.assets_dir = posixpath.normpath(assets_dir.strip("/")) or "assets/hcti"
        self.store = store or Store(root=self.src)
        self.default_format = default_format
        self.jobs = jobs
        self.sources = Tree.of(self.src, (self.store.path, self.out) if not in_place else (self.store.path,))
        self.templates = Templates(self.src, private=(self.store.path,))
        self.outputs = Outputs(self.out, MANIFEST)  # what builds wrote (kept: a watcher hashes each output once)
        self._ids: dict[tuple[str, str], str] = {}  # per build: each distinct image is looked up once
        # Kept between builds for incremental ones: each source's outputs, and the files its directives read.
        self._state: dict[str, dict[str, bytes | Path]] | None = None
        self.deps: dict[str, set[str]] = {}

    # -- scanning
    def _walk(self, top: Path | None = None) -> Iterator[str]:
        """The sources under ``top``, by the file rules: a symlink to a file outside SRC (or hidden, or in the
        store) is not a source, so it is neither read nor copied."""
        skip = {self.out, self.store.path}
        for folder, dirs, files in os.walk(top or self.src):
            here = Path(folder)
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS and (here / d).resolve() not in skip)
            for name in sorted(files):
                rel = (here / name).relative_to(self.src).as_posix()
                if self.sources.file(rel) is not None:  # a regular file: a FIFO or a device would hang the build
                    yield rel

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
        """scan -> render -> rewrite -> write, each step stopping the build at the first with errors."""
        gone: set[str] = set()
        if changed is None or self._state is None or self.in_place:
            rels, full = list(self._walk()), True
        else:
            (rels, gone), full = self._affected(changed), False
        sources, plain, deps = self._scan_all(rels, report)
        if report.errors:
            return
        unique: dict[tuple[str, str], Resolved] = {}
        for source in sources:
            for r in source.resolved:
                unique.setdefault(_key(r), r)  # each distinct image once
        self._render_all(unique, sources, report, on_progress)
        if report.errors:
            return
        produced = self._rewrite_all(sources, unique, deps, report)
        if report.errors:
            return
        for rel in plain:
            produced[rel] = {} if self.in_place else {rel: self.src / rel}
        self._commit(produced, deps, gone, full, report)

    def _scan_all(self, rels: list[str], report: BuildReport) -> tuple[list[Source], list[str], dict[str, set[str]]]:
        """Every source read and its directives resolved: the sources with directives, the plain files, and
        the templates each source's directives read."""
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
        return sources, plain, deps

    def _render_all(
        self,
        unique: dict[tuple[str, str], Resolved],
        sources: list[Source],
        report: BuildReport,
        on_progress: Callable[[int, int], None] | None,
    ) -> None:
        """Each distinct image looked up once; the misses rendered concurrently on the engine's page pool."""
        self._ids.clear()
        misses = []
        for k, r in unique.items():
            hit = self.store.lookup(r.options, base=r.base)
            if hit:
                self._ids[k] = hit
            else:
                misses.append(k)
        mark = self.store.remote_mark()
        report.rendered = len(misses) - self._ensure_all(unique, misses, sources, report, on_progress)
        report.reused = report.directives - report.rendered
        report.from_remote = self.store.remote_note(mark)

    def _ensure_all(
        self,
        unique: dict[tuple[str, str], Resolved],
        misses: list[tuple[str, str]],
        sources: list[Source],
        report: BuildReport,
        on_progress: Callable[[int, int], None] | None,
    ) -> int:
        """The local misses fetched from the remote or rendered, concurrently (failures reported with their
        directives); how many were fetched, not rendered."""
        fetched = 0
        if not misses:
            return fetched
        with concurrent.futures.ThreadPoolExecutor(self.jobs or self.store.concurrency, thread_name_prefix="hcti-build") as pool:
            futures = {pool.submit(self.store.ensure, unique[k].options, base=unique[k].base): k for k in misses}
            for done, fut in enumerate(concurrent.futures.as_completed(futures), 1):
                if on_progress:
                    on_progress(done, len(misses))
                failure = fut.exception()
                if failure is None:
                    self._ids[futures[fut]], rendered = fut.result()
                    fetched += not rendered
                elif isinstance(failure, HctiError):
                    report.errors.extend(
                        d.error(failure)
                        for source in sources
                        for d, r in zip(source.directives, source.resolved, strict=True)
                        if _key(r) == futures[fut]
                    )
                else:
                    raise failure
        return fetched

    def _rewrite_all(
        self, sources: list[Source], unique: dict[tuple[str, str], Resolved], deps: dict[str, set[str]], report: BuildReport
    ) -> dict[str, dict[str, bytes | Path]]:
        """Each source's outputs (its rewritten text and its assets), and what a watcher must follow: the
        templates (in ``deps`` already) and the local files each image's render read."""
        inputs = {k: self.store.inputs(r.options, base=r.base) for k, r in unique.items()}
        produced: dict[str, dict[str, bytes | Path]] = {}
        for source in sources:
            outs: dict[str, bytes | Path] = {}
            try:
                outs[source.rel] = self._rewrite(source, outs)
            except DirectiveError as exc:
                report.errors.append(exc)
            produced[source.rel] = outs
            for r in source.resolved:
                deps[source.rel].update(inputs[_key(r)])
        return produced

    def _commit(
        self,
        produced: dict[str, dict[str, bytes | Path]],
        deps: dict[str, set[str]],
        gone: set[str],
        full: bool,
        report: BuildReport,
    ) -> None:
        """This build's outputs merged with those an incremental build kept, and written."""
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
        return produce(self.store, r, d, image_id=self._ids[_key(r)])

    def _replacement(self, source: Source, d: Directive, r: Resolved, outputs: dict[str, bytes | Path]) -> str:
        asset = self._produce(d, r)
        src = self._asset_ref(source.rel, asset, outputs)
        return in_place(d, reference_html(src, asset, r, d.attrs.get("_html_attrs")))

    def _rewrite(self, source: Source, outputs: dict[str, bytes | Path]) -> bytes:
        pairs = list(zip(source.directives, source.resolved, strict=True))
        if source.notebook is None:
            reps = [(d.start, d.end, self._replacement(source, d, r, outputs)) for d, r in pairs]
            return replace_spans(source.text, reps).encode("utf-8")
        rewrite_cells(
            source.notebook["cells"],
            pairs,
            replacement=lambda d, r: self._replacement(source, d, r, outputs),
            output=lambda d, r: self._notebook_output(source, r, d, outputs),
        )
        return (json.dumps(source.notebook, indent=1, ensure_ascii=False) + "\n").encode("utf-8")

    def _notebook_output(self, source: Source, r: Resolved, d: Directive, outputs: dict[str, bytes | Path]) -> dict[str, Any]:
        asset = self._produce(d, r)
        return notebook_output(asset, r, self._asset_ref(source.rel, asset, outputs))

    def _write(self, outputs: dict[str, bytes | Path], report: BuildReport, only: set[str] | None = None) -> None:
        """Write what changed (``only``: the outputs this build produced; None: all), then remove what a previous
        build wrote that no source produces any more."""
        written = self.outputs
        # Every place checked before anything is written (never through a folder that leads out of the output,
        # nothing in the way), and the images first: a failure leaves no page pointing at an image not written.
        images = self.assets_dir + "/"
        order = sorted(outputs if only is None else only & outputs.keys(), key=lambda r: (not r.startswith(images), r))
        targets = {rel: written.tree.output(rel, "out") for rel in order}
        for target in targets.values():
            written.tree.writable(target, "out")
        for rel, target in targets.items():
            value = outputs[rel]
            if isinstance(value, Path):
                if _same_file(value, target):
                    continue
                copy_file(value, target)
            elif not write_if_changed(target, value):
                continue
            report.written.append(rel)
        if self.in_place:
            return
        # Files a previous build wrote that this one did not (deleted sources, stale assets) are removed: only
        # those it wrote, still as it wrote them, inside the output folder (`Outputs`).
        for rel, path in written.stale(outputs):
            path.unlink(missing_ok=True)
            report.removed.append(rel)
        written.save(outputs)


def _check_out(src: Path, out: Path) -> None:
    """--out is a folder that is not the sources: not SRC or a folder holding it, and, inside SRC, a folder that
    is new, empty or a build's (its manifest is there): anything else there is sources a build would overwrite."""
    if out == src or src.is_relative_to(out):
        raise BadRequestError("--out must not be the source folder or contain it (use --in-place)", param="out")
    if out.exists() and not out.is_dir():
        raise BadRequestError(f"--out {out} is not a folder", param="out")
    if out.is_relative_to(src) and out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise BadRequestError(
            f"--out {out} is inside the source folder and holds files no build wrote: choose a new or empty folder",
            param="out",
        )


def _key(r: Resolved) -> tuple[str, str]:
    """What makes two directives the same image: their options and document folder."""
    return r.options.canonical_json(), r.base


def _same_file(src: Path, dst: Path) -> bool:
    try:
        a, b = src.stat(), dst.stat()
    except OSError:
        return False
    return a.st_size == b.st_size and a.st_mtime_ns == b.st_mtime_ns
