"""The CUDA messages chapters 5 and 9 quote are real: their templates are in the pinned PyTorch.
So is the qnnpack warning that chapter 8 quotes.

Those chapters raise a device mismatch, and a device tensor passed to NumPy, on the `meta` device,
which any machine has; the CUDA forms of these messages only appear with a GPU, which CI lacks.
Their templates are compiled into PyTorch's libraries (the checks live in code shared by all
devices), so this looks for each template's fixed parts there: a release that rewords one fails
here, and the prose must follow. It also checks that every CUDA wording chapter 9 quotes is an
instance of one of these templates, so a quotation cannot drift from the library.
"""
import importlib.util
import mmap
import re
from pathlib import Path

import nbformat
import pytest

from book import BOOK, troubleshooting_chapter

PHRASE = "Expected all tensors to be on the same device"

# Each template: its fixed parts, in order, and the pattern a filled-in message matches.
TEMPLATES = {
    "found two devices": (
        ["Expected all tensors to be on the same device, but found at least two devices, "],
        r"Expected all tensors to be on the same device, but found at least two devices, "
        r"\S+ and \S+!",
    ),
    "argument on another device": (
        ["Expected all tensors to be on the same device, but got ",
         ", different from other tensors on ", " (when checking argument in method "],
        r"Expected all tensors to be on the same device, but got \w+ is on \S+, different from "
        r"other tensors on \S+ \(when checking argument in method \w+\)",
    ),
    "device tensor to numpy": (
        ["can't convert ", " device type tensor to numpy. Use Tensor.cpu() to ",
         "copy the tensor to host memory first."],
        r"can't convert \S+ device type tensor to numpy\. Use Tensor\.cpu\(\) to copy the tensor "
        r"to host memory first\.",
    ),
}


def torch_libraries() -> list[Path]:
    # Found without importing torch (seconds of CPU in every test worker).
    lib = Path(importlib.util.find_spec("torch").origin).parent / "lib"
    # libtorch_cpu.so / libtorch_python.so on Linux, .dylib on macOS, .dll on Windows. ATen's
    # messages are in the CPU library; the NumPy bridge's are in the Python bindings.
    return sorted(p for p in lib.glob("*torch_*") if p.suffix in {".so", ".dylib", ".dll"}
                  and p.stem.endswith(("torch_cpu", "torch_python")))


def in_libraries(text: str) -> bool:
    for path in torch_libraries():
        with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            if data.find(text.encode()) >= 0:
                return True
    return False


def prose(chapter: str) -> str:
    """The chapter's markdown, whitespace collapsed (Markdown wraps lines): with the titles and
    text of its admonitions and notes (folded ones are prose too), without its other fenced blocks
    (such as index directives), whose backticks are not quotations."""
    text = " ".join(cell.source for cell in nbformat.read(BOOK / chapter, as_version=4).cells
                    if cell.cell_type == "markdown")
    text = re.sub(r"```\{(?:admonition|note|tip|warning|important|seealso)\}([^\n]*)\n"
                  r"(?::[^\n]*\n)*(.*?)```", r" \1 \2 ", text, flags=re.DOTALL)
    text = re.sub(r"```.*?```", " ", text, flags=re.DOTALL)
    return " ".join(text.replace(">", " ").split())   # quotations are block quotes too


def code_spans(text: str) -> list[str]:
    """The inline code spans of Markdown text: `...`, and ``...`` for code holding a backtick."""
    return [double or single for double, single in re.findall(r"``(.+?)``|`([^`]+)`", text)]


def test_pinned_torch_contains_the_phrase():
    assert torch_libraries(), "PyTorch's libraries were not found; have their names changed?"
    assert in_libraries(PHRASE), f"{PHRASE!r} is in none of {torch_libraries()}"


@pytest.mark.parametrize("name", TEMPLATES)
def test_pinned_torch_contains_each_template(name):
    missing = [part for part in TEMPLATES[name][0] if not in_libraries(part)]
    assert not missing, f"{name}: not in the pinned PyTorch: {missing}"


@pytest.mark.parametrize("chapter", ["05-gpu.ipynb", troubleshooting_chapter().name])
def test_chapters_quote_that_phrase(chapter):
    assert f"`{PHRASE}`" in prose(chapter)


@pytest.mark.parametrize("name", TEMPLATES)
def test_troubleshooting_quotes_the_cuda_wording(name):
    """Chapter 9 quotes each message as a CUDA user sees it, and the quotation fits the template."""
    spans = code_spans(prose(troubleshooting_chapter().name))
    quoted = [s for s in spans if re.fullmatch(TEMPLATES[name][1], s) and "cuda" in s]
    assert quoted, f"chapter 9 quotes no CUDA wording of {name!r} that matches its template"


def test_code_spans_read_double_backticks():
    assert code_spans("a `b` and ``c `-` d`` then `e`") == ["b", "c `-` d", "e"]


def test_every_quoted_wording_fits_a_template():
    """Every quotation that starts like one of these messages is an instance of its template,
    or the beginning of a complete instance quoted elsewhere in the chapter (tables quote only
    beginnings): a quotation whose ending drifted from the library fails either way."""
    spans = code_spans(prose(troubleshooting_chapter().name))
    for name, (parts, pattern) in TEMPLATES.items():
        started = [span for span in spans if span.startswith(parts[0])]
        complete = [span for span in started if re.fullmatch(pattern, span)]
        assert complete, f"chapter 9 quotes no complete instance of {name!r}"
        for span in started:
            assert span in complete or any(whole.startswith(span) for whole in complete), (
                f"{span!r} does not fit {name!r} and begins no complete quotation of it")


def test_quoted_qnnpack_warning_is_in_the_pinned_torch():
    """Chapter 8 quotes qnnpack's warning from its C++ source; the warning only prints where
    qnnpack runs a dynamic linear layer, so the quotation is checked against the library."""
    quote = "incorrectly ignores reduce_range"
    assert f'"{quote}"' in prose("08-modern-models.ipynb")
    assert in_libraries(f"qnnpack {quote}"), f"{quote!r} is in none of {torch_libraries()}"
