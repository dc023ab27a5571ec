"""The troubleshooting chapter covers every error message the other chapters raise.

The book promises that the troubleshooting chapter has "a section for each kind of error the
chapters raise in a cell of their own". So every error shown by a `raises-exception` cell of
another chapter must also be raised in the troubleshooting chapter, in a section whose heading
carries the message's opening words (what a reader pastes into Ctrl+F or the site's search).
Messages are compared after normalising what varies between examples and releases: numbers, shapes,
dtype and device names, quoted names, and the operator prefix that newer releases put in front
(`mm: `, `addmm: `).

Point it at another folder of notebooks with TROUBLESHOOTING_BOOK=/path (every *.ipynb there,
the chapter whose name contains "troubleshooting" being the one that must cover the others).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest

from book import notebooks

# Messages deliberately not troubleshooting material: (normalised opening, why). Keep it short.
ALLOWED: dict[str, str] = {}

DTYPES = ("BFloat16", "Float8", "ComplexFloat", "ComplexDouble", "Double", "Float", "Half",
          "Long", "Int", "Short", "Char", "Byte", "Bool")
SUBSTITUTIONS = [
    (r"^[a-z_][a-z0-9_.]*: (?=[a-z])", ""),              # 2.15's operator prefix, "mm: "
    (r"torch\.Size\(\[[^\]]*\]\)", "SIZE"),
    (r"\[torch\.(?:cuda\.)?\w+ \[[^\]]*\]\]", "TENSOR"),    # [torch.FloatTensor [4, 2]]
    (r"(?<=size mismatch for )[\w.]+", "PARAM"),          # weight, fc.bias, ...
    (r"(?<=^function )\w+(?= returned)", "FUNCTION"),       # MyLinearBackward
    (r"'(?!NoneType')[^']*'", "'NAME'"),
    (r'"[^"]*"(?:, "[^"]*")*', '"NAME"'),                 # one key or a list of keys
    (r"\b(?:cuda|xpu|mps|meta|cpu|npu)(?::\d+)?\b", "DEVICE"),
    (r"\b(?:{})\b".format("|".join(DTYPES)), "DTYPE"),
    (r"(?:c10::)?\b(?:float|double|BFloat16|Half|long|int)\b", "DTYPE"),
    (r"state_dict for \w+", "state_dict for MODULE"),
    (r"\b\d+(?:x\d+)?\b", "N"),
    (r"\s+", " "),
]


def normalise(line: str) -> str:
    line = line.strip()
    for pattern, replacement in SUBSTITUTIONS:
        line = re.sub(pattern, replacement, line)
    # The first sentence: hints after it change with settings (anomaly mode) and releases.
    return re.split(r"(?<=[^.])\. (?=[A-Z])", line)[0].strip().rstrip(".!")


def messages(evalue: str) -> list[str]:
    """The normalised messages in an error's text: its first line, and the tab-indented lines
    by which load_state_dict lists one message per parameter (other lines are data, such as
    the matrices gradcheck prints). Blank lines before the first are skipped: safetensors' shared
    memory message starts with one."""
    lines = evalue.strip().splitlines()
    return [normalise(line) for line in lines[:1] + [x for x in lines[1:] if x.startswith("\t")]]


def opening(message: str) -> str:
    """The words of a normalised message before its first placeholder: what a heading must hold."""
    placeholders = r"SIZE|TENSOR|'NAME'|\"NAME\"|DEVICE|DTYPE|MODULE|PARAM|FUNCTION|\bN\b"
    words = re.split(placeholders, message)[0]
    return " ".join(words.split()[:8]).rstrip(" :,(")


def chapters(folder: Path | None = None) -> tuple[Path, list[Path]]:
    """The troubleshooting chapter and the other chapters."""
    paths = sorted(folder.glob("*.ipynb")) if folder else notebooks()
    trouble = [p for p in paths if "troubleshooting" in p.name]
    assert len(trouble) == 1, f"expected one troubleshooting notebook among {paths}"
    return trouble[0], [p for p in paths if p != trouble[0]]


def raised(path: Path) -> list[tuple[str, str, str]]:
    """(heading of the section, ename, evalue) for each error stored in a raises-exception cell."""
    found, heading = [], ""
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if re.match(r"#{2,3} ", line):
                    heading = line
        elif "raises-exception" in cell.metadata.get("tags", []):
            found += [(heading, o.ename, o.evalue) for o in cell.outputs
                      if o.output_type == "error"]
    return found


def uncovered(folder: Path | None = None) -> list[str]:
    """Each message raised in another chapter that the troubleshooting chapter lacks, explained."""
    trouble, others = chapters(folder)
    covered: dict[tuple[str, str], list[str]] = {}
    for heading, ename, evalue in raised(trouble):
        if heading.startswith("## ") and heading[3:].strip() in {"Summary", "Exercises"}:
            continue
        for message in messages(evalue):
            covered.setdefault((ename, message), []).append(
                heading.replace("`", "").replace("\\", ""))
    problems = []
    for path in others:
        for _, ename, evalue in raised(path):
            for message in messages(evalue):
                if any(message.startswith(allowed) for allowed in ALLOWED):
                    continue
                where = f"{path.name}: {ename}: {message!r}"
                if (ename, message) not in covered:
                    problems.append(f"{where} is raised in no section of {trouble.name}")
                elif not any(opening(message) in " ".join(h.split())
                             for h in covered[(ename, message)]):
                    problems.append(f"{where}: no heading in {trouble.name} holds its opening "
                                    f"words {opening(message)!r}")
    return problems


def test_normalise_strips_what_varies():
    assert normalise("mm: mat1 and mat2 shapes cannot be multiplied (10x4 and 2x4)") == \
        normalise("mat1 and mat2 shapes cannot be multiplied (640x5 and 400x10)")
    assert normalise("mat1 and mat2 must have the same dtype, but got Long and Float") == \
        normalise("mat1 and mat2 must have the same dtype, but got Float and BFloat16")
    assert normalise("can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() to") == \
        normalise("can't convert meta device type tensor to numpy. Use x")
    assert normalise("size mismatch for weight: copying") != normalise("size mismatch for bias: x")
    assert opening(normalise("mm: self must be a matrix")) == "self must be a matrix"


def test_messages_skip_leading_blank_lines():
    """safetensors' shared-memory message starts with a newline and indentation."""
    text = "\n            Some tensors share memory, this will lead to duplicate memory.\n  More"
    assert messages(text)[0].startswith("Some tensors share memory")
    assert opening(messages(text)[0]) == "Some tensors share memory, this will lead to"


