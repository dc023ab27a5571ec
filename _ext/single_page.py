"""Let the single-page build (`make pdf`) render every node the website's pages render.

Sphinx finds a node's HTML visitor under the builder's name and falls back to its format
("html") only when nothing at all is registered under that name. sphinx-exercise registers its
nodes for "singlehtml" by name, so the single-page builder then finds none of the visitors the
other extensions registered for "html" (myst-nb's code cells, sphinx-togglebutton's toggles,
sphinx-design's containers) and stops with "unknown node type: HideCodeCellNode". This copies
every "html" visitor to the builder's own table, where that table has none for the node.
"""
from __future__ import annotations


def share_html_visitors(app) -> None:
    handlers = app.registry.translation_handlers
    name = app.builder.name
    if app.builder.format != "html" or name == "html" or name not in handlers:
        return
    for node, visitors in handlers.get("html", {}).items():
        handlers[name].setdefault(node, visitors)


def setup(app):
    app.connect("builder-inited", share_html_visitors)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
