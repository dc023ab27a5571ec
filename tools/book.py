"""Facts about the book shared by the tools and the tests: where it is, its chapters in order."""
from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
TOC = ROOT / "_toc.yml"


def _toc_files(node: dict) -> list[str]:
    """Every `file:` entry below a node of a jb-book table of contents, in reading order."""
    files = []
    if "file" in node:
        files.append(node["file"])
    for key in ("chapters", "sections", "parts"):
        for child in node.get(key, []):
            files.extend(_toc_files(child))
    return files


def toc_entries() -> list[str]:
    """The `root` and `file` entries of _toc.yml, without suffix, relative to the repository."""
    toc = yaml.safe_load(TOC.read_text(encoding="utf-8"))
    return [toc["root"], *_toc_files(toc)]


def resolve(entry: str) -> Path | None:
    """The source file a toc entry names (.ipynb or .md), or None if there is none."""
    for suffix in (".ipynb", ".md"):
        path = ROOT / (entry + suffix)
        if path.exists():
            return path
    return None


def notebooks() -> list[Path]:
    """The chapter notebooks, in the order of _toc.yml."""
    paths = (resolve(entry) for entry in toc_entries())
    return [path for path in paths if path is not None and path.suffix == ".ipynb"]


def troubleshooting_chapter() -> Path:
    """The troubleshooting chapter: the one notebook of the book whose name says so."""
    found = [path for path in notebooks() if "troubleshooting" in path.name]
    if len(found) != 1:
        raise LookupError(f"expected one troubleshooting chapter, found {found}")
    return found[0]
