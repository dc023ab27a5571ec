"""The search page finds the chapter a reader is looking for."""
import pytest

# What a reader might type, and a page that must be among the results.
QUERIES = {
    "addmm": "02-constructing-linear.html",
    "nn.Parameter": "03-parameters.html",
    "BatchNorm": "04-bias.html",
    "synchronize": "05-gpu.html",
    "gradcheck": "06-under-the-hood.html",
    "leaf Variable": "07-troubleshooting.html",
    "shapes cannot be multiplied": "07-troubleshooting.html",
}


@pytest.mark.parametrize("query", QUERIES)
def test_search_finds_the_chapter(browser, site_url, query):
    page = browser.new_page()
    page.goto(f"{site_url}/search.html?q={query}", wait_until="load")
    page.wait_for_selector("#search-results ul.search li", timeout=30_000)
    links = page.eval_on_selector_all("#search-results ul.search li a",
                                      "anchors => anchors.map(a => a.href)")
    page.close()
    assert any(QUERIES[query] in link for link in links), (query, links)
