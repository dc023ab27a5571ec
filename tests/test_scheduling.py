"""The root conftest.py's scheduler shares the tests out as it says: which tests form one unit,
and the slow units first. It overrides two methods of pytest-xdist's LoadScopeScheduling (pinned
in requirements.txt); if a new release renamed them, the overrides would silently do nothing,
and these tests fail instead.
"""
import importlib.util
from collections import OrderedDict

from book import ROOT

spec = importlib.util.spec_from_file_location("root_conftest", ROOT / "conftest.py")
root_conftest = importlib.util.module_from_spec(spec)
spec.loader.exec_module(root_conftest)


class TwoWorkers:
    """The one setting the scheduler reads from pytest's configuration: two local workers."""

    def getvalue(self, name):
        assert name == "tx"
        return ["2*popen"]


class FakeWorker:
    def __init__(self):
        self.sent = []

    def send_runtest_some(self, indexes):
        self.sent.append(indexes)


def scheduler():
    return root_conftest.pytest_xdist_make_scheduler(TwoWorkers(), None)


def test_the_overridden_methods_exist_in_xdist():
    from xdist.scheduler import LoadScopeScheduling
    for name in ("_split_scope", "_assign_work_unit"):
        assert name in vars(LoadScopeScheduling), f"xdist no longer has {name}: overrides unused"
        assert name in vars(type(scheduler())), name


def test_units():
    units = scheduler()
    split = units._split_scope
    assert split("book/01-matmul.ipynb::Cell 3") == "book/01-matmul.ipynb"
    assert split("tests/test_site_pages.py::test_math_is_typeset[book/intro.html]") == (
        "page book/intro.html")
    assert split("tests/test_site_pages.py::test_math_is_typeset[book/intro.html]") == split(
        "tests/test_site_pages.py::test_no_axe_violations[book/intro.html]")
    assert split("tests/test_gpu_bench.py::test_x") == split(
        "tests/test_gpu_record_display.py::test_y") == "torch in the worker"
    assert split("tests/test_lint.py::test_ruff") == "tests/test_lint.py"


def test_slow_units_go_first():
    units = scheduler()
    worker = FakeWorker()
    queue = ["book/01-matmul.ipynb", "tests/test_lab.py", "tests/test_toc.py",
             "tests/test_site_search.py", "torch in the worker"]
    units.workqueue = OrderedDict((unit, {f"{unit}::t": False}) for unit in queue)
    units.registered_collections[worker] = [f"{unit}::t" for unit in queue]
    while units.workqueue:
        units._assign_work_unit(worker)
    # SLOW_UNITS in their order, then the rest in the order they had
    collection = units.registered_collections[worker]
    taken = [collection[indexes[0]].partition("::")[0] for indexes in worker.sent]
    assert taken == ["tests/test_site_search.py", "tests/test_lab.py", "torch in the worker",
                     "book/01-matmul.ipynb", "tests/test_toc.py"]
