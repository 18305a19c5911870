"""A bucket is untrusted input (issue #28, class 2): whoever can write to a remote (a pull request's build, a
compromised runner) cannot make another runner delete, read, crash or serve the wrong thing. The remote here is
a shared folder (`file://`), written to by hand as an attacker would; the runner is the real `hcti` command."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from hcti_build import CreateOptions, Engine, Store
from hcti_build.store.ids import image_id_of

HCTI = [sys.executable, "-m", "hcti_build.cli"]
PLANTED = "0badc0de-0000-8000-8000-000000000001"  # the name of the attacker's object


def red_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (255, 0, 0)).save(out, "PNG")
    return out.getvalue()


def meta(image_id: str, data: bytes, **change: object) -> bytes:
    fields = {"id": image_id, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "width": 4, "height": 4,
              "params": {"html": "<p>x</p>"}, "base": "", "engine": "Chromium 1", "created_at": 1.0, "format": "png"}  # fmt: skip
    return json.dumps({**fields, **change}).encode()


class Runner:
    """A checkout with its own store, sharing the bucket folder."""

    def __init__(self, tmp_path: Path, name: str) -> None:
        self.root = tmp_path / name
        self.root.mkdir()
        self.bucket = tmp_path / "bucket"
        self.env = {**os.environ, "HCTI_STORE": str(self.root / ".hcti"), "HCTI_REMOTE": self.bucket.as_uri()}

    def hcti(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*HCTI, *args], cwd=self.root, env=self.env, capture_output=True, text=True, timeout=120)

    def plant(self, name: str, data: bytes) -> None:
        path = self.bucket / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


@pytest.fixture
def runner(tmp_path: Path) -> Runner:
    r = Runner(tmp_path, "runner")
    assert r.hcti("render", "--html", "<p>seed</p>").returncode == 0  # the bucket exists, with one image of ours
    return r


def test_an_id_inside_an_object_that_names_a_path_deletes_nothing(runner: Runner, tmp_path: Path) -> None:
    victim = tmp_path / "victim" / "precious"
    victim.mkdir(parents=True)
    (victim / "keep.txt").write_text("keep")
    depth = len((runner.root / ".hcti" / "objects" / "xx").relative_to(tmp_path).parts)
    evil = "../" * depth + "victim/precious"
    runner.plant(f"images/{PLANTED}.json", meta(evil, red_png()))
    runner.plant(f"images/{PLANTED}.png", red_png())
    listed = runner.hcti("ls", "--json")
    assert listed.returncode == 0, listed.stderr
    assert evil not in listed.stdout and PLANTED not in listed.stdout
    assert listed.stderr.count("is not an object of hcti-build's") == 1  # the one warning
    pruned = runner.hcti("store", "prune", "--older-than", "30d")
    assert pruned.returncode == 0, pruned.stderr
    assert (victim / "keep.txt").read_text() == "keep"


def test_a_deleted_image_stays_deleted_whatever_the_bucket_lists(runner: Runner) -> None:
    made = json.loads(runner.hcti("render", "--html", "<p>doomed</p>").stdout)["id"]
    png = (runner.bucket / f"images/{made}.png").read_bytes()
    kept = (runner.bucket / f"images/{made}.json").read_bytes()
    assert runner.hcti("rm", made).returncode == 0
    # Another runner uploads it again, and an object under another name claims its id.
    runner.plant(f"images/{made}.json", kept)
    runner.plant(f"images/{made}.png", png)
    runner.plant(f"images/{PLANTED}.json", meta(made, png))
    assert runner.hcti("ls", "--json").returncode == 0
    got = runner.hcti("get", made, "-o", "x.png")
    assert got.returncode != 0 and "410" in got.stderr + got.stdout


@pytest.mark.parametrize(
    "record",
    [
        {"read": ["logo\u0000.png"], "missing": []},
        {"read": [], "missing": ["../src/keep.txt"]},
        {"read": "x", "missing": []},
        "[" * 50_000 + "]" * 50_000,
    ],
    ids=["nul", "outside", "not-a-list", "deep"],
)
def test_a_malformed_request_record_is_a_miss(runner: Runner, engine: Engine, record: object) -> None:
    html = f"<p>record {hashlib.sha256(str(record).encode()).hexdigest()[:8]}</p>"
    key = Store(runner.root / "probe", root=runner.root, engine=engine, remote="").request_key(CreateOptions(html=html))
    runner.plant(f"requests/{key}.json", (record if isinstance(record, str) else json.dumps(record)).encode())
    done = runner.hcti("render", "--html", html)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["id"]


@pytest.mark.parametrize("change", [{"created_at": None}, {"size": "big"}, {"params": {"html": 1}}, {"width": -4}])
def test_malformed_metadata_lists_and_serves_what_is_ours(runner: Runner, change: dict[str, object]) -> None:
    runner.plant(f"images/{PLANTED}.json", meta(PLANTED, red_png(), **change))
    runner.plant(f"images/{PLANTED}.png", red_png())
    listed = runner.hcti("ls", "--json")
    assert listed.returncode == 0, listed.stderr
    assert PLANTED not in listed.stdout and len(json.loads(listed.stdout)["images"]) == 1  # the seed
    assert runner.hcti("usage", "--json").returncode == 0


def test_a_record_naming_a_hidden_file_never_makes_the_runner_hash_it(runner: Runner, engine: Engine) -> None:
    """The bucket guesses the runner's secret: if the runner hashed `.env` into the id it asks for, it would find
    the bucket's red image under that id and serve it."""
    secret = b"TOKEN=hunter2\n"
    (runner.root / ".env").write_bytes(secret)
    html = "<p style='color:#00f'>mine</p>"
    key = Store(runner.root / "probe", root=runner.root, engine=engine, remote="").request_key(CreateOptions(html=html))
    guess = image_id_of(key, {".env": hashlib.sha256(secret).hexdigest()})
    runner.plant(f"requests/{key}.json", json.dumps({"read": [".env"], "missing": []}).encode())
    runner.plant(f"images/{guess}.json", meta(guess, red_png()))
    runner.plant(f"images/{guess}.png", red_png())
    done = runner.hcti("render", "--html", html, "-o", "out.png")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["id"] != guess
    with Image.open(runner.root / "out.png") as im:
        assert im.size != (4, 4)  # our render, not the bucket's


