"""Serve MathJax from the site itself, so that pages render math with no network.

The theme loads MathJax 3 from a CDN by default. A reader offline, behind a firewall, or who
would rather not be tracked by a third party then sees raw LaTeX. This extension points Sphinx's
`mathjax_path` at a copy inside the built site, taken at build time from the MathJax 3 files that
the PyPI package `sphinx-mathjax-offline` (pinned in requirements.txt) installs; nothing of
MathJax is committed to this repository.

Only what the pages need is copied (about 1.8 MB of the package's 24 MB): the combined
`tex-mml-chtml.js` component, the CHTML web fonts it requests, the TeX extensions it loads on
demand (without them, one formula that needs, say, `\\boldsymbol` would leave every formula on the
page unrendered), and the assistive-MathML module its menu loads by default.

The files are written at the end of the build into `_static/mathjax/` of the output, not into a
`_static/` folder of the sources: Jupyter Book adds every .js file found there to every page as
a <script>, which would load all of MathJax's extensions eagerly.
"""
from __future__ import annotations

import shutil
from importlib import metadata
from pathlib import Path

# Paths inside the package's mathjax folder; folders are copied whole.
NEEDED = [
    "tex-mml-chtml.js",
    "output/chtml/fonts/woff-v2",
    "input/tex/extensions",
    "a11y/assistive-mml.js",
]
# Relative to the site's _static/ folder, which is how Sphinx reads a relative mathjax_path.
MATHJAX_PATH = "mathjax/tex-mml-chtml.js"


def mathjax_source() -> Path:
    """The folder holding MathJax 3 inside the installed sphinx-mathjax-offline package."""
    files = metadata.files("sphinx-mathjax-offline") or []
    for file in files:
        if file.name == "tex-mml-chtml.js":
            return Path(file.locate()).parent
    raise RuntimeError("sphinx-mathjax-offline is not installed: run `make book` to set up .venv")


def copy_mathjax(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    source, target = mathjax_source(), Path(app.outdir) / "_static" / "mathjax"
    for relative in NEEDED:
        if (source / relative).is_dir():
            shutil.copytree(source / relative, target / relative, dirs_exist_ok=True)
        else:
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / relative, target / relative)


def use_local_mathjax(app, config) -> None:
    config.mathjax_path = MATHJAX_PATH


def setup(app):
    mathjax_source()  # fail at the start of the build, not at its end, if the package is missing
    app.connect("config-inited", use_local_mathjax)
    app.connect("build-finished", copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
