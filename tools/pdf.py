"""`make pdf`: the whole book as one PDF, _build/pdf/book.pdf.

Sphinx's single-page builder (Jupyter Book's `--builder singlehtml`) writes the introduction
and every chapter, in the order of _toc.yml, into one HTML page holding the outputs stored in
the notebooks, as the website does. Headless Chromium (the one the tests use) loads that page
from a server on 127.0.0.1, waits for MathJax to typeset it, and tools/pdf.js rearranges it for
paper: a title page, the contents, each chapter on a new page, and the exercise solutions (folded
on the website) at the back. tools/pdf.css lays it out on A4 with code wrapped at the page edge.
It is printed twice: the first print tells on which page each chapter and solution begins
(Chromium writes a named destination for every link target), and the second carries those
numbers in the contents and in each exercise. `make pdf` runs tests/test_pdf.py, which prints
the book with print_book and checks the result.
"""
from __future__ import annotations

import io
from pathlib import Path

import website
import yaml

from book import ROOT, toc_entries

HERE = Path(__file__).resolve().parent
# The single page, written beside the folders its links point into (build_single_page says why).
PAGE = "book.html"
FOOTER = ('<div style="width: 100%; text-align: center; font-size: 8pt; color: #555;">'
          '<span class="pageNumber"></span></div>')
# tagged: a structure tree, so that screen readers can follow headings, lists and tables (it
# triples the file's size); outline: bookmarks, from the headings.
PRINT = {"format": "A4", "prefer_css_page_size": True, "print_background": True,
         "display_header_footer": True, "header_template": "<span></span>",
         "footer_template": FOOTER, "outline": True, "tagged": True}


def torch_version() -> str:
    """The PyTorch release that requirements.txt pins: the one the stored outputs come from."""
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        if line.startswith("torch=="):
            return line.split("==")[1].strip()
    raise RuntimeError("requirements.txt pins no torch")


def build_single_page(path_output: Path) -> Path:
    """Build the book as one HTML page under `path_output`/_build/singlehtml; return the page.

    An HTML build in the same `path_output` leaves its parsed pages there (.doctrees), so this
    then only writes. Sphinx writes the page as book/intro.html (the root document) but with
    links relative to the build's root folder, where the page itself is not: it is copied there,
    and its links to itself become links within the page.
    """
    website.run_build(path_output, "--builder", "singlehtml", what="single-page book")
    folder = Path(path_output) / "_build" / "singlehtml"
    root = toc_entries()[0]
    html = (folder / f"{root}.html").read_text(encoding="utf-8")
    html = html.replace(f'href="{root}.html#', 'href="#')
    # The theme's template asks for the search index, which this builder does not write.
    html = html.replace('<script src="searchindex.js"></script>', "")
    (folder / PAGE).write_text(html, encoding="utf-8")
    return folder / PAGE


def destinations(pdf: bytes) -> dict[str, int]:
    """The page number (from 1) of each named destination in a PDF."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(pdf))
    # Names are PDF name objects: the id with a leading slash.
    return {name.removeprefix("/"): reader.get_destination_page_number(destination) + 1
            for name, destination in reader.named_destinations.items()}


def print_book(page_path: Path, target: Path, browser) -> dict:
    """Print the single page to `target`; return what pdf.js reports and the page numbers."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    info = {"chapters": len(toc_entries()) - 1, "author": config["author"],
            "tested": (f"The outputs printed here come from running the book's code with "
                       f"PyTorch {torch_version()}; its tests run the code again and compare "
                       "them, timings apart.")}
    with website.serve(page_path.parent) as url:
        page = browser.new_page()
        record = website.PageRecord(page, url)
        page.goto(f"{url}/{page_path.name}", wait_until="networkidle")
        website.wait_for_mathjax(page)
        page.add_style_tag(content=(HERE / "pdf.css").read_text(encoding="utf-8"))
        facts = page.evaluate((HERE / "pdf.js").read_text(encoding="utf-8"), info)
        # The first print only lays the pages out: without the tags and bookmarks, which change
        # no page and take a quarter of the time.
        first = destinations(page.pdf(**{**PRINT, "tagged": False, "outline": False}))
        wanted = page.evaluate("() => [...document.querySelectorAll('a.pdf-page-ref')]"
                               ".map(a => decodeURIComponent(a.hash.slice(1)))")
        missing = sorted(set(wanted) - set(first))
        if missing:
            raise RuntimeError(f"no page found for {missing}")
        page.evaluate("""(pages) => document.querySelectorAll('a.pdf-page-ref').forEach(a => {
            a.textContent = pages[decodeURIComponent(a.hash.slice(1))]; })""", first)
        pdf = page.pdf(**PRINT)
        # Each heading as a reader sees it, to compare with the bookmarks Chromium made of them.
        headings = page.evaluate("""() => [...document.querySelectorAll('h1, h2, h3, h4')]
            .filter(h => h.checkVisibility()).map(h => h.innerText.replace(/\\s+/g, ' ').trim())""")
        page.close()
    numbers = destinations(pdf)
    moved = {name: (first[name], numbers.get(name)) for name in wanted
             if numbers.get(name) != first[name]}
    if moved:  # the numbers filled in changed the layout
        raise RuntimeError(f"page numbers moved between the two prints: {moved}")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(pdf)
    return {**facts, "pages": {name: numbers[name] for name in wanted}, "headings": headings,
            "errors": record.errors, "foreign": record.foreign}
