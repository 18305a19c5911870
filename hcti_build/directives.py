"""The one directive grammar, found in Markdown, HTML/Jinja2 templates and notebooks.

Scanning is pure: it returns `Directive` values with their place in the host text. `resolve` turns one into
validated options (rendering a Jinja2 template when the directive names one); `img_tag` is what replaces it.
Rendering and writing are the build's job (`hcti_build.build`), so MkDocs, the notebook tools and `hcti build`
share this module instead of re-parsing.

Markdown:  ```hcti width=600 alt="A card"       and   ![alt](hcti:card.html?title=Hi&width=600)
           <div class="card">...</div>
           ```
HTML:      {% hcti width=600, format="webp" %}...{% endhcti %}   and   <img src="hcti:card.html?title=Hi">
Notebooks: code cells starting with `%%hcti --width 600 ...`, and both Markdown forms in Markdown cells.
"""

from __future__ import annotations

import argparse
import functools
import html as htmllib
import json
import logging
import posixpath
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .errors import BadRequestError, DirectiveError, HctiError
from .options import FLAG_PARAMS, PARAM_HELP, CreateOptions, ImageQuery, parse_format

log = logging.getLogger("hcti_build.directives")
CREATE_KEYS = frozenset(f.name for f in fields(CreateOptions))
QUERY_KEYS = frozenset(f.name for f in fields(ImageQuery))  # includes `format`
TAG_KEYS = frozenset({"alt", "class", "title"})
MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
TEMPLATE_SUFFIXES = frozenset({".html", ".htm", ".j2", ".jinja", ".jinja2"})
NOTEBOOK_SUFFIXES = frozenset({".ipynb"})


@dataclass
class Directive:
    """One directive as found: where it is, what it asks for (raw values), and the span it replaces."""

    path: str  # the source, as shown in messages
    line: int  # 1-based
    col: int  # 1-based
    kind: str  # "fence", "link", "img", "tag", "magic"
    start: int  # span in the host text (or cell source) that the reference replaces
    end: int
    attrs: dict[str, Any] = field(default_factory=dict)  # parameters, alt/class/title
    body: str | None = None  # the HTML of a fence, tag or magic cell
    template: str | None = None  # `hcti:TEMPLATE?...`: the template path as written
    values: dict[str, str] = field(default_factory=dict)  # the template's values
    indent: str = ""
    cell: int | None = None  # notebook cell index
    problem: DirectiveError | None = None  # found unreadable: reported when resolved, with the others

    def error(self, exc: HctiError | str, col: int | None = None) -> DirectiveError:
        if isinstance(exc, str):
            return DirectiveError(exc, path=self.path, line=self.line, col=col or self.col)
        return DirectiveError.at(exc, self.path, self.line, col or self.col)


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


# -- attribute lists ------------------------------------------------------------------------------
_ATTR = re.compile(r"""\s*,?\s*(?P<key>[A-Za-z_][\w-]*)\s*=\s*(?P<val>"(?:[^"\\]|\\.)*"|'[^']*'|[^\s,"']+)""")


def parse_attrs(text: str, directive: Directive, offset: int) -> dict[str, str]:
    """`key=value` pairs, values optionally quoted; separated by spaces or commas. Anything else is an error."""
    attrs: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        if not text[pos:].strip(" \t,"):
            break
        m = _ATTR.match(text, pos)
        if not m:
            bad = text[pos:].strip(" \t,").split()[0]
            col = offset + text.index(bad, pos) + 1
            raise directive.error(f"expected key=value, got {bad!r}", col)
        key = m.group("key").replace("-", "_")
        val = m.group("val")
        if val[:1] == '"':
            val = re.sub(r"\\(.)", r"\1", val[1:-1])
        elif val[:1] == "'":
            val = val[1:-1]
        if key in attrs:
            raise directive.error(f"{key} is given twice", offset + m.start("key") + 1)
        attrs[key] = val
        pos = m.end()
    return attrs


