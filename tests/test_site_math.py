"""Every formula is typeset by MathJax (served by the site itself); none is left as raw LaTeX."""
import pytest
from website import page_paths, wait_for_mathjax

# Pages that certainly contain math, so that a page where MathJax silently never ran fails.
PAGES_WITH_MATH = {"book/intro.html", "book/01-matmul.html", "book/06-under-the-hood.html"}


@pytest.mark.parametrize("path", page_paths())
def test_math_is_typeset(browser, site_url, path):
    page = browser.new_page()
    page.goto(f"{site_url}/{path}", wait_until="load")
    wait_for_mathjax(page)
    result = page.evaluate("""() => {
        const maths = [...document.querySelectorAll('.math')];
        const raw = maths.filter(m => !m.querySelector('mjx-container'))
                         .map(m => m.textContent.trim().slice(0, 60));
        return {count: maths.length, raw};
    }""")
    page.close()
    assert result["raw"] == [], f"formulas left as raw LaTeX: {result['raw']}"
    if path in PAGES_WITH_MATH:
        assert result["count"] > 0, "this page has formulas, but none was found"
