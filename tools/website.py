"""The built website, served over HTTP on loopback, and a headless Chromium to read it.

Shared by the tests of the site (tests/test_site_*.py, through the fixtures in tests/conftest.py),
by the PDF (tools/pdf.py) and by `make bench` (tools/bench.py).
"""
from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

from book import ROOT, toc_entries

JUPYTER_BOOK = Path(sys.executable).parent / "jupyter-book"
# axe-core, the accessibility checker injected into each page: pinned in package.json and
# package-lock.json, installed by `make test` (npm ci) into node_modules/.
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "reports" / "screenshots"
# Flags for a headless browser on a machine with no network beyond loopback: no background
# requests to Google's services, no GPU, no sandbox (CI runs as root).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


def chromium_path() -> str:
    for candidate in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    raise RuntimeError("no Chromium found: run `make test`, which installs it, or set CHROMIUM")


def run_build(out: Path, *options: str, what: str = "book") -> None:
    """Run `jupyter-book build` into `out` (nitpicky, warnings as errors); any warning raises."""
    result = subprocess.run(
        [JUPYTER_BOOK, "build", ROOT, "--path-output", out, *options, "-n", "-W", "--keep-going"],
        capture_output=True, text=True, timeout=600,
    )
    log = result.stdout + result.stderr
    # Sphinx writes "WARNING:"; a warning Python prints (a UserWarning, a FutureWarning) holds
    # "Warning: " (DeprecationWarnings raised inside libraries Python does not print by default).
    if result.returncode != 0 or "WARNING" in log or "Warning: " in log:
        raise RuntimeError(f"the {what} did not build without warnings:\n" + log[-5000:])


def build(out: Path) -> Path:
    """Build the website into `out` (as `make book` does) and return its html folder."""
    run_build(out)
    return out / "_build" / "html"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # one line per request would drown the test output
        pass


@contextmanager
def serve(directory: Path):
    """Serve `directory` on a free port of 127.0.0.1; yield its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def page_paths() -> list[str]:
    """Every page a reader can reach: the toc's pages, and the search page."""
    return [f"{entry}.html" for entry in toc_entries()] + ["search.html"]


class PageRecord:
    """What a page did while loading: console errors, page errors, failed and foreign requests."""

    def __init__(self, page, base_url: str):
        self.errors: list[str] = []
        self.foreign: list[str] = []
        self.page = page
        self.listeners = {
            "console": lambda m: self.errors.append(f"console: {m.text}")
            if m.type == "error" else None,
            "pageerror": lambda e: self.errors.append(f"page error: {e}"),
            "requestfailed": lambda r: self.errors.append(f"failed: {r.url} {r.failure}"),
            "response": lambda r: self.errors.append(f"HTTP {r.status}: {r.url}")
            if r.status >= 400 else None,
            "request": lambda r: self.foreign.append(r.url)
            if not r.url.startswith((base_url + "/", "data:", "blob:")) else None,
        }
        for event, listener in self.listeners.items():
            page.on(event, listener)

    def stop(self) -> None:
        """Stop recording (the tab goes on to another page)."""
        for event, listener in self.listeners.items():
            self.page.remove_listener(event, listener)


def wait_for_mathjax(page) -> None:
    """Wait until MathJax (if the page loads it) has typeset the page."""
    page.wait_for_function("() => !window.MathJax || (MathJax.startup && MathJax.startup.promise)")
    page.evaluate("() => window.MathJax ? MathJax.startup.promise : null")


# One visit per page gathers everything the browser tests assert (tests/test_site_pages.py):
# loading each page once, rather than once per concern, keeps the suite fast as the book grows.
MATH_JS = """() => {
    const maths = [...document.querySelectorAll('.math')];
    const raw = maths.filter(m => !m.querySelector('mjx-container'))
                     .map(m => m.textContent.trim().slice(0, 60));
    // MathJax shows an unknown macro as an error box instead of the formula.
    const errors = [...document.querySelectorAll('mjx-merror')]
                     .map(e => e.getAttribute('data-mjx-error'));
    // Delimiters outside any formula (and outside code) mean math that was never parsed.
    const article = (document.querySelector('article') || document.body).cloneNode(true);
    article.querySelectorAll('pre, code, .math, mjx-container').forEach(e => e.remove());
    const text = article.textContent;
    const slash = String.fromCharCode(92);
    const stray = [slash + '(', slash + '[', '$$'].filter(d => text.includes(d));
    return {count: maths.length, raw, errors, stray};
}"""

IMAGES_JS = """() => [...document.images].map(img => {
    let corner = null;
    if (img.closest('.cell_output') && img.naturalWidth > 0) {
        const canvas = document.createElement('canvas');
        canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
        const context = canvas.getContext('2d');
        context.drawImage(img, 0, 0);
        corner = [...context.getImageData(0, 0, 1, 1).data];
    }
    return {src: img.src.split('/').pop(), alt: img.alt, width: img.naturalWidth, corner,
            output: img.closest('.cell_output') !== null};
})"""

