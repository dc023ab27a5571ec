"""A chapter's "download .ipynb" button serves that chapter's notebook, valid and unchanged."""
import nbformat

from book import ROOT, notebooks


def test_download_button_serves_the_notebook(browser, site_url):
    chapter = notebooks()[0]
    page = browser.new_page()
    page.goto(f"{site_url}/{chapter.relative_to(ROOT).with_suffix('.html')}", wait_until="load")
    href = page.eval_on_selector('a[href$=".ipynb"]', "a => a.href")
    response = page.request.get(href)
    assert response.ok, href
    text = response.text()
    page.close()
    served = nbformat.reads(text, as_version=4)
    nbformat.validate(served)
    assert served == nbformat.read(chapter, as_version=4)
