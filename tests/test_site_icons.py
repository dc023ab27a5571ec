"""The theme's icons show without its 1.49 MB fontawesome.js.

_templates/static/webpack-macros.html drops that script (see the file's comment): the icons are
then drawn by the theme's CSS from the Font Awesome webfont. This checks that the override is
still the theme's file minus that one line (a theme upgrade must be followed) and that no page asks
for the script. That every icon on every page is drawn as a glyph of the loaded webfont is checked
in the browser, with the page's other facts (tests/test_site_pages.py).
"""
import importlib.util
from pathlib import Path

import website

from book import ROOT

# Found without importing the theme (it imports Sphinx: a second of CPU in every test worker).
THEME_MACROS = (Path(importlib.util.find_spec("pydata_sphinx_theme").origin).parent
                / "theme" / "pydata_sphinx_theme" / "static" / "webpack-macros.html")
OUR_MACROS = ROOT / "_templates" / "static" / "webpack-macros.html"
DROPPED = "_static/scripts/fontawesome.js"


def without_jinja_comment(text: str) -> str:
    return text.split("-#}\n", 1)[1] if text.startswith("{#-") else text


def test_override_is_the_theme_file_minus_the_script():
    theme = [line for line in THEME_MACROS.read_text().splitlines() if DROPPED not in line]
    assert len(theme) == len(THEME_MACROS.read_text().splitlines()) - 1, "the line has moved"
    assert without_jinja_comment(OUR_MACROS.read_text()).splitlines() == theme


def test_no_page_loads_fontawesome_js(site_html):
    # _static/ holds a copy of the theme's own macros file, which is not a page.
    pages = [p for p in site_html.rglob("*.html") if "_static" not in p.parts]
    assert len(pages) >= 10
    assert not [p for p in pages if "fontawesome.js" in p.read_text()]


def test_the_font_check_fails_without_the_font(site_url, browser):
    """The check the pages' facts use is false when the webfont cannot load."""
    page = browser.new_page()
    try:
        page.route("**/*.woff2", lambda route: route.abort())
        page.route("**/*.ttf", lambda route: route.abort())
        page.goto(f"{site_url}/book/intro.html", wait_until="load")
        assert page.locator('i[class*="fa-"]').count() > 0
        assert page.evaluate(website.ICON_FONT_JS) is False
    finally:
        page.close()