# Search fields a reader sees (the header and the sidebar each can hold one).
SEARCH_FIELDS_JS = """() => [...document.querySelectorAll('.search-button-field')]
    .filter(e => e.checkVisibility() && e.getBoundingClientRect().width > 0).length"""

# Font Awesome icons (<i class="fa-...">), drawn by the theme's CSS from the webfont (see
# tests/test_site_icons.py): the font its ::before glyph uses, the glyph, and its size on screen.
ICONS_JS = """() => [...document.querySelectorAll('i[class*="fa-"]')].map(i => {
    const glyph = getComputedStyle(i, '::before');
    const box = i.getBoundingClientRect();
    return {cls: i.className, font: glyph.fontFamily, content: glyph.content,
            width: box.width};
})"""
# document.fonts.check() is true for a family the page does not have at all, so look for a face of
# it that has loaded.
# The header's icons are the solid style, weight 900: that face must have loaded, and no Font
# Awesome face may have failed to.
ICON_FONT_JS = """async () => { await document.fonts.ready;
    const faces = [...document.fonts].filter(
        face => face.family.replace(/["']/g, "").startsWith("Font Awesome"));
    return faces.some(face => face.status === "loaded" && face.weight === "900")
        && !faces.some(face => face.status === "error"); }"""
# Words of inline code in a table that the line breaks split (Sphinx puts each word of inline
# code in its own span.pre; a split one has a box on each line).
SPLIT_TABLE_CODE_JS = """() => [...document.querySelectorAll('table code.literal span.pre')]
    .filter(word => word.getClientRects().length > 1).map(word => word.textContent)"""
# A chapter's "download .ipynb" link in the header, or null on a page that is not a notebook.
NOTEBOOK_LINK_JS = """() => (document.querySelector('a[href$=".ipynb"]') || {}).href || null"""
# The page whose print layout is checked (_static/book.css fits it on one A4 sheet).
PRINT_PAGE = "book/reference.html"

# Each exercise solution: its title, whether its toggle button is shown with a box to click, and
# whether each of its code cells and outputs is shown.
SOLUTIONS_JS = """() => [...document.querySelectorAll('.solution.dropdown')].map(s => {
    // sphinx-togglebutton folds a solution with visibility: hidden inside a zero-height box.
    const shown = e => e.checkVisibility({visibilityProperty: true, opacityProperty: true})
                       && e.getBoundingClientRect().height > 0;
    const button = s.querySelector('.toggle-button');
    return {
        title: (s.querySelector('.admonition-title') || {}).textContent || '',
        expanded: button ? button.getAttribute('aria-expanded') : null,
        button: button ? button.checkVisibility() && button.getBoundingClientRect().width > 0
                         && button.getBoundingClientRect().height > 0 : false,
        code: [...s.querySelectorAll('.cell_input')].map(shown),
        output: [...s.querySelectorAll('.cell_output')].map(shown),
        text: [...s.querySelectorAll('.cell_output')].map(o => o.textContent.trim()).join(''),
    };
})"""

# preload: false stops axe fetching every stylesheet again to build its own CSSOM: it resolves
# their @import against the page, asking for a /basic.css that the reader's browser never
# requests (a 404 the load test would report). Two rules use the preload: css-orientation-lock
# (experimental, off by default) and no-autoplay-audio (the site has no audio or video).
AXE_OPTIONS = {"resultTypes": ["violations"], "preload": False,
               "rules": {"label-content-name-mismatch": {"enabled": True}}}
AXE_JS = ("async ([context, options]) => (await axe.run(context, options)).violations.map(v => "
          "`${v.impact} ${v.id}: ${v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', ')}`)")
# Code blocks are most of axe's time: on a long chapter thousands of syntax-highlighted tokens,
# each measured for colour contrast (13 of 17 s on one page). Every code block is built alike (one
# template, one stylesheet for its colours, the same on every page), so each page is checked with
# every rule outside its code blocks, and CODE_PAGE has its code blocks checked as well
# (test_code_blocks_pass_axe). The copy button beside each block is outside <pre>: checked on
# every page.
CODE_PAGE = "book/01-matmul.html"
OUTSIDE_CODE = {"exclude": [[".highlight pre"]]}
INSIDE_CODE = {"include": [[".highlight pre"]]}
SOLUTIONS_OUTSIDE_CODE = {"include": [[".solution"]], "exclude": [[".highlight pre"]]}
# Excluded code blocks still cost axe time: to find what lies behind each text it checks, axe
# lays out every element of the page, the highlight tokens of the code blocks included (about
# 7,000 of the 12,000 elements of the troubleshooting chapter). So before the check outside the
# code blocks, each block's tokens are merged into one text: the same characters, in boxes of the
# same size (as measured on every page), without the colours of the code, which that check
# leaves out. Only blocks made of <span>s with no attribute but a class are merged: one holding
# anything else (an id, a link) is left as it is. A third less of axe's time over the book. The
# code blocks are checked before this, on CODE_PAGE.
MERGE_CODE_TOKENS_JS = """() => document.querySelectorAll('.highlight pre').forEach(block => {
    const tokens = [...block.querySelectorAll('*')];
    if (tokens.every(t => t.tagName === 'SPAN' && [...t.attributes].every(a => a.name === 'class')))
        block.textContent = block.textContent;
})"""


