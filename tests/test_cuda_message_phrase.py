"""The beginning of PyTorch's CUDA device-mismatch message, as chapters 5 and 7 quote it, is real.

Those chapters raise the mismatch on the `meta` device, which any machine has; the CUDA form of
the message comes from another check that only runs with a GPU, which CI lacks. The phrase they
quote is compiled into PyTorch's CPU library (the check lives in code shared by all devices), so
this looks for it there: a release that rewords it fails here, and the prose must follow.
"""
import mmap
from pathlib import Path

import nbformat
import pytest
import torch

from book import BOOK

PHRASE = "Expected all tensors to be on the same device"


def torch_libraries() -> list[Path]:
    lib = Path(torch.__file__).parent / "lib"
    # libtorch_cpu.so on Linux, .dylib on macOS, torch_cpu.dll on Windows.
    return sorted(p for p in lib.glob("*torch_cpu.*") if p.suffix in {".so", ".dylib", ".dll"})


def test_pinned_torch_contains_the_phrase():
    libraries = torch_libraries()
    assert libraries, "PyTorch's CPU library was not found; has its file name changed?"
    for path in libraries:
        with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            if data.find(PHRASE.encode()) >= 0:
                return
    pytest.fail(f"{PHRASE!r} is in none of {[p.name for p in libraries]}")


@pytest.mark.parametrize("chapter", ["05-gpu.ipynb", "07-troubleshooting.ipynb"])
def test_chapters_quote_that_phrase(chapter):
    prose = " ".join(cell.source for cell in nbformat.read(BOOK / chapter, as_version=4).cells
                     if cell.cell_type == "markdown")
    # Markdown wraps lines, so compare with whitespace collapsed.
    assert f"`{PHRASE}`" in " ".join(prose.split())
