"""`hcti build` end to end with real Chromium: every host format, incremental rebuilds, errors, the Jinja2 tag."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jinja2
import pytest
from conftest import load

from hcti_build import Engine, Store
from hcti_build.pipeline.build import Builder

BOX = '<div style="width:{w}px;height:{h}px;background:{c}"></div>'


def make_tree(root: Path) -> None:
    (root / "guide" / "deep").mkdir(parents=True)
    (root / "templates").mkdir()
    (root / "css").mkdir()
    (root / "css" / "a.css").write_text(".a{width:120px;height:60px;background:rgb(255,0,0)}")
    (root / "css" / "b.css").write_text(".b{width:80px;height:40px;background:rgb(0,0,255)}")
    (root / "templates" / "card.html").write_text('{% include "_style.html" %}<div class="card">{{ title }}</div>')
    (root / "templates" / "_style.html").write_text(
        "<style>.card{width:300px;height:150px;background:rgb(0,128,0);color:#fff;font:20px sans-serif}</style>"
    )
    (root / "index.md").write_text(
        "# Home\n\n"
        '```hcti alt="Red box"\n<link rel="stylesheet" href="css/a.css"><div class="a"></div>\n```\n\n'
        "A card: ![Green card](hcti:templates/card.html?title=Hi&format=jpg&width=150)\n"
    )
    (root / "guide" / "deep" / "page.md").write_text(
        "Deep page.\n\n"
        "```hcti format=webp device_scale=1\n"
        '<link rel="stylesheet" href="../../css/a.css"><div class="a"></div>\n```\n\n'
        '```hcti\n<link rel="stylesheet" href="../../css/b.css"><div class="b"></div>\n```\n'
    )
    (root / "guide" / "page.html").write_text(
        "<body>\n"
        '{% hcti device_scale=1, alt="Blue" %}' + BOX.format(w=40, h=20, c="blue") + "{% endhcti %}\n"
        '<img loading="lazy" src="hcti:../templates/card.html?title=Page&amp;height=75" alt="Card">\n</body>\n'
    )
    nb = {
        "cells": [
            {"cell_type": "markdown", "metadata": {},
             "source": ["## Cells\n", "```hcti device_scale=1\n", BOX.format(w=30, h=30, c="red") + "\n", "```\n"]},
            {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
             "source": ["%%hcti --device-scale 1 --format jpg\n", BOX.format(w=64, h=32, c="blue")]},
        ],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
    }  # fmt: skip
    (root / "nb.ipynb").write_text(json.dumps(nb, indent=1))
    (root / "photo.bin").write_bytes(b"\x00\x01 not a source")


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def img_srcs(text: str) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', text)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    make_tree(src)
    return src


def test_build_rewrites_every_host_format(tree: Path, engine: Engine) -> None:
    out = tree.parent / "out"
    store = Store(tree.parent / "store", root=tree, engine=engine)
    report = Builder(tree, out, store=store).build()
    assert report.ok, report.errors
    assert (report.files, report.directives, report.rendered, report.reused) == (6, 8, 8, 0)

    index = (out / "index.md").read_text()
    red, card = img_srcs(index)
    assert red.startswith("assets/hcti/") and red.endswith(".png")
    assert 'alt="Red box" width="120" height="60"' in index  # CSS size shown: a 2x render, crisp
    im = load(out / red)
    assert im.size == (240, 120) and im.getpixel((120, 60))[:3] == (255, 0, 0)
    card_bytes = (out / card).read_bytes()
    assert card.endswith(".jpg") and card_bytes[:3] == b"\xff\xd8\xff"
    assert load(card_bytes).size == (150, 75)
    g = load(card_bytes).getpixel((140, 10))
    assert g[1] > 100 and g[0] < 40 and g[2] < 40  # green from the template's included stylesheet

    deep = (out / "guide" / "deep" / "page.md").read_text()
    webp, blue = img_srcs(deep)
    assert webp.startswith("../../assets/hcti/") and (out / "guide" / "deep" / webp).read_bytes()[8:12] == b"WEBP"
    assert load(out / "guide" / "deep" / webp).size == (120, 60)  # ../../css/a.css resolved from the page's folder
    assert load(out / "guide" / "deep" / blue).getpixel((10, 10))[:3] == (0, 0, 255)

    page = (out / "guide" / "page.html").read_text()
    assert 'alt="Blue" width="40" height="20"' in page
    assert 'loading="lazy"' in page and "hcti:" not in page and "{% hcti" not in page
    tpl = img_srcs(page)[1]
    assert tpl.startswith("../assets/hcti/") and load(out / "guide" / tpl).size == (150, 75)

    nb = json.loads((out / "nb.ipynb").read_text())
    (md_src,) = img_srcs("".join(nb["cells"][0]["source"]))
    assert load(out / md_src).size == (30, 30)
    (output,) = nb["cells"][1]["outputs"]
    assert output["metadata"]["filename"].startswith("hcti-") and output["metadata"]["filename"].endswith(".jpg")
    assert sorted(output["data"]) == ["image/jpeg", "text/plain"]
    assert nb["cells"][1]["source"][0].startswith("%%hcti")  # the cell still runs as a magic

    assert (out / "photo.bin").read_bytes() == (tree / "photo.bin").read_bytes()
    assert (tree / "index.md").read_text().count("```hcti") == 1  # sources untouched


def test_rebuild_is_incremental_by_content(tree: Path, engine: Engine) -> None:
    out, store_dir = tree.parent / "out", tree.parent / "store"
    first = Builder(tree, out, store=Store(store_dir, root=tree, engine=engine)).build()
    assert first.ok and first.rendered == 8
    before = snapshot(out)

    cold = Engine()  # a new process's engine: a rebuild of an unchanged tree must never launch it
    try:
        again = Builder(tree, out, store=Store(store_dir, root=tree, engine=cold)).build()
        assert again.ok and (again.rendered, again.reused, again.written) == (0, 8, [])
        assert cold.launches == 0
        assert snapshot(out) == before  # byte-identical, not even rewritten

        # a.css is read by two directives (index.md and guide/deep/page.md): exactly those render again.
        (tree / "css" / "a.css").write_text(".a{width:120px;height:60px;background:rgb(255,255,0)}")
        third = Builder(tree, out, store=Store(store_dir, root=tree, engine=engine)).build()
        assert third.ok and (third.rendered, third.reused) == (2, 6)
        red = img_srcs((out / "index.md").read_text())[0]
        assert load(out / red).getpixel((10, 10))[:3] == (255, 255, 0)
        assert red not in before  # a new content-named file
        assert not any(name.endswith(red.split("/")[-1]) for name in before)

        # The template's include changes: the two template directives render again, nothing else.
        (tree / "templates" / "_style.html").write_text("<style>.card{width:300px;height:150px;background:rgb(0,0,0)}</style>")
        fourth = Builder(tree, out, store=Store(store_dir, root=tree, engine=engine)).build()
        assert fourth.ok and (fourth.rendered, fourth.reused) == (2, 6)
        assert "templates/_style.html" in fourth.deps["index.md"]

        # A deleted source: its copy and its now-unreferenced assets leave the output.
        (tree / "guide" / "page.html").unlink()
        fifth = Builder(tree, out, store=Store(store_dir, root=tree, engine=engine)).build()
        assert "guide/page.html" in fifth.removed and not (out / "guide" / "page.html").exists()
        assets = {p.name for p in (out / "assets" / "hcti").iterdir()}
        referenced = {s.split("/")[-1] for f in out.rglob("*.md") for s in img_srcs(f.read_text())}
        nb = json.loads((out / "nb.ipynb").read_text())
        referenced.add(nb["cells"][1]["outputs"][0]["metadata"]["filename"].removeprefix("hcti-"))
        referenced.update(s.split("/")[-1] for s in img_srcs("".join(nb["cells"][0]["source"])))
        assert assets == referenced
    finally:
        cold.close()


def test_errors_are_reported_with_positions_and_nothing_is_written(tree: Path) -> None:
    (tree / "bad.md").write_text("ok\n\n```hcti device_scale=7\n<b>x</b>\n```\n\n![x](hcti:missing.html)\n")
    (tree / "guide" / "bad.html").write_text('<p>\n  {% hcti format="gif" %}<b>x</b>{% endhcti %}')
    r = subprocess.run(
        [sys.executable, "-m", "hcti_build.cli", "build", "src", "--out", "out", "--store", "store"],
        cwd=tree.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert "src/bad.md:3:1: device_scale must be a number between 0.1 and 3" in lines
    assert "src/bad.md:7:1: template not found: missing.html" in lines
    assert any(ln.startswith("src/guide/bad.html:2:3: Sorry, we do not currently support that format") for ln in lines)
    assert lines[-1].startswith("hcti build failed: ")
    assert "Traceback" not in r.stderr
    assert not (tree.parent / "out").exists()


def test_cli_build_then_in_place(tree: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "hcti_build.cli", "build", "src", "--store", "store", *args]
        return subprocess.run(cmd, cwd=tree.parent, capture_output=True, text=True, timeout=180)

    r = run("--format", "webp", "--assets-dir", "img/gen")
    assert r.returncode == 0, r.stderr
    assert re.search(r"hcti build: 6 files scanned, 8 directives, 8 rendered, 0 reused, \d+ files written in", r.stderr)
    index = (tree.parent / "_hcti_build" / "index.md").read_text()
    assert img_srcs(index)[0].startswith("img/gen/") and img_srcs(index)[0].endswith(".webp")
    assert img_srcs(index)[1].endswith(".jpg")  # the directive's own format wins over --format

    r = run("--in-place")
    assert r.returncode == 0, r.stderr
    text = (tree / "index.md").read_text()
    assert "```hcti" not in text and (tree / img_srcs(text)[0]).is_file()


def test_jinja_extension_in_any_environment(tmp_path: Path, engine: Engine) -> None:
    env = jinja2.Environment(extensions=["hcti_build.jinja.HctiExtension"], autoescape=True)
    env.hcti_store = Store(tmp_path / "store", root=tmp_path, engine=engine)  # type: ignore[attr-defined]
    env.hcti_assets_dir = str(tmp_path / "site" / "img")  # type: ignore[attr-defined]
    env.hcti_assets_url = "/img/"  # type: ignore[attr-defined]
    tpl = env.from_string(
        '{% hcti width=100, format="webp", alt=label %}'
        '<div style="width:200px;height:50px;background:{{ colour }}"></div>{% endhcti %}'
    )
    html = tpl.render(colour="rgb(255,0,0)", label="A <red> bar")
    m = re.fullmatch(r'<img src="/img/([0-9a-f-]+-[0-9a-f]+\.webp)" alt="A &lt;red&gt; bar" width="100" height="25">', html)
    assert m, html
    im = load(tmp_path / "site" / "img" / m.group(1))
    r, g, b = im.getpixel((50, 12))[:3]
    assert im.size == (100, 25) and r > 250 and g < 5 and b < 5  # WebP is lossy
    assert tpl.render(colour="rgb(255,0,0)", label="A <red> bar") == html  # same inputs, same image
    with pytest.raises(Exception, match="Unknown parameter: colour"):
        env.from_string("{% hcti colour=1 %}<b>x</b>{% endhcti %}").render()
