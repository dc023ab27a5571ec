#!/usr/bin/env bash
# Everything the book needs from a machine with an NVIDIA GPU, in one run (issue #4): the
# machine's description, chapter 5's measurements (tools/gpu_bench.py), the whole book under
# strict nbval, and the notebooks as executed there. Device time is scarce, so this is tested
# here on the CPU first (tests/test_gpu_check.py) and then run once.
#
# Here, first:  tools/gpu_wheels.sh      (the notebook runner, as wheels, into .whl/)
# There, from the repository root, with .whl/ carried along:
#   bash tools/gpu_check.sh "$OUT"
# What it writes to OUT_DIR, and what to do with it afterwards:
#   machine.txt            nvidia-smi, torch and CUDA versions
#   gpu-linear.json        copy to book/data/, then: make execute NB="book/05-gpu.ipynb book/07-troubleshooting.ipynb"
#   bench.log, nbval.log   nbval.log lists every stored output that differs on the GPU
#   executed.tar.gz        the notebooks as executed there, with the new gpu-linear.json (timings
#                          re-recorded): to read, not to commit
# It changes the notebooks and book/data/ in place: run it only in a throwaway copy.
#
# Settings, for testing on a machine without a GPU:
#   PYTHON      the interpreter that has torch (default python3)
#   BENCH_ARGS  extra arguments for gpu_bench.py (tests: "--device cpu --quick")
#   NOTEBOOKS   the notebooks to run (default: every one under book/)
#   WORKERS     notebooks run at once (default 4)
# Every step runs even when an earlier one failed, so one run reports all it can; the exit
# status is non-zero if any step failed.
set -uo pipefail
out=${1:?usage: tools/gpu_check.sh OUT_DIR}
mkdir -p "$out" && out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
read -r -a notebooks <<<"${NOTEBOOKS:-$(echo book/*.ipynb)}"
failed=()

echo "== machine"
{
  date -u +%FT%TZ
  nvidia-smi 2>&1 || echo "nvidia-smi: not available"
  "$py" -c 'import sys, torch; print("python", sys.version.split()[0]); print("torch", torch.__version__, "| CUDA", torch.version.cuda, "| GPU visible:", torch.cuda.is_available())'
} >"$out/machine.txt" 2>&1
cat "$out/machine.txt"

echo "== notebook runner"
if ! "$py" -c 'import nbval, nbclient, ipykernel, yaml' 2>/dev/null; then
  if [ ! -d .whl ]; then
    echo "error: nbval, nbclient, ipykernel or PyYAML is missing, and there is no .whl/ to install" \
         "them from: run tools/gpu_wheels.sh on a machine with PyPI, and carry .whl/ here."
    exit 1
  fi
  # Into the machine's own environment (it is thrown away afterwards); pip keeps what is already
  # there when it fits, and takes the rest from .whl/ (no index: this machine reaches none).
  # If that environment refuses, every wheel goes to a folder of its own on PYTHONPATH, which
  # the notebook kernels inherit.
  # shellcheck disable=SC2046  # one word per requirement
  "$py" -m pip install --quiet --disable-pip-version-check --no-index --find-links .whl \
    $(grep -E '^(nbval|nbclient|ipykernel)==' requirements.txt) pyyaml \
  || { "$py" -m pip install --quiet --disable-pip-version-check --no-index --no-deps \
         --target /tmp/book-site .whl/*.whl \
       && export PYTHONPATH=/tmp/book-site${PYTHONPATH:+:$PYTHONPATH}; } \
  || exit 1
  "$py" -c 'import nbval, nbclient, ipykernel, yaml' || exit 1
fi

echo "== measurements (tools/gpu_bench.py ${BENCH_ARGS:-})"
# shellcheck disable=SC2086  # BENCH_ARGS is a list of arguments
"$py" tools/gpu_bench.py ${BENCH_ARGS:-} --out "$out/gpu-linear.json" 2>&1 | tee "$out/bench.log" \
  || failed+=(measurements)

echo "== strict nbval on ${#notebooks[@]} notebooks"
workers=${WORKERS:-4}
parallel=()  # all cells of a notebook in one worker: they share a kernel
[ "$workers" -gt 1 ] && parallel=(-n "$workers" --dist loadfile)
# The project's settings, without the parts that assume CI's machine (two workers) and with
# warnings reported rather than fatal: the question here is which outputs differ.
"$py" -m pytest -o addopts= -p no:cacheprovider -W default -rf \
  --nbval --nbval-current-env --nbval-sanitize-with tests/sanitize.cfg \
  "${parallel[@]}" "${notebooks[@]}" 2>&1 | tee "$out/nbval.log" \
  || failed+=(nbval)

echo "== executing the notebooks in place, with the new measurements, timings re-recorded"
# In place: this runs in a throwaway copy of the repository. With the measurements in
# book/data/, chapters 5 and 7 show the table, the plot and the CUDA message as they will be
# published, so this run also proves the code that shows them.
if [ -f "$out/gpu-linear.json" ]; then
  mkdir -p book/data && cp "$out/gpu-linear.json" book/data/
fi
printf '%s\n' "${notebooks[@]}" \
  | REFRESH=1 xargs -P "$workers" -I{} "$py" tools/execute.py {} 2>&1 | tee "$out/execute.log" \
  || failed+=(execute)
# Packed even when one failed: the others are still worth reading (a failed one stays as stored).
tar -czf "$out/executed.tar.gz" "${notebooks[@]}" || failed+=(pack)

if [ ${#failed[@]} -gt 0 ]; then
  echo "== failed steps: ${failed[*]}"
  exit 1
fi
echo "== all steps passed"
