from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fakes import FakeRenderer
from hostile.canary import Canary
from hostile.canary import start as start_canary
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from PIL import Image

from hcti_build import Engine, HctiError, Store, find_chromium
from hcti_build.api.server import create_app
from hcti_build.api.serving import bind
from hcti_build.api.signing import Credentials
from hcti_build.network import Policy

CREDS = Credentials("user-1", "secret-key-1")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--chromium",
        metavar="PATH",
        help="The Chromium every test drives, in this process and in the builds and servers it starts (sets "
        "HCTI_CHROMIUM); default: what find_chromium finds (Debian's headless shell first).",
    )


def pytest_configure(config: pytest.Config) -> None:
    chromium = config.getoption("--chromium")
    if chromium:
        os.environ["HCTI_CHROMIUM"] = chromium


# Where Debian's two binaries behave differently: rendering and capture, the sandbox and what a page can reach,
# crashes and timeouts, what `--version` says. CI runs these once more under the full `chromium` (`-m binaries`);
# the rest (hosts, the store, the CLI) drive the browser the same way whichever it is.
BINARIES = frozenset({
    "test_render_e2e.py", "test_server_e2e.py", "test_missing_browser_e2e.py", "test_find_chromium.py",
    "test_network.py", "test_contexts.py", "test_crashes.py", "test_navigation.py", "test_faults.py", "test_limits.py",
    "test_smaller_holes.py", "test_files_on_disk.py",
})  # fmt: skip


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`-m e2e` selects what drives a real browser (the *_e2e.py modules and the hostile suite); `-m binaries`
    the part of it where the headless shell and the full `chromium` differ (`BINARIES`)."""
    for item in items:
        path = item.path
        if path.name.endswith("_e2e.py") or path.parent.name == "hostile":
            item.add_marker(pytest.mark.e2e)
        if path.name in BINARIES:
            item.add_marker(pytest.mark.binaries)


def pytest_report_header(config: pytest.Config) -> str:
    try:
        return f"chromium: {find_chromium()}"
    except HctiError as exc:
        return f"chromium: {exc.message}"


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


@pytest.fixture
def renderer() -> FakeRenderer:
    return FakeRenderer()


@pytest.fixture
def fake_store(tmp_path: Path, renderer: FakeRenderer) -> Iterator[Store]:
    """A store on a renderer that is not a browser (`fakes.FakeRenderer`): for the store's own logic."""
    st = Store(tmp_path / "store", root=tmp_path, engine=renderer, remote="")
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


def cmdline(pid: int) -> str:
    """A process's command line; empty once it has exited."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
    except OSError:
        return ""


def browser_pids(pid: int) -> set[int]:
    """The Chromium processes under ``pid`` (processes exiting meanwhile are left out)."""
    return {p for p in descendants(pid) if "chrom" in cmdline(p)}


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


@pytest.fixture
def allowed_site(engine: Engine, canaries: tuple[Canary, Canary], monkeypatch: pytest.MonkeyPatch) -> tuple[Canary, Canary]:
    """The canaries, with the first on the session engine's allow-list for this test: a site a url render may
    reach, and somewhere it must not lead."""
    monkeypatch.setattr(engine, "policy", Policy((canaries[0].origin,)))
    return canaries


class Uvicorn:
    """An ASGI app on uvicorn in a thread, on a free port of 127.0.0.1, started before the constructor returns.
    log_config=None: uvicorn leaves logging alone, so its access log reaches caplog."""

    def __init__(self, app: Any, *, lifespan: str = "off", access_log: bool = False) -> None:
        sock = bind("127.0.0.1", 0)
        config = uvicorn.Config(app, log_config=None, access_log=access_log, lifespan=lifespan, ws="none")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive()
            time.sleep(0.01)
        self.base = f"http://127.0.0.1:{sock.getsockname()[1]}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@dataclass
class Served:
    base: str
    store: Store
    client: httpx.Client  # authenticated
    anon: httpx.Client


@pytest.fixture
def serve(tmp_path: Path, engine: Engine) -> Iterator[Callable[..., Served]]:
    """Starts the real ASGI app on uvicorn, on a free port of 127.0.0.1, sharing the session's browser."""
    running: list[tuple[Uvicorn, Served, Any]] = []

    def start(queue: int = 32, renderer: Any = None) -> Served:
        store = Store(tmp_path / "store", root=tmp_path, engine=renderer or engine)
        app = create_app(store, CREDS, queue=queue)
        server = Uvicorn(app, access_log=True)
        served = Served(
            server.base,
            store,
            httpx.Client(base_url=server.base, auth=(CREDS.user_id, CREDS.api_key), timeout=60),
            httpx.Client(base_url=server.base, timeout=60),
        )
        running.append((server, served, app))
        return served

    yield start
    for server, served, app in running:
        served.client.close()
        served.anon.close()
        server.stop()
        app.state.api.close()
        served.store.close()


@pytest.fixture
def shell(tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    """The real IPython shell, in a fresh folder, with the magic on the session's browser."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HCTI_STORE", raising=False)
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "hcti_build")
    ip.magics_manager.registry["HctiMagics"].engine = engine
    yield ip
    ip.run_line_magic("unload_ext", "hcti_build")


def run(ip: InteractiveShell, source: str) -> tuple[Any, list[Any]]:
    with capture_output() as cap:
        result = ip.run_cell(source)
    return result, cap.outputs


@dataclass
class CountingChromium:
    """A Chromium wrapper script that counts browser launches (not `--version` runs), for processes the tests
    start: set HCTI_CHROMIUM to ``path``."""

    path: Path
    log: Path

    def launches(self) -> int:
        return len(self.log.read_text().splitlines()) if self.log.is_file() else 0


@pytest.fixture
def counting_chromium(tmp_path: Path) -> CountingChromium:
    log = tmp_path / "launches.log"
    path = tmp_path / "bin" / "chromium"
    path.parent.mkdir()
    path.write_text(
        f'#!/bin/sh\ncase " $* " in *" --version "*) ;; *) echo launch >> "{log}" ;; esac\nexec "{find_chromium()}" "$@"\n'
    )
    path.chmod(0o755)
    return CountingChromium(path, log)


def meta_tags(path: Path) -> dict[str, list[str]]:
    """A built page's meta tags (`property` or `name`), each key's contents in order."""
    from hcti_build.pipeline.head import read_head

    found: dict[str, list[str]] = {}
    for m in read_head(path.read_text()).metas:
        found.setdefault(m.key, []).append(m.content)
    return found