def open_solutions(page) -> None:
    """Open every exercise solution on the page, the first with a click of the mouse.

    The mouse click proves the button can be reached and clicked where a reader sees it; each
    click scrolls the page and repaints it, a quarter of a second of CPU on a long chapter. The
    other buttons are the same element from the same extension (sphinx-togglebutton), so they
    are clicked from JavaScript, which runs the same handler; that each of them is shown, with
    a box to click, is checked from SOLUTIONS_JS.
    """
    buttons = page.locator(".solution.dropdown .toggle-button")
    if buttons.count():
        buttons.first.click()
        buttons.evaluate_all("buttons => buttons.slice(1).forEach(button => button.click())")


def visit(page, base_url: str, path: str) -> dict:
    """Load one page as a reader would and gather the facts the browser tests check.

    `page` is one browser tab that goes from page to page, as a reader's does: its cache holds
    the theme's files after the first page, and its renderer has compiled the theme's scripts,
    so a later page costs far less CPU time than it would in a new tab. The tab passes through
    about:blank before and after, so that nothing of another page is recorded as this page's.

    At desktop width: console and network errors, requests to other hosts, a full-page
    screenshot if SCREENSHOTS is set (reports/screenshots/), typeset math, images, visible
    search fields, the icons, words of code split in tables, the notebook's download link, the
    printed PDF of PRINT_PAGE, axe-core's violations, and the exercise solutions before and
    after opening each (open_solutions). Then at phone width (390 px): the page's width.
    """
    if page.url != "about:blank":  # a new tab starts there, and each visit ends there
        page.goto("about:blank")
    page.set_viewport_size({"width": 1280, "height": 900})
    record = PageRecord(page, base_url)
    try:
        page.goto(f"{base_url}/{path}", wait_until="networkidle")
        wait_for_mathjax(page)
        if os.environ.get("SCREENSHOTS"):  # for a person to look at; a few seconds a page
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=SCREENSHOTS / f"{path.replace('/', '_')}.png", full_page=True)
        facts = {"math": page.evaluate(MATH_JS), "images": page.evaluate(IMAGES_JS),
                 "search_fields": page.evaluate(SEARCH_FIELDS_JS),
                 "icon_font": page.evaluate(ICON_FONT_JS), "icons": page.evaluate(ICONS_JS),
                 "notebook_link": page.evaluate(NOTEBOOK_LINK_JS),
                 "split_table_code": page.evaluate(SPLIT_TABLE_CODE_JS)}
        if path == PRINT_PAGE:
            facts["pdf"] = page.pdf(format="A4", prefer_css_page_size=True)
        if not AXE.exists():
            raise RuntimeError(f"{AXE} is missing: run `make test`, which installs it with npm ci")
        page.add_script_tag(path=AXE)
        if path == CODE_PAGE:
            facts["axe_code"] = page.evaluate(AXE_JS, [INSIDE_CODE, AXE_OPTIONS])
        page.evaluate(MERGE_CODE_TOKENS_JS)
        facts["axe"] = page.evaluate(AXE_JS, [OUTSIDE_CODE, AXE_OPTIONS])
        facts["solutions_closed"] = page.evaluate(SOLUTIONS_JS)
        open_solutions(page)
        # sphinx-togglebutton opens with a 0.3 s CSS transition: wait until every one has run.
        page.wait_for_function("""() => [...document.querySelectorAll('.solution.dropdown')]
            .every(s => s.getAnimations({subtree: true}).length === 0)""", timeout=10_000)
        facts["solutions_open"] = page.evaluate(SOLUTIONS_JS)
        # axe skips what is hidden, so the solutions are checked again now that they are open.
        facts["axe_solutions"] = (page.evaluate(AXE_JS, [SOLUTIONS_OUTSIDE_CODE, AXE_OPTIONS])
                                  if page.locator(".solution").count() else [])
        page.set_viewport_size({"width": 390, "height": 844})
        page.wait_for_timeout(100)
        facts["phone_width"] = page.evaluate("() => document.documentElement.scrollWidth")
        page.goto("about:blank")  # ends this page's requests while they are still recorded
    finally:  # a visit that fails leaves no listener on the tab
        record.stop()
    facts["errors"], facts["foreign"] = record.errors, record.foreign
    return facts
