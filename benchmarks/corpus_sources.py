"""How each kind of source becomes a buildable project in the corpus (benchmarks/corpus.py): an sdist's MkDocs
config rewritten with the plugins kept (and `hcti` added), an sdist's Sphinx docs with their extensions named on the
command line, and sites scaffolded by Hugo and Jekyll. Each returns a `prepare` for `corpus_hosts.Project`.

A project's MkDocs config is read with its tags kept as they are (`!!python/name:`, `!ENV`) and written again
whole, not INHERITed: MkDocs merges an inheriting config's `plugins` into the parent's when they are mappings, so
a plugin could not be left out that way.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from corpus_checks import notebook_faults
from corpus_hosts import BIN, SITE_URL, Host, cache_dir, extract

Prepare = Callable[[Path, str], tuple[Path, Host]]
SITE = "_corpus_site"


class _Tagged:
    """A YAML value with a tag this script does not construct, kept as its node to be written back."""

    def __init__(self, node: yaml.Node) -> None:
        self.node = node


class _Loader(yaml.SafeLoader):
    pass


class _Dumper(yaml.SafeDumper):
    pass


_Loader.add_multi_constructor("!", lambda loader, suffix, node: _Tagged(node))
_Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: _Tagged(node))
_Dumper.add_representer(_Tagged, lambda dumper, value: value.node)


def _name(entry: Any) -> str:
    return entry if isinstance(entry, str) else next(iter(entry))


def mkdocs_configs(root: Path, yml: str, plugins: list[Any], edit: Callable[[dict[str, Any]], None] | None, name: str) -> None:
    """`corpus-plain.yml` and `corpus-hcti.yml` beside the project's config: its own, with ``plugins`` instead of
    its plugins, the site URL and folder set, and ``edit`` applied; the hcti one adds the plugin."""
    config = yaml.load((root / yml).read_text(), _Loader)
    config.update(site_url=SITE_URL + name + "/", site_dir=SITE)
    config.pop("watch", None)  # folders `mkdocs serve` watches: some are not in the sdist, and a build reads none
    if edit is not None:
        edit(config)
    # The store's folder is known when the arm runs: `!ENV HCTI_STORE`, which the arm sets.
    store = _Tagged(yaml.SequenceNode("!ENV", [yaml.ScalarNode("tag:yaml.org,2002:str", "HCTI_STORE")]))
    for arm, extra in (("plain", []), ("hcti", [{"hcti": {"cache_dir": store}}])):
        config["plugins"] = [*plugins, *extra]
        (root / f"corpus-{arm}.yml").write_text(yaml.dump(config, Dumper=_Dumper, sort_keys=False, allow_unicode=True))


def drop_extensions(*names: str) -> Callable[[dict[str, Any]], None]:
    def edit(config: dict[str, Any]) -> None:
        config["markdown_extensions"] = [e for e in config.get("markdown_extensions", []) if _name(e) not in names]

    return edit


def mkdocs_sdist(
    spec: str, plugins: list[Any], edit: Callable[[dict[str, Any]], None] | None = None, tool: str = "mkdocs"
) -> Prepare:
    """An sdist's MkDocs (or ProperDocs) site: plain, and with the plugin (cards summary said by its log)."""

    def prepare(work: Path, name: str) -> tuple[Path, Host]:
        root = extract(spec, work)
        mkdocs_configs(root, "mkdocs.yml", plugins, edit, name)
        build = [str(BIN / tool), "build", "-f"]
        return root, Host(tool, [*build, "corpus-plain.yml"], [*build, "corpus-hcti.yml"], SITE, renders_summary="(0 rendered")

    return prepare


