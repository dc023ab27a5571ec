"""Every page loads in a real browser with no error and no request to any other host.

Readers behind a firewall, offline, or who care about privacy must get the whole page from the
book's own server. A screenshot of each page is written to reports/screenshots/ for a person to
look at.
"""
import pytest
from website import SCREENSHOTS, PageRecord, page_paths, wait_for_mathjax


@pytest.mark.parametrize("path", page_paths())
def test_page_loads_cleanly_and_offline(browser, site_url, path):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    record = PageRecord(page, site_url)
    page.goto(f"{site_url}/{path}", wait_until="networkidle")
    wait_for_mathjax(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{path.replace('/', '_')}.png", full_page=True)
    page.close()
    assert record.errors == [], "\n".join(record.errors)
    assert record.foreign == [], f"requests to other hosts: {record.foreign}"
