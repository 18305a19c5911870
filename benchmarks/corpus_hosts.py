"""How the corpus gets and builds a real project (benchmarks/corpus.py lists them): sources fetched once into a
cache (`$HCTI_CORPUS_CACHE`, default `~/.cache/hcti-corpus`; a second run does no network), each host's three
arms (plain, hcti cold with an empty store, hcti warm), and one project run into a `Row`: timed, checked by
corpus_checks, with a result.

A host is what builds the site: MkDocs or ProperDocs (the plugin, added by a config that INHERITs the project's),
Sphinx (the extension, added with `-D extensions=...`), any generator followed by `hcti og`, or nbconvert.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from corpus_checks import check_site, counting_chromium, hcti_warnings, launches, snapshot

SITE_URL = "https://corpus.example.org/"
BIN = Path(sys.executable).parent


def cache_dir() -> Path:
    return Path(os.environ.get("HCTI_CORPUS_CACHE") or Path.home() / ".cache" / "hcti-corpus")


def sdist(spec: str) -> Path:
    """The sdist of ``spec`` (`name==version`), downloaded by pip once into the cache."""
    name, version = spec.split("==")
    folder = cache_dir() / "sdists"
    stem = name.replace("-", "_").lower()
    for path in folder.glob("*.tar.gz"):
        if path.name.lower().replace("-", "_") == f"{stem}_{version}.tar.gz".lower():
            return path
    folder.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:", spec, "-d", str(folder)]
    got = subprocess.run(pip, capture_output=True, text=True, timeout=600)
    if got.returncode != 0:
        raise RuntimeError(f"pip download {spec} failed:\n{got.stderr[-2000:]}")
    return sdist(spec)


def extract(spec: str, into: Path) -> Path:
    """The sdist's top folder, extracted into ``into``."""
    with tarfile.open(sdist(spec)) as tar:
        top = tar.getnames()[0].split("/")[0]
        tar.extractall(into, filter="data")
    return into / top


@dataclass
class Build:
    """One arm's run: seconds, the host's output, Chromium launches it made."""

    seconds: float
    output: str
    launched: int


@dataclass
class Host:
    """How a project is built: ``plain`` and ``hcti`` are commands run in the source folder (``{store}`` and
    ``{site}`` filled in); ``then`` a second command of the hcti arm (`hcti og` after a generator)."""

    name: str
    plain: list[str]
    hcti: list[str]
    site: str  # the built site, relative to the source folder
    then: list[str] = field(default_factory=list)
    renders_summary: str | None = None  # what the warm build's output says when it rendered nothing
    verify: list[str] = field(default_factory=list)  # untimed, after the cold build: must exit 0 (`hcti og --check`)


@dataclass
class Project:
    name: str
    version: str  # pinned: the sdist, Debian or npm package, or scaffold the source comes from
    theme: str
    prepare: Callable[[Path, str], tuple[Path, Host]]  # (work folder, name) -> (the source folder, how to build it)
    left_out: str = ""
    not_pages: tuple[str, ...] = ()  # globs of HTML files in the site that are not pages
    skip: tuple[str, ...] = ("_static/*", "assets/*", "_images/*")  # globs of HTML files that are assets: not read
    defect: str | None = None  # a known defect expected to make this project fail ("#30 defect 1"), until its fix
    check: Callable[[Path, Path], list[str]] | None = None  # (source, site) -> faults, instead of the site check


@dataclass
class Row:
    project: Project
    host: str
    pages: int = 0
    cards: int = 0
    times: list[float] = field(default_factory=list)  # plain, cold, warm
    faults: list[str] = field(default_factory=list)

    @property
    def result(self) -> str:
        defect = self.project.defect or ""
        if self.faults:  # the first fault, cut to fit a table (all of them are printed after it)
            first = self.faults[0] if len(self.faults[0]) < 120 else self.faults[0][:117] + "..."
            return f"expected failure ({defect}): {first}" if defect else f"FAIL: {first}"
        return f"passes, but marked {defect}: remove the mark" if defect else "ok"

    @property
    def as_expected(self) -> bool:
        return bool(self.faults) == bool(self.project.defect)

    def markdown(self) -> str:
        plain, cold, warm = (self.times + [float("nan")] * 3)[:3]
        cells = [f"{self.project.name} {self.project.version}", f"{self.host} / {self.project.theme}", str(self.pages),
                 str(self.cards), f"{plain:.1f}", f"{cold:.1f}", f"{warm:.1f}", f"{cold / plain:.2f}",
                 f"{warm / plain:.2f}", self.result.replace("|", "\\|")]  # fmt: skip
        return "| " + " | ".join(cells) + " |"


HEADER = (
    "| project | host / theme | pages | cards | plain s | cold s | warm s | cold/plain | warm/plain | result |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
)


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 1800) -> tuple[float, str]:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - t0
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} exited {done.returncode}:\n{output[-3000:]}")
    return seconds, output


def _arm(host: Host, src: Path, work: Path, hcti: bool, chromium: tuple[Path, Path]) -> Build:
    """One arm, into a fresh site folder: plain (the host without hcti-build) or hcti (the store kept)."""
    shutil.rmtree(src / host.site, ignore_errors=True)
    env, fill = _env(work, chromium[0]), {"store": str(work / "store"), "site": str(src / host.site)}
    before = launches(chromium[1])
    seconds, output = _run([a.format(**fill) for a in (host.hcti if hcti else host.plain)], src, env)
    if hcti and host.then:
        more, said = _run([a.format(**fill) for a in host.then], src, env)
        seconds, output = seconds + more, output + said
    return Build(seconds, output, launches(chromium[1]) - before)


