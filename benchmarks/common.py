"""What the generated-site benchmarks share: their command line, and arms run taking turns."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def site_args(
    doc: str | None, repeat: int, counts: dict[str, tuple[int, str]] | None = None, flags: dict[str, str] | None = None
) -> argparse.Namespace:
    """--pages (the generated site's size) and --repeat (runs of the repeated arms, whose medians are kept), more
    integer options (``counts``: name -> (default, help)) and switches (``flags``: name -> help)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=300, help="pages in the generated site (default 300)")
    ap.add_argument("--repeat", type=int, default=repeat, help=f"runs of each repeated arm; medians kept (default {repeat})")
    for name, (default, text) in (counts or {}).items():
        ap.add_argument(f"--{name}", type=int, default=default, help=f"{text} (default {default})")
    for name, text in (flags or {}).items():
        ap.add_argument(f"--{name}", action="store_true", help=text)
    return ap.parse_args()


def alternate(repeat: int, *arms: Callable[[], T]) -> list[list[T]]:
    """Each arm run ``repeat`` times, taking turns, so that a slow minute of the machine falls on every arm alike."""
    runs: list[list[T]] = [[] for _ in arms]
    for _ in range(repeat):
        for out, arm in zip(runs, arms, strict=True):
            out.append(arm())
    return runs
