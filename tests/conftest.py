"""Shared set-up for the tests.

tools/ is on the import path (the root conftest.py puts it there), so the tests read the book
(its table of contents) the same way the tools do. The website fixtures build the book once per
test run (the workers share that build), serve it on loopback and open it in headless Chromium;
see tools/website.py.
"""
import pytest
import website  # tools/website.py
from filelock import FileLock


@pytest.fixture(scope="session")
def site_html(tmp_path_factory, worker_id):
    """The html folder of a fresh build of the book, built once per test run.

    Under pytest-xdist the workers share one build (the folder above their own temporary
    folders is common to the run), made by whichever worker asks first, under a file lock.
    """
    if worker_id == "master":
        return website.build(tmp_path_factory.mktemp("site"))
    shared = tmp_path_factory.getbasetemp().parent / "site"
    with FileLock(f"{shared}.lock"):
        done = shared / "built"
        if not done.exists():
            website.build(shared)
            done.touch()
    return shared / "_build" / "html"


@pytest.fixture(scope="session")
def site_url(site_html):
    with website.serve(site_html) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=website.chromium_path(), args=website.CHROMIUM_ARGS)
        yield chromium
        chromium.close()
