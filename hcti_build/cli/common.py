"""What every `hcti` command shares: hcti-build's errors answered in one place (`HctiGroup`: the API's JSON on
stderr, exit code 2), and the options several commands take (`store_option`)."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import click

from ..errors import HctiError

store_option = click.option("--store", "store_path", envvar="HCTI_STORE", help="Store folder (default .hcti).")


def fail(exc: HctiError) -> NoReturn:
    """The API's JSON error on stderr, exit code 2 (as every `hcti` command)."""
    click.echo(json.dumps(exc.to_json()), err=True)
    sys.exit(2)


class HctiGroup(click.Group):
    """A command group whose commands' hcti-build errors are answered here, once, for all of them."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HctiError as exc:
            fail(exc)
