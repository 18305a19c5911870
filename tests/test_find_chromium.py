"""Chromium discovery: environment, config key, Debian's headless shell, a Playwright-managed browser."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hcti_build import find_chromium
from hcti_build.errors import BrowserNotFoundError


def _exe(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_env_wins_and_a_wrong_env_path_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exe = _exe(tmp_path / "my-chrome")
    monkeypatch.setenv("HCTI_CHROMIUM", str(exe))
    assert find_chromium() == str(exe)
    monkeypatch.setenv("HCTI_CHROMIUM", str(tmp_path / "missing"))
    with pytest.raises(BrowserNotFoundError, match="missing"):
        find_chromium()


def test_config_key_in_pyproject_relative_to_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HCTI_CHROMIUM", raising=False)
    exe = _exe(tmp_path / "bin" / "chrome")
    (tmp_path / "pyproject.toml").write_text('[tool.hcti]\nchromium = "bin/chrome"\n')
    (tmp_path / "docs").mkdir()
    monkeypatch.chdir(tmp_path / "docs")
    assert find_chromium() == str(exe)


def test_playwright_managed_browser_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HCTI_CHROMIUM", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("hcti_build.engine.chromium.CANDIDATES", ())
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", str(tmp_path / "pw"))
    shell = _exe(tmp_path / "pw" / "chromium_headless_shell-1200" / "chrome-linux" / "headless_shell")
    assert find_chromium() == str(shell)
    os.unlink(shell)
    with pytest.raises(BrowserNotFoundError, match="apt-get install chromium"):
        find_chromium()