def _env(work: Path, chromium: Path) -> dict[str, str]:
    """The host's environment: the arm's store, the counting Chromium, no remote or other HCTI_ setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HCTI_")}
    env.update(HCTI_STORE=str(work / "store"), HCTI_CHROMIUM=str(chromium), NO_MKDOCS_2_WARNING="1",
               DISABLE_MKDOCS_2_WARNING="true", PATH=f"{BIN}:{env.get('PATH', '')}")  # fmt: skip
    return env


def _verified(host: Host, src: Path, work: Path) -> list[str]:
    cmd = [a.format(store=str(work / "store"), site=str(src / host.site)) for a in host.verify]
    done = subprocess.run(cmd, cwd=src, env=_env(work, work / "bin" / "chromium"), capture_output=True, text=True)
    if done.returncode == 0:
        return []
    said = (done.stdout + done.stderr).strip().splitlines()
    return [f"cold: {' '.join(host.verify[:3])} exited {done.returncode}: {line}" for line in said[:10]]


def run(project: Project, work: Path, repeat: int = 1) -> Row:
    """The project built plain, cold and warm, each checked (a fault that stops it is the row's first fault);
    plain and warm ``repeat`` times, taking turns, their medians kept."""
    work.mkdir(parents=True, exist_ok=True)
    row = Row(project, "?")
    try:
        src, host = project.prepare(work, project.name)
        row.host = host.name
        _arms(project, host, src, work, row)
        _again(project, host, src, work, row, repeat)
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
        row.faults.append(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))
        row.faults += str(exc).strip().splitlines()[1:]
    return row


def _arms(project: Project, host: Host, src: Path, work: Path, row: Row) -> None:
    chromium = counting_chromium(work / "bin", _chromium())
    _arm(host, src, work, False, chromium)  # untimed: the OS caches and Python's bytecode warmed for every arm
    plain = _arm(host, src, work, False, chromium)
    if not any((src / host.site).rglob("*.*")):
        raise RuntimeError(f"plain: {host.name} wrote nothing in {host.site}: this arm did not do its work")
    # What the host wrote without hcti-build: files that are not pages must come out of the hcti arms the same.
    before = snapshot(src / host.site, project.skip)
    shutil.rmtree(work / "store", ignore_errors=True)
    cold = _arm(host, src, work, True, chromium)
    row.faults += _checked(project, host, src, cold, before, row, "cold")
    if cold.launched == 0:
        row.faults.append("cold: no Chromium launched: this arm did not do its work")
    row.faults += _verified(host, src, work) if host.verify else []
    objects = _store_objects(work / "store")
    warm = _arm(host, src, work, True, chromium)
    row.times = [plain.seconds, cold.seconds, warm.seconds]
    row.faults += _checked(project, host, src, warm, before, row, "warm")
    if warm.launched or _store_objects(work / "store") != objects:
        row.faults.append(f"warm: rendered again ({warm.launched} Chromium launches, store {objects} -> "
                          f"{_store_objects(work / 'store')} objects)")  # fmt: skip
    if host.renders_summary and host.renders_summary not in warm.output:
        row.faults.append(f"warm: its output does not say {host.renders_summary!r}")


def _again(project: Project, host: Host, src: Path, work: Path, row: Row, repeat: int) -> None:
    """More plain and warm builds, taking turns (a busy minute of the machine falls on both alike); each warm one
    must still render nothing. The medians replace the first runs' times."""
    plains, warms = [row.times[0]], [row.times[2]]
    chromium = (work / "bin" / "chromium", work / "bin" / "launches.log")
    for _ in range(repeat - 1):
        plains.append(_arm(host, src, work, False, chromium).seconds)
        warm = _arm(host, src, work, True, chromium)
        warms.append(warm.seconds)
        if warm.launched:
            row.faults.append(f"warm (again): {warm.launched} Chromium launches")
    row.times = [statistics.median(plains), row.times[1], statistics.median(warms)]


def _checked(project: Project, host: Host, src: Path, build: Build, before: dict[str, bytes], row: Row, arm: str) -> list[str]:
    faults = [f"{arm}: hcti warning: {line.strip()}" for line in hcti_warnings(build.output)]
    site = src / host.site
    if project.check is not None:
        row.pages = len(list(src.glob("*.ipynb")))
        row.cards = len({p.name for p in site.rglob("hcti-*")})
        return faults + [f"{arm}: {f}" for f in project.check(src, site)]
    report = check_site(site, SITE_URL + project.name + "/", before=before, not_pages=project.not_pages, skip=project.skip)
    row.pages = len(report.pages)
    row.cards = len({p.name for p in site.rglob("*") if p.is_file() and "social" in p.parent.name})
    return faults + [f"{arm}: {f}" for f in report.faults]


def _store_objects(store: Path) -> int:
    """The store's masters (`objects/<id[:2]>/<id>.<fmt>`): a render adds one, a store hit none."""
    return sum(1 for p in store.glob("objects/*/*") if p.is_file())


def _chromium() -> str:
    from hcti_build import find_chromium

    return str(find_chromium())