def sphinx_sdist(spec: str, docs: str, extensions: list[str], *more: str) -> Prepare:
    """An sdist's Sphinx docs, with ``extensions`` (what builds offline) instead of its own; ``more``: `-D`
    overrides."""

    def prepare(work: Path, name: str) -> tuple[Path, Host]:
        root = extract(spec, work)
        build = [str(BIN / "sphinx-build"), "-q", "-b", "html", "-D", f"html_baseurl={SITE_URL}{name}/"]
        for setting in more:
            build += ["-D", setting]
        plain = [*build, "-D", f"extensions={','.join(extensions)}", docs, SITE]
        hcti = [
            *build,
            "-D",
            f"extensions={','.join([*extensions, 'hcti_build.sphinx'])}",
            "-D",
            "hcti_store={store}",
            docs,
            SITE,
        ]
        return root, Host("sphinx", plain, hcti, SITE)

    return prepare


def og_after(name: str, generator: list[str], site: str, *flags: str) -> Host:
    """A generator's build, then `hcti og` on what it wrote (its summary must say 0 rendered when warm, and
    `hcti og --check` must find nothing wrong after it)."""
    og = [str(BIN / "hcti"), "og", site, "--site-url", SITE_URL + name + "/", "--store", "{store}", *flags]
    check = [str(BIN / "hcti"), "og", "--check", site, "--site-url", SITE_URL + name + "/", *flags]
    name = f"{Path(generator[0]).name} + hcti og"
    return Host(name, generator, generator, site, then=og, renders_summary=" 0 rendered,", verify=check)


def zensical_sdist(spec: str, edit: Callable[[dict[str, Any]], None] | None = None) -> Prepare:
    """An sdist's MkDocs config built by Zensical (which runs no MkDocs plugins), then `hcti og`."""

    def prepare(work: Path, name: str) -> tuple[Path, Host]:
        root = extract(spec, work)
        mkdocs_configs(root, "mkdocs.yml", [], edit, name)
        return root, og_after(name, [str(BIN / "zensical"), "build", "-f", "corpus-plain.yml"], SITE)

    return prepare


def _scaffold(cmd: list[str], cwd: Path) -> None:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout[-1500:]}{done.stderr[-1500:]}")


def _markdown_pages(spec: str, work: Path, into: Path, front: str, index: str = "index.md") -> None:
    """Python-Markdown's documentation (its sdist's docs/*.md, each starting `title: ...`) as a generator's
    pages: the title line made front matter (``front`` formatted with ``title``), the rest kept; a folder's
    `index.md` named ``index`` (Hugo's section page is `_index.md`)."""
    root = extract(spec, work)
    for page in sorted((root / "docs").rglob("*.md")):
        lines = page.read_text().splitlines()
        if not lines or not lines[0].startswith("title:"):
            continue
        title = lines[0].split(":", 1)[1].strip().replace('"', "'")
        out = into / page.relative_to(root / "docs")
        out = out.with_name(index) if out.name == "index.md" else out
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(front.format(title=title) + "\n".join(lines[1:]) + "\n")


