"""The built website, served over HTTP on loopback, and a headless Chromium to read it.

Shared by the tests of the site (tests/test_site_*.py, through the fixtures in tests/conftest.py)
and by `make bench` (tools/bench.py).
"""
from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

from book import ROOT, toc_entries

JUPYTER_BOOK = Path(sys.executable).parent / "jupyter-book"
SCREENSHOTS = ROOT / "reports" / "screenshots"
# Flags for a headless browser on a machine with no network beyond loopback: no background
# requests to Google's services, no GPU, no sandbox (CI runs as root).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


def chromium_path() -> str:
    for candidate in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    raise RuntimeError("no Chromium found: run `make test`, which installs it, or set CHROMIUM")


def build(out: Path) -> Path:
    """Build the website into `out` (as `make book` does) and return its html folder."""
    result = subprocess.run(
        [JUPYTER_BOOK, "build", ROOT, "--path-output", out, "-n", "-W", "--keep-going"],
        capture_output=True, text=True, timeout=600,
    )
    log = result.stdout + result.stderr
    if result.returncode != 0 or "WARNING" in log:
        raise RuntimeError("the book did not build without warnings:\n" + log[-5000:])
    return out / "_build" / "html"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # one line per request would drown the test output
        pass


@contextmanager
def serve(directory: Path):
    """Serve `directory` on a free port of 127.0.0.1; yield its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def page_paths() -> list[str]:
    """Every page a reader can reach: the toc's pages, and the search page."""
    return [f"{entry}.html" for entry in toc_entries()] + ["search.html"]


class PageRecord:
    """What a page did while loading: console errors, page errors, failed and foreign requests."""

    def __init__(self, page, base_url: str):
        self.errors: list[str] = []
        self.foreign: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console: {m.text}")
                if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: self.errors.append(f"failed: {r.url} {r.failure}"))
        page.on("response", lambda r: self.errors.append(f"HTTP {r.status}: {r.url}")
                if r.status >= 400 else None)
        page.on("request", lambda r: self.foreign.append(r.url)
                if not r.url.startswith((base_url + "/", "data:", "blob:")) else None)


def wait_for_mathjax(page) -> None:
    """Wait until MathJax (if the page loads it) has typeset the page."""
    page.wait_for_function("() => !window.MathJax || (MathJax.startup && MathJax.startup.promise)")
    page.evaluate("() => window.MathJax ? MathJax.startup.promise : null")
