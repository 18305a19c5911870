"""A missing or broken Chromium is one clear message in every surface, through that surface's own error channel:
MkDocs' `ERROR - hcti: ...` and an aborted build, the CLI's JSON error and exit code 2, `hcti serve` refusing to
start (and answering 500 JSON when the browser goes away later), the magic's one-line error, nbconvert's exit 1.
Never a Python traceback."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import nbformat
import pytest
from conftest import CountingChromium, reap
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from hcti_build import BrowserNotFoundError, Engine

MISSING = "/nonexistent/chromium"
SAID = f"Chromium not found at {MISSING} (set by HCTI_CHROMIUM): point it at a Chromium or Chrome executable"
CLI = [sys.executable, "-m", "hcti_build.cli"]


def run(cmd: list[str], cwd: Path, chromium: str = MISSING) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HCTI_CHROMIUM": chromium, "NO_MKDOCS_2_WARNING": "1"}
    env.pop("HCTI_STORE", None)
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120, env=env)


def api_error(stderr: str) -> dict[str, object]:
    """The CLI's error: the last line of stderr, the API's JSON."""
    assert "Traceback" not in stderr, stderr
    body: dict[str, object] = json.loads(stderr.strip().splitlines()[-1])
    return body


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text('# Home\n\n```hcti\n<p style="color:red">x</p>\n```\n')
    (tmp_path / "mkdocs.yml").write_text("site_name: Lost\nsite_url: https://example.org/\nplugins:\n  - hcti\n")
    return tmp_path


def test_mkdocs_build(project: Path) -> None:
    r = run([sys.executable, "-m", "mkdocs", "build"], project)
    assert r.returncode == 1
    assert re.search(rf"ERROR\s+-\s+hcti: {re.escape(SAID)}\n", r.stderr), r.stderr
    assert "Aborted with a BuildError!" in r.stdout and "Traceback" not in r.stderr + r.stdout


def test_mkdocs_build_directives_only(project: Path) -> None:
    (project / "mkdocs.yml").write_text("site_name: Lost\nplugins:\n  - hcti:\n      cards: false\n")
    r = run([sys.executable, "-m", "mkdocs", "build"], project)
    assert r.returncode == 1
    assert re.search(r"ERROR\s+-\s+hcti: docs/index\.md:3:1: " + re.escape(SAID), r.stderr), r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "args",
    [["render", "--html", "<p>x</p>"], ["build", "docs", "--out", "out"], ["watch", "docs", "--out", "out"]],
    ids=["render", "build", "watch"],
)
def test_cli(project: Path, args: list[str]) -> None:
    r = run([*CLI, *args], project)
    assert r.returncode == 2
    assert api_error(r.stderr) == {
        "error": "Browser Not Found",
        "statusCode": 500,
        "message": SAID,
        "validation_errors": [],
    }
    assert not (project / "out").exists()


def test_a_program_that_is_not_chromium(project: Path) -> None:
    fake = project / "chrome"
    fake.write_text("#!/bin/sh\necho 'no such thing' >&2\nexit 3\n")
    fake.chmod(0o755)
    r = run([*CLI, "render", "--html", "<p>x</p>"], project, chromium=str(fake))
    message = str(api_error(r.stderr)["message"])
    assert message.startswith(f"{fake} is not a working Chromium: `--version` exited with code 3 and said 'no such thing'; ")
    assert "apt-get install chromium chromium-headless-shell" in message and "HCTI_CHROMIUM" in message


def test_hcti_serve_refuses_to_start(project: Path) -> None:
    r = run([*CLI, "serve", "--port", "0"], project)
    assert r.returncode == 2 and api_error(r.stderr)["message"] == SAID


def test_hcti_serve_answers_500_when_the_browser_goes_away(project: Path, counting_chromium: CountingChromium) -> None:
    env = {**os.environ, "HCTI_CHROMIUM": str(counting_chromium.path), "HCTI_USER_ID": "u", "HCTI_API_KEY": "k"}
    cmd = [*CLI, "serve", "--port", "0", "--store", str(project / "store")]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, cwd=project, env=env, start_new_session=True)
    try:
        assert proc.stderr is not None
        base = re.search(r"hcti serve: (http://127\.0\.0\.1:\d+)", proc.stderr.readline())
        assert base
        counting_chromium.path.unlink()  # uninstalled while the server runs, before its first render
        with httpx.Client(base_url=base.group(1), auth=("u", "k"), timeout=60) as client:
            r = client.post("/v1/image", json={"html": "<p>x</p>"})
        assert r.status_code == 500
        assert r.json()["error"] == "Browser Not Found"
        assert str(r.json()["message"]).startswith(f"Chromium is gone from {counting_chromium.path}: install Debian's browser")
        assert counting_chromium.launches() == 0
    finally:
        reap(proc)


def test_magic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HCTI_CHROMIUM", MISSING)
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "hcti_build")
    ip.magics_manager.registry["HctiMagics"].engine = Engine()  # not the session's: this one finds no browser
    try:
        with capture_output() as cap:
            result = ip.run_cell("%%hcti\n<p>x</p>")
        assert isinstance(result.error_in_exec, BrowserNotFoundError)
        assert cap.stdout.strip() == f"BrowserNotFoundError: {SAID}"  # what the notebook shows: one line
        assert cap.outputs == []
    finally:
        ip.run_line_magic("unload_ext", "hcti_build")


def test_nbconvert(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("Text"), nbformat.v4.new_code_cell("%%hcti\n<p>x</p>")]
    nbformat.write(nb, tmp_path / "nb.ipynb")
    r = run([str(Path(sys.executable).with_name("jupyter")), "nbconvert", "--to", "hcti-markdown", "nb.ipynb"], tmp_path)
    assert r.returncode == 1
    assert f"[NbConvertApp] ERROR | nb.ipynb#cell2:1:1: {SAID}\n" in r.stderr, r.stderr
    assert not (tmp_path / "nb.md").exists()
