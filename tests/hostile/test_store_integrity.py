"""Store integrity: ids checked before any path is built, corrupt objects never served, no partial files after
a crash or a full disk, and one copy when eight processes create the same image."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import load

from hcti_build import NotFoundError, Store
from hcti_build.store.objects import Objects

RED = {"html": "<div style='width:40px;height:10px;background:#f00'></div>", "device_scale": 1}


def rgb(data: bytes) -> tuple[tuple[int, int], tuple[int, int, int]]:
    im = load(data)
    return im.size, im.convert("RGB").getpixel((2, 2))  # type: ignore[return-value]


@pytest.mark.parametrize(
    "bad",
    [
        "../../etc/passwd",
        "..%2F..%2Fetc%2Fpasswd",
        "/etc/passwd",
        "63725DDE-74CF-8990-BDF0-76ED804CAB60",  # odd case: ids are lower-case
        "63725dde-74cf-8990-bdf0-76ed804cab60\x00.png",
        "63725dde-74cf-8990-bdf0-76ed804cab60\n",
        "63725dde74cf8990bdf076ed804cab60",  # no hyphens
        "{63725dde-74cf-8990-bdf0-76ed804cab60}",
        "urn:uuid:63725dde-74cf-8990-bdf0-76ed804cab60",
        "63725dde-74cf-8990-bdf0-76ed804cab60" * 30,  # long
        "",
    ],
)
def test_ids_are_validated_before_any_path_is_built(store: Store, bad: str, monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []
    monkeypatch.setattr(Objects, "master", lambda self, image_id: built.append(image_id))
    monkeypatch.setattr(Objects, "variant", lambda self, image_id, key, fmt: built.append(image_id))
    for call in (store.get, store.delete, store.info, lambda i: store.get(i, fmt="jpg")):
        with pytest.raises(NotFoundError) as err:
            call(bad)
        assert err.value.status_code == 404 and err.value.message.startswith("Image not found")
    assert built == []


def _truncate(data: bytes, other: bytes) -> bytes:
    return data[: len(data) // 2]


def _flip(data: bytes, other: bytes) -> bytes:
    return data[:-20] + bytes([data[-20] ^ 0x01]) + data[-19:]  # one bit, inside the last chunk


def _replace(data: bytes, other: bytes) -> bytes:
    return other  # a valid PNG of another image, same size


@pytest.mark.parametrize("damage", [_truncate, _flip, _replace, None], ids=["truncated", "bit-flip", "replaced", "deleted"])
@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_a_damaged_object_is_detected_and_rendered_again(
    store: Store, damage: object, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    image_id = store.create(RED)["id"]
    other = store.get(store.create({**RED, "html": RED["html"].replace("#f00", "#00f")})["id"], fmt=fmt)
    good = store.get(image_id, fmt=fmt)
    path = store.file(image_id, {"format": fmt})
    bad = damage(good, other) if callable(damage) else b""
    if callable(damage):
        path.write_bytes(bad)
    else:
        path.unlink()
    renders: list[object] = []
    render = store.engine.render
    monkeypatch.setattr(store.engine, "render", lambda *a, **k: renders.append(a) or render(*a, **k))
    served = store.get(image_id, fmt=fmt)
    assert served != bad and rgb(served)[0] == (40, 10)
    assert (
        rgb(served)[1] == (255, 0, 0)
        if fmt == "png"
        else max(abs(a - b) for a, b in zip(rgb(served)[1], (255, 0, 0), strict=True)) < 8
    )
    assert hashlib.sha256(path.read_bytes()).hexdigest() == hashlib.sha256(served).hexdigest()  # repaired on disk
    # A damaged master is rendered again; a damaged variant is derived again from the master.
    assert len(renders) == (1 if fmt == "png" else 0)
    assert store.get(image_id, fmt=fmt) == served


CRASH = """
import os, signal, sys
from hcti_build import Store
def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)  # the process dies between the write and the rename
os.link = os.replace = die
Store(sys.argv[1], root=sys.argv[1]).create({"html": "<p>crash</p>"})
"""


def test_a_crash_before_the_rename_leaves_nothing_and_its_temp_file_is_swept(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", CRASH, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == -9, done.stderr
    assert list((tmp_path / "objects").rglob("*.png")) == []  # nothing at any final path
    (temp,) = (tmp_path / "tmp").iterdir()  # the dead writer's temporary file, fully written
    assert temp.name.startswith(".tmp-") and temp.read_bytes().startswith(b"\x89PNG")
    st = Store(tmp_path, root=tmp_path)
    assert st.list()["images"] == [] and temp.exists()  # too young to sweep: it could be a live writer's
    old = time.time() - 120
    os.utime(temp, (old, old))
    live = tmp_path / "tmp" / ".tmp-live"
    live.write_bytes(b"a live writer's")
    os.utime(live, (old, old))
    with open(live, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # a writer still holds it: never swept, whatever its age
        Store(tmp_path, root=tmp_path).close()  # opening a store sweeps
        assert not temp.exists() and live.exists()
    assert st.sweep() == 1 and not live.exists()  # its writer let go (and died): swept now
    image = st.create({"html": "<p>crash</p>"})
    assert st.get(image["id"]).startswith(b"\x89PNG") and len(st.list()["images"]) == 1
    st.close()


DISK_FULL = """
import json, os, sqlite3, subprocess, sys
from hcti_build import Store, WriteError
root = sys.argv[1]
store = Store(root + "/store", root=root)
filler = root + "/filler"
with open(filler, "wb", buffering=0) as fh:  # leave about 24 KB free
    try:
        while True:
            fh.write(b"x" * 4096)
    except OSError:
        pass