HUGO_HEAD = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{{ if .IsHome }}{{ site.Title }}{{ else }}{{ .Title }} | {{ site.Title }}{{ end }}</title>
<meta name="description" content="{{ .Summary | plainify | truncate 150 }}">
{{ template "_internal/opengraph.html" . }}{{ template "_internal/twitter_cards.html" . }}
</head><body><main>{{ block "main" . }}{{ end }}</main></body></html>
"""
HUGO_PAGE = (
    '{{ define "main" }}<h1>{{ .Title }}</h1>{{ .Content }}'
    '{{ range .Pages }}<a href="{{ .RelPermalink }}">{{ .Title }}</a>{{ end }}{{ end }}'
)


def hugo_site(spec: str) -> Prepare:
    """Debian's Hugo on Python-Markdown's documentation (from ``spec``'s sdist) with a minimal theme whose head
    is Hugo's own og and twitter templates; then `hcti og`."""

    def prepare(work: Path, name: str) -> tuple[Path, Host]:
        root = work / "hugo-site"
        shutil.rmtree(root, ignore_errors=True)
        _scaffold(["hugo", "new", "site", str(root)], work)
        layouts = root / "layouts" / "_default"
        layouts.mkdir(parents=True, exist_ok=True)
        (layouts / "baseof.html").write_text(HUGO_HEAD)
        for kind in ("single", "list"):
            (layouts / f"{kind}.html").write_text(HUGO_PAGE)
        (root / "layouts" / "404.html").write_text('{{ define "main" }}<h1>Not found</h1>{{ end }}')
        (root / "config.toml").write_text(f'baseURL = "{SITE_URL}{name}/"\ntitle = "Python-Markdown"\n')
        _markdown_pages(spec, work, root / "content", '---\ntitle: "{title}"\n---\n', "_index.md")
        return root, og_after(name, ["hugo", "--quiet", "-d", SITE], SITE)

    return prepare


def jekyll_site(spec: str) -> Prepare:
    """`jekyll new` (Debian's jekyll and minima theme, whose jekyll-seo-tag writes og tags) with Python-Markdown's
    documentation (from ``spec``'s sdist) as its pages; then `hcti og`."""

    def prepare(work: Path, name: str) -> tuple[Path, Host]:
        root = work / "jekyll-site"
        shutil.rmtree(root, ignore_errors=True)
        _scaffold(["jekyll", "new", "--skip-bundle", str(root)], work)
        (root / "Gemfile").unlink()  # Debian's gems, not Bundler's
        config = (root / "_config.yml").read_text().replace('url: ""', f'url: "{SITE_URL.rstrip("/")}"')
        (root / "_config.yml").write_text(config.replace('baseurl: ""', f'baseurl: "/{name}"'))
        _markdown_pages(spec, work, root / "docs", '---\ntitle: "{title}"\nlayout: page\n---\n')
        return root, og_after(name, ["jekyll", "build", "-q", "-d", SITE], SITE)

    return prepare


NOTEBOOKS = Path(__file__).parent.parent / "notebooks"


def notebooks(work: Path, name: str) -> tuple[Path, Host]:
    """This project's own notebooks/ (their `%%hcti` cells), executed by nbconvert: plain to Markdown (the
    kernel's magic renders), and to hcti-markdown (the exporter's preprocessor too)."""
    root = work / name
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    found = sorted(NOTEBOOKS.glob("*.ipynb"))
    for notebook in found:
        shutil.copy(notebook, root)
    convert = [str(BIN / "jupyter"), "nbconvert", "--execute", "--output-dir", SITE, "--to"]
    files = [n.name for n in found]
    return root, Host("nbconvert", [*convert, "markdown", *files], [*convert, "hcti-markdown", *files], SITE)


def notebook_check(src: Path, site: Path) -> list[str]:
    return [f for notebook in sorted(src.glob("*.ipynb")) for f in notebook_faults(notebook, site / f"{notebook.stem}.md")]


def docusaurus(version: str) -> Prepare:
    """create-docusaurus's classic template (its docs and blog), installed from the npm registry once into the
    cache and built offline; its url and baseUrl set to the corpus's; then `hcti og`."""

    def prepare(work: Path, name: str) -> tuple[Path, Host]:
        root = cache_dir() / "npm" / f"docusaurus-{version}" / "site"
        if not (root / "node_modules" / ".bin" / "docusaurus").is_file():
            shutil.rmtree(root, ignore_errors=True)
            root.parent.mkdir(parents=True, exist_ok=True)
            create = ["npx", "-y", f"create-docusaurus@{version}", "site", "classic", "--skip-install", "--javascript"]
            _scaffold(create, root.parent)
            _scaffold(["npm", "install", "--no-audit", "--no-fund"], root)
        config = (root / "docusaurus.config.js").read_text()
        config = re.sub(r"\burl: '[^']*'", f"url: '{SITE_URL.rstrip('/')}'", config)
        (root / "docusaurus.config.js").write_text(re.sub(r"\bbaseUrl: '[^']*'", f"baseUrl: '/{name}/'", config))
        site = str(work / SITE)
        return root, og_after(name, [str(root / "node_modules" / ".bin" / "docusaurus"), "build", "--out-dir", site], site)

    return prepare
