"""The one directive grammar, found in Markdown, HTML/Jinja2 templates and notebooks.

Scanning is pure: it returns `Directive` values with their place in the host text, and renders nothing (a
`{% hcti %}` tag's arguments are read by Jinja2's own parser, `templates.tag_arguments`). `hcti_build.resolve`
turns a directive into validated options; `hcti_build.assets` makes its image and the reference that replaces
it. MkDocs, the notebook tools and `hcti build` share this module instead of re-parsing.

Markdown:  ```hcti width=600 alt="A card"       and   ![alt](hcti:card.html?title=Hi&width=600)
           <div class="card">...</div>
           ```
HTML:      {% hcti width=600, format="webp" %}...{% endhcti %}   and   <img src="hcti:card.html?title=Hi">
Notebooks: code cells starting with `%%hcti --width 600 ...`, and both Markdown forms in Markdown cells.
"""

from __future__ import annotations

import argparse
import html as htmllib
import json
import posixpath
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from ..errors import BadRequestError, DirectiveError, HctiError
from ..options import CREATE_PARAMS, QUERY_PARAMS, parse_format
from .templates import TagSyntaxError, tag_arguments

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


# -- attribute lists ------------------------------------------------------------------------------
# `\s*(?:,\s*)?`: white space split one way only (`\s*,?\s*` backtracks quadratically over a run of spaces).
_ATTR = re.compile(r"""\s*(?:,\s*)?(?P<key>[A-Za-z_][\w-]*)\s*=\s*(?P<val>"(?:[^"\\]|\\.)*"|'[^']*'|[^\s,"']+)""")


def parse_attrs(text: str, directive: Directive, offset: int) -> dict[str, str]:
    """`key=value` pairs, values optionally quoted; separated by spaces or commas. Anything else is an error."""
    attrs: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        rest = text[pos:].strip(" \t,")
        if not rest.strip():  # only separators and other white space are left
            break
        m = _ATTR.match(text, pos)
        if not m:
            bad = rest.split()[0]
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
        try:
            d.attrs = tag_arguments(m.group("args"))
        except TagSyntaxError as exc:
            raise d.error(str(exc)) from None
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
    declared = {**CREATE_PARAMS, **QUERY_PARAMS}
    for name in sorted(declared.keys() - {"html"}):
        flags = ["--" + name.replace("_", "-")] + (["--" + name] if "_" in name else [])
        # argparse %-formats help strings
        kw: dict[str, Any] = {"dest": name, "default": None, "help": declared[name].describe().replace("%", "%%")}
        if declared[name].flag:
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


class MagicLineError(BadRequestError, ValueError):
    """The line after `%%hcti` could not be read (a quote left open, an unknown argument): the API's 400, and a
    ValueError as `parse_magic_line` has always raised."""


def parse_magic_line(line: str) -> dict[str, Any]:
    """The arguments after `%%hcti` as a dict of the values given (None omitted). Raises MagicLineError."""
    try:
        ns = magic_parser().parse_args(shlex.split(line))
    except (_ArgumentError, ValueError) as exc:
        raise MagicLineError(str(exc), param="hcti") from None
    return {k.rstrip("_"): v for k, v in vars(ns).items() if v is not None and v is not False}


def scan_notebook(text: str, path: str) -> tuple[dict[str, Any], list[Directive]]:
    """The notebook JSON and its directives: `%%hcti` code cells and both Markdown forms in Markdown cells."""
    try:
        nb = json.loads(text)
        cells = nb["cells"]
    except (ValueError, KeyError, TypeError, RecursionError):
        cells = None
    if not isinstance(cells, list):
        raise DirectiveError("not a Jupyter notebook (invalid JSON or no cells)", path=path, line=1) from None
    return nb, scan_cells(cells, path)


def scan_cells(cells: Sequence[Mapping[str, Any]], path: str) -> list[Directive]:
    """Directives in notebook cells (JSON dicts or nbformat nodes); messages name `path#cellN`."""
    found: list[Directive] = []
    for index, cell in enumerate(cells):
        where = f"{path}#cell{index + 1}"
        source = cell.get("source", "") if isinstance(cell, Mapping) else None
        if isinstance(source, list) and all(isinstance(s, str) for s in source):
            source = "".join(source)
        if not isinstance(source, str):  # nbformat's cell: an object whose source is text or lines of it
            raise DirectiveError("not a notebook cell (an object whose source is text)", path=where, line=1)
        if cell.get("cell_type") == "markdown":
            for d in scan_markdown(source, where):
                d.cell = index
                found.append(d)
        elif cell.get("cell_type") == "code" and source.startswith("%%hcti") and source[6:7] in ("", " ", "\r", "\n", "\t"):
            first, _, body = source.partition("\n")
            d = Directive(where, 1, 1, "magic", 0, len(source), body=magic_body(body), cell=index)
            try:
                d.attrs = parse_magic_line(first[len("%%hcti") :])  # a "\r" left at its end is white space to shlex
            except MagicLineError as exc:
                d.problem = d.error(f"%%hcti: {exc}")  # the other cells are still checked
            found.append(d)
    return found


def magic_body(html: str) -> str:
    """A `%%hcti` cell's HTML in its one form, whoever reads the cell, so that a cell has one id: a kernel gives
    the magic the body with a newline added, a notebook file holds it as saved (with or without a newline at the
    end, with `\r\n` from some editors, with blank lines left after it). Line ends become `\n`, white space at the
    end goes, and HTML that is left ends with one `\n`: the kernel's form of a cell as Jupyter saves it, so the ids
    printed in kernels stay. (The HTML parser reads `\r\n` as `\n` and trailing white space renders nothing.)"""
    html = html.replace("\r\n", "\n").replace("\r", "\n").rstrip(" \t\n")
    return html + "\n" if html else ""


def format_for_filename(filename: str, given: str | None) -> str:
    """`%%hcti --filename x.jpg`: the extension sets the format; it must agree with --format when both are given."""
    suffix = posixpath.splitext(filename)[1].lower().lstrip(".")
    if not suffix:
        return given or "png"
    fmt = parse_format(suffix)  # 422 for an unknown extension, as the API
    if given and parse_format(given) != fmt:
        raise BadRequestError(f"--filename {filename} does not match --format {given}", param="filename")
    return fmt


def replace_spans(text: str, replacements: Sequence[tuple[int, int, str]]) -> str:
    """Apply non-overlapping (start, end, new) replacements."""
    out, pos = [], 0
    for start, end, new in sorted(replacements):
        out.append(text[pos:start])
        out.append(new)
        pos = end
    out.append(text[pos:])
    return "".join(out)


@dataclass
class MagicArguments:
    """The `%%hcti` arguments that are the magic's own, not the API's."""

    output: str | None  # -o VAR: the kernel's variable
    filename: str | None  # --filename: also written there; its extension set the format
    jinja: bool  # --jinja: the body is a template of the kernel's namespace


def magic_own_arguments(values: dict[str, Any]) -> MagicArguments:
    """Takes the magic's own arguments out of parsed `%%hcti` values (`parse_magic_line`), leaving the API's
    parameters and alt/class/css_file; --filename sets the format. Raises HctiError when they disagree."""
    own = MagicArguments(values.pop("output", None), values.pop("filename", None), bool(values.pop("jinja", False)))
    if own.filename:
        values["format"] = format_for_filename(own.filename, values.get("format"))
    return own
