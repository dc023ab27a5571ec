"""The GitHub Actions workflow that tests and publishes the book is valid and safe, offline.

check-jsonschema validates it against GitHub's workflow schema (vendored in the package, no
download); zizmor audits it (pinned actions, permissions, template injection, credentials) with
its pedantic persona. Each check is also run on a copy with a planted fault, so a checker that
silently passes everything fails here.
"""
import subprocess
import sys
from pathlib import Path

import pytest

from book import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"
BIN = Path(sys.executable).parent


def schema_check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True, text=True)


def zizmor(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BIN / "zizmor", "--offline", "--persona=pedantic", "--no-progress", str(path)],
        capture_output=True, text=True)


def planted(tmp_path: Path, old: str, new: str) -> Path:
    text = WORKFLOW.read_text(encoding="utf-8")
    assert old in text, f"the workflow no longer contains {old!r}: update this test"
    path = tmp_path / "book.yml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def test_workflow_matches_the_schema():
    result = schema_check(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing():
    result = zizmor(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout + result.stderr


def test_schema_check_catches_a_typo_in_a_key(tmp_path):
    result = schema_check(planted(tmp_path, "    runs-on: ubuntu-24.04\n",
                                  "    runs_on: ubuntu-24.04\n"))
    assert result.returncode != 0
    assert "runs_on" in result.stdout + result.stderr


@pytest.mark.parametrize("old, new, audit", [
    ("    permissions:\n      contents: read  # to check out the repository\n",
     "    permissions: write-all\n", "excessive-permissions"),
    ("        run: make test\n",
     '        run: make test TITLE="${{ github.event.pull_request.title }}"\n',
     "template-injection"),
    ("actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683", "actions/checkout@v4",
     "unpinned-uses"),
])
def test_zizmor_catches_a_planted_fault(tmp_path, old, new, audit):
    result = zizmor(planted(tmp_path, old, new))
    assert result.returncode != 0
    assert audit in result.stdout + result.stderr
