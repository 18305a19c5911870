"""Jinja2 for hcti-build: `Templates` (the sandboxed, autoescaped templates of a project, recording which files
each render read), the `css` filter, and the syntax of the `{% hcti %}` tag (`HctiTagSyntax`, `tag_arguments`),
which the directive scanner reads and `hcti_build.jinja.HctiExtension` renders.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import mimetypes
import posixpath
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
import jinja2.meta
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.parser import Parser
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from ..errors import BadRequestError
from ..files import Tree

# The built-in social card (`card.html`, 1200x630), shared by the MkDocs plugin and `hcti og`, and its fonts.
BUILTIN_TEMPLATES = Path(__file__).resolve().parents[1] / "html"
CARD_FONTS = '"Noto Sans", "Noto Sans CJK SC", "Noto Sans Arabic", "Noto Sans Hebrew", "Noto Color Emoji", sans-serif'


class Templates:
    """Jinja2 templates under the root, rendered sandboxed and autoescaped; records which files each read. A
    template, an include or an extends is read by the file rules (`Tree`): inside the root once symlinks are
    resolved, no hidden part (`.env`), not in ``private`` (a store); any other name is not found."""

    def __init__(self, root: Path, *, cache: bool = False, private: Sequence[Path] = ()) -> None:
        self.root = root
        self.tree = tree = Tree.of(root, private)
        self._read: list[str] = []
        outer = self

        class Environment(SandboxedEnvironment):
            def join_path(self, template: str, parent: str) -> str:
                """Includes and extends may name a file next to the including template ("_style.html", "../x.html");
                a name that is not there is root-relative, as Jinja2 does by default."""
                near = posixpath.normpath(posixpath.join(posixpath.dirname(parent), template))
                return near if tree.file(near) is not None else template

        self.env = Environment(
            loader=_Loader(tree, lambda name: outer._read.append(name)),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
        )
        if not cache:
            # Without a cache every render loads its templates, so `render` can name every file it read (a
            # watcher needs that). With one, compiled templates are reused (auto_reload still sees edits).
            self.env.cache = None
        self.env.filters["css"] = css_value

    def render(self, name: str, values: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
        """The rendered HTML and the templates it read (root-relative, the named one first; with cache=True,
        only those loaded for the first time). Errors are 400s naming the template, in the API's form."""
        self._read = []
        with _template_errors(name):
            html = self.env.get_template(name).render(**values)
        return html, tuple(dict.fromkeys(self._read))

    def render_string(self, source: str, values: Mapping[str, Any], *, what: str = "--jinja") -> str:
        """A template given as text (a `--jinja` cell). Errors are 400s starting with ``what``."""
        with _string_errors(what):
            return self.env.from_string(source).render(**values)

    def variables(self, source: str, *, what: str = "--jinja") -> set[str]:
        """The names a template given as text reads from its context."""
        with _string_errors(what):
            return jinja2.meta.find_undeclared_variables(self.env.parse(source))


class _Loader(jinja2.BaseLoader):
    """Templates by the file rules: a name they refuse (outside the root, through a symlink out of it, hidden) is
    not found, as a missing one is."""

    def __init__(self, tree: Tree, read: Callable[[str], object]) -> None:
        self.tree, self.read = tree, read

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        path = self.tree.file(template)
        if path is None:
            raise jinja2.TemplateNotFound(template)
        try:
            mtime = path.stat().st_mtime
            source = path.read_bytes().decode("utf-8")
        except OSError:
            raise jinja2.TemplateNotFound(template) from None
        self.read(template)

        def uptodate() -> bool:
            try:
                return path.stat().st_mtime == mtime
            except OSError:
                return False

        return source, str(path), uptodate


@contextlib.contextmanager
def _template_errors(name: str) -> Iterator[None]:
    """Jinja2's errors (and the Python errors a template's expressions raise) as one 400 naming the template:
    the one place they are translated."""
    try:
        yield
    except Exception as exc:
        message = _template_message(name, exc)
        if message is None:
            raise
        raise BadRequestError(message, param="template") from None


@contextlib.contextmanager
def _string_errors(what: str) -> Iterator[None]:
    try:
        yield
    except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError) as exc:
        raise BadRequestError(f"{what}: {exc}", param="jinja") from None


def _template_message(name: str, exc: BaseException) -> str | None:
    if isinstance(exc, jinja2.TemplateNotFound):
        return f"template not found: {exc.name}"
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return f"{exc.filename or name}:{exc.lineno}: {exc.message}"
    if isinstance(exc, jinja2.UndefinedError):
        return f"template {name}: {exc.message} (pass it as ?key=value)"
    if isinstance(exc, jinja2.TemplateError):
        return f"template {name}: {exc}"
    if isinstance(exc, UnicodeDecodeError):
        return f"template {name} is not UTF-8 text (byte {exc.start})"
    if isinstance(exc, (TypeError, ValueError, ArithmeticError, LookupError)):  # {{ 1 / 0 }}, a bad filter argument
        return f"template {name}: {type(exc).__name__}: {exc}"
    return None


