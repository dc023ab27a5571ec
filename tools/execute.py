"""Re-run every chapter notebook top to bottom, in place, so its stored outputs are current.

    make execute                             # every notebook in _toc.yml
    make execute NB=book/01-matmul.ipynb     # one (or: .venv/bin/python tools/execute.py PATH...)
    make execute REFRESH=1                   # also re-record outputs that vary (timings)

The stored notebook is what the website shows and what nbval checks, so this writes it in a
fixed, machine-independent form, and running it twice changes no byte. Outputs that differ on
every run by nature (cells marked `# NBVAL_IGNORE_OUTPUT`, which nbval does not compare: timings)
are kept as stored, unless REFRESH is set or the code changed. Such a cell records, in its
metadata, a hash of the code that produced its stored outputs (SOURCE_KEY): its own and that of
every code cell before it, which it may use. An edit made before the next run is then seen, and
tests/test_notebook_hygiene.py fails until the notebook is run again.
"""
from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import nbformat
import zmq
from kernel_starts import started
from nbclient import NotebookClient
from traitlets.config import Config

from book import ROOT, notebooks

# Metadata kept in the file. Everything else the kernel or an editor adds (the Python version,
# timings, widget state) differs between machines and runs, so it is dropped.
LANGUAGE_INFO = {"name": "python", "pygments_lexer": "ipython3"}
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
# The kernel and this script talk over local TCP sockets. With CurveZMQ keys, which jupyter_client
# provisions when asked and the kernel declares it accepts, that traffic is encrypted and ipykernel
# does not warn that it is plain text. A pyzmq built without CurveZMQ support cannot be asked.
KERNEL_CONFIG = Config({"KernelManager": {
    "transport_encryption": "auto" if zmq.has("curve") else "disabled"}})


def _trim_traceback(output: dict) -> None:
    """Keep the frames of the notebook's own code and the final message of an error.

    Frames inside installed packages name paths on the machine that ran the notebook
    (its virtual environment) and change with every torch release; readers need the
    line of their code that failed and the message, which nbval checks (ename, evalue).
    """
    frames = output["traceback"]
    output["traceback"] = [
        frame for frame in frames[:-1] if "site-packages" not in frame and str(ROOT) not in frame
    ] + frames[-1:]


def normalise(nb: nbformat.NotebookNode) -> None:
    nb.metadata = nbformat.from_dict({"kernelspec": KERNELSPEC, "language_info": LANGUAGE_INFO})
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                _trim_traceback(output)


def varies(cell) -> bool:
    return cell.cell_type == "code" and any(
        line.strip() == "# NBVAL_IGNORE_OUTPUT" for line in cell.source.splitlines())


# The metadata key of a varying cell: the hash of the code its stored outputs came from.
SOURCE_KEY = "executed_source_sha256"


def source_hashes(nb: nbformat.NotebookNode) -> dict[int, str]:
    """For each varying cell, by index: a hash of its code and of all the code before it."""
    digest, hashes = hashlib.sha256(), {}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            digest.update(cell.source.encode("utf-8") + b"\0")
            if varies(cell):
                hashes[index] = digest.hexdigest()
    return hashes


def run_cells(path: Path, nb: nbformat.NotebookNode) -> None:
    client = NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        config=KERNEL_CONFIG,
        resources={"metadata": {"path": str(path.parent)}},
        record_timing=False,
        # A print can reach the notebook as one stream message or as several, depending on when
        # the kernel flushes; merging consecutive ones keeps the stored file the same every run.
        coalesce_streams=True,
    )
    client.execute()


def execute(path: Path, refresh: bool = False) -> None:
    def run() -> tuple[nbformat.NotebookNode, dict]:
        nb = nbformat.read(path, as_version=4)
        hashes = source_hashes(nb)
        # Outputs that vary by nature, by cell: restored after the run, but only where they came
        # from the same code (an edit since the last run, there or above, re-records them).
        kept = {index: cell.outputs for index, cell in enumerate(nb.cells)
                if index in hashes and cell.outputs
                and cell.metadata.get(SOURCE_KEY) == hashes[index]}
        run_cells(path, nb)
        return nb, kept, hashes

    # A kernel that dies at start-up is started again (tools/kernel_starts.py says why).
    nb, kept, hashes = started(run, path.name)
    for index, cell in enumerate(nb.cells):
        cell.metadata.pop(SOURCE_KEY, None)
        if index in hashes:
            if not refresh and index in kept:
                cell.outputs = kept[index]
            cell.metadata[SOURCE_KEY] = hashes[index]
    normalise(nb)
    nbformat.write(nb, path)


def main(argv: list[str]) -> int:
    paths = [Path(arg).resolve() for arg in argv] or notebooks()
    # The kernels inherit this environment. Python orders a set of strings by their hashes, which
    # it seeds afresh in every process unless told; a fixed seed keeps an output that prints such
    # a set (safetensors' shared-memory message, chapter 9) the same every run. nbval, which runs
    # with any seed, compares those outputs through tests/sanitize.cfg.
    os.environ["PYTHONHASHSEED"] = "0"
    refresh = bool(os.environ.get("REFRESH"))
    for path in paths:
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        print(f"executing {shown}", flush=True)
        execute(path, refresh=refresh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
