"""Exercise solutions stay hidden, code and output, until the reader opens them.

The hygiene test checks the notebooks' structure; this checks what a reader sees: on each
chapter, every solution toggle starts closed with none of its code or output visible, and
opening it shows the code and the output that CI checked.
"""
import pytest
from book import notebooks
from website import page_paths

CHAPTERS = [path for path in page_paths()
            if any(path == f"book/{nb.stem}.html" for nb in notebooks())]


@pytest.mark.parametrize("path", CHAPTERS)
def test_solutions_hidden_until_opened(browser, site_url, path):
    page = browser.new_page()
    page.goto(f"{site_url}/{path}", wait_until="load")
    solutions = page.locator(".solution.dropdown")
    count = solutions.count()
    assert count >= 2, f"{path}: {count} solution toggles"
    for index in range(count):
        solution = solutions.nth(index)
        title = solution.locator(".admonition-title")
        assert title.inner_text().strip().startswith("Solution"), title.inner_text()
        inside = f".solution.dropdown >> nth={index}"
        codes = solution.locator(".cell_input")
        outputs = solution.locator(".cell_output")
        assert codes.count() >= 1 and outputs.count() >= 1, (
            f"{path}: solution {index} holds {codes.count()} code cells and "
            f"{outputs.count()} outputs")
        hidden = [not el.is_visible() for el in codes.all() + outputs.all()]
        assert all(hidden), f"{path}: solution {index} shows code or output before opening"
        button = solution.locator(".toggle-button")
        assert button.get_attribute("aria-expanded") == "false", inside
        button.click()
        assert button.get_attribute("aria-expanded") == "true", inside
        shown = [el.is_visible() for el in codes.all() + outputs.all()]
        assert all(shown), f"{path}: opening solution {index} does not show its code and output"
        assert any(el.inner_text().strip() for el in outputs.all()), (
            f"{path}: solution {index} opens onto an empty output")
    page.close()
