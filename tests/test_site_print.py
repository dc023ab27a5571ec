"""The one-page reference prints on a single A4 sheet (styles in _static/book.css)."""
import io

from pypdf import PdfReader


def test_reference_prints_on_one_a4_page(browser, site_url):
    page = browser.new_page()
    page.goto(f"{site_url}/book/reference.html", wait_until="load")
    pdf = page.pdf(format="A4", prefer_css_page_size=True)
    page.close()
    assert len(PdfReader(io.BytesIO(pdf)).pages) == 1
