"""tools/gpu_check.sh, the one run on a machine with an NVIDIA GPU, works before it gets there.

Such a machine is available for minutes, so the script must not fail on its first real run.
This runs it on the CPU, in a copy of the repository (it executes notebooks in place), on tiny
notebooks: a stand-in for chapter 5 that is right, and one with a right and a wrong stored
output. The run must measure, report the wrong output in nbval.log, run chapter 5 alone and
first, still execute the notebooks, and exit non-zero. A second run, on a notebook that imports
a module nobody installed and one that does not, must still measure first, name the module, skip
that notebook and run the other.
The rehearsal over the real chapters, in an environment holding only torch and the bundled
wheels, is `make gpu-rehearsal` (tools/gpu_rehearsal.sh).
"""
import json
import os
import shutil
import subprocess
import sys
import tarfile

import nbformat
import notebook_imports
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from book import ROOT

# The tests run the script on the CPU, about 20 s in all: `make test-tools`, not `make test`.
pytestmark = pytest.mark.gpu_tools

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def write_notebook(path, cells) -> None:
    """A notebook of (source, stored text/plain) code cells."""
    nb = new_notebook(metadata={"kernelspec": KERNELSPEC}, cells=[
        new_code_cell(source, execution_count=n, outputs=[
            new_output("execute_result", {"text/plain": stored}, execution_count=n)])
        for n, (source, stored) in enumerate(cells, start=1)])
    nbformat.write(nb, path)


