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
    }""")
    page.close()
    assert result["raw"] == [], f"formulas left as raw LaTeX: {result['raw']}"
    assert result["errors"] == [], f"MathJax errors: {result['errors']}"
    assert result["stray"] == [], f"math delimiters outside formulas: {result['stray']}"
    if path in PAGES_WITH_MATH:
        assert result["count"] > 0, "this page has formulas, but none was found"
