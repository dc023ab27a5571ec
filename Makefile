# The book's commands. Everything runs from one virtual environment, .venv, built from
# requirements.txt; each target below makes sure it exists and is current first.
#   make book     build the website into _build/html
#   make test     the test suite (CI runs it, then make test-tools and make pdf)
#   make lab      open the notebooks in JupyterLab
#   make execute  re-run every notebook in place to refresh its stored outputs
#   make check NB=book/03-parameters.ipynb  strict nbval, hygiene and lint for one chapter
#   make pdf      the whole book as one PDF, _build/pdf/book.pdf, checked (tests/test_pdf.py)
#   make test-tools  the tests that run the GPU scripts on the CPU (kept out of make test)
#   make bench    time set-up, build and tests on this machine
#   make compat TORCH=2.15.0  run the book under another PyTorch release and report what differs
#   make gpu-wheels  every package the GPU run needs beyond PyTorch, as wheels, for a GPU machine without PyPI
#   make gpu-rehearsal  rehearse that run here on the CPU, in an environment holding only PyTorch and those wheels
#   make clean    remove the build and caches (keeps .venv)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Touched after a successful install: make re-installs when requirements.txt is newer.
READY  := $(VENV)/.ready

.PHONY: book test test-tools pdf lab execute check compat bench gpu-wheels gpu-rehearsal clean venv
.DEFAULT_GOAL := book

venv: $(READY)

$(READY): requirements.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { \
	  echo "error: '$(PYTHON)' was not found. Install Python 3.11 or newer, or run: make PYTHON=/path/to/python3"; exit 1; }
	@$(PYTHON) tools/check_python.py
	@if [ ! -x $(BIN)/python ] || ! $(BIN)/python -c '' 2>/dev/null; then \
	  rm -rf $(VENV) && echo "Creating $(VENV) ..." && \
	  $(PYTHON) -m venv $(VENV) || { echo "error: '$(PYTHON) -m venv' failed. On Debian/Ubuntu: apt-get install python3-venv"; exit 1; }; \
	fi
	@echo "Installing requirements.txt into $(VENV) ..."
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt || { \
	  echo "error: installing requirements.txt into $(VENV) failed (pip's message is above). Fix the cause and run make again."; exit 1; }
	@touch $@

# axe-core for the browser tests, at the version and hash package-lock.json pins.
AXE := node_modules/axe-core/axe.min.js
$(AXE): package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
	  echo "error: the browser tests need npm, to install axe-core (Debian/Ubuntu: apt-get install npm; or install Node.js)"; exit 1; }
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

# --all: a full rebuild (a few seconds); an incremental one can keep stale copies of _static/.
book: $(READY)
	$(BIN)/jupyter-book build . --all -n -W --keep-going
	@echo "The book is at $(CURDIR)/_build/html/index.html"

test: $(READY) $(AXE)
	@tools/ensure_browser.sh
	$(BIN)/python -m pytest

# Printed by tests/test_pdf.py, which checks the file it leaves (tools/pdf.py says how).
pdf: $(READY)
	@tools/ensure_browser.sh
	BOOK_PDF="$(CURDIR)/_build/pdf/book.pdf" $(BIN)/python -m pytest -n 0 -m pdf tests/test_pdf.py
	@$(BIN)/python -c 'import pypdfium2, os; p = "_build/pdf/book.pdf"; \
	  print(f"{p}: {len(pypdfium2.PdfDocument(p))} pages, {os.path.getsize(p) / 1e6:.1f} MB")'

# The GPU run's scripts (tools/gpu_check.sh, tools/gpu_bench.py) run on the CPU: about 20 s
# more than make test, which leaves them out. CI runs both.
test-tools: $(READY)
	$(BIN)/python -m pytest -m gpu_tools tests/test_gpu_check.py tests/test_gpu_bench.py

# Jupyter refuses to run as root unless told; containers and CI machines often are root.
lab: $(READY)
	$(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" --LabApp.default_url=/lab/tree/book \
	  $(if $(filter 0,$(shell id -u)),--allow-root)

execute: $(READY)
	$(BIN)/python tools/execute.py $(NB)

# An author's quick loop on one chapter: what make test checks of a notebook, in seconds.
check: $(READY)
	@test -n "$(NB)" || { echo "usage: make check NB=book/<chapter>.ipynb"; exit 2; }
	$(BIN)/python -m pytest -n 0 $(NB) tests/test_notebook_hygiene.py -k "$(notdir $(NB))"
	$(BIN)/ruff check --no-cache $(NB)
	$(BIN)/codespell $(NB)

# Not part of make test: a CUDA build of torch is several GB. See tools/compat.py.
compat: $(READY)
	@test -n "$(TORCH)" || { echo "usage: make compat TORCH=2.15.0"; exit 2; }
	$(BIN)/python tools/compat.py $(TORCH)

bench: $(READY) $(AXE)
	@tools/ensure_browser.sh
	$(BIN)/python tools/bench.py

gpu-wheels: $(READY)
	tools/gpu_wheels.sh

# The script's own tests first (about 20 s), then the rehearsal over the real chapters.
gpu-rehearsal: $(READY) test-tools
	tools/gpu_rehearsal.sh

clean:
	rm -rf _build reports .pytest_cache .ruff_cache