# -- Markdown -------------------------------------------------------------------------------------
_FENCE_OPEN = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^\n]*)$")
_LINK = re.compile(r"!\[(?P<alt>(?:[^\]\\]|\\.)*)\]\(\s*<?(?P<target>hcti:[^\s)>]+)>?(?:\s+\"(?P<title>[^\"]*)\")?\s*\)")
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1)[\s\S])+?\1")


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def scan_markdown(text: str, path: str, *, first_line: int = 1) -> list[Directive]:
    """`hcti` fences and `![alt](hcti:...)` links, ignoring everything inside other code (fences, spans)."""
    found: list[Directive] = []
    lines = text.splitlines(keepends=True)
    starts = [0]
    for ln in lines:
        starts.append(starts[-1] + len(ln))
    masked = list(text)  # code blocks blanked out before looking for links
    i = 0
    while i < len(lines):
        m = _FENCE_OPEN.match(lines[i].rstrip("\r\n"))
        if not m or (m.group("fence")[0] == "`" and "`" in m.group("info")):
            i += 1
            continue
        fence, indent = m.group("fence"), m.group("indent")
        close = re.compile(r"^ {0,3}" + re.escape(fence[0]) + "{" + str(len(fence)) + r",}[ \t]*$")
        j = i + 1
        while j < len(lines) and not close.match(lines[j].rstrip("\r\n")):
            j += 1
        end = starts[min(j + 1, len(lines))]
        info = m.group("info")
        word = info.strip().split(None, 1)[0] if info.strip() else ""
        if word == "hcti":
            d = Directive(path, i + first_line, len(indent) + 1, "fence", starts[i], end, indent=indent)
            attr_text = info.strip()[4:]
            d.attrs = parse_attrs(attr_text, d, len(indent) + len(fence) + info.index("hcti") + 4)
            body_lines = [ln[len(indent) :] if ln.startswith(indent) else ln.lstrip(" ") for ln in lines[i + 1 : j]]
            d.body = "".join(body_lines)
            found.append(d)
        for k in range(starts[i], end):
            if masked[k] != "\n":
                masked[k] = " "
        i = j + 1
    flat = "".join(masked)
    flat = _CODE_SPAN.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), flat)
    for m in _LINK.finditer(flat):
        line, col = _line_col(text, m.start())
        d = Directive(path, line + first_line - 1, col, "link", m.start(), m.end())
        d.attrs = {"alt": _unescape_md(text[m.start("alt") : m.end("alt")])}
        if m.group("title") is not None:
            d.attrs["title"] = text[m.start("title") : m.end("title")]
        _parse_target(d, text[m.start("target") : m.end("target")])
        found.append(d)
    return sorted(found, key=lambda d: d.start)


def _unescape_md(text: str) -> str:
    return re.sub(r"\\([\\`*_{}\[\]()#+\-.!])", r"\1", text)


def _parse_target(d: Directive, target: str) -> None:
    """`hcti:TEMPLATE.html?key=value&...`: the template and its values."""
    parts = urlsplit(target[len("hcti:") :])
    if not parts.path:
        raise d.error("hcti: link needs a template file, e.g. hcti:card.html?title=Hello")
    d.template = unquote(parts.path)
    for key, val in parse_qsl(parts.query, keep_blank_values=True):
        if key in d.values:
            raise d.error(f"{key} is given twice")
        d.values[key] = val


# -- HTML and Jinja2 templates --------------------------------------------------------------------
_IMG = re.compile(r"<img\b(?P<attrs>[^>]*?)\bsrc\s*=\s*(?P<q>[\"'])(?P<src>hcti:[^\"']*)(?P=q)(?P<rest>[^>]*)>", re.I)
_HTML_ATTR = re.compile(r"""([^\s=/>]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s>]+))?""")
_TAG = re.compile(r"\{%-?\s*hcti\b(?P<args>(?:[^%]|%(?!\}))*?)-?%\}(?P<body>.*?)\{%-?\s*endhcti\s*-?%\}", re.S)


