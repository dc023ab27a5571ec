"""What the GPU run imports beyond the standard library: the notebooks' imports and the runner's.

    python tools/notebook_imports.py modules NOTEBOOK...       # import names, one a line
    python tools/notebook_imports.py requirements NOTEBOOK...  # name==version, as installed here
    python tools/notebook_imports.py check NOTEBOOK...         # import each; which can run

tools/gpu_wheels.sh bundles `requirements` (run in .venv, so the versions are .venv's pins) as
wheels; tools/gpu_check.sh runs `check` on the machine with an NVIDIA GPU before it runs a single
notebook, so a missing package is named at once instead of failing a chapter half-way, and the
notebooks that do not need it still run.
The list comes from the code cells themselves (parsed with ast), so a chapter that starts
importing a new package is bundled without anyone keeping a list by hand.

`modules` and `check` use the standard library only: they run before anything is installed.
"""
from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parent

# What runs the notebooks, beyond the notebooks' own imports: pytest with the nbval plugin
# (tools/gpu_check.sh), pytest-xdist when notebooks run in parallel, the kernel each notebook runs
# in, and what tools/execute.py and the tools/book.py it reads the chapters with import (found by
# parsing them, like the notebooks).
RUNNER = ("pytest", "nbval", "xdist", "ipykernel")
RUNNER_SCRIPTS = ("execute.py", "book.py")
# Brought by the machine with the GPU, never bundled: PyTorch is built for its CUDA there. Every
# module of that distribution is left out with it (torchgen, which chapter 2 reads the operator
# table from, and functorch ship inside the torch wheel).
PROVIDED = ("torch",)


def _top_level_imports(source: str) -> set[str]:
    """The top-level package of every absolute import in Python source."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _magic_or_shell(line: str) -> bool:
    """An IPython magic (%) or shell line (!); a line continuing an expression with "!=" is not."""
    start = line.lstrip()
    return start.startswith(("%", "!")) and not start.startswith("!=")


def notebook_imports(path: Path) -> set[str]:
    """The packages a notebook's code cells import (IPython magics and shell lines skipped)."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    names = set()
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = cell["source"]
        source = "".join(source) if isinstance(source, list) else source
        lines = [line for line in source.splitlines() if not _magic_or_shell(line)]
        names |= _top_level_imports("\n".join(lines))
    return names


def modules(notebooks: list[Path], parallel: bool = True) -> list[str]:
    """Every non-standard-library module the run imports, torch included, sorted."""
    names = set(RUNNER if parallel else (m for m in RUNNER if m != "xdist"))
    for script in RUNNER_SCRIPTS:
        names |= _top_level_imports((TOOLS / script).read_text(encoding="utf-8"))
    for path in notebooks:
        names |= notebook_imports(path)
    local = {path.stem for path in TOOLS.glob("*.py")}
    return sorted(n for n in names
                  if n not in sys.stdlib_module_names and n != "__future__" and n not in local)


def requirements(notebooks: list[Path]) -> list[str]:
    """`name==version` of the distribution that provides each module, as installed here.

    Run in .venv, this pins every bundled wheel to the version CI runs. A module that no
    installed distribution provides is an error: the bundle would miss it.
    """
    from importlib.metadata import packages_distributions, version

    provided_by = packages_distributions()
    wanted, unknown = set(), []
    for name in modules(notebooks):
        distributions = provided_by.get(name)
        if name in PROVIDED or set(distributions or ()) & set(PROVIDED):
            continue
        if not distributions:
            unknown.append(name)
            continue
        wanted.update(distributions)
    if unknown:
        raise SystemExit(f"error: no installed distribution provides {', '.join(unknown)}")
    return sorted(f"{name}=={version(name)}" for name in wanted)


def check(notebooks: list[Path], parallel: bool = True) -> int:
    """Import every module the run needs, print each with its version, then each notebook as
    `runnable PATH` or `skipped PATH (missing: ...)`.

    0: everything imports. 1: some notebooks cannot run (the others can). 2: the runner itself
    (pytest, nbval, the kernel, tools/execute.py) cannot, so no notebook can.
    """
    import importlib

    missing = set()
    for name in modules(notebooks, parallel):
        try:
            module = importlib.import_module(name)
            if name == "matplotlib":
                # pyplot builds the font cache on a fresh machine: once here, not in a kernel.
                importlib.import_module("matplotlib.pyplot")
        except Exception as error:  # an ImportError, or a package that fails as it loads
            missing.add(name)
            print(f"MISSING {name}: {type(error).__name__}: {error}")
            continue
        print(f"ok      {name} {getattr(module, '__version__', '')}".rstrip())
    runner = missing & set(modules([], parallel))
    for path in notebooks:
        lacking = sorted(runner | (missing & notebook_imports(path)))
        print(f"skipped {path} (missing: {', '.join(lacking)})" if lacking else f"runnable {path}")
    if runner:
        print(f"error: the runner needs {', '.join(sorted(runner))}: no notebook can run")
        return 2
    if missing:
        print(f"error: {len(missing)} of the modules the notebooks import cannot be imported "
              f"({', '.join(sorted(missing))}): the notebooks that need them are skipped")
        return 1
    return 0


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("modules", "requirements", "check"):
        print(__doc__, file=sys.stderr)
        return 2
    command, *args = argv
    parallel = "--serial" not in args  # --serial: no pytest-xdist needed
    notebooks = [Path(arg) for arg in args if arg != "--serial"]
    if command == "check":
        return check(notebooks, parallel)
    lines = modules(notebooks, parallel) if command == "modules" else requirements(notebooks)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
