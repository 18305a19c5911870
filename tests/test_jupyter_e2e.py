"""Jupyter end to end: the %%hcti magic in a real IPython shell, the example notebooks in a real kernel
(nbclient), and `jupyter nbconvert --to hcti-markdown / hcti-html` run as commands. Real Chromium throughout."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import nbformat
import pytest
from conftest import load, run
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from hcti_build import Engine, Store

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
JUPYTER = str(Path(sys.executable).parent / "jupyter")
RED = '<div style="width:200px;height:100px;background:rgb(255,0,0)">{x} $y</div>'
PNG, WEBP, PDF = b"\x89PNG\r\n\x1a\n", b"RIFF", b"%PDF-"


def renders_in(path: Path) -> Any:
    store = Store(path)
    try:
        return store.usage()["data"]
    finally:
        store.close()


def test_magic_shows_the_image_with_a_stable_file_name_and_keeps_the_result(
    shell: InteractiveShell, tmp_path: Path, engine: Engine
) -> None:
    result, outputs = run(shell, f"%%hcti --width 300 -o card --filename out/card.png\n{RED}")
    assert result.success, result.error_in_exec
    (out,) = outputs
    data = base64.b64decode(out.data["image/png"])
    assert data.startswith(PNG)
    im = load(data)
    assert im.size == (300, 150)  # 200x100 CSS px at device scale 2 (400x200), resized to width 300
    assert im.convert("RGB").getpixel((150, 75)) == (255, 0, 0)
    card = shell.user_ns["card"]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", card.id)
    assert out.metadata["filename"] == f"hcti-{card.id}-" + out.metadata["filename"].split("-")[-1]
    assert out.metadata["filename"].endswith(".png")
    assert out.metadata["image/png"]["width"] == 300  # the width asked for is the display width
    # IPython's {var} and $var expansion never touches the HTML: the text is rendered as written
    assert out.metadata["image/png"]["alt"] == "{x} $y"
    assert card.data == data and card.size == (300, 150) and card.format == "png"
    assert card.path == tmp_path / "out" / "card.png" and card.path.read_bytes() == data
    # the same cell again is a store hit: no render, same bytes
    launches = engine.launches
    renders = renders_in(tmp_path / ".hcti")
    result, outputs = run(shell, f"%%hcti --width 300\n{RED}")
    assert base64.b64decode(outputs[0].data["image/png"]) == data
    _, outputs = run(shell, f"%%hcti\n{RED}")
    assert load(base64.b64decode(outputs[0].data["image/png"])).size == (400, 200)
    assert outputs[0].metadata["image/png"]["width"] == 200  # else CSS pixels: 400 px at device scale 2
    assert engine.launches == launches
    assert renders_in(tmp_path / ".hcti") == renders
    # displaying the kept result shows the image again
    _, outputs = run(shell, "display(card)")
    assert base64.b64decode(outputs[0].data["image/png"]) == data


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("--width abc", "%%hcti: width must be an integer between 1 and 5000"),
        ("--bogus 1", "%%hcti: unrecognized arguments: --bogus 1"),
        ("--device-scale 9", "%%hcti: device_scale must be a number between 0.1 and 3"),
        ("--filename x.gif", "Sorry, we do not currently support that format. Valid image types are: jpg, webp or png"),
        ("--filename x.jpg --format webp", "--filename x.jpg does not match --format webp"),
        ("-o 'not a name'", "-o: 'not a name' is not a Python variable name"),
        ("--alt 'unbalanced", "%%hcti: No closing quotation"),
    ],
)
def test_magic_bad_arguments_are_usage_errors_in_the_apis_words(
    shell: InteractiveShell, tmp_path: Path, line: str, message: str
) -> None:
    result, outputs = run(shell, f"%%hcti {line}\n<p>x</p>")
    assert isinstance(result.error_in_exec, UsageError)
    assert message in str(result.error_in_exec)
    assert outputs == []
    assert not (tmp_path / "x.gif").exists() and not (tmp_path / "x.jpg").exists()


def test_magic_empty_cell_is_html_is_required(shell: InteractiveShell) -> None:
    result, _ = run(shell, "%%hcti --width 10\n  \n")
    assert isinstance(result.error_in_exec, UsageError)
    assert str(result.error_in_exec) == "%%hcti: HTML is Required"


def test_magic_jinja_webp_and_pdf(shell: InteractiveShell, tmp_path: Path) -> None:
    shell.user_ns["who"] = "<b>Ada</b>"
    result, outputs = run(shell, "%%hcti --jinja --format webp -o w\n<p style='font:20px sans-serif'>{{ who }}</p>")
    assert result.success, result.error_in_exec
    html = outputs[0].data["text/html"]
    src = re.search(r'src="data:image/webp;base64,([^"]+)"', html)
    assert src and base64.b64decode(src.group(1)).startswith(WEBP)
    assert 'alt="&lt;b&gt;Ada&lt;/b&gt;"' in html  # autoescaped: the markup is text, not bold
    assert shell.user_ns["w"].data[8:12] == b"WEBP"
    # a variable the namespace lacks is an error naming it
    result, _ = run(shell, "%%hcti --jinja\n<p>{{ nobody }}</p>")
    assert isinstance(result.error_in_exec, UsageError) and "'nobody' is undefined" in str(result.error_in_exec)
    # PDF: a link (to the file when --filename is given)
    result, outputs = run(shell, "%%hcti --format pdf --filename doc.pdf\n<h1>Doc</h1>")
    assert result.success, result.error_in_exec
    assert '<a href="doc.pdf">Doc</a>' in outputs[0].data["text/html"]
    assert (tmp_path / "doc.pdf").read_bytes().startswith(PDF)
    result, outputs = run(shell, "%%hcti --format pdf\n<h1>Doc</h1>")
    assert 'download="hcti-' in outputs[0].data["text/html"] and "data:application/pdf;base64," in outputs[0].data["text/html"]


def test_magic_help_lists_every_parameter(shell: InteractiveShell) -> None:
    doc = shell.find_cell_magic("hcti").__doc__
    for flag in ("--width", "--device-scale", "--x-1", "--css-file", "-o VAR", "--filename", "--jinja", "--format"):
        assert flag in doc


def test_unload_closes_the_browser_with_no_orphan(tmp_path: Path) -> None:
    """In its own interpreter, with the process-wide browser: %unload_ext leaves no Chromium child behind."""
    script = textwrap.dedent(
        """
        import os, subprocess
        from IPython.core.interactiveshell import InteractiveShell
        from IPython.utils.capture import capture_output
        ip = InteractiveShell.instance()
        ip.run_line_magic("load_ext", "hcti_build")
        with capture_output() as cap:
            assert ip.run_cell("%%hcti\\n<p>hello</p>").success
        assert "image/png" in cap.outputs[0].data
        children = lambda: subprocess.run(["pgrep", "-P", str(os.getpid())], capture_output=True, text=True).stdout.split()
        before = children()
        ip.run_line_magic("unload_ext", "hcti_build")
        print(len(before), len(children()), ip.find_cell_magic("hcti"))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    before, after, magic = done.stdout.split()
    assert int(before) >= 1 and int(after) == 0 and magic == "None"


