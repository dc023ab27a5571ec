"""Stored notebooks are complete, current-looking and portable.

nbval compares the outputs that are stored; it silently compares nothing for a cell that has
none, and it cannot tell a notebook that was run out of order. These checks close those gaps and
keep machine-specific noise out of the files that the website shows.
"""
import ast
import io
import re

import execute
import nbformat
import pytest
from nbval.plugin import comment_markers

from book import ROOT, notebooks

NOTEBOOKS = notebooks()
IDS = [path.name for path in NOTEBOOKS]

# Tags a code cell may carry. nbval's own tags (nbval-skip, nbval-ignore-output, ...) are not
# here on purpose: each would switch off the comparison for a cell, and a reason must be given
# in a comment instead (see test_ignored_output_says_why).
ALLOWED_TAGS = {"raises-exception", "hide-input", "hide-output", "hide-cell", "remove-input"}
# Statements that produce no output by nature. A cell made only of these may store no output;
# any other cell must show something, so that nbval has something to compare.
QUIET_STATEMENTS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)


def code_cells(nb):
    return [cell for cell in nb.cells if cell.cell_type == "code"]


@pytest.fixture(params=NOTEBOOKS, ids=IDS)
def nb(request):
    return nbformat.read(request.param, as_version=4)


def test_book_has_notebooks():
    assert NOTEBOOKS, "no notebooks found through _toc.yml"


def test_executed_in_order_from_a_fresh_kernel(nb):
    counts = [cell.execution_count for cell in code_cells(nb)]
    assert counts == list(range(1, len(counts) + 1)), (
        f"execution counts {counts}: run the notebook top to bottom (make execute)"
    )


def test_every_cell_that_should_show_something_does(nb):
    silent = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or cell.outputs:
            continue
        body = ast.parse(cell.source).body
        if not body or not all(isinstance(stmt, QUIET_STATEMENTS) for stmt in body):
            silent.append(index)
    assert not silent, (
        f"cells {silent} store no output, so nbval would check nothing there: "
        "end them with a value, a print or an assert whose result is shown"
    )


def test_errors_only_where_expected(nb):
    for index, cell in enumerate(code_cells(nb)):
        expected = "raises-exception" in cell.metadata.get("tags", [])
        raised = any(output.output_type == "error" for output in cell.outputs)
        assert raised == expected, (
            f"code cell {index}: "
            + ("tagged raises-exception but raised nothing" if expected else "stored an error")
        )


def test_no_stderr_in_outputs(nb):
    # A warning printed by torch or numpy would be shown to every reader as red text.
    for index, cell in enumerate(code_cells(nb)):
        streams = [o for o in cell.outputs if o.output_type == "stream" and o.name == "stderr"]
        assert not streams, f"code cell {index} wrote to stderr: {streams[0].text[:200]!r}"


def test_streams_are_merged(nb):
    # Whether a print arrives as one stream message or several depends on kernel timing;
    # tools/execute.py merges them so that re-running a notebook changes no byte.
    for index, cell in enumerate(code_cells(nb)):
        names = [o.name if o.output_type == "stream" else None for o in cell.outputs]
        split = any(a is not None and a == b for a, b in zip(names, names[1:], strict=False))
        assert not split, f"code cell {index} stores a split stream: run make execute"


def test_no_plotting_reprs(nb):
    # A cell ending in ax.set_title(...) shows "Text(0.5, 1.0, ...)" above the figure. A trailing
    # ";" hides it when the notebook is run in Jupyter, but not under nbval, which runs cells with
    # store_history=False (IPython looks for the ";" in the history). End plots with plt.show().
    for index, cell in enumerate(code_cells(nb)):
        for output in cell.outputs:
            text = output.get("data", {}).get("text/plain", "")
            assert not text.startswith(("Text(", "[<matplotlib", "<matplotlib")), (
                f"code cell {index} shows a matplotlib repr {text[:60]!r}: end it with plt.show()"
            )


def test_only_known_tags(nb):
    for index, cell in enumerate(nb.cells):
        unknown = set(cell.metadata.get("tags", [])) - ALLOWED_TAGS
        assert not unknown, f"cell {index} has tags {unknown}; allowed: {sorted(ALLOWED_TAGS)}"