def gpu_check(repo, notebooks: dict, workers: int):
    """Run tools/gpu_check.sh on the CPU in a copy of the repository holding `notebooks`."""
    for name in ("tools", "tests"):
        shutil.copytree(ROOT / name, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("requirements.txt", "pyproject.toml", "conftest.py", "_toc.yml"):
        shutil.copy(ROOT / name, repo / name)
    (repo / "book").mkdir()
    for name, cells in notebooks.items():
        write_notebook(repo / "book" / name, cells)
    out = repo / "out"
    env = dict(os.environ, PYTHON=sys.executable, BENCH_ARGS="--device cpu --quick",
               NOTEBOOKS=" ".join(f"book/{name}" for name in notebooks), WORKERS=str(workers))
    result = subprocess.run(["bash", repo / "tools" / "gpu_check.sh", out], env=env,
                            capture_output=True, text=True, timeout=600)
    return result, out


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    # Two workers: the parallel part runs through pytest-xdist, loaded by name as on the GPU.
    return gpu_check(tmp_path_factory.mktemp("repo"), {
        "05-gpu.ipynb": [("6 * 7", "42")],
        "tiny.ipynb": [("6 * 7", "42"), ("6 * 7", "41")],
    }, workers=2)


@pytest.fixture(scope="module")
def run_missing_module(tmp_path_factory):
    return gpu_check(tmp_path_factory.mktemp("repo"), {
        # chapter 5 itself is the one that cannot run: the others still do
        "05-gpu.ipynb": [("import not_a_module_anyone_installed", "")],
        "fine.ipynb": [("6 * 7", "42")],
    }, workers=1)


def test_exit_status_reports_the_differing_output(run):
    result, _ = run
    assert result.returncode == 1, result.stdout + result.stderr
    assert "== failed steps: nbval\n" in result.stdout


def test_measurements_come_first(run):
    result, _ = run
    steps = [line for line in result.stdout.splitlines() if line.startswith("== ")]
    assert steps[0].startswith("== machine") and steps[1].startswith("== measurements"), steps


def test_machine_is_described(run):
    _, out = run
    lines = (out / "machine.txt").read_text().splitlines()
    assert any(line.startswith("torch ") and "GPU visible:" in line for line in lines), lines
    # the compiler chapter 6's torch.compile cells need, found here (the CPU runner has one)
    assert any(line.startswith("C++ compiler for torch.compile on the CPU: ")
               and " at /" in line for line in lines), lines


def test_measurements_are_written(run):
    _, out = run
    record = json.loads((out / "gpu-linear.json").read_text())
    assert record["device"] == "CPU" and record["results"]


def test_every_import_is_checked_before_a_notebook_runs(run):
    result, out = run
    steps = [line for line in result.stdout.splitlines() if line.startswith("== ")]
    first_notebook = next(i for i, step in enumerate(steps) if step.startswith("== strict nbval"))
    assert any(step.startswith("== dependencies") for step in steps[:first_notebook]), steps
    log = (out / "deps.log").read_text()
    for module in ("pytest", "nbval", "xdist", "ipykernel", "nbclient", "yaml"):
        assert f"ok      {module}" in log, log


def test_chapter_5_runs_alone_and_first(run):
    _, out = run
    log = (out / "nbval.log").read_text()
    sessions = log.split("test session starts")[1:]
    assert len(sessions) == 2, log
    assert "05-gpu.ipynb" in sessions[0] and "tiny.ipynb" not in sessions[0]
    assert "1 passed" in sessions[0]
    assert "05-gpu.ipynb" not in sessions[1]


def test_nbval_log_names_the_cell_that_differs(run):
    _, out = run
    log = (out / "nbval.log").read_text()
    assert "1 failed, 1 passed" in log
    assert "FAILED book/tiny.ipynb::Cell 1" in log


def test_notebooks_are_executed_and_packed(run):
    _, out = run
    with tarfile.open(out / "executed.tar.gz") as tar:
        assert sorted(tar.getnames()) == ["book/05-gpu.ipynb", "book/tiny.ipynb"]
        executed = nbformat.reads(tar.extractfile("book/tiny.ipynb").read().decode(), 4)
    assert [c.outputs[0]["data"]["text/plain"] for c in executed.cells] == ["42", "42"]


def test_a_missing_module_is_named_after_measuring(run_missing_module):
    result, out = run_missing_module
    assert result.returncode == 1, result.stdout + result.stderr
    assert "== failed steps: dependencies\n" in result.stdout
    assert json.loads((out / "gpu-linear.json").read_text())["results"]
    deps = (out / "deps.log").read_text()
    assert "MISSING not_a_module_anyone_installed" in deps
    assert "skipped book/05-gpu.ipynb (missing: not_a_module_anyone_installed)" in deps


def test_the_notebooks_that_can_run_still_do(run_missing_module):
    _, out = run_missing_module
    log = (out / "nbval.log").read_text()
    assert "book/fine.ipynb" in log and "1 passed" in log, log
    assert "05-gpu.ipynb" not in log
    with tarfile.open(out / "executed.tar.gz") as tar:
        assert tar.getnames() == ["book/fine.ipynb"]


def test_the_runner_missing_stops_every_notebook(tmp_path):
    notebook = tmp_path / "fine.ipynb"
    write_notebook(notebook, [("6 * 7", "42")])
    script = ROOT / "tools" / "notebook_imports.py"
    # A runner module that cannot be imported: every notebook is skipped, exit status 2.
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    (tmp_path / "nbval.py").write_text("raise ImportError('broken on purpose')\n")
    result = subprocess.run([sys.executable, script, "check", "--serial", notebook], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"skipped {notebook} (missing: nbval)" in result.stdout


def test_imports_are_read_from_code_cells(tmp_path):
    path = tmp_path / "chapter.ipynb"
    nbformat.write(new_notebook(cells=[
        new_code_cell("%matplotlib inline\nimport os, json\nimport numpy as np"),
        new_code_cell("from matplotlib import pyplot as plt\nfrom . import local"),
        nbformat.v4.new_markdown_cell("import pandas"),
        new_code_cell("import torch.nn as nn"),
        new_code_cell("!ls\nsame = (1\n        != 2)\nimport yaml"),   # "!=" continues a line
    ]), path)
    assert notebook_imports.notebook_imports(path) == {"os", "json", "numpy", "matplotlib",
                                                       "torch", "yaml"}
    modules = notebook_imports.modules([path])
    # the notebooks' imports, then the runner's (pytest, nbval, xdist) and those of the
    # scripts it runs (tools/execute.py: nbclient, nbformat, traitlets, zmq; tools/book.py: yaml)
    assert {"numpy", "matplotlib", "torch", "pytest", "nbval", "xdist", "ipykernel",
            "nbclient", "nbformat", "traitlets", "yaml", "zmq"} == set(modules)
    assert "xdist" not in notebook_imports.modules([path], parallel=False)


def test_requirements_are_the_installed_versions_without_torch(tmp_path):
    from importlib.metadata import version

    path = tmp_path / "chapter.ipynb"
    # torchgen and functorch come inside the torch wheel: bundling them would bundle torch.
    nbformat.write(new_notebook(cells=[new_code_cell("import numpy, torch, torchgen, yaml\n"
                                                     "from functorch import vmap")]), path)
    wanted = notebook_imports.requirements([path])
    assert f"numpy=={version('numpy')}" in wanted
    assert f"PyYAML=={version('PyYAML')}" in wanted
    assert f"pytest-xdist=={version('pytest-xdist')}" in wanted
    assert not any(line.startswith("torch==") for line in wanted)


def test_the_chapters_bundle_no_torch():
    """What tools/gpu_wheels.sh bundles for the real chapters holds no torch (it refuses then)."""
    wanted = notebook_imports.requirements(sorted((ROOT / "book").glob("*.ipynb")))
    assert "nbval==" in " ".join(wanted)
    assert not any(line.startswith("torch==") for line in wanted), wanted
