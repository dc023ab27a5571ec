"""The table of contents and the book/ folder agree: nothing is built or tested by accident,
and nothing is silently left out of the website and of nbval."""
from book import BOOK, ROOT, resolve, toc_entries


def test_every_toc_entry_exists():
    missing = [entry for entry in toc_entries() if resolve(entry) is None]
    assert not missing, f"_toc.yml names files that do not exist: {missing}"


def test_every_page_under_book_is_in_the_toc():
    listed = {str(resolve(entry).relative_to(ROOT)) for entry in toc_entries() if resolve(entry)}
    pages = {
        str(path.relative_to(ROOT))
        for path in BOOK.rglob("*")
        if path.suffix in {".ipynb", ".md"} and ".ipynb_checkpoints" not in path.parts
    }
    unlisted = sorted(pages - listed)
    assert not unlisted, f"pages under book/ not in _toc.yml (never built or tested): {unlisted}"


def test_no_entry_is_listed_twice():
    entries = toc_entries()
    assert len(entries) == len(set(entries)), f"duplicate entries in _toc.yml: {entries}"