def nbval_marker(line: str) -> str | None:
    """The nbval comment marker a line holds, read as nbval reads it ("##NBVAL_SKIP" too)."""
    text = line.strip()
    marker = text.lstrip("#").strip() if text.startswith("#") else None
    return marker if marker in comment_markers else None


def test_nbval_marker_reading():
    assert nbval_marker("  ##  NBVAL_SKIP") == "NBVAL_SKIP"
    assert nbval_marker("# PYTEST_VALIDATE_IGNORE_OUTPUT") == "PYTEST_VALIDATE_IGNORE_OUTPUT"
    assert nbval_marker("x = 1  # NBVAL_SKIP") is None  # nbval reads whole-line comments only


def test_ignored_output_says_why(nb):
    for index, cell in enumerate(code_cells(nb)):
        lines = cell.source.splitlines()
        for number, line in enumerate(lines):
            marker = nbval_marker(line)
            # The one marker allowed, written as tools/execute.py recognises it (so that it keeps
            # the stored output): any other spelling or marker would pass unnoticed.
            assert marker is None or line.strip() == "# NBVAL_IGNORE_OUTPUT", (
                f"code cell {index}: {line.strip()!r}: the only nbval marker allowed is "
                "'# NBVAL_IGNORE_OUTPUT', on a line of its own")
            if marker:
                reason = lines[number + 1].strip() if number + 1 < len(lines) else ""
                assert reason.startswith("#") and len(reason) > 10, (
                    f"code cell {index}: NBVAL_IGNORE_OUTPUT needs a comment on the next line "
                    "saying why the output varies"
                )
            assert "NBVAL_SKIP" not in line, f"code cell {index}: NBVAL_SKIP hides it from nbval"


def test_figures_have_alt_text(nb):
    for index, cell in enumerate(code_cells(nb)):
        images = [o for o in cell.outputs if "image/png" in o.get("data", {})]
        if images:
            alt = cell.metadata.get("mystnb", {}).get("image", {}).get("alt", "")
            assert len(alt) > 20, f"code cell {index} draws a figure but has no alt text"


def test_fences_start_their_lines(nb):
    # A fence (```) after other text on its line is no fence to MyST: a directive written so, a
    # dropdown say, prints as raw text, and its closing fence opens a code block. The build does
    # not warn about it.
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                assert "```" not in line or line.lstrip().startswith("```"), (
                    f"cell {index}: a fence after other text on its line: {line[:60]!r}")


# CommonMark forbids a backtick in the info string of a backtick fence, so a directive such as
# ```{admonition} The `bmm` case is no fence at all: the page shows it as raw text, with no
# warning from the build. Such a title needs a colon fence, :::{admonition} The `bmm` case.
BACKTICK_DIRECTIVE = re.compile(r"^\s*```+\{[^}]*\}.*`")


def backtick_directives_with_backticks(text):
    return [line for line in text.splitlines() if BACKTICK_DIRECTIVE.match(line)]


def test_backtick_directive_finder():
    assert backtick_directives_with_backticks("```{admonition} The `bmm` case\n:class: dropdown")
    assert backtick_directives_with_backticks("  ````{note} see `x`")
    assert not backtick_directives_with_backticks(":::{admonition} The `bmm` case")
    assert not backtick_directives_with_backticks("```{admonition} The bmm case\n`x` here")
    assert not backtick_directives_with_backticks("```python\nx = `a`")


def test_directive_titles_in_backtick_fences_have_no_backticks(nb):
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            bad = backtick_directives_with_backticks(cell.source)
            assert not bad, f"cell {index}: use a ::: fence for a title with code: {bad[0][:60]!r}"


def test_pages_directive_titles_have_no_backticks():
    for page in sorted((ROOT / "book").glob("*.md")):
        bad = backtick_directives_with_backticks(page.read_text())
        assert not bad, f"{page.name}: use a ::: fence for a title with code: {bad[0][:60]!r}"


def test_kernel_is_python3(nb):
    assert nb.metadata.kernelspec.name == "python3"


def test_no_volatile_or_private_metadata(nb):
    assert set(nb.metadata) <= {"kernelspec", "language_info"}, sorted(nb.metadata)
    assert "version" not in nb.metadata.get("language_info", {}), "language_info.version varies"
    for index, cell in enumerate(nb.cells):
        allowed = {"tags", "mystnb"} | ({execute.SOURCE_KEY} if execute.varies(cell) else set())
        extra = set(cell.metadata) - allowed
        assert not extra, f"cell {index} carries metadata {sorted(extra)} (timing, widgets, ...)"


