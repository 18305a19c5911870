"""Jupyter: `%load_ext hcti_build` and the `%%hcti` cell magic.

The browser lives on the engine's own thread (`hcti_build.browser`), so the magic works inside a kernel whose
event loop is already running, where Playwright's sync API refuses to start. Repeated cells reuse the warm
browser and the store (an unchanged cell is one hash); `%unload_ext hcti_build` and interpreter exit close
the browser. IPython is imported here only, when the extension is loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument
from IPython.core.magic_arguments import magic_arguments as ipython_magic_arguments
from IPython.display import publish_display_data
from traitlets import Unicode

from ..engine.browser import Engine
from ..errors import DirectiveError, HctiError
from ..files import write_if_changed
from ..pipeline.assets import Asset, produce
from ..pipeline.directives import (
    Directive,
    MagicLineError,
    magic_arguments,
    magic_body,
    magic_own_arguments,
    parse_magic_line,
)
from ..pipeline.notebook import notebook_output
from ..pipeline.resolve import Resolved, resolve
from ..pipeline.templates import Templates
from ..store.store import Store, default_store_path

F = TypeVar("F", bound=Callable[..., Any])


def _hcti_arguments(func: F) -> F:
    """IPython's magic_arguments from the one `%%hcti` argument list (also used by the notebook scanner)."""
    for flags, kw in reversed(magic_arguments()):
        func = argument(*flags, **kw)(func)
    return ipython_magic_arguments()(func)


@dataclass(frozen=True)
class HctiImage:
    """What `%%hcti -o VAR` keeps: the image's id and URL, where its bytes are, the bytes, and its format.
    Showing it (a cell ending in `VAR`) displays the image again."""

    id: str
    url: str
    path: Path
    data: bytes = field(repr=False)
    format: str
    size: tuple[int, int] | None  # pixels; None for a PDF
    _output: dict[str, Any] = field(repr=False, compare=False)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        return self._output["data"], self._output["metadata"]


@magics_class
class HctiMagics(Magics):
    """The `%%hcti` magic. Configure with `%config HctiMagics.store = "path"`."""

    store = Unicode("", help="Store folder (default: $HCTI_STORE, else .hcti in the working directory).").tag(config=True)
    default_format = Unicode("png", help="Format when a cell gives no --format (png, jpg, webp or pdf).").tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell, **kwargs)
        self._store: Store | None = None
        self.engine: Engine | None = None  # None: the process-wide browser, closed by unload and at exit

    def _open_store(self) -> Store:
        # Relative URLs in a cell resolve from the working directory (the notebook's folder); `%cd` moves it.
        root = Path.cwd().resolve()
        path = Path(self.store).resolve() if self.store else default_store_path()
        if self._store is None or self._store.root != root or self._store.path != path:
            if self._store is not None:
                self._store.close()
            self._store = Store(path, root=root, engine=self.engine)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            if self.engine is None:
                self._store.engine.close()
            self._store.close()
            self._store = None

    @no_var_expand  # the line is ours: `--css 'a{color:red}'` must not meet IPython's {var} expansion
    @_hcti_arguments
    @cell_magic
    def hcti(self, line: str, cell: str) -> None:
        """Render the cell's HTML (a snippet is cropped to its element) and show the image.

        The cell body is HTML, used as written: IPython's {var} and $var expansion never applies to it; pass
        --jinja to render {{ var }} from the notebook's namespace first. Parameter errors are the hosted API's.
        """
        try:
            # The scanner's parser, so a cell means the same run or built (IPython's splitter keeps quotes).
            values = parse_magic_line(line)
        except MagicLineError as exc:
            raise UsageError(f"%%hcti: {exc}") from None
        cell = magic_body(cell)  # the scanner's form of the body too: one cell, one id, run or converted
        try:
            own = magic_own_arguments(values)
            body = Templates(Path.cwd()).render_string(cell, self._namespace()) if own.jinja else cell
        except HctiError as exc:
            raise UsageError(f"%%hcti {exc.message}" if exc.param == "jinja" else f"%%hcti: {exc.message}") from None
        output, filename = own.output, own.filename
        if output is not None and not output.isidentifier():
            raise UsageError(f"-o: {output!r} is not a Python variable name")
        store = self._open_store()
        d = Directive("%%hcti", 1, 1, "magic", 0, len(cell), attrs=values, body=body)
        try:
            r = resolve(d, store.root, "", Templates(store.root), default_format=self.default_format or None)
            asset = produce(store, r)
        except DirectiveError as exc:
            if exc.status_code in (400, 422):
                raise UsageError(f"%%hcti: {exc.message}") from None
            raise
        path = None
        if filename:
            path = Path(filename).resolve()
            path.parent.mkdir(parents=True, exist_ok=True)
            write_if_changed(path, asset.data)
        out = notebook_output(asset, r, filename if filename and r.query.format == "pdf" else None)
        publish_display_data(data=out["data"], metadata=out["metadata"], source="hcti")
        if output:
            path = path or store.file(asset.image_id, r.query)
            self._namespace()[output] = self._result(store, asset, r, path, out)

    def _namespace(self) -> dict[str, Any]:
        assert self.shell is not None  # a registered magic always has its shell
        return self.shell.user_ns

    @staticmethod
    def _result(store: Store, asset: Asset, r: Resolved, path: Path, out: dict[str, Any]) -> HctiImage:
        url = store.url(asset.image_id) if r.query.is_identity else path.as_uri()
        return HctiImage(asset.image_id, url, path, asset.data, r.query.format, asset.pixels, out)


def load(ip: Any) -> None:
    ip.register_magics(HctiMagics)


def unload(ip: Any) -> None:
    """Close the browser and forget the magic (`%unload_ext hcti_build`)."""
    manager = ip.magics_manager
    instance = manager.registry.pop("HctiMagics", None)
    manager.magics["cell"].pop("hcti", None)
    if isinstance(instance, HctiMagics):
        instance.close()


__all__ = ["HctiImage", "HctiMagics", "load", "unload"]
