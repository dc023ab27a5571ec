"""Give the "Show code cell source" toggles an accessible name that matches what they show.

myst-nb renders a cell tagged hide-input as <details><summary aria-label="Toggle hidden
content">, while the summary shows "Show code cell source". axe reports that as
label-content-name-mismatch (WCAG 2.5.3, serious): a speech-input user who says the words on the
screen cannot activate the control. This replaces myst-nb's HTML visitor for that node with the
same markup minus the aria-label, so the name is the visible text.
"""
from __future__ import annotations

from html import escape

from myst_nb.sphinx_ import HideCodeCellNode, depart_HideCellInput


def visit_hide_cell_input(self, node) -> None:
    classes = " ".join(node["classes"])
    self.body.append(f'<details class="admonition hide {classes}">\n')
    self.body.append("<summary>\n")
    self.body.append(f'<p class="collapsed admonition-title">{escape(node["prompt_show"])}</p>\n')
    self.body.append(f'<p class="expanded admonition-title">{escape(node["prompt_hide"])}</p>\n')
    self.body.append("</summary>\n")


def setup(app):
    app.setup_extension("myst_nb")  # register after myst-nb, so that this visitor wins
    app.add_node(HideCodeCellNode, override=True,
                 html=(visit_hide_cell_input, depart_HideCellInput))
    return {"parallel_read_safe": True, "parallel_write_safe": True}