def test_varying_outputs_come_from_the_code_shown(nb):
    # A cell whose output nbval does not compare (a timing) must still show what the code prints:
    # tools/execute.py records the hash of the code it ran (the cell's and the code above it); an
    # edit since then fails here.
    for index, expected in execute.source_hashes(nb).items():
        assert nb.cells[index].metadata.get(execute.SOURCE_KEY) == expected, (
            f"code cell {index}, or code above it, was edited after its outputs were recorded: "
            "run make execute NB=... (its outputs are kept only while that code is unchanged)")


def test_no_local_paths_in_outputs(nb):
    # Tracebacks and reprs can leak the author's file system; tools/execute.py trims them.
    leaks = (str(ROOT), "site-packages", "/home/", "/root/", "/Users/")
    for index, cell in enumerate(code_cells(nb)):
        text = nbformat.writes(nbformat.from_dict({"outputs": cell.outputs}))
        found = [leak for leak in leaks if leak in text]
        assert not found, f"code cell {index} output contains {found}"


# A tolerance verdict printed as an equality ("equal to ...: True" for an allclose) claims more
# than was checked. The words just before a printed allclose/isclose verdict must say what it is:
# allclose, close, or the tolerance it allowed.
CLOSE_CALL = re.compile(r"\b(allclose|isclose)\(")
EQUALITY_WORDS = re.compile(r"==|\s=\s|\bequal|\bsame\b|identical|\bis\b|\bare\b|match|agree",
                            re.IGNORECASE)
TOLERANCE_WORDS = re.compile(r"close|within|tolerance|atol|rtol", re.IGNORECASE)


def close_verdict_labels(source: str) -> list[str]:
    """For each allclose/isclose verdict a print() shows (computed in the call, or a name whose
    latest assignment above it in the cell computed one), the text printed just before it, back
    to the previous argument (values formatted into an f-string count as text, as "{}")."""
    tree = ast.parse(source)
    assigned = sorted((node.lineno, target.id, bool(CLOSE_CALL.search(
        ast.get_source_segment(source, node.value))))
        for node in ast.walk(tree) if isinstance(node, ast.Assign | ast.AnnAssign)
        and node.value is not None
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name))

    def is_verdict(value, line):
        if isinstance(value, ast.Name):
            latest = [close for lineno, name, close in assigned
                      if name == value.id and lineno < line]
            return bool(latest) and latest[-1]
        return bool(CLOSE_CALL.search(ast.unparse(value)))

    labels = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print"):
            continue
        text = ""
        for arg in node.args:
            for part in arg.values if isinstance(arg, ast.JoinedStr) else [arg]:
                if isinstance(part, ast.Constant) and isinstance(part.value, str):
                    text += part.value
                    continue
                value = part.value if isinstance(part, ast.FormattedValue) else part
                if is_verdict(value, node.lineno):
                    labels.append(text)
                elif isinstance(part, ast.FormattedValue):
                    text += "{}"
                    continue
                text = ""
    return labels


def test_close_verdict_labels():
    assert close_verdict_labels('print("y == x:", torch.allclose(y, x))') == ["y == x:"]
    assert close_verdict_labels('ok = torch.allclose(a, b)\nprint(f"Same: {ok}")') == ["Same: "]
    assert close_verdict_labels('print("same:", torch.equal(a, b))') == []
    assert close_verdict_labels(  # the text before each verdict, not the whole line
        'print("same:", torch.equal(a, b), "| close:", torch.allclose(a, b))') == ["| close:"]
    assert close_verdict_labels(  # the latest assignment decides
        'ok = torch.allclose(a, b)\nok = torch.equal(a, b)\nprint("same:", ok)') == []
    assert close_verdict_labels(  # a subscript is not a name assigned
        'r[k] = torch.allclose(a, b)\nprint("k is", k)') == []
    assert close_verdict_labels(  # values formatted into the label are part of it
        'print(f"x {n} = y:", torch.allclose(x, y))') == ["x {} = y:"]
    assert close_verdict_labels('ok = torch.isclose(a, b).all()\nprint(f"{n}: {ok}")') == [
        "{}: "]


