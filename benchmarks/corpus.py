"""The corpus (#30): real documentation projects, pinned, built plain and with hcti-build, checked and timed.

    python benchmarks/corpus.py [--only NAME ...] [--repeat N] [--work DIR]

Each project's source comes from a registry (a PyPI sdist that ships its docs, Debian's Hugo and Jekyll, npm's
create-docusaurus) and is cached in `$HCTI_CORPUS_CACHE` (default `~/.cache/hcti-corpus`): a second run does no
network. Each is built, one build after another: plain (its host without hcti-build; an untimed plain build first
warms the OS caches), hcti cold (an empty store) and hcti warm (the same build again, the store kept); with
`--repeat N` plain and warm run N times, taking turns, and their medians are kept.

Checked (benchmarks/corpus_checks.py), for every project: every page has exactly one `og:image`, `twitter:image`
and `og:title`, the images absolute and naming a 1200x630 file of the site, `og:title` the page's title; files
that are not pages (fragments, redirect stubs, 404, search, indexes) are byte for byte what the plain build wrote
(or, where it wrote none, have no card tag); no hcti-build warning in the host's output; the cold build launched
Chromium, and the warm one did not, added nothing to the store and (MkDocs, `hcti og`) said it rendered none;
after another generator, `hcti og --check` finds nothing wrong. One
Markdown row per project; the run exits 1 when a project's result is not the expected one (a project marked with
a known defect must fail, the others pass). The notebooks are checked as exported Markdown instead: an image per
`%%hcti` cell, with the cell's `--alt`.

What each project's build leaves out (a plugin or extension that needs the network or a package the corpus does
not install) is `LEFT_OUT` below; `--left-out` prints it as a Markdown table.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from corpus_hosts import HEADER, Project, Row, run  # noqa: E402
from corpus_sources import (  # noqa: E402
    docusaurus,
    drop_extensions,
    hugo_site,
    jekyll_site,
    mkdocs_sdist,
    notebook_check,
    notebooks,
    sphinx_sdist,
    zensical_sdist,
)

VIEWCODE = ("_modules/*",)  # Sphinx's viewcode pages: source listings, not pages
REDIRECTS = {"redirects": {"redirect_maps": {"history.md": "history/hatch.md", "users.md": "community/users.md"}}}


def _hatch(config: dict) -> None:
    drop_extensions("mkdocs-click")(config)
    config["hooks"] = [h for h in config.get("hooks", []) if "title_from_content" in h]


def _markdown(config: dict) -> None:
    config["theme"] = {"name": "mkdocs"}
    drop_extensions("mdx_gh_links")(config)
    config.pop("extra_css", None)


AUTODOC = ["sphinx.ext.autodoc", "sphinx.ext.doctest"]
PALLETS = ["sphinx.ext.autodoc", "sphinx.ext.extlinks", "sphinx_tabs.tabs", "sphinxcontrib.log_cabinet", "pallets_sphinx_themes"]
NUMPYDOC = [*AUTODOC, "sphinx.ext.autosummary", "sphinx.ext.todo", "numpydoc", "sphinx.ext.ifconfig", "sphinx.ext.viewcode",
            "sphinx.ext.imgmath"]  # fmt: skip
ATTRS = ["myst_parser", "sphinx.ext.napoleon", *AUTODOC, "sphinx.ext.todo", "notfound.extension"]


LEFT_OUT = {
    "hatch": "plugins glightbox, minify, git-revision-date-localized, mike, mkdocstrings (its `:::` blocks stay text); "
    "the mkdocs-click extension; the hooks that import hatch; all but two of its redirects",
    "starlette": "the mkdocstrings plugin (its `:::` blocks stay text)",
    "markdown": "its nature theme (the host's `mkdocs` theme instead) and custom CSS; plugins gen-files, literate-nav, "
    "section-index, mkdocstrings; the mdx_gh_links extension",
    "markdown-properdocs": "as markdown",
    "alabaster": "nothing",
    "packaging": "intersphinx (network), sphinx_toolbox",
    "urllib3": "intersphinx (network)",
    "attrs": "intersphinx (network), sphinxcontrib.towncrier (it reads the project's git history)",
    "click": "intersphinx (network)",
    "flask": "intersphinx (network)",
    "numpydoc": "intersphinx (network)",
    "pyopenssl": "intersphinx (network)",
    "sphinx-copybutton": "myst_nb (myst_parser instead), sphinx_examples, the IPython directive",
    "starlette-zensical": "as starlette (Zensical runs no MkDocs plugins)",
    "markdown-hugo": "all but its pages (docs/*.md, the `title:` line made front matter) under a minimal theme made of "
    "Hugo's own og and twitter templates",
    "markdown-jekyll": "all but its pages, under `jekyll new`'s minima (jekyll-seo-tag writes og tags)",
    "docusaurus": "nothing: create-docusaurus's classic template as it comes (docs, blog), url and baseUrl set",
    "notebooks": "nothing: this project's notebooks/",
}
P = Project
PROJECTS = [
    P("hatch", "1.14.1", "material (blog, overrides, redirects)",
      mkdocs_sdist("hatch==1.14.1", ["search", "blog", REDIRECTS], _hatch)),
    P("starlette", "0.47.1", "material (overrides)", mkdocs_sdist("starlette==0.47.1", ["search"])),
    P("markdown", "3.8.2", "mkdocs", mkdocs_sdist("markdown==3.8.2", ["search"], _markdown)),
    P("markdown-properdocs", "3.8.2", "mkdocs (properdocs-theme-mkdocs)",
      mkdocs_sdist("markdown==3.8.2", ["search"], _markdown, tool="properdocs")),
    P("alabaster", "1.0.0", "alabaster", sphinx_sdist("alabaster==1.0.0", "docs", ["sphinx.ext.extlinks"])),
    P("packaging", "24.2", "furo", sphinx_sdist("packaging==24.2", "docs", [*AUTODOC, "sphinx.ext.extlinks"])),
    P("urllib3", "2.5.0", "furo (sphinxext-opengraph)",
      sphinx_sdist("urllib3==2.5.0", "docs", [*AUTODOC, "sphinx_copybutton", "sphinxext.opengraph"])),
    P("attrs", "25.3.0", "furo + MyST", sphinx_sdist("attrs==25.3.0", "docs", ATTRS)),
    P("click", "8.1.8", "pallets-sphinx-themes", sphinx_sdist("click==8.1.8", "docs", PALLETS)),
    P("flask", "3.1.1", "pallets-sphinx-themes", sphinx_sdist("flask==3.1.1", "docs", PALLETS)),
    P("numpydoc", "1.9.0", "pydata-sphinx-theme", sphinx_sdist("numpydoc==1.9.0", "doc", NUMPYDOC), not_pages=VIEWCODE),
    P("pyopenssl", "25.1.0", "sphinx-rtd-theme", sphinx_sdist("pyOpenSSL==25.1.0", "doc", ["sphinx.ext.autodoc"])),
    P("sphinx-copybutton", "0.5.2", "sphinx-book-theme + MyST",
      sphinx_sdist("sphinx-copybutton==0.5.2", "docs", ["sphinx_copybutton", "myst_parser"])),
    P("starlette-zensical", "0.47.1", "zensical (material)", zensical_sdist("starlette==0.47.1")),
    P("markdown-hugo", "3.8.2", "hugo 0.111 (Debian), minimal theme", hugo_site("markdown==3.8.2")),
    P("markdown-jekyll", "3.8.2", "jekyll 4.3 (Debian), minima", jekyll_site("markdown==3.8.2")),
    P("docusaurus", "3.10.2", "docusaurus classic (npm)", docusaurus("3.10.2")),
    P("notebooks", "0.1.0", "%%hcti cells, hcti-markdown", notebooks, check=notebook_check),
]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", help="only these projects (by name)")
    ap.add_argument("--work", help="build here (default: a temporary folder)")
    ap.add_argument("--repeat", type=int, default=1, help="plain and warm builds of each project; medians kept")
    ap.add_argument("--left-out", action="store_true", help="print what each project leaves out, and stop")
    args = ap.parse_args()
    if args.left_out:
        print("| project | version | host / theme | left out |\n| --- | --- | --- | --- |")
        for p in PROJECTS:
            print(f"| {p.name} | {p.version} | {p.theme} | {LEFT_OUT[p.name]} |")
        return
    chosen = [p for p in PROJECTS if not args.only or p.name in args.only]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        print(HEADER, flush=True)
        for project in chosen:
            rows.append(run(project, work / project.name, args.repeat))
            print(rows[-1].markdown(), flush=True)
    for row in rows:
        for fault in row.faults[:20]:
            print(f"{row.project.name}: {fault}", file=sys.stderr)
    unexpected = [r.project.name for r in rows if not r.as_expected]
    print(f"RESULT projects={len(rows)} unexpected={','.join(unexpected) or 'none'}")
    sys.exit(1 if unexpected else 0)


if __name__ == "__main__":
    main()
