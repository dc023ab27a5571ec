"""On a phone-width screen (390 px) no page is wider than the screen.

Long code lines and outputs must scroll inside their own box, not push the page sideways.
"""
import pytest
from website import page_paths


@pytest.mark.parametrize("path", page_paths())
def test_no_horizontal_overflow_on_a_phone(browser, site_url, path):
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(f"{site_url}/{path}", wait_until="load")
    width = page.evaluate("() => document.documentElement.scrollWidth")
    page.close()
    assert width <= 390, f"the page is {width} px wide on a 390 px screen"