def test_every_message_of_the_book_has_a_section():
    folder = os.environ.get("TROUBLESHOOTING_BOOK")
    problems = uncovered(Path(folder) if folder else None)
    assert not problems, "\n".join(problems)
    # and the check saw the messages: 43 when last counted (none would pass the loop above)
    _, others = chapters(Path(folder) if folder else None)
    compared = sum(len(messages(evalue)) for path in others for _, _, evalue in raised(path))
    assert compared >= 20, f"only {compared} messages raised in the other chapters were read"


def test_a_planted_message_is_caught(tmp_path):
    """The check fails when another chapter raises a message the troubleshooting chapter lacks."""
    trouble, others = chapters()
    for path in (trouble, others[0]):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    nb = nbformat.read(tmp_path / others[0].name, as_version=4)
    planted = nbformat.v4.new_code_cell("torch.stack([torch.zeros(2), torch.zeros(3)])",
                                        metadata={"tags": ["raises-exception"]})
    planted.outputs = [nbformat.v4.new_output(
        "error", ename="RuntimeError",
        evalue="stack expects each tensor to be equal size, but got [2] at entry 0 and [3] at "
               "entry 1", traceback=[])]
    nb.cells.append(planted)
    nbformat.write(nb, tmp_path / others[0].name)
    problems = uncovered(tmp_path)
    assert any("stack expects each tensor to be equal size" in p for p in problems), problems


@pytest.mark.parametrize("path", chapters()[1], ids=lambda p: p.stem)
def test_chapter_messages_are_covered(path, tmp_path):
    """The same check, one chapter at a time, so a failure names the chapter."""
    trouble, _ = chapters()
    for p in (trouble, path):
        (tmp_path / p.name).write_bytes(p.read_bytes())
    problems = uncovered(tmp_path)
    assert not problems, "\n".join(problems)
