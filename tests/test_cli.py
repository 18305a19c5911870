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
