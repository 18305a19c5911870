"""Hypothesis properties (#28, part 5): every parser of user input gives a value or the project's own error (an
HctiError), never another exception. The option parser, the crop (on small images), directive attributes and
the three scanners, the `%%hcti` line, and the head parser `hcti og` uses. Derandomized: a run is repeatable."""

from __future__ import annotations

import io
import json
import string
import time
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from hcti_build import HctiError
from hcti_build.options import (
    COMPAT_PARAMS,
    CREATE_PARAMS,
    CROP_PARAMS,
    QUERY_PARAMS,
    CreateOptions,
    ImageQuery,
    Length,
    ListQuery,
    split_params,
    validate,
)
from hcti_build.pipeline.directives import (
    Directive,
    magic_own_arguments,
    parse_attrs,
    parse_magic_line,
    scan_cells,
    scan_markdown,
    scan_notebook,
    scan_template,
)
from hcti_build.pipeline.head import card_tags, edit_head, read_head
from hcti_build.store.imaging import apply, crop_box

settings.register_profile(
    "fuzz", max_examples=400, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)
FUZZ = settings.get_profile("fuzz")

# Text a parser meets: digits of every script (int() reads some, isdigit() more), signs, units, separators.
NUMBER_TEXT = st.text(alphabet="0123456789.-+eE_%px ²١٣\t\n,:xXinfaINFAN", max_size=24)
# 10**5000 is built, not listed: Hypothesis could not print the strategy (int() refuses 4,300 digits as text).
HUGE = st.one_of(
    st.builds(pow, st.sampled_from([10, -10]), st.sampled_from([400, 5000])), st.sampled_from([2**1024, 1e308, -0.0])
)
NUMBERS = st.one_of(st.integers(), st.floats(), HUGE, NUMBER_TEXT, st.sampled_from(["9" * 400, "1" * 5000 + "_1"]))
LONE = st.sampled_from(["\udcff", "<p>\ud800</p>", "Europe/\udcff"])  # lone surrogates, as JSON's "\udcff" reads
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=12), LONE)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
PDF_KEYS = ["format", "width", "height", "margin", "landscape", "scale", "printBackground", "print_background",
            "pageRanges", "page_ranges", "preferCSSPageSize", "displayHeaderFooter", "top", "evil"]  # fmt: skip
PDF_OPTIONS = st.one_of(
    st.dictionaries(st.sampled_from(PDF_KEYS), st.one_of(JSONISH, st.dictionaries(st.sampled_from(["top", "left", "x"]), NUMBERS)),
                    max_size=4),
    st.text(alphabet='{}[]":,0123456789atrue ', max_size=40),
)  # fmt: skip


