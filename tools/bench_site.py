"""Page weight and load time of the built website, as a first-time reader gets it.

Called by `make bench` (tools/bench.py); runs alone too:
`.venv/bin/python tools/bench_site.py`. Each page is opened in a fresh browser
context (empty cache) from a local server; the transferred bytes come from the browser's
Resource Timing entries, so they include everything the page loads.
"""
from __future__ import annotations

import gzip
import re
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
import website  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

FIRST_LOAD = """() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const resources = performance.getEntriesByType('resource');
    const bytes = nav.transferSize + resources.reduce((sum, r) => sum + r.transferSize, 0);
    return {bytes, requests: resources.length + 1, load_ms: nav.loadEventEnd,
            urls: [nav.name, ...resources.map(r => r.name)]};
}"""


def gzipped_bytes(html: Path, urls: list[str]) -> int:
    """What the same files weigh gzip-compressed, as most web hosts send them (the local test
    server sends them uncompressed)."""
    total = 0
    for url in urls:
        data = (html / urlsplit(url).path.lstrip("/")).read_bytes()
        total += min(len(data), len(gzip.compress(data, compresslevel=6)))
    return total


def image_bytes(html_file: Path) -> int:
    sources = set(re.findall(r'<img[^>]*src="([^"]+)"', html_file.read_text(encoding="utf-8")))
    return sum((html_file.parent / src).resolve().stat().st_size for src in sources)


def main() -> None:
    with tempfile.TemporaryDirectory() as out:
        html = website.build(Path(out))
        with website.serve(html) as url, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=website.chromium_path(),
                                                 args=website.CHROMIUM_ARGS)
            print(f"{'page':<32}{'HTML KB':>9}{'images KB':>11}{'first load KB':>15}"
                  f"{'gzipped KB':>12}{'requests':>10}{'load ms':>9}")
            for path in website.page_paths():
                context = browser.new_context()
                page = context.new_page()
                page.goto(f"{url}/{path}", wait_until="networkidle")
                website.wait_for_mathjax(page)
                load = page.evaluate(FIRST_LOAD)
                context.close()
                html_kb = (html / path).stat().st_size / 1024
                print(f"{path:<32}{html_kb:>9.0f}{image_bytes(html / path) / 1024:>11.0f}"
                      f"{load['bytes'] / 1024:>15.0f}"
                      f"{gzipped_bytes(html, load['urls']) / 1024:>12.0f}{load['requests']:>10}"
                      f"{load['load_ms']:>9.0f}")
            browser.close()


if __name__ == "__main__":
    main()
