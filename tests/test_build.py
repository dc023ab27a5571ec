"""The website builds from a clean state with zero warnings, and every page in _toc.yml exists.

The build itself (tools/website.py) runs `jupyter-book build -n -W --keep-going` into a fresh
folder: -n reports every broken reference, -W turns any warning into a failure, --keep-going
reports them all at once.
"""
from book import toc_entries


def test_every_toc_page_is_built(site_html):
    missing = [entry for entry in toc_entries() if not (site_html / f"{entry}.html").is_file()]
    assert not missing, f"pages in _toc.yml that were not built: {missing}"


def test_mathjax_is_part_of_the_site(site_html):
    # _ext/offline_mathjax.py copies MathJax into the site; without it math needs a CDN.
    assert (site_html / "_static" / "mathjax" / "tex-mml-chtml.js").is_file()


def test_no_directive_is_left_as_text(site_html):
    # A directive that MyST does not recognise as one (a backtick in a ```{...} title, a fence
    # after other text) is printed as a paragraph, with no warning from the build.
    marks = ("```{", ":::{", ":class: dropdown")
    left = [f"{page.relative_to(site_html)}: {mark}" for page in sorted(site_html.rglob("*.html"))
            if "_static" not in page.parts for mark in marks if mark in page.read_text()]
    assert not left, f"directives shown as text: {left}"