@pytest.mark.parametrize("promised", [10, 400 << 20])
def test_a_giant_master_is_refused_before_it_is_read(runner: Runner, engine: Engine, promised: int) -> None:
    """A 400 MB object planted where the metadata promises 10 bytes, or 400 MB: the runner reads neither (its
    peak memory stays far below the object's size) and renders the image itself."""
    html = f"<p>big {promised}</p>"
    store = Store(runner.root / "probe", root=runner.root, engine=engine, remote="")
    key = store.request_key(CreateOptions(html=html))
    image_id = image_id_of(key, {})
    runner.plant(f"requests/{key}.json", json.dumps({"read": [], "missing": []}).encode())
    runner.plant(f"images/{image_id}.json", meta(image_id, b"0123456789", size=promised))
    with (runner.bucket / f"images/{image_id}.png").open("wb") as fh:
        fh.truncate(400 << 20)  # sparse: no disk used
    # The peak of this process image (VmHWM): getrusage's ru_maxrss carries over the parent's from before exec.
    code = (
        "import re, runpy, sys; sys.argv = ['hcti', 'render', '--html', sys.argv[1]];\n"
        "try: runpy.run_module('hcti_build.cli', run_name='__main__')\n"
        "except SystemExit: pass\n"
        "print(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())[1], file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code, html], cwd=runner.root, env=runner.env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert json.loads(done.stdout)["id"] == image_id, done.stderr
    peak_kb = int(done.stderr.strip().splitlines()[-1])
    assert peak_kb < 200 * 1024, peak_kb


def test_a_folder_of_a_shared_folder_that_is_a_symlink_leads_nowhere(runner: Runner, tmp_path: Path) -> None:
    """Found by an independent probe: `bucket/images -> elsewhere` let `hcti store prune --remote` delete objects in
    elsewhere. A shared folder's objects are its own files, never what a symlink leads to."""
    elsewhere = tmp_path / "elsewhere"
    (runner.bucket / "images").rename(elsewhere)
    (runner.bucket / "images").symlink_to(elsewhere)
    before = sorted(p.name for p in elsewhere.iterdir())
    pruned = runner.hcti("store", "prune", "--older-than", "0m", "--remote")
    assert pruned.returncode == 0, pruned.stderr
    assert sorted(p.name for p in elsewhere.iterdir()) == before and before
    listed = runner.hcti("ls", "--json")
    assert listed.returncode == 0 and "Traceback" not in listed.stderr
