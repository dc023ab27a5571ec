"""Every page of the built site, as a reader's browser shows it.

Each page is loaded once (tools/website.py, visit) and the facts gathered there are checked by
one test per concern, so a failure still names what is wrong:
- it loads with no console error, page error or failed request, and asks nothing of another
  host (readers offline, behind a firewall, or who care about privacy get the whole page from
  the book's own server); with SCREENSHOTS=1 a full-page screenshot of each page goes to
  reports/screenshots/;
- MathJax (served by the site) has typeset every formula: no raw LaTeX, no MathJax error;
- every image has meaningful alt text and has loaded; figures have an opaque white background
  (legible in dark mode);
- axe-core (pinned in package-lock.json, installed by npm ci) reports no violation; the
  experimental rule label-content-name-mismatch is switched on because the theme failed it
  (see _templates/ and _ext/accessible_toggles.py); inside code blocks, built alike on every
  page, axe runs on one chapter (tools/website.py says why);
- one search field at desktop width;
- no word of inline code in a table is split across lines (_static/book.css);
- the theme's icons are drawn as glyphs of its Font Awesome webfont (tests/test_site_icons.py
  says why that matters);
- a chapter's "download .ipynb" button serves that chapter's notebook, valid and unchanged;
- the one-page reference prints on a single A4 sheet (styles in _static/book.css);
- on a chapter, every exercise solution starts closed with none of its code or output shown,
  and opening it shows its code and a non-empty output;
- at phone width (390 px) the page is no wider than the screen: long code and outputs scroll
  inside their own box.
"""
import io
import urllib.request

import nbformat
import pytest
from pypdf import PdfReader
from website import CODE_PAGE, PRINT_PAGE, page_paths, visit

from book import ROOT, notebooks

PAGES = page_paths()
CHAPTERS = [f"book/{nb.stem}.html" for nb in notebooks()]
# Pages that certainly contain math, so that a page where MathJax silently never ran fails.
PAGES_WITH_MATH = {"book/intro.html", "book/01-matmul.html", "book/06-under-the-hood.html"}

_visits: dict[str, dict] = {}


@pytest.fixture(scope="session")
def tab(browser):
    """One tab, going from page to page as a reader's does (tools/website.py, visit)."""
    page = browser.new_page()
    yield page
    page.close()


@pytest.fixture
def facts(tab, site_url):
    def of(path: str) -> dict:
        if path not in _visits:
            try:
                _visits[path] = visit(tab, site_url, path)
            except Exception as error:  # every concern of the page reports it, without a revisit
                _visits[path] = error
        if isinstance(_visits[path], Exception):
            raise _visits[path]
        return _visits[path]
    return of


@pytest.mark.parametrize("path", PAGES)
def test_page_loads_cleanly_and_offline(facts, path):
    page = facts(path)
    assert page["errors"] == [], "\n".join(page["errors"])
    assert page["foreign"] == [], f"requests to other hosts: {page['foreign']}"


@pytest.mark.parametrize("path", PAGES)
def test_math_is_typeset(facts, path):
    math = facts(path)["math"]
    assert math["raw"] == [], f"formulas left as raw LaTeX: {math['raw']}"
    assert math["errors"] == [], f"MathJax errors: {math['errors']}"
    assert math["stray"] == [], f"math delimiters outside formulas: {math['stray']}"
    if path in PAGES_WITH_MATH:
        assert math["count"] > 0, "this page has formulas, but none was found"


@pytest.mark.parametrize("path", PAGES)
def test_images_have_alt_text_and_load(facts, path):
    images = facts(path)["images"]
    for image in images:
        alt = image["alt"].strip()
        # Meaningful: a sentence, not the file name (docutils' fallback when a cell has no alt
        # text in its metadata) nor a repr such as "<Figure size 700x420 with 1 Axes>".
        meaningful = len(alt.split()) >= 5 and not alt.startswith("<") and ".png" not in alt
        assert meaningful, f"{image['src']}: alt text {alt!r}"
        assert image["width"] > 0, f"{image['src']} did not load"
        if image["output"]:  # a figure a cell drew
            assert image["corner"] == [255, 255, 255, 255], (
                f"{image['src']}: background {image['corner']} is not opaque white")
    if path in CHAPTERS:  # every figure the notebook stores is on the page, and was checked
        nb = nbformat.read(ROOT / path.replace(".html", ".ipynb"), as_version=4)
        figures = sum("image/png" in output.get("data", {})
                      for cell in nb.cells if cell.cell_type == "code" for output in cell.outputs)
        assert sum(image["output"] for image in images) == figures


