"""Settings for every pytest run in the repository: `make test`, `make check`, `make compat`, or
pytest on one notebook. The tests' fixtures are in tests/conftest.py.
"""
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

# tools/ on the import path, for this file and the tests (which read the book through it).
sys.path.insert(0, str(Path(__file__).resolve().parent / "tools"))
import kernel_forks  # noqa: E402  (tools/kernel_forks.py)
import kernel_starts  # noqa: E402  (tools/kernel_starts.py)

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
    if kernel_forks.ENABLED:  # tools/kernel_forks.py: why, and what a forked kernel shares
        kernel_forks.install()
        config.add_cleanup(kernel_forks.close)
    if config.pluginmanager.hasplugin("nbval"):
        restart_kernels_that_die_at_start_up(config)
    folder = Path(tempfile.mkdtemp(prefix="ipython-"))
    (folder / "profile_default").mkdir()
    (folder / "profile_default" / "ipython_kernel_config.py").write_text(KERNEL_CONFIG)
    os.environ["IPYTHONDIR"] = str(folder)
    config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))


def restart_kernels_that_die_at_start_up(config):
    """nbval starts each notebook's kernel with nbval.kernel.start_new_kernel, which raises if
    the kernel dies before it replies. Such a kernel is started again (tools/kernel_starts.py says
    why it happens and why that is safe); any other failure is nbval's as before."""
    import nbval.kernel

    start_new_kernel = nbval.kernel.start_new_kernel

    def restarting(*args, **kwargs):
        return kernel_starts.started(lambda: start_new_kernel(*args, **kwargs), "nbval")

    nbval.kernel.start_new_kernel = restarting
    config.add_cleanup(lambda: setattr(nbval.kernel, "start_new_kernel", start_new_kernel))


# Test files that import torch into the test worker itself (3 to 4 s of CPU): one unit, so that
# one worker imports it, once.
TORCH_IN_THE_WORKER = ("tests/test_gpu_bench.py", "tests/test_gpu_record_display.py")
# Units that take several seconds with few tests: they run first, in this order (see Units
# below). The search test builds the website, which every page's test then reads.
SLOW_UNITS = ("tests/test_site_search.py", "tests/test_lab.py", "tests/test_kernel_forks.py",
              "torch in the worker")


# Optional: pytest also runs without pytest-xdist (one worker), and then this hook does not exist.
@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Share the tests out between the two workers in units (pytest-xdist's scheduler hook).

    A unit runs in one worker. A notebook's cells share one kernel and a module's tests share
    its fixtures, so each file is a unit (as with --dist loadfile); but each page of the website
    is a unit of its own: the pages are checked by one module, a long chapter takes several
    seconds in the browser, and one worker should not get them all. The files that import torch
    into the worker (TORCH_IN_THE_WORKER) are one unit.

    A worker that finishes a unit takes the next in line. pytest-xdist puts the units with the
    most tests first, which leaves the few units with few tests but many seconds (SLOW_UNITS)
    until last, where one worker runs them while the other has nothing left to do; they go
    first instead. The website's build comes with the first of them.
    """
    from xdist.scheduler import LoadScopeScheduling

    class Units(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path, _, test = nodeid.partition("::")
            if path == "tests/test_site_pages.py" and test.endswith("]"):
                return "page " + test[test.index("[") + 1:-1]
            if path in TORCH_IN_THE_WORKER:
                return "torch in the worker"
            return path

        # Every unit given out passes here (pytest-xdist 3.8, pinned in requirements.txt): the
        # queue is put in order before the first is taken.
        def _assign_work_unit(self, node) -> None:
            if not getattr(self, "slow_first", False):
                rank = {unit: index for index, unit in enumerate(SLOW_UNITS)}
                units = sorted(self.workqueue.items(),  # a stable sort: the rest keep their order
                               key=lambda unit: rank.get(unit[0], len(SLOW_UNITS)))
                self.workqueue.clear()
                self.workqueue.update(units)
                self.slow_first = True
            super()._assign_work_unit(node)

    return Units(config, log)
