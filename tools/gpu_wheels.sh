#!/usr/bin/env bash
# Download, into .whl/, every package beyond PyTorch that tools/gpu_check.sh needs on a machine
# with an NVIDIA GPU that has PyTorch but cannot reach PyPI: what the notebooks import (read from
# their code cells by tools/notebook_imports.py) and what runs them (pytest, nbval, pytest-xdist,
# the kernel, PyYAML), with everything those need. Run it here, where pip can reach PyPI, and
# carry .whl/ to the repository's root there.
#
#   tools/gpu_wheels.sh                                  # CPython 3.12 on x86-64 Linux
#   PY_VERSION=3.11 WHEEL_DIR=/tmp/whl tools/gpu_wheels.sh
#
# Settings:
#   PY_VERSION  the target interpreter's version (default 3.12)
#   PLATFORMS   pip platform tags, space-separated (default: manylinux x86-64, newest glibc first;
#               pip matches these tags exactly, so the common ones are all named)
#   WHEEL_DIR   where the wheels go (default .whl); it is emptied first
#   EXCLUDE     distributions the GPU machine already has that should not be bundled, space-
#               separated (default none): to keep .whl/ small when a chapter needs a large package
#               such as SciPy; they then run at the machine's version, which deps.log records
#
# The versions are those of .venv (pip freeze used as constraints), so the GPU machine runs the
# notebooks with the same NumPy, matplotlib and notebook runner as CI; only PyTorch differs.
set -euo pipefail
cd "$(dirname "$0")/.."
py_version=${PY_VERSION:-3.12}
dest=${WHEEL_DIR:-.whl}
platforms=${PLATFORMS:-manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_26_x86_64
  manylinux_2_24_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64}

[ -x .venv/bin/python ] || { echo "error: .venv is missing: run 'make venv' first"; exit 1; }
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
.venv/bin/python -m pip freeze --exclude-editable >"$constraints"
# name==version for each distribution that provides a module the notebooks or the runner import,
# torch excepted (the GPU machine's own build is the one to test).
mapfile -t wanted < <(.venv/bin/python tools/notebook_imports.py requirements book/*.ipynb)
platform_args=()
for tag in $platforms; do platform_args+=(--platform "$tag"); done

rm -rf "$dest"
.venv/bin/python -m pip download --quiet --disable-pip-version-check \
  --only-binary=:all: --implementation cp --python-version "$py_version" "${platform_args[@]}" \
  -c "$constraints" -d "$dest" "${wanted[@]}"
for name in ${EXCLUDE:-}; do  # wheel file names: lower case, '_' for '-'
  name=$(echo "$name" | tr 'A-Z-' 'a-z_')
  rm -f "$dest/$name"-[0-9]*.whl
done
# A wheel of torch would mean that something bundled depends on it: the machine's own must run.
if compgen -G "$dest/torch-*.whl" >/dev/null; then
  echo "error: a torch wheel was pulled in as a dependency; only the GPU machine's torch may run"
  exit 1
fi
echo "${wanted[*]}"
echo "$(find "$dest" -name '*.whl' | wc -l) wheels, $(du -sh "$dest" | cut -f1), in $dest/" \
     "(CPython $py_version)"
if [ "$(du -sm "$dest" | cut -f1)" -gt 50 ]; then
  echo "the largest (EXCLUDE leaves out those the GPU machine has, where .whl/ must be small):"
  ls -S -s --block-size=M "$dest" | sed -n 2,6p
fi