def test_tolerance_verdicts_are_not_called_equality(nb):
    wrong = [(index, label) for index, cell in enumerate(code_cells(nb))
             for label in close_verdict_labels(cell.source)
             if EQUALITY_WORDS.search(label) and not TOLERANCE_WORDS.search(label)]
    assert not wrong, (f"code cells print an allclose verdict as an equality: {wrong}; "
                       "say 'allclose to' (or name the tolerance)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_valid_and_normalised_json(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    buffer = io.StringIO()
    nbformat.write(nb, buffer)
    assert path.read_text(encoding="utf-8") == buffer.getvalue(), (
        "the file is not in nbformat's canonical form: run make execute to rewrite it"
    )


# Exercises: a question, then its solution, hidden with its output until the reader opens it.
# sphinx-exercise's gated directives do this: an {exercise} block, then code cells between
# {solution-start} (with :class: dropdown, a toggle titled "Solution") and {solution-end}.
EXERCISE = re.compile(r"^(?P<fence>`{3,})\{exercise\}(?P<title>[^\n]*)\n:label: (?P<label>\S+)\n")
SOLUTION_START = re.compile(r"^```\{solution-start\} (?P<label>\S+)\n:class: dropdown\n```$")
SOLUTION_END = "```{solution-end}\n```"


def exercise_structure(nb):
    """Problems with the Exercises section of a notebook, and the number of exercises in it."""
    cells = nb.cells
    heading = [i for i, c in enumerate(cells)
               if c.cell_type == "markdown" and re.search(r"(?m)^## Exercises\s*$", c.source)]
    if len(heading) != 1:
        return [f"{len(heading)} '## Exercises' headings (want one)"], 0
    problems, count = [], 0
    exercise = solution = None          # label of the open exercise / of the open solution
    solved, asserted = set(), False
    for index, cell in enumerate(cells):
        source = cell.source.strip()
        if cell.cell_type == "markdown":
            if index > heading[0] and re.search(r"(?m)^#{1,2} ", source):
                problems.append(f"cell {index}: a heading after the exercises")
            match, start = EXERCISE.match(source), SOLUTION_START.match(source)
            if (match or start) and index < heading[0]:
                problems.append(f"cell {index}: exercise or solution before '## Exercises'")
            elif match:
                if exercise and exercise not in solved:
                    problems.append(f"exercise {exercise!r} has no solution")
                exercise, count = match["label"], count + 1
                if "`" in match["title"]:
                    problems.append(f"cell {index}: code in an exercise title breaks its link")
                # A code block inside the question needs a shorter fence than the exercise's,
                # or it closes the exercise early and shows outside the exercise's box.
                fence = len(match["fence"])
                if re.search(rf"(?m)^`{{{fence},}}[^`\s]", source[len(match[0]):]):
                    problems.append(f"cell {index}: a code block in exercise {match['label']!r} "
                                    f"opens with {fence} or more backticks, which end the exercise")
            elif start:
                if start["label"] != exercise:
                    problems.append(f"cell {index}: solution for {start['label']!r} does not "
                                    f"follow its exercise ({exercise!r})")
                solution, asserted = start["label"], False
            elif source == SOLUTION_END:
                if solution is None:
                    problems.append(f"cell {index}: solution-end without solution-start")
                elif not asserted:
                    problems.append(f"solution of {solution!r} checks nothing with an assert")
                solved.add(solution)
                solution = None
            elif "solution-start" in source or "solution-end" in source:
                problems.append(f"cell {index}: malformed solution directive {source[:60]!r}")
        elif index > heading[0]:
            if solution is None:
                problems.append(f"code cell {index} under Exercises lies outside a solution, "
                                "so its code and output are visible under the question")
            if "hide-input" in cell.metadata.get("tags", []):
                problems.append(f"code cell {index}: hide-input hides the code, not the output")
            asserted = asserted or any(isinstance(node, ast.Assert)
                                       for node in ast.walk(ast.parse(cell.source)))
    if solution is not None:
        problems.append(f"solution of {solution!r} is not closed")
    if exercise and exercise not in solved:
        problems.append(f"exercise {exercise!r} has no solution")
    return problems, count


def test_exercise_solutions_are_hidden_and_checked(nb):
    problems, count = exercise_structure(nb)
    assert not problems, problems
    assert 2 <= count <= 4, f"{count} exercises: a chapter ends with 2 to 4"
