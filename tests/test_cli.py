from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import load
from PIL import Image  # noqa: F401


def hcti(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hcti_build.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_render_get_ls_rm(tmp_path: Path) -> None:
    r = hcti(
        "render",
        "--html",
        "<div style='width:100px;height:50px;background:red'></div>",
        "--device-scale",
        "1",
        "-o",
        "out.jpg",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert set(result) == {"id", "url"}
    assert (tmp_path / "out.jpg").read_bytes()[:3] == b"\xff\xd8\xff"
    g = hcti("get", f"{result['id']}.png?width=50&x_1=0&crop_width=50%", "-o", "small.png", cwd=tmp_path)
    assert g.returncode == 0, g.stderr
    assert load(tmp_path / "small.png").size == (50, 50)
    ls = hcti("ls", "--json", cwd=tmp_path)
    assert json.loads(ls.stdout)["images"][0]["id"] == result["id"]
    assert hcti("rm", result["id"], cwd=tmp_path).returncode == 0
    gone = hcti("get", result["id"], "-o", "x.png", cwd=tmp_path)
    assert gone.returncode == 2 and json.loads(gone.stderr)["statusCode"] == 410
    assert not (tmp_path / "x.png").exists()


def test_bad_input_is_the_apis_error(tmp_path: Path) -> None:
    r = hcti("render", "--css", "p{}", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert json.loads(r.stderr) == {
        "error": "Bad Request",
        "statusCode": 400,
        "message": "HTML is Required",
        "validation_errors": [{"field": "html", "message": "HTML is Required"}],
    }
    r = hcti("render", "--html", "<p>x</p>", "--device_scale", "9", cwd=tmp_path)
    assert r.returncode == 2 and "device_scale" in json.loads(r.stderr)["message"]
    r = hcti("render", "--html", "<p>x</p>", "-o", "x.gif", cwd=tmp_path)
    assert r.returncode == 2 and json.loads(r.stderr)["statusCode"] == 422
    assert not (tmp_path / "x.gif").exists()


def test_sign_needs_no_server_stack(tmp_path: Path) -> None:
    """`hcti sign` works where Starlette and uvicorn are not installed (signing lives apart from the server)."""
    script = (
        "import sys; sys.modules.update(starlette=None, uvicorn=None)\n"
        "from hcti_build.cli import main\n"
        "main(['sign', 'html=<p>Hi</p>', '--base-url', 'http://h'])\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HCTI_USER_ID": "u", "HCTI_API_KEY": "k"}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("http://h/v1/image/create-and-render/u/") and "html=%3Cp%3EHi%3C%2Fp%3E" in done.stdout


def test_every_surface_shows_a_parameter_as_declared(tmp_path: Path) -> None:
    """A parameter's range is declared once (options.py) and the CLI's help says it."""
    done = hcti("render", "--help", cwd=tmp_path)
    flat = " ".join(done.stdout.split())
    assert "Wait this many ms after the page is ready (0-20000)." in flat
    assert "Pixel ratio, default 2 for HTML and 1 for a URL (0.1-3)." in flat
