"""`make compat TORCH=2.15.0`: run the book under another PyTorch release and report what differs.

The stored outputs come from the torch pinned in requirements.txt; readers run the notebooks with
whatever release they have. This builds a separate environment, .venv-compat-<version>, from
requirements.txt with only the torch pin replaced, runs every chapter there under strict nbval
(the project's sanitize file, as `make test` does), and writes reports/compat-<version>.md:
  - cells that raise unexpectedly: a reader on that release meets a failing cell (must be none);
  - outputs that differ, each with the lines that differ and a first judgement by rule
    (version string, error wording, internals, numerics); read them before trusting that label.
Exit status: 1 if any cell raised unexpectedly or no cell was compared (pytest wrote no report,
or skipped everything), else 0 (differing outputs are expected).

A CUDA build of torch is several GB: this is not part of `make test`. Run it before changing the
pin, and when a new PyTorch release appears. Where pip is configured to cap torch's version,
lift the cap for that one command: PIP_CONFIG_FILE=/dev/null make compat TORCH=2.15.0
"""
from __future__ import annotations

import re
import subprocess
import sys
import venv
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from book import ROOT, notebooks

REPORTS = ROOT / "reports"


def environment(version: str) -> Path:
    """.venv-compat-<version> with requirements.txt installed, torch replaced by `version`."""
    home = ROOT / f".venv-compat-{version}"
    python = home / "bin" / "python"
    ready = home / ".ready"
    requirements = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    wanted = re.sub(r"(?m)^torch==\S+$", f"torch=={version}", requirements)
    if ready.exists() and ready.read_text(encoding="utf-8") == wanted:
        return python
    if not python.exists():
        print(f"creating {home.name} ...", flush=True)
        venv.create(home, with_pip=True)
    pinned = home / "requirements.txt"
    pinned.write_text(wanted, encoding="utf-8")
    print(f"installing requirements.txt with torch=={version} into {home.name} ...", flush=True)
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "-r", pinned], check=True)
    ready.write_text(wanted, encoding="utf-8")
    return python


def run_nbval(python: Path, version: str) -> Path:
    """Strict nbval over every chapter in that environment; returns the JUnit XML file."""
    REPORTS.mkdir(exist_ok=True)
    junit = REPORTS / f"compat-{version}.xml"
    junit.unlink(missing_ok=True)  # a report left by an earlier run must not pass for this one
    chapters = [str(path.relative_to(ROOT)) for path in notebooks()]
    # pyproject.toml's addopts give the same strict nbval settings as `make test`. Its exit status
    # is non-zero whenever an output differs, which is expected here; the report says what ran.
    command = [python, "-m", "pytest", "--color=no", "-q", f"--junitxml={junit}", *chapters]
    subprocess.run(command, cwd=ROOT)
    if not junit.exists():
        raise SystemExit(f"pytest under torch {version} wrote no report: see its output above")
    return junit


def judge(text: str) -> str:
    """A first label for a difference, by rule."""
    if "__version__" in text or re.search(r"'2\.\d+\.\d+", text):
        return "version string"
    if "aten." in text or "aten::" in text:
        return "internals (operators run)"
    if re.search(r"must be a matrix|cannot be multiplied|Expected|expected|Error|error", text):
        return "error wording"
    if re.search(r"\d\.\d", text):
        return "numerics"
    return "other: read it"


def differing_lines(message: str) -> str:
    """What nbval's report shows of a cell: the input's first line and the lines that differ."""
    lines = re.sub(r"(\x1b|#x1B)\[[0-9;]*m", "", message).splitlines()  # colour codes
    code = next((lines[i + 1] for i, line in enumerate(lines) if line.strip() == "Input:"
                 and i + 1 < len(lines)), "")
    changed = [line.strip() for line in lines
               if re.match(r"\s*[-+] ", line) and not line.strip().startswith(("---", "+++"))]
    kept = list(dict.fromkeys(changed))[:12]  # nbval repeats its report; keep each line once
    return "\n".join([f"# {code.strip()}", *kept]) if kept else message[-800:]


def report(junit: Path, version: str, installed: str) -> int:
    unexpected, differ, passed = [], [], 0
    for case in ElementTree.parse(junit).iter("testcase"):
        where = f"{case.get('classname', '')} {case.get('name', '')}".strip()
        failure = case.find("failure")
        if failure is None:
            failure = case.find("error")
        if failure is None:
            if case.find("skipped") is None:  # a skipped cell was not compared
                passed += 1
            continue
        message = failure.text or failure.get("message") or ""
        if "Cell execution caused an exception" in message or failure.tag == "error":
            unexpected.append((where, message[-1500:]))
        else:
            lines = differing_lines(message)
            differ.append((where, judge(lines), lines))
    out = [f"# The book under torch {installed}", "",
           f"Stored outputs: the pinned release. Cells compared: {passed + len(differ)}"
           f" passed or differed, {len(unexpected)} raised unexpectedly.", "",
           f"## Cells that raise unexpectedly: {len(unexpected)}", ""]
    out += [f"### {where}\n\n```\n{message}\n```\n" for where, message in unexpected]
    out += [f"## Outputs that differ: {len(differ)}", ""]
    out += [f"### {where}: {label}\n\n```diff\n{lines}\n```\n" for where, label, lines in differ]
    path = REPORTS / f"compat-{version}.md"
    path.write_text("\n".join(out), encoding="utf-8")
    print(f"{path.relative_to(ROOT)}: {len(unexpected)} unexpected exceptions, "
          f"{len(differ)} differing outputs, {passed} cells the same")
    # No cell compared at all (a collection error, say) is a failure too.
    return 1 if unexpected or passed + len(differ) == 0 else 0


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not re.fullmatch(r"\d+\.\d+\.\d+", argv[0]):
        print("usage: make compat TORCH=2.15.0", file=sys.stderr)
        return 2
    version = argv[0]
    python = environment(version)
    installed = subprocess.run([python, "-c", "import torch; print(torch.__version__)"],
                               capture_output=True, text=True, check=True).stdout.strip()
    return report(run_nbval(python, version), version, installed)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