# -- the example notebooks in a real kernel -------------------------------------------------------------
@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Both example notebooks, executed with nbclient in a real kernel (its event loop is running)."""
    from nbclient import NotebookClient

    folder = tmp_path_factory.mktemp("notebooks")
    out = {"folder": folder}
    for name in ("gallery", "report"):
        shutil.copy(NOTEBOOKS / f"{name}.ipynb", folder)
        nb = nbformat.read(folder / f"{name}.ipynb", as_version=4)
        NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
        nbformat.write(nb, folder / f"{name}.ipynb")
        out[name] = nb
    return out


def _hcti_outputs(nb: Any) -> list[Any]:
    return [o for c in nb.cells if c.cell_type == "code" and c.source.startswith("%%hcti") for o in c.outputs]


def test_example_notebooks_run_in_a_real_kernel(executed: dict[str, Any]) -> None:
    for name in ("gallery", "report"):
        outputs = _hcti_outputs(executed[name])
        assert outputs and all(o.output_type == "display_data" for o in outputs), name
        for o in outputs:
            assert o.metadata["filename"].startswith("hcti-")
            if "image/png" in o.data:
                assert base64.b64decode(o.data["image/png"]).startswith(PNG)
    report = executed["report"]
    printed = "".join(o.get("text", "") for c in report.cells if c.cell_type == "code" for o in c.outputs)
    table_id = re.search(r"([0-9a-f-]{36}) \((\d+), (\d+)\) png", printed)
    assert table_id, printed
    (table,) = [o for o in _hcti_outputs(report) if "image/png" in o.data]
    assert table.metadata["filename"] == f"hcti-{table_id.group(1)}.png"
    im = load(base64.b64decode(table.data["image/png"]))
    assert im.size == (int(table_id.group(2)), int(table_id.group(3)))
    pdf = (executed["folder"] / "report.pdf").read_bytes()
    assert pdf.startswith(PDF)
    assert_one_page_showing_the_table(pdf)


def assert_one_page_showing_the_table(pdf: bytes) -> None:
    """Found by a new user: the "one-page PDF of the table" was a 1428 x 73.92 pt strip of two pages, shifted by
    the body's margin, with no table. It is one page the size of its box, and the table's dark header is on it."""
    import pypdfium2

    doc = pypdfium2.PdfDocument(pdf)
    try:
        assert len(doc) == 1
        width, height = doc[0].get_size()
        assert 300 < width < 700 and 150 < height < 500, (width, height)  # the report's box, not a strip
        page = doc[0].render(scale=1).to_pil().convert("RGB")
        assert page.getpixel((2, 2)) == (255, 255, 255)
        assert any(page.getpixel((x, y)) == (38, 50, 56) for x in range(0, page.width, 3) for y in range(0, page.height, 3))
    finally:
        doc.close()


def _nbconvert(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HCTI_STORE": str(folder / ".hcti")}
    return subprocess.run([JUPYTER, "nbconvert", *args], cwd=folder, capture_output=True, text=True, timeout=180, env=env)


def test_nbconvert_hcti_markdown_writes_links_to_extracted_images(executed: dict[str, Any]) -> None:
    folder = executed["folder"]
    done = _nbconvert(folder, "--to", "hcti-markdown", "gallery.ipynb", "report.ipynb")
    assert done.returncode == 0, done.stderr
    for name in ("gallery", "report"):
        md = (folder / f"{name}.md").read_text()
        links = re.findall(rf"(?:\]\(|src=\"|href=\")({name}_files/hcti-[0-9a-f-]+\.(png|webp|pdf))", md)
        assert len(links) >= 3, md
        for path, ext in links:
            assert (folder / path).read_bytes().startswith({"png": PNG, "webp": WEBP, "pdf": PDF}[ext])
        assert "data:image" not in md  # every image is a file beside the Markdown
    gallery = (folder / "gallery.md").read_text()
    assert 'alt="Quarterly numbers"' in gallery  # the hcti fence of a Markdown cell, rendered with no kernel
    # the cells' alt text (#30: `![png](...)`): a cell rendered here, and the kept output of a --jinja cell
    assert re.search(r'<img src="gallery_files/hcti-[0-9a-f-]+\.png" alt="Release card" width="600" height="315">', gallery)
    report = (folder / "report.md").read_text()
    assert re.search(r'<img src="report_files/hcti-[0-9a-f-]+\.png" alt="Sales by region, Q1 and Q2"', report), report
    card = (folder / "gallery_files").glob("hcti-*.png")
    assert any(load(p).size == (600, 315) for p in card)  # the release card at --device-scale 1
    # unchanged cells reuse the store: a second conversion renders nothing
    renders = renders_in(folder / ".hcti")
    assert _nbconvert(folder, "--to", "hcti-markdown", "gallery.ipynb").returncode == 0
    assert renders_in(folder / ".hcti") == renders


def test_nbconvert_hcti_html_embeds_images_with_alt_text(executed: dict[str, Any]) -> None:
    folder = executed["folder"]
    done = _nbconvert(folder, "--to", "hcti-html", "gallery.ipynb", "report.ipynb")
    assert done.returncode == 0, done.stderr
    report = (folder / "report.html").read_text()  # the table's output is the kernel's (--jinja): #30
    assert any(i["alt"] == "Sales by region, Q1 and Q2" and str(i["src"]).startswith("data:image/png") for i in _imgs(report))
    page = (folder / "gallery.html").read_text()
    imgs = re.findall(r"<img [^>]*>", page)
    hcti = [i for i in imgs if 'src="data:image/' in i]
    assert len(hcti) >= 4
    assert any('alt="Release card"' in i and 'src="data:image/png;base64,' in i for i in hcti)
    assert any('src="data:image/webp;base64,' in i for i in hcti)
    assert "Alternative text is missing" not in done.stderr


def test_nbconvert_renders_without_a_kernel_and_reports_errors(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%%hcti --format jpg\n" + RED.replace("{x} $y", "")),
        nbformat.v4.new_markdown_cell(
            'Text\n\n```hcti alt="Blue"\n<div style="width:10px;height:10px;background:blue"></div>\n```\n'
        ),
    ]
    nbformat.write(nb, tmp_path / "nb.ipynb")
    done = _nbconvert(tmp_path, "--to", "hcti-markdown", "nb.ipynb")
    assert done.returncode == 0, done.stderr
    md = (tmp_path / "nb.md").read_text()
    (jpg,) = re.findall(r'<img src="(nb_files/hcti-[0-9a-f-]+\.jpg)" alt="" width="200" height="100">', md)
    assert (tmp_path / jpg).read_bytes()[:3] == b"\xff\xd8\xff"
    assert load(tmp_path / jpg).size == (400, 200)
    assert re.search(r'<img src="nb_files/hcti-[0-9a-f-]+\.png" alt="Blue" width="10" height="10">', md)
    # a bad directive: the notebook, cell and message; no output written
    nb.cells.append(nbformat.v4.new_code_cell("%%hcti --width 0\n<p>x</p>"))
    nbformat.write(nb, tmp_path / "bad.ipynb")
    done = _nbconvert(tmp_path, "--to", "hcti-markdown", "bad.ipynb")
    assert done.returncode == 1
    assert "bad.ipynb#cell3:1:1: width must be an integer between 1 and 5000" in done.stderr
    assert not (tmp_path / "bad.md").exists()


def test_hcti_build_keeps_kernel_outputs_of_jinja_cells(executed: dict[str, Any], tmp_path: Path) -> None:
    """`hcti build` has no kernel: an executed --jinja cell keeps its output; an unexecuted one is an error."""
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(executed["folder"] / "report.ipynb", src)
    done = subprocess.run(
        [sys.executable, "-m", "hcti_build.cli", "build", str(src), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    built = json.loads((tmp_path / "out" / "report.ipynb").read_text())
    kept = [
        o for c in built["cells"] if c["cell_type"] == "code" and "".join(c["source"]).startswith("%%hcti") for o in c["outputs"]
    ]
    assert len(kept) == 3 and all(o["metadata"]["filename"].startswith("hcti-") for o in kept)
    fresh = nbformat.read(NOTEBOOKS / "report.ipynb", as_version=4)
    nbformat.write(fresh, src / "report.ipynb")
    done = subprocess.run(
        [sys.executable, "-m", "hcti_build.cli", "build", str(src), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert re.search(
        r"report\.ipynb#cell5:1:1: --jinja reads sales, total_q1, total_q2; no kernel here, so run the notebook first",
        done.stderr,
    ), done.stderr


# -- issue #30, found by a new user -----------------------------------------------------------------------
BLUE = '<div style="width:40px;height:20px;background:rgb(0,0,255)">{}</div>'


def _execute(nb: Any, folder: Path) -> None:
    from nbclient import NotebookClient

    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()


def test_one_cell_has_one_id_in_a_kernel_and_in_nbconvert(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernel passed the magic the cell's HTML with a newline added, nbconvert read it as saved: the same cell had
    two ids, was rendered twice, and the export's file was not the `card.id` the notebook printed. Now one cell
    has one id, whoever reads it: saved without a newline at the end, with `\\r\\n`, with blank lines after
    it (the same id as without them), its source a string or a list of lines."""
    monkeypatch.setenv("HCTI_STORE", str(tmp_path / ".hcti"))  # the kernel's store, and nbconvert's (_nbconvert)
    sources = {
        "plain": "%%hcti -o plain\n" + BLUE.format("plain"),  # as Jupyter saves a cell: no newline at the end
        "crlf": "%%hcti -o crlf\r\n" + BLUE.format("crlf") + "\r\n",  # an editor's line ends
        "blank": "%%hcti -o blank\n" + BLUE.format("plain") + "\n\n  \n",  # plain's HTML, blank lines after it
    }
    nb = nbformat.v4.new_notebook()
    last = "print(plain.id, crlf.id, blank.id)"
    nb.cells = [nbformat.v4.new_code_cell(s) for s in ("%load_ext hcti_build", *sources.values(), last)]
    _execute(nb, tmp_path)
    ids = dict(zip(sources, nb.cells[-1].outputs[0]["text"].split(), strict=True))
    assert ids["blank"] == ids["plain"] != ids["crlf"], ids
    nbformat.write(nb, tmp_path / "lines.ipynb")  # nbformat writes each source as a list of lines
    as_text = json.loads(nbformat.writes(nb))
    for cell in as_text["cells"]:
        cell["source"] = "".join(cell["source"])
    (tmp_path / "text.ipynb").write_text(json.dumps(as_text))
    renders = renders_in(tmp_path / ".hcti")
    done = _nbconvert(tmp_path, "--to", "hcti-markdown", "lines.ipynb", "text.ipynb")
    assert done.returncode == 0, done.stderr
    for name in ("lines", "text"):
        md = (tmp_path / f"{name}.md").read_text()
        assert set(re.findall(r"hcti-([0-9a-f-]{36})\.png", md)) == set(ids.values()), md
        for image_id in ids.values():
            assert (tmp_path / f"{name}_files" / f"hcti-{image_id}.png").read_bytes().startswith(PNG)
    assert renders_in(tmp_path / ".hcti") == renders  # every cell was the kernel's render: nothing rendered again


