#!/usr/bin/env bash
# Rehearse tools/gpu_check.sh here, on the CPU, the way it runs on a machine with an NVIDIA GPU:
# in a fresh virtual environment that holds only PyTorch, where every other package comes from
# the wheels tools/gpu_wheels.sh bundles (built for this interpreter, installed without an
# index), over the real chapters, in a copy of the repository. A package the notebooks or the
# runner need but the bundle lacks fails here, not there.
#
#   make gpu-rehearsal                   (or: tools/gpu_rehearsal.sh [OUT_DIR])
#
# The environment and the wheels are kept between runs, outside the repository, and re-made when
# .venv's versions or the notebooks' imports change. A run takes minutes: it runs every chapter
# twice (strict nbval, then executed in place), as gpu_check.sh does. Linux only (manylinux wheels).
#
# Settings:
#   PYTHON           the interpreter of the environment (default: the one .venv was made from)
#   TORCH_SPEC       what pip installs as PyTorch (default: torch==<.venv's version>, which needs
#                    an index with that build, e.g. PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu)
#   REHEARSAL_CACHE  where the environment, the wheels and the copy live
#                    (default: ~/.cache/nn-linear-exactly/gpu-rehearsal)
#   WORKERS          notebooks run at once after chapter 5 (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || { echo "error: .venv is missing: run 'make venv' first"; exit 1; }
py=${PYTHON:-$(.venv/bin/python -c 'import sys; print(sys._base_executable)')}
py_version=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
torch_version=$(.venv/bin/python -c 'import torch; print(torch.__version__)')
torch_spec=${TORCH_SPEC:-torch==$torch_version}
cache=${REHEARSAL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nn-linear-exactly/gpu-rehearsal}
venv=$cache/venv-py$py_version-torch$torch_version
wheels=$cache/wheels-py$py_version
copy=$cache/repo
out=${1:-$cache/out}
# A folder given as OUT_DIR is emptied below only if it is one this script made (it holds its
# report); gpu_check.sh runs in the copy, so the path is made absolute here.
if [ -n "${1:-}" ]; then
  if [ -e "$out" ] && { [ ! -d "$out" ] || { [ -n "$(ls -A "$out")" ] && [ ! -e "$out/machine.txt" ]; }; }; then
    echo "error: $out is a file, or a folder that is not empty and not an earlier rehearsal's output; give an empty folder" >&2
    exit 2
  fi
  mkdir -p "$out" && out=$(cd "$out" && pwd)
fi
arch=$(uname -m)
unset PYTHONPATH
start=$SECONDS

echo "== an environment holding only PyTorch ($torch_spec, Python $py_version): $venv"
if [ ! -f "$venv/.ready" ]; then
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$torch_spec"
  touch "$venv/.ready"
fi
"$venv/bin/python" -m pip list --format=freeze --disable-pip-version-check | tr '\n' ' '
echo

echo "== the wheels for CPython $py_version on $arch: $wheels"
# Re-made when what the notebooks import, or a version pinned in .venv, changes.
stamp=$({ .venv/bin/python tools/notebook_imports.py requirements book/*.ipynb
          .venv/bin/python -m pip freeze --exclude-editable; echo "$arch"; } | sha256sum)
if [ "$(cat "$wheels/.stamp" 2>/dev/null)" != "$stamp" ]; then
  # Everything bundled (no EXCLUDE): this environment has nothing but PyTorch.
  EXCLUDE= PY_VERSION=$py_version WHEEL_DIR=$wheels \
    PLATFORMS="manylinux_2_28_$arch manylinux_2_27_$arch manylinux_2_26_$arch
               manylinux_2_24_$arch manylinux_2_17_$arch manylinux2014_$arch" \
    tools/gpu_wheels.sh 2>&1 | grep -v "^WARNING: Location"
  echo "$stamp" >"$wheels/.stamp"
else
  echo "unchanged: $(find "$wheels" -name '*.whl' | wc -l) wheels"
fi

echo "== a copy of the repository (tracked files and new ones git does not ignore): $copy"
rm -rf "$copy" "$out"
mkdir -p "$copy"
git ls-files -z --cached --others --exclude-standard \
  | .venv/bin/python -c '
import shutil, sys
from pathlib import Path
copy = Path(sys.argv[1])
for name in sys.stdin.read().split("\0"):
    if name and Path(name).is_file():  # skips files deleted but still in the index
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(name, copy / name)
' "$copy"
ln -s "$wheels" "$copy/.whl"

echo "== tools/gpu_check.sh in that environment, on the CPU"
# nice: other work on this machine keeps its share of the processors.
status=0
(cd "$copy" && PYTHON=$venv/bin/python BENCH_ARGS="--device cpu --quick" \
   WORKERS=${WORKERS:-2} SITE_DIR=$cache/site nice -n 10 bash tools/gpu_check.sh "$out") \
  || status=$?
rm -rf "$cache/site"
echo "== rehearsal $([ "$status" -eq 0 ] && echo passed || echo FAILED)" \
     "in $((SECONDS - start)) s; its files are in $out"
exit "$status"
