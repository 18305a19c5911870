"""`hcti watch` end to end: real watchdog events on a temporary tree, real Chromium, bounded waits."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import alive, browser_pids, load, reap

from hcti_build import Engine, Store
from hcti_build.integrations.watch import Watcher
from hcti_build.pipeline.build import Builder, BuildReport

BOX = '```hcti\n<div style="width:{w}px;height:20px;background:{c}"></div>\n```\n'
LINKED = '```hcti\n<link rel="stylesheet" href="{css}"><div class="{cls}"></div>\n```\n'


def wait_for(cond: Callable[[], object], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.01)


class Running:
    """A Watcher on its own thread; each build's report arrives on a queue."""

    def __init__(self, src: Path, out: Path, engine: Engine, *, polling: bool = False) -> None:
        self.reports: queue.Queue[tuple[BuildReport, list[str]]] = queue.Queue()
        self.store = Store(src.parent / "store", root=src, engine=engine)
        self.builder = Builder(src, out, store=self.store)
        self.watcher = Watcher(self.builder, debounce=0.05, polling=polling, on_report=lambda r, c: self.reports.put((r, c)))
        self.thread = threading.Thread(target=self.watcher.run, daemon=True)
        self.thread.start()
        first, _ = self.next()
        assert first.ok, first.errors
        wait_for(self.watcher.ready.is_set)

    def next(self, timeout: float = 30) -> tuple[BuildReport, list[str]]:
        return self.reports.get(timeout=timeout)

    def stop(self) -> None:
        self.watcher.stop()
        self.thread.join(5)
        assert not self.thread.is_alive()
        self.store.close()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "css").mkdir(parents=True)
    (src / "css" / "shared.css").write_text(".s{width:30px;height:30px;background:rgb(255,0,0)}")
    (src / "a.md").write_text("# A\n\n" + BOX.format(w=10, c="red") + "\n" + BOX.format(w=11, c="red"))
    (src / "b.md").write_text("# B\n\n" + LINKED.format(css="css/shared.css", cls="s") + "\n" + BOX.format(w=12, c="blue"))
    (src / "c.md").write_text("# C\n\n" + LINKED.format(css="css/shared.css", cls="s") + "\n" + BOX.format(w=13, c="blue"))
    (src / "d.md").write_text("# D\n\n" + BOX.format(w=14, c="green"))
    return src


@pytest.fixture
def running(tree: Path, engine: Engine) -> Iterator[Running]:
    r = Running(tree, tree.parent / "out", engine)
    yield r
    r.stop()


def srcs(text: str) -> list[str]:
    return re.findall(r'src="([^"]+)"', text)


def test_an_edit_re_renders_that_directive_only(running: Running, tree: Path) -> None:
    out = tree.parent / "out"
    before = {p: (out / p).read_text() for p in ("b.md", "c.md", "d.md")}
    old = srcs((out / "a.md").read_text())
    (tree / "a.md").write_text("# A\n\n" + BOX.format(w=40, c="red") + "\n" + BOX.format(w=11, c="red"))
    report, changed = running.next()
    assert changed == ["a.md"]
    assert (report.directives, report.rendered, report.reused) == (2, 1, 1)
    new = srcs((out / "a.md").read_text())
    assert new[1] == old[1] and new[0] != old[0]
    assert load(out / new[0]).size == (80, 40)  # 40x20 CSS px at device scale 2
    assert not (out / old[0]).exists()  # the stale asset is removed
    assert sorted(report.written) == sorted(["a.md", new[0]])
    assert {p: (out / p).read_text() for p in before} == before


