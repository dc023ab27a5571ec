"""Shared set-up: make tools/ importable, so the tests read the book the same way the tools do."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
