"""Bad input through every surface (library, HTTP server, CLI, build, magic): one clear error naming every bad
field, in the API's words, and never a traceback; what is accepted has a defined meaning."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Served, load
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from hcti_build import BadRequestError, CreateOptions, HctiError, Store

HTML = "<p>x</p>"
# (name, parameters, the fields the one error must name)
BAD: list[tuple[str, dict[str, Any], set[str]]] = [
    ("nan", {"html": HTML, "device_scale": math.nan}, {"device_scale"}),
    ("infinite", {"html": HTML, "max_wait_ms": math.inf}, {"max_wait_ms"}),
    ("negative", {"html": HTML, "ms_delay": -1}, {"ms_delay"}),
    ("not-a-number", {"html": HTML, "viewport_width": "wide", "viewport_height": "10"}, {"viewport_width"}),
    ("nul", {"html": "<p>\x00</p>"}, {"html"}),
    ("empty", {"html": ""}, {"html"}),
    ("blank", {"html": " \n\t"}, {"html"}),
    ("wrong-type", {"html": ["<p>x</p>"]}, {"html"}),
    ("bool-word", {"html": HTML, "full_screen": "sometimes"}, {"full_screen"}),
    ("unknown", {"html": HTML, "colour": "red"}, {"colour"}),
    (
        "all-at-once",
        {"html": "", "ms_delay": "soon", "colour": 1, "device_scale": -2},
        {"html", "ms_delay", "colour", "device_scale"},
    ),
]
CLI = [sys.executable, "-m", "hcti_build.cli"]


def fields(errors: list[dict[str, str]]) -> set[str]:
    return {e["field"] for e in errors}


@pytest.mark.parametrize(("name", "params", "bad"), BAD, ids=[b[0] for b in BAD])
def test_the_library_names_every_bad_field(name: str, params: dict[str, Any], bad: set[str]) -> None:
    with pytest.raises(BadRequestError) as err:
        CreateOptions.from_mapping(params)
    assert err.value.status_code == 400 and fields(err.value.validation_errors) == bad
    assert err.value.message == "; ".join(e["message"] for e in err.value.validation_errors)


def test_what_is_accepted_has_a_defined_meaning() -> None:
    as_numbers = CreateOptions.from_mapping({"html": HTML, "ms_delay": 500, "device_scale": 1.5, "full_screen": True})
    as_strings = CreateOptions.from_mapping({"html": HTML, "ms_delay": "500", "device_scale": "1.5", "full_screen": "true"})
    assert as_numbers == as_strings  # numbers and booleans as strings (form bodies, directive attributes)
    empty_optional = CreateOptions.from_mapping({"html": HTML, "css": "", "selector": "", "google_fonts": None})
    assert empty_optional == CreateOptions.from_mapping({"html": HTML})  # empty means not given, as in the API
    lone = CreateOptions.from_mapping({"html": "<p>\udcff</p>"})  # a lone surrogate (JSON "\udcff")
    assert lone.html == "<p>\ufffd</p>"  # replaced, as a JavaScript server encodes it to UTF-8


def test_malformed_html_renders_as_a_browser_parses_it(store: Store) -> None:
    image = store.create({"html": "<div style='width:30px;height:6px;background:#00f'><p <b>>>unclosed<<", "device_scale": 1})
    im = load(store.get(image["id"])).convert("RGB")
    assert im.getpixel((2, 2)) == (0, 0, 255)
    lone = store.create({"html": "<p>\udcff</p>"})  # a lone surrogate renders as U+FFFD
    assert lone == store.create({"html": "<p>\ufffd</p>"})


def test_an_invalid_selector_is_a_400_naming_it(store: Store) -> None:
    with pytest.raises(BadRequestError) as err:
        store.create({"html": HTML, "selector": "]]]"})
    assert err.value.param == "selector" and err.value.message == "selector ']]]' is not a valid CSS selector"
    assert store.list()["images"] == []


def test_the_server_answers_400_with_every_bad_field(serve: Callable[..., Served]) -> None:
    s = serve()
    for name, params, bad in BAD:
        body = json.dumps(params, allow_nan=True)  # NaN and Infinity as JavaScript writes them; json.loads reads them
        r = s.client.post("/v1/image", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 400, (name, r.text)
        assert fields(r.json()["validation_errors"]) == bad, name
    raw = [
        (b'{"html": "<p>\xff\xfe</p>"}', "application/json", "body"),  # invalid UTF-8
        (b"[1, 2]", "application/json", "body"),
        (b'{"html": ', "application/json", "body"),
        (b"html=%3Cp%3E%00%3C%2Fp%3E", "application/x-www-form-urlencoded", "html"),  # NUL, form-encoded
    ]
    for content, kind, field in raw:
        r = s.client.post("/v1/image", content=content, headers={"content-type": kind})
        assert r.status_code == 400 and fields(r.json()["validation_errors"]) == {field}, (content, r.text)
    r = s.client.post("/v1/image", files={"html": ("page.html", b"<p>\xff</p>", "text/html")})
    assert r.status_code == 400 and r.json()["message"] == "html must be UTF-8 text"
    assert s.client.get("/v1/images").json()["images"] == []


def test_the_cli_prints_the_apis_error_never_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "latin1.html").write_bytes("<p>café</p>".encode("latin-1"))
    (tmp_path / "nul.html").write_bytes(b"<p>\x00</p>")
    cases = [
        (["--html", HTML, "--device-scale", "NaN"], {"device_scale"}),
        (["--html", HTML, "--ms-delay", "-1", "--max-wait-ms", "soon"], {"ms_delay", "max_wait_ms"}),
        (["--html", ""], {"html"}),
        (["--html-file", "latin1.html"], {"html_file"}),
        (["--html-file", "nul.html"], {"html"}),
        (["--html", HTML, "--css-file", "latin1.html"], {"css_file"}),
    ]
    for args, bad in cases:
        done = subprocess.run([*CLI, "render", *args], cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and "Traceback" not in done.stderr, (args, done.stderr)
        assert fields(json.loads(done.stderr)["validation_errors"]) == bad, args
    assert not (tmp_path / ".hcti" / "objects").exists() or not list((tmp_path / ".hcti" / "objects").rglob("*.png"))
    assert (
        "not UTF-8 text (byte 6, line 1)"
        in subprocess.run([*CLI, "render", "--html-file", "latin1.html"], cwd=tmp_path, capture_output=True, text=True).stderr
    )


def test_a_build_names_the_file_and_line_of_every_bad_directive(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "latin1.css").write_bytes("p{content:'é'}".encode("latin-1"))
    (src / "broken.html").write_text("<p>{{ 1 / 0 }}</p>")
    (src / "page.md").write_text(
        "# Page\n\n```hcti device_scale=NaN width=-3 colour=red\n<p>a</p>\n```\n\n"
        "```hcti css_file=latin1.css\n<p>b</p>\n```\n\n![card](hcti:broken.html)\n\n```hcti\n```\n"
    )
    (src / "nul.md").write_text("```hcti\n<p>\x00</p>\n```\n")
    nb = {
        "cells": [
            {"cell_type": "code", "source": s, "metadata": {}, "outputs": [], "execution_count": None}
            for s in ("%%hcti --bogus 1\n<p>x</p>", "%%hcti --device_scale nan\n<p>x</p>")
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (src / "book.ipynb").write_text(json.dumps(nb))
    done = subprocess.run([*CLI, "build", "src", "--out", "out"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert lines[:-1] == [
        "src/book.ipynb#cell1:1:1: %%hcti: unrecognized arguments: --bogus 1",
        "src/book.ipynb#cell2:1:1: device_scale must be a number between 0.1 and 3",
        "src/nul.md:1:1: html must not contain NUL bytes",
        "src/page.md:3:1: Unknown parameter: colour; device_scale must be a number between 0.1 and 3; "
        "width must be an integer between 1 and 5000",
        f"src/page.md:7:1: css_file {src / 'latin1.css'} is not UTF-8 text (byte 11, line 1); save it as UTF-8",
        "src/page.md:11:1: template broken.html: ZeroDivisionError: division by zero",
        "src/page.md:13:1: HTML is Required",
    ], done.stderr
    assert lines[-1].startswith("hcti build failed:") and not (tmp_path / "out").exists()  # nothing half-written


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("%%hcti --device-scale nan\n<p>x</p>", "%%hcti: device_scale must be a number between 0.1 and 3"),
        ("%%hcti --ms-delay -1 --max-wait-ms 0\n<p>x</p>", "ms_delay must be an integer between 0 and 20000; max_wait_ms"),
        ("%%hcti\n<p>\x00</p>", "%%hcti: html must not contain NUL bytes"),
        ("%%hcti --selector ']]]'\n<p>x</p>", "selector ']]]' is not a valid CSS selector"),
    ],
)
def test_the_magic_shows_the_apis_error_never_a_traceback(shell: InteractiveShell, cell: str, message: str) -> None:
    with capture_output() as shown:
        result = shell.run_cell(cell)
    err = result.error_in_exec
    assert isinstance(err, (UsageError, HctiError)) and message in str(err)  # bad arguments, or what the render found
    assert message in shown.stderr + shown.stdout and "Traceback" not in shown.stderr + shown.stdout
    assert shown.outputs == []