def test_editing_a_shared_stylesheet_re_renders_exactly_its_dependents(running: Running, tree: Path) -> None:
    out = tree.parent / "out"
    a_before = (out / "a.md").read_text()
    (tree / "css" / "shared.css").write_text(".s{width:30px;height:30px;background:rgb(0,0,255)}")
    report, changed = running.next()
    assert changed == ["css/shared.css"]
    # b.md and c.md: the linked directive (one image for both: same HTML, same stylesheet) renders again;
    # their other directives are reused
    assert (report.directives, report.rendered, report.reused) == (4, 1, 3)
    assert {w for w in report.written if w.endswith(".md")} == {"b.md", "c.md"}
    for page in ("b.md", "c.md"):
        assert load(out / srcs((out / page).read_text())[0]).getpixel((10, 10))[:3] == (0, 0, 255)
    assert (out / "a.md").read_text() == a_before
    assert (out / "css" / "shared.css").read_text().endswith("rgb(0,0,255)}")  # the copy follows too


def test_a_broken_edit_reports_and_the_next_good_save_recovers(running: Running, tree: Path) -> None:
    out = tree.parent / "out"
    good = (out / "d.md").read_text()
    (tree / "d.md").write_text("# D\n\nText.\n\n```hcti width=abc\n<p>x</p>\n```\n")
    report, _ = running.next()
    assert [str(e) for e in report.errors] == [
        f"{os.path.relpath(tree / 'd.md')}:5:1: width must be an integer between 1 and 5000"
    ]
    assert report.written == [] and (out / "d.md").read_text() == good  # nothing half-written
    (tree / "d.md").write_text("# D\n\n" + BOX.format(w=15, c="green"))
    report, _ = running.next()
    assert report.ok and report.rendered == 1
    assert load(out / srcs((out / "d.md").read_text())[0]).size == (30, 40)


def test_deleted_and_renamed_sources(running: Running, tree: Path) -> None:
    out = tree.parent / "out"
    d_assets = srcs((out / "d.md").read_text())
    (tree / "d.md").unlink()
    report, _ = running.next()
    assert report.ok and "d.md" in report.removed
    assert not (out / "d.md").exists() and not any((out / a).exists() for a in d_assets)
    a_assets = srcs((out / "a.md").read_text())
    (tree / "a.md").rename(tree / "e.md")
    report, changed = running.next()
    assert set(changed) == {"a.md", "e.md"} and report.rendered == 0
    assert not (out / "a.md").exists() and srcs((out / "e.md").read_text()) == a_assets
    assert all((out / a).exists() for a in a_assets)  # still referenced, by the renamed page


def test_polling_observer_sees_edits_too(tree: Path, engine: Engine) -> None:
    """`--poll` (mounts without native events): the same incremental rebuild, from a polling observer."""
    running = Running(tree, tree.parent / "out", engine, polling=True)
    try:
        (tree / "d.md").write_text("# D\n\n" + BOX.format(w=16, c="green"))
        report, changed = running.next()
        assert changed == ["d.md"] and report.rendered == 1
        assert load(tree.parent / "out" / srcs((tree.parent / "out" / "d.md").read_text())[0]).size == (32, 40)
    finally:
        running.stop()


@pytest.mark.parametrize("how", ["SIGTERM", "Ctrl-C"])
def test_signals_exit_within_a_second_leaving_no_chromium(tree: Path, how: str) -> None:
    cmd = [sys.executable, "-m", "hcti_build.cli", "watch", str(tree), "--out", str(tree.parent / "out")]
    env = {**os.environ, "HCTI_STORE": str(tree.parent / "store")}
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, start_new_session=True, env=env)
    try:
        assert proc.stderr is not None
        lines = []
        while "initial build" not in (line := proc.stderr.readline()):
            assert line, "".join(lines)
            lines.append(line)
        browser = browser_pids(proc.pid)
        assert browser  # the warm browser is running
        t0 = time.monotonic()
        if how == "SIGTERM":
            proc.send_signal(signal.SIGTERM)
        else:  # a terminal's Ctrl-C reaches the whole process group
            os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=5) == 0
        assert time.monotonic() - t0 < 1.0
        wait_for(lambda: not alive(browser), timeout=2)
        rest = proc.stderr.read()
        assert "Traceback" not in rest and "Exception" not in rest, rest
    finally:
        reap(proc)
