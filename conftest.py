"""Settings for every pytest run in the repository: `make test`, `make check`, `make compat`, or
pytest on one notebook. The tests' fixtures are in tests/conftest.py.
"""
import os

import pytest

# One thread per notebook kernel: the two test workers each run a kernel at once, and on a
# machine with as few cores as CI's, more threads per kernel only contend for them. Outputs do
# not depend on it (the timings chapter 5 stores are not compared).
os.environ.setdefault("OMP_NUM_THREADS", "1")


# Optional: pytest also runs without pytest-xdist (one worker), and then this hook does not exist.
@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Share the tests out between the two workers in units (pytest-xdist's scheduler hook).

    A unit runs in one worker. A notebook's cells share one kernel and a module's tests share
    its fixtures, so each file is a unit (as with --dist loadfile); but each page of the website
    is a unit of its own: the pages are checked by one module, a long chapter takes several
    seconds in the browser, and one worker should not get them all.
    """
    from xdist.scheduler import LoadScopeScheduling

    class Units(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path, _, test = nodeid.partition("::")
            if path == "tests/test_site_pages.py" and test.endswith("]"):
                return "page " + test[test.index("[") + 1:-1]
            return path

    return Units(config, log)
