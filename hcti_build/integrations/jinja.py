"""`HctiExtension`: the `{% hcti %}` block tag for any `jinja2.Environment`.

    env = jinja2.Environment(extensions=["hcti_build.jinja.HctiExtension"])
    env.hcti_assets_dir = "site/assets/hcti"      # where images are written (default assets/hcti)
    env.hcti_assets_url = "/assets/hcti/"          # how pages refer to them (default assets/hcti/)
    env.hcti_store = Store(".hcti")                # default: Store() in the working directory

    {% hcti width=600, format="webp", alt="Release card" %}<div class="card">{{ title }}</div>{% endhcti %}

renders the block's body (with the template's context), renders that HTML to an image through the store, and
emits `<img src="..." width="..." height="..." alt="...">`. An unchanged block costs one hash.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from markupsafe import Markup

from ..pipeline.assets import produce, reference_html
from ..pipeline.directives import Directive
from ..pipeline.resolve import resolve
from ..pipeline.templates import HctiTagSyntax, Templates
from ..store.store import Store


class HctiExtension(HctiTagSyntax):
    """The `{% hcti key=value, ... %}HTML{% endhcti %}` block tag (arguments: any creation or image-query
    parameter of the API, plus `alt`, `class`, `title`)."""

    _templates: Templates | None = None

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        environment.extend(hcti_store=None, hcti_assets_dir="assets/hcti", hcti_assets_url="assets/hcti/")

    def _render(self, name: str, lineno: int, caller: Any, **attrs: Any) -> Markup:
        env = self.environment
        store = env.hcti_store  # type: ignore[attr-defined]
        if store is None:
            store = env.hcti_store = Store()  # type: ignore[attr-defined]
        d = Directive(name, lineno, 1, "tag", 0, 0, attrs=dict(attrs), body=str(caller()))
        if self._templates is None or self._templates.root != store.root:
            self._templates = Templates(store.root)  # used only to validate; the block body is the HTML
        r = resolve(d, store.root, "", self._templates)
        asset = produce(store, r, d)
        asset.write(Path(env.hcti_assets_dir) / asset.name)  # type: ignore[attr-defined]
        return Markup(reference_html(str(env.hcti_assets_url) + asset.name, asset, r))  # type: ignore[attr-defined]
