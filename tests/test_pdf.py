"""The whole book as one PDF (tools/pdf.py), read back from the PDF itself. `make pdf` runs
these tests to make _build/pdf/book.pdf (BOOK_PDF names it), so the file it leaves is the one
checked; `make test` leaves them out (they take about a minute).

The single-page build goes to the repository's _build/ under `make pdf` (beside `make book`'s,
whose parsed pages it reuses), else to a temporary folder. The PDF is read with PDFium: its
text, where each run of text ends, its images and its bookmarks. The checks:
- a title page, then the contents, listing every chapter in the order of _toc.yml with the page
  it starts on, and each chapter's title at the top of that page; the bookmarks in the same order,
  each reading exactly as its heading;
- each exercise says on which page its solution is, and the solution is there; and back;
- every figure the notebooks hold is in it;
- no raw TeX: every formula was typeset;
- no line of code or output cut at the page edge: every line of every code cell and of every
  text output is in the PDF's text, and no text runs past the right margin;
- a page count in the stated range.
"""
import os
import re
import unicodedata
from pathlib import Path

import nbformat
import pdf as book_pdf
import pypdfium2
import pypdfium2.raw as pdfium_c
import pytest

from book import ROOT, notebooks, resolve, toc_entries

# 442 pages at the last count; the range (about 10% either way) allows for growth, and catches a
# book cut short (a chapter missing) or one blown up (code no longer wrapping, one character per
# line). Update it with the count when the book grows.
PAGES = range(400, 490)
# The right margin of tools/pdf.css (15 mm), in points; text may end at it, not past it.
RIGHT_MARGIN = 15 / 25.4 * 72


pytestmark = pytest.mark.pdf


@pytest.fixture(scope="module")
def printed(browser, tmp_path_factory):
    if os.environ.get("BOOK_PDF"):
        target, build = Path(os.environ["BOOK_PDF"]), ROOT
    else:
        target, build = tmp_path_factory.mktemp("pdf") / "book.pdf", tmp_path_factory.mktemp("site")
    page_path = book_pdf.build_single_page(build)
    facts = book_pdf.print_book(page_path, target, browser)
    document = pypdfium2.PdfDocument(target)
    pages = []
    for page in document:
        text = page.get_textpage()
        width, _ = page.get_size()
        right = max((text.get_rect(i)[2] for i in range(text.count_rects())), default=0)
        images = len(list(page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=5)))
        pages.append({"text": unicodedata.normalize("NFKC", text.get_text_range()),
                      "width": width, "right": right, "images": images})
    toc = list(document.get_toc(max_depth=4))
    bookmarks = [(item.level, squash(item.get_title()), item.get_dest().get_index() + 1)
                 for item in toc]
    yield {**facts, "pages": pages, "bookmarks": bookmarks, "numbers": facts["pages"],
           "bookmark_titles": [" ".join(item.get_title().split()) for item in toc]}
    document.close()


def squash(text: str) -> str:
    """Text without whitespace: wrapping and PDF text extraction move only whitespace."""
    # PDFium reads a hyphen that ends a line as U+FFFE (a soft hyphen); on paper it is a hyphen.
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).replace("\ufffe", "-")


def chapter_titles() -> list[str]:
    """Each chapter's title as the sidebar numbers it, from the first heading of its source."""
    titles = []
    for number, entry in enumerate(toc_entries()[1:], start=1):
        path = resolve(entry)
        if path.suffix == ".ipynb":
            source = nbformat.read(path, as_version=4).cells[0].source
        else:
            source = path.read_text(encoding="utf-8")
        heading = re.search(r"(?m)^# (.+)$", source)[1]
        titles.append(f"{number}. " + heading.replace("`", ""))
    return titles


def test_title_page_then_contents(printed):
    first, second = printed["pages"][0]["text"], printed["pages"][1]["text"]
    assert "nn.Linear, exactly" in first and "PyTorch" in first
    assert second.split()[0] == "Contents"


def test_contents_list_every_chapter_in_order_with_its_page(printed):
    contents = squash(printed["pages"][1]["text"])
    expected = ["Introduction", *chapter_titles(), "Solutions to the exercises"]
    shown = [entry["title"] for entry in printed["entries"]]
    assert shown == expected
    position = 0
    for entry in printed["entries"]:
        number = printed["numbers"][entry["id"]]
        line = squash(entry["title"]) + str(number)
        found = contents.find(line, position)
        assert found >= 0, f"contents lack {line!r} after position {position}"
        position = found + len(line)
        top = squash(printed["pages"][number - 1]["text"])[:200]
        assert top.startswith(squash(entry["title"])), (entry["title"], number, top[:80])


def test_bookmarks_follow_the_chapters(printed):
    top = [(title, page) for level, title, page in printed["bookmarks"] if level == 1]
    expected = [(squash(entry["title"]), printed["numbers"][entry["id"]])
                for entry in printed["entries"]]
    assert [mark for mark in top if mark[0] != "Contents"] == expected