def scan_template(text: str, path: str) -> list[Directive]:
    """`{% hcti ... %}...{% endhcti %}` blocks and `<img src="hcti:...">` references."""
    found: list[Directive] = []
    for m in _TAG.finditer(text):
        line, col = _line_col(text, m.start())
        d = Directive(path, line, col, "tag", m.start(), m.end(), body=m.group("body"))
        d.attrs = tag_arguments(m.group("args"), d)
        found.append(d)
    for m in _IMG.finditer(text):
        if any(t.start <= m.start() < t.end for t in found):
            continue  # inside a tag body: the body is rendered, not rewritten
        line, col = _line_col(text, m.start())
        d = Directive(path, line, col, "img", m.start(), m.end())
        others = {}
        for am in _HTML_ATTR.finditer(m.group("attrs") + " " + m.group("rest")):
            name, raw = am.group(1).lower(), am.group(2)
            val = htmllib.unescape(raw[1:-1] if raw and raw[0] in "\"'" else (raw or ""))
            if name in TAG_KEYS:
                d.attrs[name] = val
            else:
                others[name] = val
        d.attrs["_html_attrs"] = others
        _parse_target(d, htmllib.unescape(m.group("src")))
        found.append(d)
    return sorted(found, key=lambda d: d.start)


@functools.cache
def _tag_parser() -> Any:
    import jinja2

    from .jinja import HctiExtension

    return jinja2.Environment(extensions=[HctiExtension])


def tag_arguments(args: str, d: Directive) -> dict[str, Any]:
    """The `{% hcti %}` tag's arguments, parsed by Jinja2 itself; a build needs them to be constants."""
    import jinja2
    from jinja2 import nodes

    try:
        tree = _tag_parser().parse("{% hcti " + args + " %}{% endhcti %}")
    except jinja2.TemplateSyntaxError as exc:
        raise d.error(f"hcti tag: {exc.message}") from None
    call = next(iter(tree.find_all(nodes.CallBlock)))
    out: dict[str, Any] = {}
    for kw in call.call.kwargs:
        try:
            out[kw.key] = kw.value.as_const()
        except nodes.Impossible:
            raise d.error(
                f"{kw.key}: a build needs a constant value here (render the template with HctiExtension instead)"
            ) from None
    return out


# -- notebooks ------------------------------------------------------------------------------------
class _ArgumentError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse would print and exit
        raise _ArgumentError(message)


def magic_arguments() -> list[tuple[list[str], dict[str, Any]]]:
    """`%%hcti` arguments as (flags, argparse keywords): every creation and image-query parameter, with both
    spellings (`--device-scale`, `--device_scale`), then the magic's own. The scanner's parser and IPython's
    `magic_arguments` (the magic's `%%hcti?` help) are both built from this one list."""
    spec: list[tuple[list[str], dict[str, Any]]] = []
    for name in sorted((CREATE_KEYS | QUERY_KEYS) - {"html"}):
        flags = ["--" + name.replace("_", "-")] + (["--" + name] if "_" in name else [])
        # argparse %-formats help strings
        kw: dict[str, Any] = {"dest": name, "default": None, "help": PARAM_HELP.get(name, "").replace("%", "%%")}
        if name in FLAG_PARAMS:
            kw.update(action="store_const", const=True)
        else:
            kw["metavar"] = name.upper()
        spec.append((flags, kw))
    own = {
        "--css-file": {"dest": "css_file", "help": "Read the CSS from this file."},
        "--alt": {"help": "Alternative text of the image (in exported notebooks)."},
        "--class": {"dest": "class_", "metavar": "CLASS", "help": "Class of the <img> in exported notebooks."},
        "--output": {"dest": "output", "metavar": "VAR", "help": "Keep the result in VAR (.id, .url, .path, .data)."},
        "--filename": {"help": "Also write the image to this file (its extension sets the format)."},
        "--jinja": {"action": "store_true", "help": "Render {{ var }} from the notebook's namespace first."},
    }
    aliases = {"--css-file": ["--css_file"], "--output": ["-o"]}
    for flag, kw in own.items():
        spec.append(([*aliases.get(flag, []), flag], {"default": False if flag == "--jinja" else None, **kw}))
    return spec


def magic_parser() -> argparse.ArgumentParser:
    """The `%%hcti` argument parser (raises instead of exiting)."""
    p = _Parser(prog="%%hcti", description="Render the cell's HTML to an image.", add_help=False)
    for flags, kw in magic_arguments():
        p.add_argument(*flags, **kw)
    return p


