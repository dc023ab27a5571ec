"""Settings for every pytest run in the repository: `make test`, `make check`, `make compat`, or
pytest on one notebook. The tests' fixtures are in tests/conftest.py.
"""
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# One thread per notebook kernel: the two test workers each run a kernel at once, and on a
# machine with as few cores as CI's, more threads per kernel only contend for them. Outputs do
# not depend on it (the timings chapter 5 stores are not compared).
os.environ.setdefault("OMP_NUM_THREADS", "1")

# The notebook kernels' IPython settings for a test run, in a folder of its own (IPYTHONDIR), so
# that a reader's ~/.ipython (startup files, a profile) does not reach the kernels nbval starts.
# Plain tracebacks: nbval compares an error's name and message, never its traceback, and the
# default (Context) formatting parses the source of every file in the traceback, seconds of CPU for
# the first error that passes through torch's larger modules. The stored tracebacks the website
# shows come from `make execute` (tools/execute.py), which keeps the default formatting.
KERNEL_CONFIG = """\
c.InteractiveShell.xmode = "Plain"
c.HistoryManager.enabled = False
"""


def pytest_configure(config):
    folder = Path(tempfile.mkdtemp(prefix="ipython-"))
    (folder / "profile_default").mkdir()
    (folder / "profile_default" / "ipython_kernel_config.py").write_text(KERNEL_CONFIG)
    os.environ["IPYTHONDIR"] = str(folder)
    config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))


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