os.truncate(filler, os.path.getsize(filler) - 24 * 1024)
noise = "<canvas id=c width=200 height=200></canvas><script>const x = c.getContext('2d');" \\
    "for (let i = 0; i < 40000; i++) { x.fillStyle = '#' + (Math.random() * 0xffffff | 0).toString(16).padStart(6, '0');" \\
    "x.fillRect(i % 200, i / 200 | 0, 1, 1); }</script>"
out = {}
try:
    store.create({"html": noise, "device_scale": 1})
except WriteError as exc:
    out["error"] = [exc.status_code, exc.message]
cli = subprocess.run([sys.executable, "-m", "hcti_build.cli", "render", "--html", noise, "--device-scale", "1", "--store", root + "/store"],
                     capture_output=True, text=True, cwd=root)
out["cli"] = [cli.returncode, cli.stderr]
out["temps"] = os.listdir(root + "/store/tmp")
out["objects"] = [f for _, _, fs in os.walk(root + "/store/objects") for f in fs]
out["listed"] = len(store.list()["images"])
out["integrity"] = sqlite3.connect(root + "/store/index.sqlite").execute("PRAGMA integrity_check").fetchone()[0]
os.unlink(filler)
image = store.create({"html": noise, "device_scale": 1})
out["after"] = [store.get(image["id"])[:4].hex(), len(store.list()["images"])]
print(json.dumps(out))
"""


def test_a_full_disk_is_a_clear_error_and_the_store_stays_consistent(tmp_path: Path) -> None:
    """On a real 512 KB tmpfs, mounted in a private mount namespace (unshare): no root or cleanup needed."""
    if not shutil.which("unshare") or subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode:
        pytest.skip("needs unshare -rm (user and mount namespaces) to mount a small tmpfs")
    disk = tmp_path / "disk"
    disk.mkdir()
    script = tmp_path / "full.py"
    script.write_text(DISK_FULL)
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", 'mount -t tmpfs -o size=512k tmpfs "$1" && exec "$2" "$3" "$1"', "-"]
        + [str(disk), sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    status, message = out["error"]
    assert status == 507 and message.startswith(f"Cannot write {disk}/store/objects/")
    assert "No space left on device (free some space, or put it on another disk)" in message
    rc, stderr = out["cli"]
    assert rc == 2 and "No space left on device" in stderr and "Traceback" not in stderr
    assert out["temps"] == [] and out["objects"] == []  # no partial file anywhere
    assert out["listed"] == 0 and out["integrity"] == "ok"
    assert out["after"] == ["89504e47", 1]  # with space again, the same request works


EIGHT = """
import hashlib, json, sys
from hcti_build import Store
s = Store(sys.argv[1], root=sys.argv[1])
image = s.create({"html": "<p>same</p>"})
data = s.get(image["id"])
print(json.dumps([image["id"], hashlib.sha256(data).hexdigest(), data[:8].hex()]))
"""


def test_eight_processes_creating_one_image_get_one_copy_and_valid_bytes(tmp_path: Path) -> None:
    procs = [
        subprocess.Popen([sys.executable, "-c", EIGHT, str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(8)
    ]
    results = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [err for _, err in results]
    got = {tuple(json.loads(out)) for out, _ in results}
    assert len(got) == 1, results
    ((image_id, sha, magic),) = got
    assert magic == "89504e470d0a1a0a"
    st = Store(tmp_path, root=tmp_path)
    assert [i["id"] for i in st.list()["images"]] == [image_id]
    (obj,) = (tmp_path / "objects").rglob("*.png")  # one copy
    assert hashlib.sha256(obj.read_bytes()).hexdigest() == sha
    index = sqlite3.connect(tmp_path / "index.sqlite")
    assert index.execute("SELECT sha256 FROM images").fetchall() == [(sha,)]
    index.close()
    assert list((tmp_path / "tmp").iterdir()) == []
    st.close()


def test_a_store_reports_an_unwritable_folder_by_name(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(Exception) as err:
        Store(blocker / "store", root=tmp_path)
    assert type(err.value).__name__ == "WriteError" and str(blocker / "store") in str(err.value)
