"""The directive grammar, pure: positions, attributes, what is ignored, and errors with path:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest

from hcti_build.errors import DirectiveError
from hcti_build.pipeline.directives import (
    magic_body,
    parse_magic_line,
    scan_cells,
    scan_markdown,
    scan_notebook,
    scan_template,
)
from hcti_build.pipeline.resolve import resolve
from hcti_build.pipeline.templates import Templates

MD = """# Title

```hcti width=600 alt="A card, quoted" class='wide'
<div class="card">Hi</div>
```

````markdown
```hcti width=1
<p>an example inside another fence is not a directive</p>
```
````

Text ![Release **card**](hcti:card.html?title=Hello%20world&format=webp "Card title") and `![x](hcti:no.html)`.
"""


def test_markdown_fences_and_links_with_positions() -> None:
    found = scan_markdown(MD, "docs/index.md")
    assert [d.kind for d in found] == ["fence", "link"]
    fence, link = found
    assert (fence.line, fence.col) == (3, 1)
    assert fence.attrs == {"width": "600", "alt": "A card, quoted", "class": "wide"}
    assert fence.body == '<div class="card">Hi</div>\n'
    assert MD[fence.start : fence.end].startswith("```hcti") and MD[fence.start : fence.end].endswith("```\n")
    assert (link.line, link.col) == (13, 6)
    assert link.template == "card.html"
    assert link.values == {"title": "Hello world", "format": "webp"}
    assert link.attrs == {"alt": "Release **card**", "title": "Card title"}


def test_indented_fence_keeps_its_indent_and_tilde_fences_work() -> None:
    found = scan_markdown("- item\n\n  ~~~hcti\n  <b>x</b>\n  ~~~\n", "a.md")
    assert len(found) == 1 and found[0].indent == "  " and found[0].body == "<b>x</b>\n"


@pytest.mark.parametrize(
    ("info", "message", "col"),
    [
        ("```hcti width=600 oops", "expected key=value, got 'oops'", 19),
        ("```hcti width=1 width=2", "width is given twice", 17),
    ],
)
def test_bad_attributes_name_line_and_column(info: str, message: str, col: int) -> None:
    with pytest.raises(DirectiveError) as err:
        scan_markdown(f"intro\n{info}\n<p>x</p>\n```\n", "docs/a.md")
    assert str(err.value) == f"docs/a.md:2:{col}: {message}"


def test_template_tag_arguments_are_parsed_by_jinja() -> None:
    text = (
        '<p>\n  {% hcti width=600, format="webp", alt="A \\"quoted\\" badge", transparent_background=true %}<b>x</b>{% endhcti %}'
    )
    (d,) = scan_template(text, "t.html")
    assert (d.line, d.col) == (2, 3)
    assert d.attrs == {"width": 600, "format": "webp", "alt": 'A "quoted" badge', "transparent_background": True}
    assert d.body == "<b>x</b>"


def test_template_tag_with_a_runtime_value_is_an_error_in_a_build() -> None:
    with pytest.raises(DirectiveError, match=r"t.html:1:1: width: a build needs a constant value"):
        scan_template("{% hcti width=w %}<b>x</b>{% endhcti %}", "t.html")


def test_img_reference_keeps_its_other_attributes() -> None:
    (d,) = scan_template('<img loading="lazy" src="hcti:c.html?a=1&amp;width=10" alt="A">', "x.html")
    assert d.template == "c.html" and d.values == {"a": "1", "width": "10"}
    assert d.attrs["alt"] == "A" and d.attrs["_html_attrs"] == {"loading": "lazy"}


def test_notebook_magic_cells_and_markdown_cells() -> None:
    nb = (
        '{"cells": [{"cell_type": "markdown", "source": ["x\\n", "```hcti\\n", "<b>m</b>\\n", "```\\n"]},'
        '{"cell_type": "code", "source": "%%hcti --width 100 --full-screen\\n<b>c</b>", "outputs": []},'
        '{"cell_type": "code", "source": "%%hctix\\n", "outputs": []}], "nbformat": 4}'
    )
    _, found = scan_notebook(nb, "n.ipynb")
    assert [(d.kind, d.cell) for d in found] == [("fence", 0), ("magic", 1)]
    assert found[1].attrs == {"width": "100", "full_screen": True} and found[1].body == "<b>c</b>\n"


def test_a_magic_cell_has_one_body_however_it_was_saved() -> None:
    """The body a kernel gives the magic (a newline added) and the bodies a notebook file may hold for the same
    cell (lines or one string, `\r\n`, blank lines after it) are one body: one cell, one id (#30)."""
    saved = [
        ["%%hcti --width 100\n", "<b>c</b>\n", "<i>d</i>"],
        "%%hcti --width 100\n<b>c</b>\n<i>d</i>",
        "%%hcti --width 100\r\n<b>c</b>\r\n<i>d</i>\r\n",
        "%%hcti --width 100\n<b>c</b>\n<i>d</i>  \n\n\t\n",
    ]
    for source in saved:
        (d,) = scan_cells([{"cell_type": "code", "source": source}], "n.ipynb")
        assert (d.attrs, d.body) == ({"width": "100"}, "<b>c</b>\n<i>d</i>\n"), source
    assert magic_body("<b>c</b>\n<i>d</i>\n") == "<b>c</b>\n<i>d</i>\n"  # what a kernel gives the magic
    assert magic_body(" \r\n\n") == ""  # nothing: "HTML is Required", as before
    assert magic_body("<pre>a\u00a0") == "<pre>a\u00a0\n"  # a no-break space is not white space to drop


def test_magic_line_errors_are_clear() -> None:
    assert parse_magic_line("--device_scale 1 --format webp") == {"device_scale": "1", "format": "webp"}
    with pytest.raises(ValueError, match="unrecognized arguments: --nope"):
        parse_magic_line("--nope 1")


def test_resolve_routes_parameters_and_rejects_unknown_keys(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "card.html").write_text('{% include "_p.html" %}<h1>{{ title }}</h1>')
    (tmp_path / "t" / "_p.html").write_text("<p>{{ width }}</p>")
    templates = Templates(tmp_path)
    (link,) = scan_markdown("![A](hcti:../t/card.html?title=%3CHi%3E&width=300&device_scale=1)", "docs/x.md")
    r = resolve(link, tmp_path, "docs/x.md", templates)
    assert r.options.html == "<p>300</p><h1>&lt;Hi&gt;</h1>"  # autoescaped, include found next to the template
    assert r.query.width == 300 and r.options.device_scale == 1 and r.base == "t"
    assert r.deps == ("t/card.html", "t/_p.html") and r.alt == "A"
    (fence,) = scan_markdown("```hcti widht=3\n<b>x</b>\n```\n", "docs/x.md")
    with pytest.raises(DirectiveError, match=r"^docs/x.md:1:1: Unknown parameter: widht$"):
        resolve(fence, tmp_path, "docs/x.md", templates)
    (bad,) = scan_markdown("```hcti device_scale=9\n<b>x</b>\n```\n", "docs/x.md")
    with pytest.raises(DirectiveError, match="device_scale must be a number between 0.1 and 3"):
        resolve(bad, tmp_path, "docs/x.md", templates)
    (missing,) = scan_markdown("![A](hcti:../t/card.html)", "docs/x.md")
    with pytest.raises(
        DirectiveError, match=r"docs/x.md:1:1: template t/card.html: 'width' is undefined \(pass it as \?key=value\)"
    ):
        resolve(missing, tmp_path, "docs/x.md", templates)