def test_bookmarks_read_as_their_headings(printed):
    # Chromium builds a bookmark from the heading's laid-out text: it once dropped the space where
    # a heading wraps, and doubled the text of a heading at the top of a page (tools/pdf.js).
    assert printed["bookmark_titles"] == printed["headings"]


def test_each_exercise_points_to_its_solution(printed):
    text = "\n".join(page["text"] for page in printed["pages"])
    exercises = re.findall(r"Exercise (\d+\.\d+)", text)
    assert printed["solutions"] == len(set(exercises)) >= 2 * len(notebooks())
    for index in range(1, printed["solutions"] + 1):
        number = printed["numbers"][f"pdf-solution-{index}"]
        assert "Solution to Exercise" in printed["pages"][number - 1]["text"]
    # Each exercise names the page of its own solution, in order...
    pointers = [int(page) for page in re.findall(r"Solution: page (\d+)", text)]
    assert pointers == [printed["numbers"][f"pdf-solution-{index}"]
                        for index in range(1, printed["solutions"] + 1)]
    # ...and each solution the page where its exercise is.
    in_order = list(dict.fromkeys(exercises))
    back = [int(page) for page in re.findall(r"The exercise: page (\d+)", text)]
    assert len(back) == printed["solutions"] == len(in_order)
    for exercise, number in zip(in_order, back, strict=True):
        assert f"Exercise {exercise}" in printed["pages"][number - 1]["text"], (exercise, number)


def test_every_figure_is_printed(printed):
    figures = sum("image/png" in output.get("data", {})
                  for path in notebooks()
                  for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"
                  for output in cell.outputs)
    assert figures > 0
    assert printed["images"] == figures
    assert sum(page["images"] for page in printed["pages"]) == figures


def test_no_raw_tex(printed):
    text = "".join(page["text"] for page in printed["pages"])
    for delimiter in ("\\(", "\\[", "$$"):
        assert delimiter not in text
    # Every TeX command the chapters' formulas use, which would show if MathJax had not run.
    commands = set()
    for path in [resolve(entry) for entry in toc_entries()]:
        raw = path.read_text(encoding="utf-8")
        sources = ([cell.source for cell in nbformat.reads(raw, as_version=4).cells
                    if cell.cell_type == "markdown"] if path.suffix == ".ipynb" else [raw])
        for source in sources:
            for formula in re.findall(r"\$\$(.+?)\$\$|\$(.+?)\$", source, flags=re.S):
                commands.update(re.findall(r"\\[A-Za-z]+", "".join(formula)))
    assert len(commands) > 5, commands
    shown = sorted(command for command in commands if command + " " in text
                   or command + "{" in text or command + "_" in text)
    assert shown == [], f"TeX left in the text: {shown}"


def printed_lines(cell) -> list[str]:
    """The lines a code cell shows on the page: its code, and the text of its outputs."""
    lines = cell.source.splitlines()
    for output in cell.outputs:
        if output.output_type == "stream":
            lines += output.text.splitlines()
        elif output.output_type == "execute_result" and "image/png" not in output.data:
            lines += output.data.get("text/plain", "").splitlines()
        elif output.output_type == "error":
            lines += re.sub(r"\x1b\[[0-9;]*m", "", output.traceback[-1]).splitlines()
    return [line for line in lines if line.strip()]


def test_no_code_or_output_is_cut_at_the_page_edge(printed):
    text = squash("".join(page["text"] for page in printed["pages"]))
    missing = []
    # Each line is looked for after the one before it, in the book's order: a short or repeated
    # line ("try:", "else:") must be found in its own place, not anywhere in the book. The
    # exercises' solutions are printed at the back of the book (tools/pdf.js), after chapter 9.
    chapters, solutions = [], []
    for path in notebooks():
        inside = False
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "markdown":  # after it: whichever of the two comes last
                starts, ends = (cell.source.rfind(f"{{solution-{edge}}}")
                                for edge in ("start", "end"))
                inside = starts > ends if max(starts, ends) >= 0 else inside
            elif cell.cell_type == "code":
                (solutions if inside else chapters).append((path, cell))
    assert chapters and solutions
    at = 0
    for path, cell in chapters + solutions:
        for line in printed_lines(cell):
            found = text.find(squash(line), at)
            if found < 0:
                missing.append(f"{path.name}: {line.strip()[:90]}")
            else:
                at = found + len(squash(line))
    assert missing == [], f"{len(missing)} lines missing, first:\n" + "\n".join(missing[:10])
    for number, page in enumerate(printed["pages"], start=1):
        assert page["right"] <= page["width"] - RIGHT_MARGIN + 1, (
            f"page {number}: text reaches {page['right']:.0f} pt of {page['width']:.0f}")


def test_page_count(printed):
    assert len(printed["pages"]) in PAGES, len(printed["pages"])


def test_page_loaded_cleanly(printed):
    assert printed["errors"] == [] and printed["foreign"] == []