@pytest.mark.parametrize("path", PAGES)
def test_no_axe_violations(facts, path):
    violations = facts(path)["axe"]
    assert violations == [], "\n".join(violations)
    # and in the exercise solutions, checked once opened (axe skips hidden content)
    assert facts(path)["axe_solutions"] == [], "\n".join(facts(path)["axe_solutions"])


@pytest.mark.parametrize("path", [CODE_PAGE])
def test_code_blocks_pass_axe(facts, path):
    violations = facts(path)["axe_code"]
    assert violations == [], "\n".join(violations)


@pytest.mark.parametrize("path", PAGES)
def test_one_search_field_at_desktop_width(facts, path):
    assert facts(path)["search_fields"] == 1


@pytest.mark.parametrize("path", PAGES)
def test_table_code_keeps_its_words_whole(facts, path):
    assert facts(path)["split_table_code"] == []


@pytest.mark.parametrize("path", PAGES)
def test_icons_are_drawn_from_the_webfont(facts, path):
    icons = facts(path)["icons"]
    assert facts(path)["icon_font"], "the Font Awesome webfont did not load"
    for icon in icons:
        assert "Font Awesome" in icon["font"], icon
        assert icon["content"] not in ("none", "normal", '""'), icon
    # Icons hidden at this width have no box. The header's must be drawn: search, colour mode
    # and the sidebar buttons everywhere; download and full screen besides on a chapter.
    many, drawn = (10, 5) if path in CHAPTERS else (5, 4)
    assert len(icons) >= many, icons
    assert sum(icon["width"] > 0 for icon in icons) >= drawn, icons


@pytest.mark.parametrize("path", CHAPTERS)
def test_download_button_serves_the_notebook(facts, path):
    link = facts(path)["notebook_link"]
    assert link, "no download link to the notebook"
    with urllib.request.urlopen(link, timeout=30) as response:
        served = nbformat.reads(response.read().decode(), as_version=4)
    nbformat.validate(served)
    assert served == nbformat.read(ROOT / path.replace(".html", ".ipynb"), as_version=4)


@pytest.mark.parametrize("path", [PRINT_PAGE])
def test_reference_prints_on_one_a4_page(facts, path):
    pages = PdfReader(io.BytesIO(facts(path)["pdf"])).pages
    assert len(pages) == 1
    # A4 in points (210 x 297 mm); the page's own CSS sets the size (prefer_css_page_size).
    box = pages[0].mediabox
    assert abs(float(box.width) - 595.3) < 1 and abs(float(box.height) - 841.9) < 1, box


@pytest.mark.parametrize("path", CHAPTERS)
def test_solutions_hidden_until_opened(facts, path):
    closed, opened = facts(path)["solutions_closed"], facts(path)["solutions_open"]
    assert len(closed) >= 2, f"{len(closed)} solution toggles"
    for index, (before, after) in enumerate(zip(closed, opened, strict=True)):
        assert before["title"].strip().startswith("Solution"), before["title"]
        assert before["code"] and before["output"], (
            f"solution {index} holds {len(before['code'])} code cells and "
            f"{len(before['output'])} outputs")
        assert before["button"], f"solution {index}: its toggle button is not shown"
        assert before["expanded"] == "false", f"solution {index} starts open"
        assert not any(before["code"] + before["output"]), (
            f"solution {index} shows code or output before it is opened")
        assert after["expanded"] == "true", f"solution {index} did not open"
        assert all(after["code"] + after["output"]), (
            f"opening solution {index} does not show all its code and output")
        assert after["text"], f"solution {index} opens onto an empty output"


@pytest.mark.parametrize("path", PAGES)
def test_no_horizontal_overflow_on_a_phone(facts, path):
    width = facts(path)["phone_width"]
    assert width <= 390, f"the page is {width} px wide on a 390 px screen"
