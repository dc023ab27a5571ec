"""The website builds from a clean state with zero warnings, and every page in _toc.yml exists."""
import subprocess
import sys
from pathlib import Path

from book import ROOT, toc_entries

JUPYTER_BOOK = Path(sys.executable).parent / "jupyter-book"


def test_clean_build_has_no_warnings(tmp_path):
    # -n: warn about every broken reference; -W: any warning fails; --keep-going: report them all.
    result = subprocess.run(
        [JUPYTER_BOOK, "build", ROOT, "--path-output", tmp_path, "-n", "-W", "--keep-going"],
        capture_output=True, text=True, timeout=600,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-5000:]
    assert "WARNING" not in log, log[-5000:]

    html = tmp_path / "_build" / "html"
    missing = [entry for entry in toc_entries() if not (html / f"{entry}.html").is_file()]
    assert not missing, f"pages in _toc.yml that were not built: {missing}"