def parse_magic_line(line: str) -> dict[str, Any]:
    """The arguments after `%%hcti` as a dict of the values given (None omitted). Raises ValueError."""
    try:
        ns = magic_parser().parse_args(shlex.split(line))
    except (_ArgumentError, ValueError) as exc:
        raise ValueError(str(exc)) from None
    return {k.rstrip("_"): v for k, v in vars(ns).items() if v is not None and v is not False}


def scan_notebook(text: str, path: str) -> tuple[dict[str, Any], list[Directive]]:
    """The notebook JSON and its directives: `%%hcti` code cells and both Markdown forms in Markdown cells."""
    try:
        nb = json.loads(text)
        cells = nb["cells"]
    except (ValueError, KeyError, TypeError):
        raise DirectiveError("not a Jupyter notebook (invalid JSON or no cells)", path=path, line=1) from None
    return nb, scan_cells(cells, path)


def scan_cells(cells: Sequence[Mapping[str, Any]], path: str) -> list[Directive]:
    """Directives in notebook cells (JSON dicts or nbformat nodes); messages name `path#cellN`."""
    found: list[Directive] = []
    for index, cell in enumerate(cells):
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        where = f"{path}#cell{index + 1}"
        if cell.get("cell_type") == "markdown":
            for d in scan_markdown(source, where):
                d.cell = index
                found.append(d)
        elif cell.get("cell_type") == "code" and source.startswith("%%hcti") and source[6:7] in ("", " ", "\n", "\t"):
            first, _, body = source.partition("\n")
            d = Directive(where, 1, 1, "magic", 0, len(source), body=body, cell=index)
            try:
                d.attrs = parse_magic_line(first[len("%%hcti") :])
            except ValueError as exc:
                d.problem = d.error(f"%%hcti: {exc}")  # the other cells are still checked
            found.append(d)
    return found


def format_for_filename(filename: str, given: str | None) -> str:
    """`%%hcti --filename x.jpg`: the extension sets the format; it must agree with --format when both are given."""
    suffix = posixpath.splitext(filename)[1].lower().lstrip(".")
    if not suffix:
        return given or "png"
    fmt = parse_format(suffix)  # 422 for an unknown extension, as the API
    if given and parse_format(given) != fmt:
        raise BadRequestError(f"--filename {filename} does not match --format {given}", param="filename")
    return fmt


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
    import jinja2
    import jinja2.meta

    try:
        names = jinja2.meta.find_undeclared_variables(templates.env.parse(d.body or ""))
        if names:
            raise NeedsKernel(d, names)
        return templates.env.from_string(d.body or "").render()
    except jinja2.TemplateError as exc:
        raise d.error(f"--jinja: {exc}") from None
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise d.error(f"--jinja: {exc}") from None


def prepare_magic(d: Directive, templates: Templates, *, has_output: bool) -> bool:
    """Ready a directive for `resolve` where there is no kernel (a build, nbconvert): a `%%hcti` cell loses the
    magic's own arguments and gets its --jinja body rendered. False when that body reads the kernel's variables
    and the cell has the output the kernel made: keep that output. Raises DirectiveError when it has none."""
    if d.kind != "magic" or not magic_values(d) or not d.body:
        return True
    try:
        d.body = jinja_body(d, templates)
    except NeedsKernel as exc:
        if has_output:
            log.debug("%s: %s, keeping the kernel's output", d.path, exc)
            return False
        raise exc.error() from None
    return True


def magic_values(d: Directive) -> bool:
    """Takes the magic's own arguments out of a `%%hcti` directive, leaving parameters: -o is the kernel's,
    --filename sets the format. True when the cell asked for --jinja."""
    d.attrs.pop("output", None)
    filename = d.attrs.pop("filename", None)
    if filename:
        try:
            d.attrs["format"] = format_for_filename(filename, d.attrs.get("format"))
        except HctiError as exc:
            raise d.error(exc) from None
    return bool(d.attrs.pop("jinja", False))


# -- resolving ------------------------------------------------------------------------------------
def _text_of(html: str) -> str:
    """Visible text of an HTML snippet (a fallback alt text)."""
    text = re.sub(r"<(script|style)\b.*?</\1\s*>", " ", html, flags=re.S | re.I)
    text = htmllib.unescape(re.sub(r"<[^>]+>", " ", text))
    text = " ".join(text.split())
    return text if len(text) <= 125 else text[:124].rsplit(" ", 1)[0] + "…"


