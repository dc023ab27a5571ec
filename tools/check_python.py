"""Stop early, with one clear line, when the Python that builds .venv is too old.

Run by the Makefile with the *system* Python before any venv exists, so it must itself run on
old Pythons: no f-strings, no imports beyond sys, and %-formatting (hence the noqa).
"""
import sys

# The oldest Python every pin in requirements.txt installs on: numpy 2.4, matplotlib 3.11 and
# ipython 9.18 declare Requires-Python >=3.11 (torch 2.13 itself takes 3.10).
MINIMUM = (3, 11)

if sys.version_info[:2] < MINIMUM:
    found = (sys.version_info[0], sys.version_info[1], sys.executable)
    sys.stderr.write(
        "error: Python %d.%d found at %s, but the book needs Python 3.11 or newer. "  # noqa: UP031
        "Run: make PYTHON=/path/to/python3.11\n" % found
    )
    sys.exit(1)
