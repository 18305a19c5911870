"""A read-only store (a CI cache restored onto a read-only mount) serves what it holds and says, in words, that it
cannot keep anything new (issue #28, class 4). The mount is a real read-only bind mount, in a mount namespace of
the test's own (`unshare --mount`), so nothing outside the test sees it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HCTI = f"{sys.executable} -m hcti_build.cli"


def _can_mount() -> bool:
    if shutil.which("unshare") is None:
        return False
    done = subprocess.run(["unshare", "--mount", "sh", "-c", "mount -t tmpfs none /mnt"], capture_output=True)
    return done.returncode == 0


pytestmark = pytest.mark.skipif(not _can_mount(), reason="needs unshare --mount (root)")


def test_a_read_only_store_serves_what_it_holds(tmp_path: Path) -> None:
    project, mounted = tmp_path / "project", tmp_path / "mounted"
    project.mkdir()
    mounted.mkdir()
    made = subprocess.run([sys.executable, "-m", "hcti_build.cli", "render", "--html", "<p>kept</p>"], cwd=project,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    image_id = json.loads(made.stdout)["id"]
    script = f"""
set -e
mount --bind {project} {mounted}
mount -o remount,bind,ro {mounted}
cd {mounted}
run() {{ echo "== $1"; shift; {HCTI} "$@" 2>&1 && echo "rc=0" || echo "rc=$?"; }}
run ls ls --json
run master get {image_id} -o {tmp_path}/master.png
run variant get '{image_id}.jpg?width=50' -o {tmp_path}/small.jpg
run usage usage --json
run hit render --html '<p>kept</p>'
run new render --html '<p>new</p>'
run rm rm {image_id}
"""
    done = subprocess.run(["unshare", "--mount", "bash", "-c", script], capture_output=True, text=True, timeout=300)
    said = dict(part.split("\n", 1) for part in done.stdout.split("== ")[1:])
    assert said["ls"].endswith("rc=0\n") and image_id in said["ls"], said["ls"]
    assert said["master"] == "rc=0\n" and (tmp_path / "master.png").read_bytes()[:4] == b"\x89PNG"
    assert said["variant"] == "rc=0\n" and (tmp_path / "small.jpg").read_bytes()[:3] == b"\xff\xd8\xff"
    assert said["usage"].endswith("rc=0\n") and '"data"' in said["usage"]
    assert json.loads(said["hit"].split("\n")[0])["id"] == image_id  # a stored request is a hit
    for step in ("new", "rm"):
        assert "rc=0" not in said[step] and "is read-only: it serves the images it holds" in said[step], said[step]
        assert "Traceback" not in said[step]
