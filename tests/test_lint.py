"""Code in the notebooks, tools and tests is clean (ruff), and the prose is spelled right."""
import subprocess
import sys
from pathlib import Path

from book import ROOT

BIN = Path(sys.executable).parent


def run(*command):
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff():
    # ruff reads .ipynb itself (pyproject.toml: extend-include), cell by cell.
    result = run(BIN / "ruff", "check", "--no-cache", "book", "tools", "tests", "_ext",
                 "conftest.py")
    assert result.returncode == 0, result.stdout + result.stderr


def test_codespell():
    files = ("book", "tools", "tests", "_ext", "_templates", "_static", "README.md",
             "_config.yml", "_toc.yml", "conftest.py", "Makefile", "pyproject.toml",
             "requirements.txt", "package.json")
    # The ignored strings and skipped files are in pyproject.toml ([tool.codespell]).
    result = run(BIN / "codespell", *files)
    assert result.returncode == 0, result.stdout + result.stderr
    # CI's own files live in hidden folders, which codespell passes over unless told.
    result = run(BIN / "codespell", "--check-hidden", ".github", ".ci")
    assert result.returncode == 0, result.stdout + result.stderr
