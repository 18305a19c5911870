"""What the project itself left on disk is untrusted too (issue #28, class 3): a build's manifest, a site's folders,
templates and the files they include, and what a url render's page asks of the local origin all obey one set of
file rules (inside the root or site once symlinks are resolved, no hidden part, never the store)."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
from canary import Canary
from PIL import Image

from hcti_build import CreateOptions, Store

HCTI = [sys.executable, "-m", "hcti_build.cli"]
SECRET = "TOKEN=hunter2-secret"


def hcti(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HCTI, *args], cwd=cwd, capture_output=True, text=True, timeout=180)


def test_a_planted_build_manifest_removes_nothing_the_build_did_not_write(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    (src / "keep.txt").write_text("a source file")
    (src / "page.md").write_text("# Page\n")
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("not the build's")
    assert hcti(tmp_path, "build", "src", "--out", "out").returncode == 0
    (out / "mine.txt").write_text("put here by hand")
    sha = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (elsewhere, src / "keep.txt", out / "mine.txt")}
    (out / ".hcti-build.json").write_text(json.dumps({"version": 2, "files": {
        str(elsewhere): sha[elsewhere], "../src/keep.txt": sha[src / "keep.txt"], "mine.txt": "0" * 64}}))  # fmt: skip
    done = hcti(tmp_path, "build", "src", "--out", "out")
    assert done.returncode == 0, done.stderr
    assert elsewhere.read_text() == "not the build's" and (src / "keep.txt").read_text() == "a source file"
    assert (out / "mine.txt").is_file() and (out / "page.md").is_file()
    (out / ".hcti-build.json").write_text(json.dumps(["mine.txt", "../src/keep.txt"]))  # an old, listed-only manifest
    assert hcti(tmp_path, "build", "src", "--out", "out").returncode == 0
    assert (out / "mine.txt").is_file() and (src / "keep.txt").is_file()


def test_a_build_still_removes_what_it_wrote(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.md").write_text("# A\n")
    (src / "b.md").write_text("# B\n")
    assert hcti(tmp_path, "build", "src", "--out", "out").returncode == 0
    (src / "b.md").unlink()
    assert hcti(tmp_path, "build", "src", "--out", "out").returncode == 0
    assert (tmp_path / "out" / "a.md").is_file() and not (tmp_path / "out" / "b.md").exists()


def test_an_output_folder_that_leads_out_is_refused(tmp_path: Path) -> None:
    src, out, outside = tmp_path / "src", tmp_path / "out", tmp_path / "outside"
    src.mkdir()
    outside.mkdir()
    (src / "guide").mkdir()
    (src / "guide" / "page.md").write_text("# Page\n")
    out.mkdir()
    (out / "guide").symlink_to(outside)
    done = hcti(tmp_path, "build", "src", "--out", "out")
    assert done.returncode != 0 and "out must name a place inside" in done.stderr + done.stdout
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("how", ["symlink", "parent"])
def test_og_never_writes_outside_the_site(tmp_path: Path, how: str) -> None:
    site, outside = tmp_path / "site", tmp_path / "escaped-cards"
    site.mkdir()
    outside.mkdir()
    (site / "index.html").write_text("<html><head><title>Home</title></head><body>x</body></html>")
    if how == "symlink":
        (site / "cards").symlink_to(outside)
        args = ["--cards-dir", "cards"]
    else:
        args = ["--cards-dir", "../escaped-cards"]
    done = hcti(tmp_path, "og", "site", "--site-url", "https://example.org/", *args)
    assert done.returncode != 0 and "cards_dir must name a place inside" in done.stderr + done.stdout
    assert list(outside.iterdir()) == []
    assert "og:image" not in (site / "index.html").read_text()


@pytest.mark.parametrize(
    "page",
    [
        "![a](hcti:card.html)",  # card.html: a symlink out of the source folder
        "![b](hcti:.env)",
        "![c](hcti:inc.html)",  # inc.html: {% include ".env" %}
        "![d](hcti:inc_link.html)",  # inc_link.html: {% include "card.html" %}, the symlink
        '```hcti css_file=.env\n<p>x</p>\n```',
    ],
    ids=["symlinked-template", "hidden-template", "hidden-include", "symlinked-include", "hidden-css-file"],
)
def test_templates_and_their_includes_obey_the_file_rules(tmp_path: Path, page: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / ".env").write_text(SECRET)
    (tmp_path / "outside.html").write_text(f"<p>{SECRET}</p>")
    (src / "card.html").symlink_to(tmp_path / "outside.html")
    (src / "inc.html").write_text('<p>{% include ".env" %}</p>')
    (src / "inc_link.html").write_text('<p>{% include "card.html" %}</p>')
    (src / "page.md").write_text(page + "\n")
    done = hcti(tmp_path, "build", "src", "--out", "out")
    assert done.returncode != 0, done.stdout
    said = done.stderr + done.stdout
    assert "not found" in said and "page.md:1" in said and SECRET not in said
    assert not list((tmp_path / "out").rglob("*.png"))  # nothing rendered, so no image holds the secret


def test_a_url_render_reads_no_local_files(tmp_path: Path, allowed_site: tuple[Canary, Canary], engine: object) -> None:
    site, _ = allowed_site
    Image.new("RGB", (40, 40), (255, 0, 0)).save(tmp_path / "red.png")
    (tmp_path / "notes.txt").write_text(SECRET)
    body = (
        "<body style='margin:0;background:#fff'><img src='https://hcti.invalid/red.png' style='width:40px;height:40px'>"
        "<iframe src='https://hcti.invalid/notes.txt' style='width:300px;height:40px;border:0'></iframe></body>"
    )
    store = Store(tmp_path / "store", root=tmp_path, engine=engine)  # type: ignore[arg-type]
    try:
        opts = CreateOptions.from_mapping({"url": f"{site.origin}/html?b={urllib.parse.quote(body)}", "viewport_width": 400,
                                           "viewport_height": 60})  # fmt: skip
        image = store.create(opts)
        with Image.open(io.BytesIO(store.get(image["id"]))) as im:
            assert im.convert("RGB").getpixel((20, 20)) != (255, 0, 0)  # the image was not served
        assert store.inputs(opts) == []  # and nothing local is part of the image's identity
    finally:
        store.close()


@pytest.mark.parametrize("src", ["a%00b.png", "%2e%2e/%2e%2e/etc/passwd", ".%65nv", "x%5c..%5csecret", "%ff%fe.png"])
def test_a_name_the_rules_refuse_is_answered_at_once(tmp_path: Path, engine: object, src: str) -> None:
    """A page asking for such a name is refused at once (it used to hang its render until max_wait_ms)."""
    import time

    store = Store(tmp_path / "store", root=tmp_path, engine=engine)  # type: ignore[arg-type]
    try:
        t0 = time.monotonic()
        opts = CreateOptions.from_mapping({"html": f"<img src='{src}'><p>x</p>", "max_wait_ms": 5000})
        assert store.create(opts)["id"]
        assert time.monotonic() - t0 < 4 and store.inputs(opts) == []
    finally:
        store.close()


@pytest.mark.parametrize("in_place", [False, True], ids=["out", "in-place"])
def test_a_symlinked_source_from_outside_is_neither_read_nor_copied(tmp_path: Path, in_place: bool) -> None:
    """Found by an independent probe: `leak.md -> /outside/secret.md` was copied into --out, and rendered."""
    src, outside = tmp_path / "src", tmp_path / "outside"
    src.mkdir()
    outside.mkdir()
    (outside / "secret.md").write_text(f"{SECRET}\n\n```hcti\n<p>from outside</p>\n```\n")
    (outside / "s.css").write_text(f"/* {SECRET} */")
    (src / "leak.md").symlink_to(outside / "secret.md")
    (src / "s.css").symlink_to(outside / "s.css")
    (src / "index.md").write_text("# Home\n")
    (src / "alias.md").symlink_to(src / "index.md")  # inside: an ordinary source
    done = hcti(tmp_path, "build", "src", *(["--in-place"] if in_place else ["--out", "out"]))
    assert done.returncode == 0, done.stderr + done.stdout
    out = src if in_place else tmp_path / "out"
    assert (out / "alias.md").read_text() == "# Home\n"
    if not in_place:
        assert not (out / "leak.md").exists() and not (out / "s.css").exists()
    assert not list(out.rglob("*.png"))  # the directive of the outside file was not rendered
    assert (outside / "secret.md").read_text().startswith(SECRET)


@pytest.mark.parametrize("out", [".", "src"])
def test_an_out_folder_that_holds_the_sources_is_a_400(tmp_path: Path, out: str) -> None:
    (tmp_path / "src").mkdir()
    done = hcti(tmp_path, "build", "src", "--out", out)
    error = json.loads(done.stderr.strip().splitlines()[-1])
    assert done.returncode != 0 and error["statusCode"] == 400 and error["error"] == "Bad Request"
    assert "--out must not be the source folder or contain it" in error["message"]


@pytest.mark.parametrize("blocker", ["assets", "assets/hcti"])
def test_a_file_in_the_way_of_an_image_changes_no_source(tmp_path: Path, blocker: str) -> None:
    """Found by an independent probe: with a file where the images' folder goes, `--in-place` rewrote a.md to point
    at an image it then failed to write. Every place is checked first, and nothing is written."""
    src = tmp_path / "docs"
    (src / blocker).parent.mkdir(parents=True, exist_ok=True)
    (src / blocker).write_text("in the way")
    page = "```hcti\n<p>x</p>\n```\n"
    (src / "a.md").write_text(page)
    done = hcti(tmp_path, "build", "docs", "--in-place")
    error = json.loads(done.stderr.strip().splitlines()[-1])
    assert done.returncode != 0 and error["statusCode"] == 400 and "is a file, not a folder" in error["message"]
    assert (src / "a.md").read_text() == page


def test_an_out_folder_inside_the_sources_that_holds_them_is_a_400(tmp_path: Path) -> None:
    """Found by an independent probe: `--out docs/sub` replaced the source docs/sub/a.md with the copy of docs/a.md."""
    src = tmp_path / "docs"
    (src / "sub").mkdir(parents=True)
    (src / "a.md").write_text("# top\n")
    (src / "sub" / "a.md").write_text("# precious\n")
    for out in ("docs/sub", "/dev/null"):
        done = hcti(tmp_path, "build", "docs", "--out", out)
        error = json.loads(done.stderr.strip().splitlines()[-1])
        assert done.returncode != 0 and error["statusCode"] == 400 and error["validation_errors"][0]["field"] == "out"
    assert (src / "sub" / "a.md").read_text() == "# precious\n"
    assert hcti(tmp_path, "build", "docs", "--out", "docs/built").returncode == 0  # a new folder inside is fine
    assert hcti(tmp_path, "build", "docs", "--out", "docs/built").returncode == 0  # and so is a build's own, again


def test_a_fifo_among_the_sources_is_not_a_source(tmp_path: Path) -> None:
    """Found by an independent probe: a named pipe `fifo.md` hung the build forever; `pipe.txt` was a traceback."""
    import os

    src = tmp_path / "docs"
    src.mkdir()
    (src / "a.md").write_text("# a\n")
    os.mkfifo(src / "fifo.md")
    os.mkfifo(src / "pipe.txt")
    done = hcti(tmp_path, "build", "docs", "--out", "out")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".hcti-build.json", "a.md"]
