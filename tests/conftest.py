from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostile.canary import Canary
from hostile.canary import start as start_canary
from PIL import Image

from hcti_build import Engine, Store


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    """One real Chromium for the whole session (launching costs ~0.5 s)."""
    eng = Engine()
    yield eng
    eng.close()


@pytest.fixture
def store(tmp_path: Path, engine: Engine) -> Iterator[Store]:
    st = Store(tmp_path / "store", root=tmp_path, engine=engine)
    yield st
    st.close()


def load(source: bytes | Path) -> Image.Image:
    """Open an image fully and close its file (a leaked handle is a warning, and warnings fail the suite)."""
    import io

    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
        im.load()
        return im.copy()  # copy() keeps .info (dpi and the rest)


def descendants(pid: int) -> set[int]:
    """Every process under ``pid``, from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        for child, parent in parents.items():
            if parent == p and child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (zombies count as gone)."""
    alive = set()
    for p in pids:
        try:
            state = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(p)
    return alive


def browser_pids(pid: int) -> set[int]:
    """The Chromium processes under ``pid``."""
    return {p for p in descendants(pid) if "chrom" in Path(f"/proc/{p}/cmdline").read_text(errors="replace")}


def reap(proc: subprocess.Popen[str]) -> None:
    """After a test of a process started with start_new_session: kill what is left of its group, close stderr."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    if proc.stderr:
        proc.stderr.close()


@pytest.fixture
def canaries() -> Iterator[tuple[Canary, Canary]]:
    """Two canary HTTP servers on 127.0.0.1 that count their hits (two origins): a site, and somewhere it must
    not lead. The hostile suite's witnesses for the network cases."""
    (site, a), (elsewhere, b) = start_canary(), start_canary()
    yield site, elsewhere
    for httpd in (a, b):
        httpd.shutdown()
        httpd.server_close()
