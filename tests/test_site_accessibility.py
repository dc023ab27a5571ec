"""axe-core finds no accessibility violation on any page.

axe-core is the copy bundled (pinned) in the PyPI package axe-playwright-python. The rule
label-content-name-mismatch is experimental in axe and off by default; it is switched on because
the theme failed it (see _templates/ and _ext/accessible_toggles.py).
"""
from importlib import resources

import pytest
from website import page_paths, wait_for_mathjax

AXE = (resources.files("axe_playwright_python") / "axe.min.js").read_text(encoding="utf-8")
OPTIONS = {"resultTypes": ["violations"],
           "rules": {"label-content-name-mismatch": {"enabled": True}}}


@pytest.mark.parametrize("path", page_paths())
def test_no_axe_violations(browser, site_url, path):
    page = browser.new_page()
    page.goto(f"{site_url}/{path}", wait_until="load")
    wait_for_mathjax(page)
    page.add_script_tag(content=AXE)
    violations = page.evaluate(
        "async options => (await axe.run(document, options)).violations.map(v => "
        "`${v.impact} ${v.id}: ${v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', ')}`)",
        OPTIONS,
    )
    page.close()
    assert violations == [], "\n".join(violations)
