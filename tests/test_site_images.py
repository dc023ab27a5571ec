"""Every image has meaningful alt text, has loaded, and (figures) has an opaque white background.

The white background keeps figures legible in the site's dark mode.
"""
import pytest
from website import page_paths


@pytest.mark.parametrize("path", page_paths())
def test_images_have_alt_text_and_load(browser, site_url, path):
    page = browser.new_page()
    page.goto(f"{site_url}/{path}", wait_until="load")
    images = page.evaluate("""() => [...document.images].map(img => {
        let corner = null;
        if (img.closest('.cell_output') && img.naturalWidth > 0) {
            const canvas = document.createElement('canvas');
            canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
            const context = canvas.getContext('2d');
            context.drawImage(img, 0, 0);
            corner = [...context.getImageData(0, 0, 1, 1).data];
        }
        return {src: img.src.split('/').pop(), alt: img.alt, width: img.naturalWidth, corner};
    })""")
    page.close()
    for image in images:
        alt = image["alt"].strip()
        # Meaningful: a sentence, not the file name (docutils' fallback when a cell has no alt
        # text in its metadata) nor a repr such as "<Figure size 700x420 with 1 Axes>".
        meaningful = len(alt.split()) >= 5 and not alt.startswith("<") and ".png" not in alt
        assert meaningful, f"{image['src']}: alt text {alt!r}"
        assert image["width"] > 0, f"{image['src']} did not load"
        if image["corner"] is not None:
            assert image["corner"] == [255, 255, 255, 255], (
                f"{image['src']}: background {image['corner']} is not opaque white")