def values_for(names: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Mappings of these names (and a stranger) to anything: JSON values, numbers in every spelling, text."""
    keys = st.one_of(st.sampled_from([*names, "colour", "", "\udcff"]), st.text(max_size=3))  # a JSON key "\udcff"
    value = st.one_of(NUMBERS, JSONISH, PDF_OPTIONS)
    return st.dictionaries(keys, value, max_size=6)


CREATE_NAMES = [*CREATE_PARAMS, *sorted(COMPAT_PARAMS)]


def sent(exc: HctiError) -> bytes:
    """The error as a server sends it: its JSON in UTF-8 (which has no lone surrogates)."""
    return json.dumps(exc.to_json(), ensure_ascii=False).encode("utf-8")


@FUZZ
@given(values_for(CREATE_NAMES), st.booleans())
def test_creation_options_from_any_mapping(data: dict[str, Any], with_html: bool) -> None:
    if with_html:
        data = {"html": "<p>x</p>", **data}
    try:
        opts = CreateOptions.from_mapping(data)
    except HctiError as exc:
        assert exc.status_code == 400 and exc.validation_errors and sent(exc)
        return
    # What the store keeps (and reads again for a .pdf) is read back as the same options.
    assert CreateOptions.from_mapping(json.loads(opts.canonical_json())) == opts


@FUZZ
@given(values_for(list(QUERY_PARAMS)), st.one_of(st.none(), st.text(max_size=6), st.sampled_from(["jpg", "PDF", ".webp"])))
def test_image_query_from_any_mapping(data: dict[str, Any], fmt: str | None) -> None:
    try:
        q = ImageQuery.from_mapping(data, fmt)
    except HctiError as exc:
        assert exc.status_code in (400, 422) and sent(exc)
        return
    assert q.format in ("png", "jpg", "webp", "pdf") and q.cache_key()


QUERY_TEXT = st.text(alphabet=string.ascii_lowercase[:6] + "0123456789_%-.=&?#px²", max_size=40)


def as_text(value: Any) -> str:
    try:
        return str(value)
    except ValueError:  # an int of over 4,300 digits
        return "9" * 5000


def as_query(data: dict[str, Any]) -> str:
    return "&".join(f"{quote(as_text(k), errors='replace')}={quote(as_text(v), errors='replace')}" for k, v in data.items())


@FUZZ
@given(st.one_of(QUERY_TEXT, st.text(max_size=30), st.builds(lambda d: "id.jpg?" + as_query(d), values_for(list(QUERY_PARAMS)))))
def test_image_query_parse_of_any_spec(spec: str) -> None:
    try:
        image_id, q = ImageQuery.parse(spec)
    except HctiError as exc:
        assert exc.status_code in (400, 422)
        return
    assert isinstance(image_id, str) and isinstance(q, ImageQuery)


@FUZZ
@given(values_for(list(ListQuery.__dataclass_fields__)))
def test_list_query_from_any_mapping(data: dict[str, Any]) -> None:
    try:
        q = ListQuery.from_mapping(data)
    except HctiError as exc:
        assert exc.status_code == 400
        return
    assert 1 <= q.count <= 50


@FUZZ
@given(st.one_of(NUMBERS, JSONISH))
def test_a_crop_length_from_anything(raw: Any) -> None:
    try:
        length = Length.parse("x_1", raw)
    except HctiError as exc:
        assert exc.param == "x_1"
        return
    assert 0 <= length.value <= (100 if length.percent else 16384)
    assert 0 <= length.size(40) and -16384 <= length.position(40) <= 16384 + 40


LENGTH = st.builds(
    lambda sign, num, unit: f"{sign}{num:g}{unit}",
    st.sampled_from(["", "-"]),
    st.one_of(st.integers(0, 60), st.floats(0, 100, allow_nan=False), st.integers(0, 16384)),
    st.sampled_from(["", "px", "%"]),
)
CROP = st.fixed_dictionaries(
    {},
    optional={
        **{name: LENGTH for name in CROP_PARAMS if name != "aspect_ratio"},
        "aspect_ratio": st.builds(lambda a, b: f"{a}_{b}", st.integers(1, 16384), st.integers(1, 40)),
        "width": st.integers(1, 48),
        "height": st.integers(1, 48),
        "dpi": st.integers(30, 600),
    },
)


@FUZZ
@given(st.integers(1, 40), st.integers(1, 40), CROP, st.sampled_from(["png", "jpg", "webp", "pdf"]))
def test_the_crop_of_any_valid_query_on_a_small_image(width: int, height: int, query: dict[str, Any], fmt: str) -> None:
    try:
        q = ImageQuery.from_mapping(query, fmt)
    except HctiError:
        assume(False)  # an invalid query: the parser's property, above
        return
    try:
        left, top, right, bottom = crop_box(width, height, q)
    except HctiError as exc:  # an empty region, named by a crop parameter
        assert exc.status_code == 400 and exc.param in CROP_PARAMS, exc.param
        return
    assert 0 <= left < right <= width and 0 <= top < bottom <= height
    buf = io.BytesIO()
    Image.new("RGBA", (width, height), (200, 10, 10, 128)).save(buf, "PNG")
    try:
        out = apply(buf.getvalue(), q)
    except HctiError as exc:
        assert exc.status_code == 400
        return
    assert out[:4] in (b"\x89PNG", b"\xff\xd8\xff\xe0", b"RIFF", b"%PDF")


# -- directives -----------------------------------------------------------------------------------------
PIECES = ["```hcti", "```", "````", "~~~hcti", "~~~", "![a](hcti:", "![", "](", "hcti:", "card.html", "?", "&",
          "title=Hi", "x=1", "=", '"', "'", "\\", " ", ",", "\n", "\r\n", "\t", "width=600", "alt=\"A\"", "{% hcti",
          "%}", "{%- hcti", "-%}", "{% endhcti %}", "<img src=\"hcti:", "<img ", "src='hcti:a.html?b=c'", ">", "`",
          "<p>x</p>", "%%hcti", "--width", "é", "\x00", "{{", "}}", "(", ")", "[", "]", "#"]  # fmt: skip
PIECEMEAL = st.lists(st.sampled_from(PIECES), max_size=20).map("".join)
DIRECTIVE_TEXT = st.one_of(
    PIECEMEAL,
    st.text(max_size=60),
    # Each form whole, around anything: what reaches its attribute reader, Jinja2's tag parser, a link's target.
    st.builds("```hcti {}\n{}\n```\n".format, PIECEMEAL, PIECEMEAL),
    st.builds("{{% hcti {} %}}{}{{% endhcti %}}".format, PIECEMEAL, PIECEMEAL),
    st.builds("![{}](hcti:{})".format, PIECEMEAL, PIECEMEAL),
    st.builds('<img src="hcti:{}" {}>'.format, PIECEMEAL, PIECEMEAL),
)


def quietly(scan: Any, *args: Any) -> Any:
    """``scan(*args)``'s result, or None for the project's own error (a DirectiveError, located)."""
    try:
        return scan(*args)
    except HctiError as exc:
        assert str(exc)
        return None


@FUZZ
@given(DIRECTIVE_TEXT)
@example(" ,\n")  # found once: only white space other than spaces and tabs left (an IndexError)
def test_attribute_lists_of_any_text(text: str) -> None:
    attrs = quietly(parse_attrs, text, Directive("a.md", 1, 1, "fence", 0, 0), 8)
    assert attrs is None or all(isinstance(k, str) and isinstance(v, str) for k, v in attrs.items())


def test_attribute_lists_are_read_in_one_pass() -> None:
    """50,000 spaces before a bad token: an error at once (a pattern that splits white space two ways takes
    minutes), and found where it is."""
    started = time.monotonic()
    assert quietly(parse_attrs, " " * 50_000 + "!", Directive("a.md", 1, 1, "fence", 0, 0), 0) is None
    assert time.monotonic() - started < 2


@FUZZ
@given(DIRECTIVE_TEXT)
def test_markdown_and_templates_of_any_text(text: str) -> None:
    for found in (quietly(scan_markdown, text, "a.md"), quietly(scan_template, text, "a.html")):
        for d in found or []:
            assert 0 <= d.start <= d.end <= len(text) and d.line >= 1


CELL = st.fixed_dictionaries(
    {"cell_type": st.sampled_from(["code", "markdown", "raw", 5])},
    optional={"source": st.one_of(DIRECTIVE_TEXT, st.lists(DIRECTIVE_TEXT, max_size=3), st.integers(), st.none())},
)


def as_json(value: Any) -> str:
    try:
        return json.dumps(value)
    except ValueError:  # an int of over 4,300 digits, which json cannot write either
        return "[" + "9" * 5000 + "]"


NOTEBOOK = st.one_of(
    st.fixed_dictionaries({"cells": st.lists(st.one_of(CELL, JSONISH), max_size=4)}).map(as_json),
    st.builds(lambda cells: as_json({"cells": cells}), JSONISH),
    st.builds(as_json, JSONISH),
    st.text(max_size=40),
)


@FUZZ
@given(NOTEBOOK)
def test_notebooks_of_any_json(text: str) -> None:
    found = quietly(scan_notebook, text, "a.ipynb")
    for d in found[1] if found else []:
        assert d.kind in ("fence", "link", "magic") and d.cell is not None


@FUZZ
@given(st.lists(st.one_of(CELL, JSONISH), max_size=4))
def test_notebook_cells_of_anything(cells: list[Any]) -> None:
    quietly(scan_cells, cells, "a.ipynb")


MAGIC = ["--width", "--width=", "--format", "--filename", "x.gif", "x.jpg", "x", "-o", "--output", "card", "--jinja",
         "--css-file", "--device-scale", "--device_scale", "--full-screen", "--full-screen=1", "--pdf-options", "{}",
         "--alt", "--class", "'", '"', "\\", " ", "=", "1", "nan", "-1", "9" * 30, "--", "-", "--wid", "é"]  # fmt: skip


@FUZZ
@given(st.one_of(st.lists(st.sampled_from(MAGIC), max_size=8).map(" ".join), st.text(max_size=40)))
def test_the_hcti_magic_line_of_any_text(line: str) -> None:
    """The line after `%%hcti` as the magic and the notebook tools read it: its arguments, the magic's own, and
    the API's parameters among them checked (what `resolve` then renders)."""
    try:
        values = parse_magic_line(line)
        magic_own_arguments(values)
        create, query, rest = split_params(values)
        validate({"html": "<p>x</p>", **create}, query)
    except HctiError as exc:
        assert exc.message
        return
    assert set(rest) <= {"alt", "class", "css_file"}


# -- the head `hcti og` reads and writes ------------------------------------------------------------------
HEAD = ["<!doctype html>", "<html lang='en'>", "<head>", "</head>", "<HEAD >", "<body>", "<title>", "</title>", "T",
        '<meta property="og:title" content="A">', '<meta name="twitter:card" content="x">', "<meta property=og:image>",
        "<meta ", 'content="', '"', "'", ">", "<", "/>", "<link rel=canonical href=/a>", "<link rel=stylesheet>",
        "<script>", "</script>", "<style>", "</style>", "<!--", "-->", "\n", " ", "&amp;", "&", "<p>", "é", "\r",
        "<noscript>", "<template>", "</head", "<![CDATA[", "<meta http-equiv=refresh>"]  # fmt: skip
PAGE = st.one_of(st.lists(st.sampled_from(HEAD), max_size=24).map("".join), st.text(max_size=80))
TAGS = card_tags("T & <t>", "D", "https://e.org/a/", "https://e.org/c.png", "image/png", (1200, 630), "Site")


@FUZZ
@given(PAGE, st.sets(st.sampled_from(sorted(TAGS)), max_size=4))
# What the search found once, kept: an unclosed style (the tags went inside it), an end tag not spelt </head>
# (its end miscounted), a </head> in a comment (the parse stopped there), a comment or a tag left open (the tags
# went inside: HTMLParser reads on where a browser does not).
@example("<style>", set())
@example("&</head<HEAD >", set())
@example("<!-- </head> -->", set())
@example("<title>a</title><!--", set())
@example("<!--<title>x</title>", set())
@example("<!--<!--<title>", set())
@example("<!--<!doctype html><p>", set())
@example("<meta content=\"<!doctype html><html lang='en'>", set())
def test_the_head_of_any_page_is_read_and_edited_once(page: str, replace: set[str]) -> None:
    head = read_head(page)
    assert 0 <= head.insert_at <= len(page) and all(0 <= m.start <= m.end <= len(page) for m in head.metas)
    edited = edit_head(page, head, TAGS, replace)
    assert edit_head(edited, read_head(edited), TAGS, replace) == edited  # the same edit again changes nothing
    if "og:type" not in page:  # the tags it adds are not inside a comment or a tag left open before them
        probe = HTMLParser(convert_charrefs=False)
        probe.feed(edited[: edited.index('<meta property="og:type"')])
        assert not probe.rawdata.startswith("<"), probe.rawdata  # nothing held back unclosed
