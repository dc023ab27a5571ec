"""The theme's icons show without its 1.45 MB fontawesome.js.

_templates/static/webpack-macros.html drops that script (see the file's comment): the icons are
then drawn by the theme's CSS from the Font Awesome webfont. This checks that the override is
still the theme's file minus that one line (a theme upgrade must be followed), that no page asks
for the script, and that every icon on a page is drawn as a glyph of the loaded webfont.
"""
import importlib.util
from pathlib import Path

from book import ROOT

# Found without importing the theme (it imports Sphinx: a second of CPU in every test worker).
THEME_MACROS = (Path(importlib.util.find_spec("pydata_sphinx_theme").origin).parent
                / "theme" / "pydata_sphinx_theme" / "static" / "webpack-macros.html")
OUR_MACROS = ROOT / "_templates" / "static" / "webpack-macros.html"
DROPPED = "_static/scripts/fontawesome.js"

# For each Font Awesome icon (<i class="fa-...">): the font its ::before glyph uses, the glyph,
# and its size on screen.
ICONS_JS = """() => [...document.querySelectorAll('i[class*="fa-"]')].map(i => {
    const glyph = getComputedStyle(i, '::before');
    const box = i.getBoundingClientRect();
    return {cls: i.className, font: glyph.fontFamily, content: glyph.content,
            width: box.width};
})"""


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


def test_icons_are_drawn_from_the_webfont(browser, site_url):
    page = browser.new_page(viewport={"width": 1300, "height": 800})
    page.goto(f"{site_url}/book/05-gpu.html", wait_until="load")
    page.evaluate("document.fonts.ready")
    loaded = page.evaluate("() => document.fonts.check('900 16px \"Font Awesome 6 Free\"')")
    icons = page.evaluate(ICONS_JS)
    page.close()
    assert loaded, "the Font Awesome webfont did not load"
    assert len(icons) >= 10, icons  # search, menu, download, full screen, colour mode, arrows
    for icon in icons:
        assert "Font Awesome" in icon["font"], icon
        assert icon["content"] not in ("none", "normal", '""'), icon
    # Icons hidden on this screen size have no box; the header's must be drawn.
    assert sum(icon["width"] > 0 for icon in icons) >= 5, icons