def css_value(value: Any) -> Any:
    """`{{ x | css }}`: a value placed inside <style>, where HTML escaping does not apply (`&#34;` would break a
    quoted font name): kept verbatim, minus what could end the declaration, the rule or the element."""
    return Markup(re.sub(r"[<>{};\\]", "", str(value)))


class TagSyntaxError(ValueError):
    """A `{% hcti %}` tag whose arguments cannot be read in a build; the message names the argument."""


class HctiTagSyntax(Extension):
    """Parses `{% hcti key=value, ... %}BODY{% endhcti %}` into a call of `_render(name, lineno, caller,
    **arguments)`, which a subclass provides (`hcti_build.jinja.HctiExtension`)."""

    tags = {"hcti"}

    def parse(self, parser: Parser) -> nodes.Node:
        lineno = next(parser.stream).lineno
        kwargs: list[nodes.Keyword] = []
        while parser.stream.current.type != "block_end":
            if kwargs:
                parser.stream.skip_if("comma")
            key = parser.stream.expect("name")
            parser.stream.expect("assign")
            kwargs.append(nodes.Keyword(key.value, parser.parse_expression(), lineno=key.lineno))
        body = parser.parse_statements(("name:endhcti",), drop_needle=True)
        args: list[nodes.Expr] = [nodes.Const(parser.name or "<template>"), nodes.Const(lineno)]
        call = self.call_method("_render", args, kwargs, lineno=lineno)
        return nodes.CallBlock(call, [], [], body).set_lineno(lineno)


@functools.cache
def _tag_parser() -> Any:
    import jinja2

    return jinja2.Environment(extensions=[HctiTagSyntax])


def tag_arguments(args: str) -> dict[str, Any]:
    """The `{% hcti %}` tag's arguments, parsed by Jinja2 itself; a build needs them to be constants. Raises
    TagSyntaxError."""
    try:
        tree = _tag_parser().parse("{% hcti " + args + " %}{% endhcti %}")
    except jinja2.TemplateSyntaxError as exc:
        raise TagSyntaxError(f"hcti tag: {exc.message}") from None
    call = next(iter(tree.find_all(nodes.CallBlock)))
    out: dict[str, Any] = {}
    for kw in call.call.kwargs:
        try:
            out[kw.key] = kw.value.as_const()
        except nodes.Impossible:
            raise TagSyntaxError(
                f"{kw.key}: a build needs a constant value here (render the template with HctiExtension instead)"
            ) from None
    return out


DEFAULT_PRIMARY, DEFAULT_ACCENT = "#4051b5", "#ffc105"  # the built-in card's own (Material's indigo and amber)


def card_options(primary: str = DEFAULT_PRIMARY, accent: str = DEFAULT_ACCENT) -> dict[str, Any]:
    """The built-in card's `options` for a site's two colours (default: Material's indigo and amber): a darker
    shade of the primary for its disc, and dark or light text by the primary's luminance."""
    return {
        "background": primary,
        "background_end": _mix(primary, "#000000", 0.45),
        "accent": accent,
        "color": "#111111" if _luminance(primary) > 0.6 else "#ffffff",
        "font_family": CARD_FONTS,
        "logo": None,
    }


def card_site(
    name: str, url: str, options: dict[str, Any], *, description: str = "", logo: str | None = None, language: str = "en"
) -> dict[str, Any]:
    """The card template's `site`: its name, URL and host (the URL without its scheme), description, logo, language,
    and the palette of the card's ``options``."""
    parts = urlsplit(url)
    return {
        "name": name,
        "description": description,
        "url": url,
        "host": parts.netloc + parts.path.rstrip("/"),
        "logo": logo,
        "language": language,
        "palette": {"primary": options["background"], "accent": options["accent"]},
    }


def file_data_uri(path: Path, limit: int = 512 * 1024) -> str | None:
    """A file (a logo) inside a card's HTML: its bytes are then part of the card's request (a new logo, new
    cards), and a card that loads no file can replace the one before it in place (Engine(isolate=False)).
    None for a file that cannot be read, or one over ``limit`` (load it from its file instead)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if len(data) > limit:
        return None
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


def _rgb(color: str) -> tuple[int, int, int]:
    h = color.lstrip("#")
    h = "".join(ch * 2 for ch in h) if len(h) == 3 else h[:6]
    try:
        return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)
    except ValueError:
        return 64, 81, 181


def _mix(a: str, b: str, t: float) -> str:
    ra, rb = _rgb(a), _rgb(b)
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(ra, rb, strict=True))


def _luminance(color: str) -> float:
    r, g, b = _rgb(color)
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255
