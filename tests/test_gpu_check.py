"""tools/gpu_check.sh, the one run a lent GPU machine gets, works before it gets there.

A GPU machine is lent for minutes, so the script must not fail on its first real run. This runs
it on the CPU, in a copy of the repository (it executes notebooks in place), on a tiny notebook
with one right and one wrong stored output. The run must measure, report the wrong output in
nbval.log, still execute the notebook, and exit non-zero.
"""
import json
import os
import shutil
import subprocess
import sys
import tarfile

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from book import ROOT


def tiny_notebook(path) -> None:
    """Two cells computing 42; the first stores 42, the second 41."""
    cells = [new_code_cell("6 * 7", execution_count=n, outputs=[
        new_output("execute_result", {"text/plain": stored}, execution_count=n)])
        for n, stored in [(1, "42"), (2, "41")]]
    nb = new_notebook(cells=cells, metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}})
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    repo = tmp_path_factory.mktemp("repo")
    for name in ("tools", "tests"):
        shutil.copytree(ROOT / name, repo / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("requirements.txt", "pyproject.toml", "_toc.yml"):
        shutil.copy(ROOT / name, repo / name)
    (repo / "book").mkdir()
    tiny_notebook(repo / "book" / "tiny.ipynb")
    out = repo / "out"
    env = dict(os.environ, PYTHON=sys.executable, BENCH_ARGS="--device cpu --quick",
               NOTEBOOKS="book/tiny.ipynb", WORKERS="1")
    result = subprocess.run(["bash", repo / "tools" / "gpu_check.sh", out], env=env,
                            capture_output=True, text=True, timeout=300)
    return result, out


def test_exit_status_reports_the_differing_output(run):
    result, _ = run
    assert result.returncode == 1, result.stdout + result.stderr
    assert "failed steps: nbval" in result.stdout


def test_machine_is_described(run):
    _, out = run
    lines = (out / "machine.txt").read_text().splitlines()
    assert any(line.startswith("torch ") and "GPU visible:" in line for line in lines), lines


def test_measurements_are_written(run):
    _, out = run
    record = json.loads((out / "gpu-linear.json").read_text())
    assert record["device"] == "CPU" and record["results"]


def test_nbval_log_names_the_cell_that_differs(run):
    _, out = run
    log = (out / "nbval.log").read_text()
    assert "1 failed, 1 passed" in log
    assert "FAILED book/tiny.ipynb::Cell 1" in log


def test_notebooks_are_executed_and_packed(run):
    _, out = run
    with tarfile.open(out / "executed.tar.gz") as tar:
        assert tar.getnames() == ["book/tiny.ipynb"]
        executed = nbformat.reads(tar.extractfile("book/tiny.ipynb").read().decode(), 4)
    assert [c.outputs[0]["data"]["text/plain"] for c in executed.cells] == ["42", "42"]
