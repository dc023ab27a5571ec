"""Every internal link, anchor and asset reference in the built site resolves.

A crawl of the built HTML files (no browser needed): each href/src that points inside the site
must name an existing file, and each #fragment an element id in that file.
"""
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from website import page_paths


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.refs = set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        for name in ("href", "src"):
            if attrs.get(name):
                self.refs.append(attrs[name])


def parse(path: Path) -> _Collector:
    collector = _Collector()
    collector.feed(path.read_text(encoding="utf-8"))
    return collector


def test_internal_links_and_anchors_resolve(site_html):
    parsed: dict[Path, _Collector] = {}
    broken = []
    for page in page_paths():
        source = site_html / page
        if source not in parsed:
            parsed[source] = parse(source)
        for ref in parsed[source].refs:
            parts = urlsplit(ref)
            if parts.scheme or parts.netloc or ref.startswith(("mailto:", "javascript:")):
                continue  # external: not followed (the page tests forbid loading them)
            target = (source.parent / unquote(parts.path)).resolve() if parts.path else source
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append(f"{page}: {ref} (no such file)")
                continue
            if parts.fragment and target.suffix == ".html":
                if target not in parsed:  # (setdefault would parse it again for every link)
                    parsed[target] = parse(target)
                if unquote(parts.fragment) not in parsed[target].ids:
                    broken.append(f"{page}: {ref} (no such anchor)")
    assert not broken, "\n".join(broken)
