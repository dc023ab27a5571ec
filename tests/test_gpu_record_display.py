"""Chapters 5 and 9 show book/data/gpu-linear.json correctly once a GPU run has written it.

Until a GPU run is recorded, the stored notebooks (which nbval checks) take the "nothing
recorded" branch, so the code that prints the table, draws the plot and quotes the CUDA message
would otherwise first run on publication day. Here that code runs on a record made by
tools/gpu_bench.py on the CPU, completed with the fields only a GPU run fills in (a peak, the
CUDA message). The record is a test fixture in a temporary folder; nothing of it is published.
"""
import ast
import json

import nbformat
import pytest
from nbclient import NotebookClient

from book import BOOK, troubleshooting_chapter

TROUBLESHOOTING = troubleshooting_chapter().name
# Stands in for the CUDA message; it starts as chapter 5 asserts a real one does.
FIXTURE_MESSAGE = "Expected all tensors to be on the same device (test fixture, not PyTorch's text)"


def uses_the_record(source: str) -> bool:
    """Whether code uses the variables `record` or `record_path` (not merely the word)."""
    names = {node.id for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Name)}
    return bool(names & {"record", "record_path"})


def record_cells(chapter: str) -> list:
    """The chapter's import cell and every code cell that reads or shows the record."""
    cells = [c for c in nbformat.read(BOOK / chapter, as_version=4).cells if c.cell_type == "code"]
    picked = [cells[0]] + [c for c in cells[1:] if uses_the_record(c.source)]
    assert len(picked) > 1, f"{chapter} has no cell that reads the GPU record"
    return picked


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """Run the record cells of chapters 5 and 9 in one kernel beside a fixture record."""
    import gpu_bench  # imports torch: seconds of CPU, spent only in the worker that runs this

    folder = tmp_path_factory.mktemp("book")
    # The CUDA message stands in for the one the run would take from the meta device on the CPU
    # (whose first error imports torch._dynamo: seconds of CPU for a text replaced anyway).
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gpu_bench, "mismatch_message", lambda device: FIXTURE_MESSAGE)
        record = gpu_bench.run(gpu_bench.torch.device("cpu"), batches=(1, 16), sizes=(32,),
                               min_run_time=0.01)
    record["device"] = "Test GPU"
    record["l2_cache_bytes"] = 6 * 2**20  # a GPU with a small L2 cache, 6 MiB
    record["tf32_inputs"] = {"relative_errors": {"first_bits": 6.5e-4, "rounded": 1.1e-5,
                                                 "float32": 2e-8, "tf32": 1.2e-5},
                             "nearest": "rounded",
                             "operands_read_as": {"tf32": {
                                 "x, @": {"read_as": ["rounded"], "kernels": ["k"]},
                                 "W, @": {"read_as": [], "kernels": ["k"]},
                                 "W, F.linear": "failed: RuntimeError: test fixture"}}}
    for row in record["results"]:  # a peak twice the best measured rate of that format
        row["peak_tflops"] = 2 * max(r["tflops"] for r in record["results"]
                                     if r["format"] == row["format"])
        row["fraction_of_peak"] = row["tflops"] / row["peak_tflops"]
    (folder / "data").mkdir()
    (folder / "data" / "gpu-linear.json").write_text(json.dumps(record))

    chapters = {"05-gpu.ipynb": record_cells("05-gpu.ipynb"),
                TROUBLESHOOTING: record_cells(TROUBLESHOOTING)}
    # Fresh cells: the two chapters' cell ids would collide in one notebook.
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c.source)
                                         for cells in chapters.values() for c in cells])
    # allow_errors: a failing cell is stored, and test_no_cell_fails names it and its chapter.
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(folder)}}).execute()
    shown, start = {}, 0
    for chapter, cells in chapters.items():
        shown[chapter] = nb.cells[start:start + len(cells)]
        start += len(cells)
    return shown


def text_of(cells) -> str:
    return "".join(o.get("text", "") for c in cells for o in c.outputs if o.output_type == "stream")


def test_no_cell_fails(outputs):
    for chapter, cells in outputs.items():
        errors = [o for c in cells for o in c.outputs if o.output_type == "error"]
        assert not errors, f"{chapter}: {errors[0].ename}: {errors[0].evalue}"


def test_chapter_5_quotes_the_message_and_prints_the_table(outputs):
    text = text_of(outputs["05-gpu.ipynb"])
    assert FIXTURE_MESSAGE in text
    assert "No GPU" not in text
    assert "TFLOP/s" in text and "of peak" in text
    # One row per format and layer size, each at half the (fixture) peak or less: 50%.
    assert text.count("32x32") == 2 and "50%" in text
    # The weights are also compared with the recorded GPU's cache, however small.
    assert "fit in 6.0 MiB of L2 (Test GPU):\n    1024x1024 float32, 1024x1024 bfloat16\n" in text
    # Which emulation of TF32's inputs the GPU's product was nearest to.
    assert ("TF32 on the data of one sign: relative error 1.2e-05; emulated, first 10 bits "
            "6.5e-04, rounded 1.1e-05: nearest to rounded\n"
            "  operand x, @: read as rounded\n"
            "  operand W, @: read as none of the three cuts\n"
            "  operand W, F.linear: failed: RuntimeError: test fixture\n") in text


def test_chapter_5_draws_the_plot(outputs):
    images = [o for c in outputs["05-gpu.ipynb"] for o in c.outputs
              if "image/png" in o.get("data", {})]
    assert len(images) == 1


def test_chapter_9_quotes_the_message(outputs):
    text = text_of(outputs[TROUBLESHOOTING])
    assert FIXTURE_MESSAGE in text and "No GPU" not in text
