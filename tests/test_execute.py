"""tools/execute.py starts another kernel when one dies at start-up, and only then; it writes the
same bytes when run twice, keeps a varying output only while its code is unchanged, and gives the
kernels a fixed hash seed.

Kernels started at the same moment can be handed the same TCP port; the later one dies before
any cell runs. The kernel is replaced here by a stand-in that fails as a real start-up does.
"""
import os
import subprocess
import sys

import execute
import nbformat
import pytest
from kernel_starts import KERNEL_STARTS

DIED = RuntimeError("Kernel died before replying to kernel_info")


@pytest.fixture
def notebook(tmp_path):
    path = tmp_path / "chapter.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")]), path)
    return path


def fake_kernel(monkeypatch, failures):
    """Replace the kernel: raise each of `failures` in turn, then run the cell."""
    starts = []

    def run_cells(path, nb):
        starts.append(path)
        if failures:
            raise failures.pop(0)
        cell = nb.cells[0]
        cell.execution_count = 1
        cell.outputs = [nbformat.v4.new_output(
            "execute_result", {"text/plain": "2"}, execution_count=1)]

    monkeypatch.setattr(execute, "run_cells", run_cells)
    return starts


def test_a_kernel_that_dies_at_start_up_is_started_again(monkeypatch, notebook):
    starts = fake_kernel(monkeypatch, [DIED])
    execute.execute(notebook)
    assert len(starts) == 2
    cell = nbformat.read(notebook, as_version=4).cells[0]
    assert cell.outputs[0]["data"]["text/plain"] == "2"


def test_other_failures_are_not_retried(monkeypatch, notebook):
    before = notebook.read_bytes()
    starts = fake_kernel(monkeypatch, [RuntimeError("a cell failed"), DIED])
    with pytest.raises(RuntimeError, match="a cell failed"):
        execute.execute(notebook)
    assert len(starts) == 1 and notebook.read_bytes() == before


def test_starts_are_bounded(monkeypatch, notebook):
    starts = fake_kernel(monkeypatch, [DIED] * KERNEL_STARTS)
    with pytest.raises(RuntimeError, match="before replying"):
        execute.execute(notebook)
    assert len(starts) == KERNEL_STARTS


def test_executing_twice_changes_no_byte(tmp_path):
    """A real kernel: a print that reaches the notebook in pieces, and a timing kept as stored."""
    path = tmp_path / "chapter.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(
            "import time\nprint('one', flush=True)\ntime.sleep(0.2)\nprint('two')"),
        nbformat.v4.new_code_cell(
            "# NBVAL_IGNORE_OUTPUT\n# A time: it differs on every run.\ntime.perf_counter()"),
        nbformat.v4.new_code_cell("6 * 7"),
    ]), path)
    execute.execute(path)
    first = path.read_bytes()
    execute.execute(path)
    assert path.read_bytes() == first
    cells = nbformat.read(path, as_version=4).cells
    assert [output["text"] for output in cells[0].outputs] == ["one\ntwo\n"]  # one stream
    assert cells[2].outputs[0]["data"]["text/plain"] == "42"


def test_a_varying_output_is_recorded_again_after_its_code_changed(tmp_path):
    """A timing kept as stored belongs to the code that made it, its own and the code above it:
    edit either, and it is recorded again; edit neither, and it is kept."""
    path = tmp_path / "chapter.ipynb"
    ignored = "# NBVAL_IGNORE_OUTPUT\n# A time: it differs on every run.\n"
    nbformat.write(nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import time"),
        nbformat.v4.new_code_cell("word = 'before'"),
        nbformat.v4.new_code_cell(ignored + "print(word, time.perf_counter_ns())")]), path)

    def shown():
        nb = nbformat.read(path, as_version=4)
        cell = nb.cells[2]
        assert cell.metadata[execute.SOURCE_KEY] == execute.source_hashes(nb)[2]
        return cell.outputs[0]["text"]

    execute.execute(path)
    first = shown()
    execute.execute(path)
    assert shown() == first                                     # unchanged code: kept
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].source = "word = 'after'"                       # the code above, edited
    nbformat.write(nb, path)
    execute.execute(path)
    assert shown().startswith("after ")
    nb = nbformat.read(path, as_version=4)
    nb.cells[2].source = nb.cells[2].source.replace("print(word", "print('own'")  # its own code
    nbformat.write(nb, path)
    execute.execute(path)
    assert shown().startswith("own ")


def test_main_fixes_the_hash_seed(tmp_path, monkeypatch):
    """A printed set of strings comes out in one order: main() gives the kernels seed 0."""
    monkeypatch.setenv("PYTHONHASHSEED", "random")      # as a reader's shell may have it
    words = [f"word{i}" for i in range(12)]
    code = f"print(set({words!r}))"
    path = tmp_path / "chapter.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)]), path)
    seeded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "PYTHONHASHSEED": "0"}, check=True).stdout
    for _ in range(2):
        assert execute.main([str(path)]) == 0
        cell = nbformat.read(path, as_version=4).cells[0]
        assert [output["text"] for output in cell.outputs] == [seeded]
