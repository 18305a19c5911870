"""Project configuration: keys of `[tool.hcti]` in the nearest pyproject.toml, or of an `hcti.toml`.

Keys read today: `chromium` (the browser to drive), `user_id` and `api_key` (what `hcti serve` accepts and
`hcti sign` signs with, when HCTI_USER_ID / HCTI_API_KEY are not set).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any


def config_value(key: str, start: Path | None = None) -> tuple[str, Path] | None:
    """The first non-empty string `key` found walking up from ``start`` (default: the working folder), with
    the folder of the file it came from (relative paths in it are relative to that folder)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        for name, table in (("hcti.toml", ()), ("pyproject.toml", ("tool", "hcti"))):
            path = folder / name
            if not path.is_file():
                continue
            try:
                data: Any = tomllib.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
                continue
            for part in table:
                data = data.get(part, {}) if isinstance(data, dict) else {}
            value = data.get(key) if isinstance(data, dict) else None
            if isinstance(value, str) and value:
                return value, folder
    return None