def _imgs(page: str) -> list[dict[str, str | None]]:
    """The <img> tags of a page, their attributes as a browser reads them (entities decoded)."""
    from html.parser import HTMLParser

    found: list[dict[str, str | None]] = []

    class Imgs(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "img":
                found.append(dict(attrs))

    Imgs().feed(page)
    return found


def test_nbconvert_exports_carry_the_cells_alt_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`hcti-markdown` wrote `![png](nb_files/hcti-....png)` for a cell with --alt, `hcti-html` nbconvert's "No
    description has been provided for this image" for a --jinja cell's kept output (and warned "Alternative text is
    missing"). Every exported image carries its cell's alt text (and --class), escaped for the page it is in: a
    cell rendered by nbconvert, and a --jinja cell whose output the kernel made (its alt from --alt, else the
    kernel's)."""
    monkeypatch.setenv("HCTI_STORE", str(tmp_path / ".hcti"))
    alt = 'Release ] " < & card [x](y) *z*'
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext hcti_build\nwho = 'Ada & Bob'"),
        nbformat.v4.new_code_cell(f"%%hcti --alt '{alt}' --class 'hero wide'\n" + BLUE.format("rendered")),
        nbformat.v4.new_code_cell("%%hcti --jinja --alt 'Kept <table> & \"quotes\"'\n" + BLUE.format("{{ who }}")),
        nbformat.v4.new_code_cell("%%hcti --jinja --format jpg\n" + BLUE.format("by {{ who }}")),
    ]
    _execute(nb, tmp_path)
    nbformat.write(nb, tmp_path / "nb.ipynb")
    wanted = {alt: "hero wide", 'Kept <table> & "quotes"': None, "by Ada & Bob": None}
    done = _nbconvert(tmp_path, "--to", "hcti-markdown", "nb.ipynb")
    assert done.returncode == 0, done.stderr
    md = (tmp_path / "nb.md").read_text()
    assert "![png]" not in md and "![jpeg]" not in md, md
    assert 'alt="Release ] &quot; &lt; &amp; card [x](y) *z*"' in md  # HTML in Markdown: Markdown leaves it alone
    imgs = {i["alt"]: i for i in _imgs(md)}
    assert imgs.keys() == wanted.keys(), md
    for text, cls in wanted.items():
        assert imgs[text].get("class") == cls
        src = str(imgs[text]["src"])
        assert re.fullmatch(r"nb_files/hcti-[0-9a-f-]{36}\.(png|jpg)", src), src
        assert (tmp_path / src).read_bytes()[:3] in (PNG[:3], b"\xff\xd8\xff")
        assert imgs[text]["width"] == "40" and imgs[text]["height"] == "20"
    done = _nbconvert(tmp_path, "--to", "hcti-html", "nb.ipynb")
    assert done.returncode == 0, done.stderr
    assert "Alternative text is missing" not in done.stderr
    page = (tmp_path / "nb.html").read_text()
    assert "No description has been provided" not in page
    imgs = {i["alt"]: i for i in _imgs(page) if str(i["src"]).startswith("data:image/")}
    assert imgs.keys() == wanted.keys()
    assert all(imgs[text].get("class") == cls for text, cls in wanted.items())


def test_nbconvert_error_is_the_one_line_the_docs_show(tmp_path: Path) -> None:
    """nbconvert followed the one-line error with "Error while converting" and a 30-line traceback of its own
    frames. What a user sees is what docs/jupyter.md shows, line for line: the error naming the notebook, cell
    and parameter; exit status 1; nothing written. `--debug` still shows the traceback."""
    docs = (ROOT / "docs" / "jupyter.md").read_text()
    shown = re.search(r"A bad directive stops.*?```text\n\$ (.*?)\n(.*?)```", docs, re.S)
    assert shown, "docs/jupyter.md: the error example"
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# A notebook"),
        nbformat.v4.new_code_cell("%%hcti --width 300\n<p>fine</p>"),
        nbformat.v4.new_code_cell("%%hcti --width 0\n<p>x</p>"),
    ]
    nbformat.write(nb, tmp_path / "bad.ipynb")
    command = shown.group(1).split()
    assert command[:2] == ["jupyter", "nbconvert"]
    done = _nbconvert(tmp_path, *command[2:])
    assert done.returncode == 1
    assert done.stderr.splitlines() == shown.group(2).splitlines()
    assert "bad.ipynb#cell3:1:1: width must be" in done.stderr
    assert not (tmp_path / "bad.md").exists() and not (tmp_path / "bad_files").exists()
    debug = _nbconvert(tmp_path, *command[2:], "--debug")
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr


def test_a_store_nbconvert_cannot_open_is_one_line_too(tmp_path: Path) -> None:
    """An independent probe: `--HctiPreprocessor.store=/proc/nope` ended in a Python traceback (WriteError), where
    MkDocs, Sphinx and hcti og each say it in one line."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("%%hcti --width 300\n<p>fine</p>")]
    nbformat.write(nb, tmp_path / "fresh.ipynb")
    done = _nbconvert(tmp_path, "--to", "hcti-markdown", "fresh.ipynb", "--HctiPreprocessor.store=/proc/nope")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    (said,) = [line for line in done.stderr.splitlines() if "ERROR" in line]
    assert said.startswith("[NbConvertApp] ERROR | fresh.ipynb: Cannot write /proc/nope"), said
    assert not (tmp_path / "fresh.md").exists()
