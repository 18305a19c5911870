"""Which Chromium to drive and how to start it: discovery (HCTI_CHROMIUM, the configuration, Debian's
browsers, Playwright's, PATH; never a download), its version (part of every image's identity), the fonts
it can use, and the command line every launch gets (`ARGS`, and `FEATURES` merged into Playwright's own).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from ..config import config_value
from ..errors import BrowserNotFoundError

CANDIDATES = (
    "/usr/lib/chromium/chromium-headless-shell",
    "/usr/bin/chromium-headless-shell",
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
)
# No frame-rate pacing: small snippets do not wait for a frame (docs/performance.md). No background networking: the machine may be
# offline, and a render must reach nothing it was not asked to.
# No --enable-features or --disable-features here, ever: Chromium keeps only the last of a repeated switch, so
# a list here would replace Playwright's own (FEATURES are merged into them, see `launch_options`). Losing its
# CDPScreenshotNewSurface made the full `chromium` (not the headless shell) wait forever in
# Page.captureScreenshot for a frame a static page never draws: the last card of a build, rendered alone, hung
# (issue #17; tests/test_render_e2e.py keeps it fixed).
ARGS = [
    "--disable-frame-rate-limit",
    "--disable-gpu-vsync",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--font-render-hinting=none",
    # Fewer processes (each one costs memory, docs/performance.md): no zygotes (Playwright runs Chromium unsandboxed),
    # the GPU service inside the browser process, and one renderer for the pages of a shared context
    # (Engine(isolate=False)). None of this is slower.
    "--no-zygote",
    "--in-process-gpu",
    "--process-per-site",
    # No side door out of the request filter. Every request a page makes is answered by `Engine._handle` (served,
    # fetched by Playwright outside the browser, or refused) before the browser's network stack would see it; what
    # is not a request (WebRTC's STUN and TURN, a preconnect's bare socket, a DNS prefetch, QUIC) is left
    # nowhere to go: UDP only through a proxy (and an HTTP proxy carries none), every connection through a proxy
    # that does not exist, loopback included (no implicit bypass), and no name resolves.
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--proxy-server=http://proxy.hcti.invalid:9",
    "--proxy-bypass-list=<-loopback>",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--disable-quic",
]
# Chromium features we change, added to Playwright's own lists (see `launch_options`): RenderDocument and the
# back-forward cache make every navigation swap frames (slower), and the network service in its own process is
# one more process (more memory); both measured in docs/performance.md.
FEATURES = {"enable": ("NetworkServiceInProcess2",), "disable": ("RenderDocument", "BackForwardCache")}

# How to give hcti-build a browser: the end of every "no Chromium" message.
INSTALL_HINT = (
    "install Debian's browser (apt-get install chromium chromium-headless-shell), set HCTI_CHROMIUM to a Chromium "
    'or Chrome executable, or set chromium = "/path" under [tool.hcti] in pyproject.toml; hcti-build never '
    "downloads a browser"
)


def configured_chromium(start: Path | None = None) -> tuple[str, str] | None:
    """`chromium = "..."` from `[tool.hcti]` in the nearest pyproject.toml, or from an `hcti.toml`: the path
    (relative ones are relative to that file's folder) and where it was set."""
    found = config_value("chromium", start)
    if found is None:
        return None
    value, folder = found
    path = str((folder / value).resolve()) if not Path(value).is_absolute() else value
    return path, f"the chromium key of the configuration in {folder}"


def _playwright_managed() -> list[str]:
    """Browsers `playwright install` put in its cache (we use them, never download them): headless shell first."""
    base = Path(os.environ.get("PLAYWRIGHT_BROWSERS_PATH") or Path.home() / ".cache" / "ms-playwright")
    patterns = ("chromium_headless_shell-*/chrome-*/*headless_shell", "chromium-*/chrome-linux*/chrome")
    return [str(p) for pattern in patterns for p in sorted(base.glob(pattern), reverse=True)]


def is_executable(path: str) -> bool:
    return Path(path).is_file() and os.access(path, os.X_OK)


def find_chromium(configured: str | None = None) -> str:
    """The Chromium to drive, first found of: HCTI_CHROMIUM, the argument, a config key (`chromium` in
    `[tool.hcti]` or `hcti.toml`), Debian's headless shell, a Playwright-managed browser, one on PATH."""
    env = os.environ.get("HCTI_CHROMIUM")
    chosen = (env, "HCTI_CHROMIUM") if env else (configured, "the chromium option") if configured else configured_chromium()
    if chosen:
        path, source = chosen
        if is_executable(path):
            return path
        raise BrowserNotFoundError(f"Chromium not found at {path} (set by {source}): point it at a Chromium or Chrome executable")
    for cand in (*CANDIDATES, *_playwright_managed()):
        if is_executable(cand):
            return cand
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    raise BrowserNotFoundError(
        f"No Chromium found (looked for {', '.join(CANDIDATES)}, Playwright's browsers, and chromium or google-chrome "
        f"on PATH): {INSTALL_HINT}"
    )


_families: frozenset[str] | None = None


def installed_font_families() -> frozenset[str]:
    """Font families fontconfig knows (lower-cased), read once per process."""
    global _families
    if _families is None:
        try:
            out = subprocess.run(["fc-list", ":", "family"], capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        _families = frozenset(f.strip().lower() for line in out.splitlines() for f in line.split(","))
    return _families


def missing_google_fonts(spec: str | None) -> list[str]:
    """The families of a `google_fonts` value ('Roboto|Open Sans') that are not installed locally."""
    if not spec:
        return []
    wanted = [f.split(":")[0].replace("+", " ").strip() for f in spec.split("|")]
    have = installed_font_families()
    return [f for f in wanted if f and f.lower() not in have]


def chromium_version(executable: str) -> str:
    """`--version` of the executable, without launching a browser session: a program that does not answer it
    like a browser ("Chromium 156.0.8078.114") is not one we can drive, said before anything renders."""
    try:
        done = subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as exc:
        raise BrowserNotFoundError(f"{executable} is not a working Chromium: it cannot run ({exc}); {INSTALL_HINT}") from exc
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines or not re.search(r"\d+\.\d+\.\d+", lines[-1]):
        said = (done.stderr.strip().splitlines() or lines or ["nothing"])[-1][:200]
        raise BrowserNotFoundError(
            f"{executable} is not a working Chromium: `--version` exited with code {done.returncode} and said {said!r}; "
            f"{INSTALL_HINT}"
        )
    return lines[-1]


_switches: dict[str, str] | None = None


async def launch_options(pw: Any) -> dict[str, Any]:
    """Playwright's launch options with FEATURES merged into its own feature lists. Chromium keeps only the last
    of a repeated switch, so a list of ours may only ever be Playwright's plus ours (issue #17: without its
    CDPScreenshotNewSurface the full browser hung). Its lists are learned once a process by launching a
    stand-in that writes down the arguments it is given; if that fails, FEATURES are left out (slower, correct)."""
    global _switches
    if _switches is None:
        _switches = await _playwright_switches(pw)
    options: dict[str, Any] = {"args": list(ARGS)}
    if _switches:
        options["ignore_default_args"] = [f"--{kind}-features={value}" for kind, value in _switches.items()]
        for kind, value in _switches.items():
            ours = [f for f in FEATURES[kind] if f not in value.split(",")]
            options["args"].append(f"--{kind}-features={','.join([*filter(None, value.split(',')), *ours])}")
    return options


async def _playwright_switches(pw: Any) -> dict[str, str]:
    """The values of the --enable-features and --disable-features Playwright passes (both, or nothing)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="hcti-switches-") as folder:
        argv, script = Path(folder) / "argv", Path(folder) / "chromium"
        try:
            script.write_text(f'#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done > "{argv}"\n')
            script.chmod(0o700)
            await pw.chromium.launch(executable_path=str(script), args=ARGS, timeout=10_000)
        except Exception:  # noqa: BLE001 - the stand-in exits at once: the launch fails, as it should
            pass
        try:
            given = argv.read_text().splitlines()
        except OSError:  # no shell, or a folder it may not run from: Playwright's lists stand alone
            return {}
    found: dict[str, str] = {}
    for kind in ("enable", "disable"):
        values = [a.split("=", 1)[1] for a in given if a.startswith(f"--{kind}-features=")]
        if len(values) != 1:  # not the one list each that merging assumes
            return {}
        found[kind] = values[0]
    return found


def learned_switches() -> dict[str, str] | None:
    """Playwright's two feature lists as this process learned them at its first launch (None before it; empty
    when the stand-in could not run)."""
    return _switches
