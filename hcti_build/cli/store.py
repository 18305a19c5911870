"""`hcti store stats|prune|verify`: the store's maintenance on the command line (the work is `maintenance`'s).

Each acts on the local store, and with ``--remote`` on its remote too (HCTI_REMOTE, or ``remote`` in the
configuration). Errors are the API's JSON on stderr with exit code 2; a verify that found damage it could not
repair exits 1.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..errors import BadRequestError
from ..store import maintenance
from ..store.remote import Remote
from ..store.store import Store
from .common import store_option


def _remote(store: Store) -> Remote:
    if store.remote is None:
        raise BadRequestError("--remote needs a remote: set HCTI_REMOTE or remote in [tool.hcti]", param="remote")
    return store.remote.remote


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


T = TypeVar("T")


@click.group("store")
def store_group() -> None:
    """Maintain the store: its size, pruning old images, re-hashing every object."""


_remote_option = click.option("--remote", "on_remote", is_flag=True, help="Act on the remote (HCTI_REMOTE) too.")
_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _local_and_remote(
    store_path: str | None, on_remote: bool, local: Callable[[Store], T], remote: Callable[[Remote, Store], T]
) -> list[T]:
    """``local`` on the store, then ``remote`` on its remote if asked; an error is the API's JSON, exit 2."""
    store = Store(store_path)
    return [local(store)] + ([remote(_remote(store), store)] if on_remote else [])


@store_group.command()
@store_option
@_remote_option
@_json_option
def stats(store_path: str | None, on_remote: bool, as_json: bool) -> None:
    """Objects, bytes and the oldest image, by Chromium version."""
    found = _local_and_remote(store_path, on_remote, maintenance.stats, lambda r, _: maintenance.remote_stats(r))
    if as_json:
        click.echo(json.dumps([s.to_json() for s in found]))
        return
    for s in found:
        data = s.to_json()
        click.echo(f"{data['where']}: {s.objects} images, {_human(s.bytes)}, oldest {data['oldest'] or '-'}")
        for version, n in data["by_chromium"].items():
            click.echo(f"  {version}: {n['objects']} images, {_human(n['bytes'])}")


@store_group.command()
@click.option("--older-than", help="Remove images made longer ago than this: 30d, 12h, 90m, 2w.")
@click.option("--unused-since", help="Remove images not read for this long (local store only).")
@click.option("--dry-run", is_flag=True, help="Say what would go; remove nothing.")
@store_option
@_remote_option
def prune(older_than: str | None, unused_since: str | None, dry_run: bool, store_path: str | None, on_remote: bool) -> None:
    """Remove old or unused images; a build renders (or fetches) them again if it needs them."""
    older = maintenance.parse_age(older_than, "older_than") if older_than else None
    unused = maintenance.parse_age(unused_since, "unused_since") if unused_since else None
    store = Store(store_path)
    results = [(str(store.path), maintenance.prune(store, older_than=older, unused_since=unused, dry_run=dry_run))]
    if on_remote:
        if older is None:
            raise BadRequestError("--remote prunes by --older-than: object stores keep no read times", param="older_than")
        remote = _remote(store)
        results.append((remote.url, maintenance.prune_remote(remote, older_than=older, dry_run=dry_run)))
    verb = "would remove" if dry_run else "removed"
    for where, (n, size) in results:
        click.echo(f"{where}: {verb} {n} images, {_human(size)}")


@store_group.command()
@store_option
@_remote_option
@_json_option
def verify(store_path: str | None, on_remote: bool, as_json: bool) -> None:
    """Re-hash every object: damaged ones are repaired (fetched or rendered again) and reported."""
    found = _local_and_remote(store_path, on_remote, maintenance.verify, maintenance.verify_remote)
    results: list[dict[str, Any]] = [v.to_json() for v in found]
    if as_json:
        click.echo(json.dumps(results))
    else:
        for v in found:
            counts = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(v.counts.items()))
            click.echo(f"{v.where}: {v.checked} checked ({counts or 'nothing to check'})")
            for line in v.problems:
                click.echo(f"  {line}")
    if any(v.counts.get("failed") for v in found):
        sys.exit(1)
