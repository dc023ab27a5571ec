#!/usr/bin/env bash
# Download, into .whl/, the wheels that tools/gpu_check.sh needs on a GPU machine which has
# PyTorch but not the notebook runner (nbval, ipykernel and what they import), and which cannot
# reach PyPI. Run it here, where pip can, before lending the folder to that machine.
#
#   tools/gpu_wheels.sh            # for CPython 3.12 on x86-64 Linux (the lent GPU machines)
#   PY_VERSION=3.11 tools/gpu_wheels.sh
#
# The versions are those of .venv (pip freeze used as constraints), so the GPU machine runs the
# same notebook runner as CI; only PyTorch and the libraries the machine already has differ.
set -euo pipefail
cd "$(dirname "$0")/.."
py_version=${PY_VERSION:-3.12}
dest=.whl

[ -x .venv/bin/python ] || { echo "error: .venv is missing: run 'make venv' first"; exit 1; }
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
.venv/bin/python -m pip freeze --exclude-editable >"$constraints"
# What gpu_check.sh installs: the notebook runner, and PyYAML for tools/book.py; pip adds what
# they need. PyYAML comes into .venv through jupyter-book, so its version is in the constraints.
wanted="$(grep -E '^(nbval|nbclient|ipykernel)==' requirements.txt) pyyaml"

rm -rf "$dest"
# pip matches manylinux tags exactly, so name the common ones (newest glibc first).
# shellcheck disable=SC2086  # $wanted is a list of requirement words
.venv/bin/python -m pip download --quiet --disable-pip-version-check \
  --only-binary=:all: --implementation cp --python-version "$py_version" \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_26_x86_64 --platform manylinux_2_24_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform manylinux1_x86_64 \
  -c "$constraints" -d "$dest" $wanted
echo "$(find "$dest" -name '*.whl' | wc -l) wheels, $(du -sh "$dest" | cut -f1), in $dest/"