class Templates:
    """Jinja2 templates under the root, rendered sandboxed and autoescaped; records which files each read."""

    def __init__(self, root: Path, *, cache: bool = False) -> None:
        import jinja2
        from jinja2.sandbox import SandboxedEnvironment

        self.root = root
        self._read: list[str] = []
        outer = self

        class Loader(jinja2.FileSystemLoader):
            def get_source(self, environment: jinja2.Environment, template: str) -> Any:
                source = super().get_source(environment, template)
                outer._read.append(template)
                return source

        class Environment(SandboxedEnvironment):
            def join_path(self, template: str, parent: str) -> str:
                """Includes and extends may name a file next to the including template ("_style.html", "../x.html");
                a name that is not there is root-relative, as Jinja2 does by default."""
                near = posixpath.normpath(posixpath.join(posixpath.dirname(parent), template))
                return near if not near.startswith("../") and (root / near).is_file() else template

        self.env = Environment(
            loader=Loader(str(root)), autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True
        )
        if not cache:
            # Without a cache every render loads its templates, so `render` can name every file it read (a
            # watcher needs that). With one, compiled templates are reused (auto_reload still sees edits).
            self.env.cache = None
        self.env.filters["css"] = css_value

    def render(self, name: str, values: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
        """The rendered HTML and the templates it read (root-relative, the named one first; with cache=True,
        only those loaded for the first time)."""
        import jinja2

        self._read = []
        try:
            html = self.env.get_template(name).render(**values)
        except jinja2.TemplateNotFound as exc:
            raise BadRequestError(f"template not found: {exc.name}", param="template") from None
        except jinja2.TemplateSyntaxError as exc:
            raise BadRequestError(f"{exc.filename or name}:{exc.lineno}: {exc.message}", param="template") from None
        except jinja2.UndefinedError as exc:
            raise BadRequestError(f"template {name}: {exc.message} (pass it as ?key=value)", param="template") from None
        except jinja2.TemplateError as exc:
            raise BadRequestError(f"template {name}: {exc}", param="template") from None
        except UnicodeDecodeError as exc:
            raise BadRequestError(f"template {name} is not UTF-8 text (byte {exc.start})", param="template") from None
        except (TypeError, ValueError, ArithmeticError, LookupError) as exc:  # {{ 1 / 0 }}, a bad filter argument
            raise BadRequestError(f"template {name}: {type(exc).__name__}: {exc}", param="template") from None
        return html, tuple(dict.fromkeys(self._read))


def css_value(value: Any) -> Any:
    """`{{ x | css }}`: a value placed inside <style>, where HTML escaping does not apply (`&#34;` would break a
    quoted font name): kept verbatim, minus what could end the declaration, the rule or the element."""
    from markupsafe import Markup

    return Markup(re.sub(r"[<>{};\\]", "", str(value)))


def resolve(d: Directive, root: Path, source: str, templates: Templates, *, default_format: str | None = None) -> Resolved:
    """Validate a directive against the API's parameters. ``source`` is the host file, relative to root."""
    if d.problem:
        raise d.problem
    src_dir = posixpath.dirname(source)
    attrs = {k: v for k, v in d.attrs.items() if not k.startswith("_")}
    create: dict[str, Any] = {}
    query: dict[str, Any] = {}
    tag: dict[str, Any] = {}
    deps: tuple[str, ...] = ()
    # A template's values are its own: only parameters among them are taken from it (alt, class and title
    # come from the reference itself: ![alt](... "title"), <img alt class title>).
    values = {k: v for k, v in d.values.items() if k not in TAG_KEYS}
    for key, val in [*attrs.items(), *values.items()]:
        if key in TAG_KEYS:
            tag[key] = val
        elif key in QUERY_KEYS:
            query[key] = val
        elif key in CREATE_KEYS:
            create[key] = val
        elif key == "css_file":
            create["css"] = _read_local(d, root, src_dir, str(val))
            deps += (posixpath.normpath(posixpath.join(src_dir, str(val))),)
        elif d.template is None:
            create[key] = val  # reported by CreateOptions with every other bad field
    base = src_dir
    try:
        if d.template is not None:
            name = posixpath.normpath(posixpath.join(src_dir, d.template)) if not d.template.startswith("/") else d.template[1:]
            if name.startswith("../"):
                raise BadRequestError(f"template {d.template} is outside the source folder {root}", param="template")
            html, read = templates.render(name, {**d.values, **attrs})
            deps += read
            create["html"] = html
            base = posixpath.dirname(name)
        elif d.body is not None and "html" not in create and "url" not in create:
            create["html"] = d.body
        if "format" not in query and default_format:
            query["format"] = default_format
        opts, q = _both(create, query)
    except HctiError as exc:
        raise d.error(exc) from None
    alt = tag.get("alt")
    if alt is None:
        alt = _text_of(opts.html or "") if opts.html else ""
    return Resolved(opts, q, base, str(alt), tag.get("class"), tag.get("title"), deps)


def _both(create: Mapping[str, Any], query: Mapping[str, Any]) -> tuple[CreateOptions, ImageQuery]:
    """Creation options and image query checked together: one error names every bad field of both."""
    found: list[HctiError] = []
    try:
        opts: CreateOptions | None = CreateOptions.from_mapping(create)
    except BadRequestError as exc:
        found.append(exc)
        opts = None
    try:
        q = ImageQuery.from_mapping(query)
    except BadRequestError as exc:
        if not found:
            raise
        found.append(exc)
    if found:
        items = [e for exc in found for e in (exc.errors or [exc])]
        raise BadRequestError("; ".join(e.message for e in items), param=items[0].param, errors=items)
    assert opts is not None
    return opts, q


def _read_local(d: Directive, root: Path, src_dir: str, name: str) -> str:
    path = (root / src_dir / name).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise d.error(BadRequestError(f"css_file {name} not found under the project root", param="css_file"))
    try:
        return read_utf8(path, "css_file")
    except HctiError as exc:
        raise d.error(exc) from None


def read_utf8(path: Path, param: str) -> str:
    """A text input (``--html-file``, ``css_file=``): UTF-8, or a 400 naming the parameter, the file and where."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadRequestError(f"{param} {path} cannot be read: {exc.strerror or exc}", param=param) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise BadRequestError(
            f"{param} {path} is not UTF-8 text (byte {exc.start}, line {line}); save it as UTF-8", param=param
        ) from None


def img_tag(src: str, width: int | None, height: int | None, r: Resolved, extra: Mapping[str, str] | None = None) -> str:
    """The `<img>` that replaces a directive. width/height are CSS pixels (see `display_size`)."""
    attrs: dict[str, str | None] = {"src": src, "alt": r.alt}
    if width and height:
        attrs["width"], attrs["height"] = str(width), str(height)
    if r.cls:
        attrs["class"] = r.cls
    if r.title:
        attrs["title"] = r.title
    for k, v in (extra or {}).items():
        attrs.setdefault(k, v)
    parts = [k if v is None else f'{k}="{htmllib.escape(v, quote=True)}"' for k, v in attrs.items()]
    return "<img " + " ".join(parts) + ">"


def link_tag(src: str, r: Resolved) -> str:
    """A PDF cannot be an <img>: a link to it."""
    return f'<a href="{htmllib.escape(src, quote=True)}">{htmllib.escape(r.alt or "PDF")}</a>'


def display_size(pixels: tuple[int, int], r: Resolved) -> tuple[int, int]:
    """The size to show an image at: the width/height the directive asked for, else its pixels divided by the
    device scale (a 2x render shows at its CSS size, crisp on high-density screens)."""
    w, h = pixels
    if r.query.width or r.query.height:
        return w, h
    scale = r.options.scale
    return max(1, round(w / scale)), max(1, round(h / scale))


def replace_spans(text: str, replacements: Sequence[tuple[int, int, str]]) -> str:
    """Apply non-overlapping (start, end, new) replacements."""
    out, pos = [], 0
    for start, end, new in sorted(replacements):
        out.append(text[pos:start])
        out.append(new)
        pos = end
    out.append(text[pos:])
    return "".join(out)
