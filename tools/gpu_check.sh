#!/usr/bin/env bash
# Everything the book needs from a machine with an NVIDIA GPU, in one run: the machine's
# description, chapter 5's measurements (tools/gpu_bench.py), the whole book under strict nbval,
# and the notebooks as executed there. Such a machine may have its own Python and PyTorch, no
# PyPI and little time, so this is rehearsed here first, on the CPU, in a virtual environment
# holding only PyTorch and the bundled wheels (make gpu-rehearsal), and then run once.
#
# Here, first:  make gpu-wheels    (every package the run needs beyond PyTorch, as wheels, in .whl/)
# There, from the repository root, with .whl/ carried along:
#   bash tools/gpu_check.sh OUT_DIR
# What it writes to OUT_DIR (seven files), and what to do with them afterwards:
#   machine.txt            nvidia-smi (with its clocks and power limits), other GPU processes,
#                          the Python, pip, torch and CUDA versions, the GPU's compute capability,
#                          the C++ compiler torch.compile would use, and any TF32 override this
#                          script unset
#   gpu-linear.json        copy to book/data/, then: make execute NB="book/05-gpu.ipynb book/09-troubleshooting.ipynb"
#   bench.log              what gpu_bench.py printed
#   deps.log               the bundled wheels' installation, every module the run imports, and
#                          which notebooks can run (one whose imports fail is skipped, not the rest)
#   nbval.log              strict nbval: lists every stored output that differs on the GPU
#   execute.log            the notebooks executed in place with the new gpu-linear.json
#   executed.tar.gz        those notebooks (timings re-recorded): to read, not to commit
# It changes the notebooks and book/data/ in place: run it only in a throwaway copy.
#
# Order: the measurements come first and need only PyTorch, so nothing that can fail earlier
# stops them. Chapter 5 (which times layers) runs alone, under nbval and when executed, so
# nothing else uses the GPU while its timings are taken; the other chapters then run in parallel.
#
# Settings, for testing on a machine without a GPU:
#   PYTHON      the interpreter that has torch (default python3)
#   BENCH_ARGS  extra arguments for gpu_bench.py (tests: "--device cpu --quick")
#   NOTEBOOKS   the notebooks to run (default: every one under book/)
#   WORKERS     notebooks run at once after chapter 5 (default 4; 1 needs no pytest-xdist)
#   SITE_DIR    where the wheels of .whl/ are installed (default: a new folder under /tmp)
# Every step that can run does, even after an earlier one failed, so one run reports all it can;
# the exit status is non-zero if any step failed.
set -uo pipefail
# NVIDIA's PyTorch containers often set the first, which turns TF32 on for every float32 product:
# the book's stored outputs and chapter 5's measurements assume PyTorch's own defaults.
# NVIDIA_TF32_OVERRIDE=0, read by cuBLAS and cuDNN themselves, forbids TF32 whatever PyTorch says.
unset_note=""
for variable in TORCH_ALLOW_TF32_CUBLAS_OVERRIDE NVIDIA_TF32_OVERRIDE; do
  if [ -n "${!variable:-}" ]; then
    unset_note+="unset $variable=${!variable} (it overrides PyTorch's TF32 settings)"$'\n'
    unset "$variable"
  fi
done
# The machine's own pytest options would change the run rehearsed here.
unset PYTEST_ADDOPTS
out=${1:?usage: tools/gpu_check.sh OUT_DIR}
mkdir -p "$out" && out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
read -r -a notebooks <<<"${NOTEBOOKS:-$(echo book/*.ipynb)}"
workers=${WORKERS:-4}
failed=()
# Temporary folders this script makes (not ones given to it), removed when it ends.
made=()
trap 'rm -rf ${made[@]+"${made[@]}"}' EXIT
step() { echo "== $* (at ${SECONDS}s)"; }

step "machine"
{
  date -u +%FT%TZ
  printf '%s' "$unset_note"
  nvidia-smi 2>&1 || echo "nvidia-smi: not available"
  # What decides the measured rates besides the chip: its clocks and its power limit.
  nvidia-smi -q -d CLOCK,POWER 2>&1 || true
  # Any other process on the GPU would share it with the measurements.
  echo "other processes on the GPU:"
  nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv 2>&1 || true
  "$py" -m pip --version 2>&1 || echo "pip: not available to $py"
  "$py" -c '
import sys, torch
print("python", sys.version.split()[0], "at", sys.executable)
print("torch", torch.__version__, "| CUDA", torch.version.cuda,
      "| GPU visible:", torch.cuda.is_available())
if torch.cuda.is_available():
    major, minor = torch.cuda.get_device_capability()
    print("GPU", torch.cuda.get_device_name(), f"| compute capability {major}.{minor}")
# torch.compile builds its CPU code (chapter 6) with the C++ compiler it finds here.
import shutil
try:
    from torch._inductor.cpp_builder import get_cpp_compiler
except Exception as error:  # a private module: it may move
    print("C++ compiler for torch.compile on the CPU: unknown:", error)
else:
    try:
        compiler = get_cpp_compiler()
    except Exception as error:
        print("C++ compiler for torch.compile on the CPU: none found:", error)
    else:
        print("C++ compiler for torch.compile on the CPU:", compiler,
              "at", shutil.which(compiler))
'
} >"$out/machine.txt" 2>&1
cat "$out/machine.txt"

step "measurements (tools/gpu_bench.py ${BENCH_ARGS:-})"
# shellcheck disable=SC2086  # BENCH_ARGS is a list of arguments
"$py" tools/gpu_bench.py ${BENCH_ARGS:-} --out "$out/gpu-linear.json" 2>&1 | tee "$out/bench.log" \
  || failed+=(measurements)

step "dependencies"
serial=()
[ "$workers" -gt 1 ] || serial=(--serial)  # one worker: no pytest-xdist needed
install_ok=0
{
  if [ -d .whl ]; then
    # Into a folder of their own, first on PYTHONPATH (which the notebook kernels inherit): the
    # versions CI runs take precedence over any the machine has, and the machine's environment
    # is left as it was. No index (the machine may reach none) and no dependency resolution:
    # .whl/ holds the complete set, made by tools/gpu_wheels.sh.
    if [ -n "${SITE_DIR:-}" ]; then
      site=$SITE_DIR
    else
      site=$(mktemp -d /tmp/book-site.XXXXXX) && made+=("$site")
    fi
    echo "installing $(find -L .whl -name '*.whl' | wc -l) wheels from .whl/ into $site"
    if "$py" -m pip install --quiet --disable-pip-version-check --no-index --no-deps \
         --no-compile --upgrade --target "$site" .whl/*.whl; then
      export PYTHONPATH=$site${PYTHONPATH:+:$PYTHONPATH}
    else
      install_ok=1
    fi
  else
    echo "no .whl/ here: using what this Python has (make gpu-wheels bundles the rest)"
  fi
  # matplotlib's font cache in one folder that outlives each kernel, even where $HOME is
  # read-only (matplotlib would otherwise rebuild it, with a warning, in every notebook).
  # Then every module the notebooks and the runner import, imported once, with its version,
  # and which notebooks can run with them.
  if [ -z "${MPLCONFIGDIR:-}" ]; then
    MPLCONFIGDIR=$(mktemp -d /tmp/book-mpl.XXXXXX) && made+=("$MPLCONFIGDIR")
  fi
  export MPLCONFIGDIR
  "$py" -u tools/notebook_imports.py check ${serial[@]+"${serial[@]}"} "${notebooks[@]}"
} >"$out/deps.log" 2>&1
deps_ok=$?
cat "$out/deps.log"
# The install ran in this shell (a brace group), so its PYTHONPATH holds for the steps below.
{ [ "$install_ok" -eq 0 ] && [ "$deps_ok" -eq 0 ]; } || failed+=(dependencies)
# A notebook whose imports fail is skipped; the others still run: chapter 5 (which times
# layers) alone, the rest in parallel.
runnable=()
while read -r word path; do
  [ "$word" = runnable ] || continue
  for nb in "${notebooks[@]}"; do   # only a notebook this run was given
    [ "$nb" = "$path" ] && runnable+=("$path")
  done
done <"$out/deps.log"
alone=() rest=()
for nb in ${runnable[@]+"${runnable[@]}"}; do
  if [ "$nb" = book/05-gpu.ipynb ]; then alone+=("$nb"); else rest+=("$nb"); fi
done
if [ ${#runnable[@]} -eq 0 ]; then
  echo "== skipping nbval and execution: no notebook can run without the modules above"
else
  notebooks=("${runnable[@]}")
  # pytest loads only the plugins named here, never others installed on the machine, so the run
  # is the one rehearsed here.
  export PYTEST_DISABLE_PLUGIN_AUTOLOAD=1
  # Every notebook in a new kernel process, as a reader runs it. make test forks its kernels
  # from a process that has imported torch already (tools/kernel_forks.py), to save seconds
  # that do not matter here.
  export BOOK_FRESH_KERNELS=1
  # The project's nbval settings, without the parts that assume CI's machine (two workers) and
  # with warnings reported rather than fatal: the question here is which outputs differ.
  run_nbval() {
    "$py" -m pytest -o addopts= -p no:cacheprovider -p nbval.plugin -W default -rf \
      --nbval --nbval-current-env --nbval-sanitize-with tests/sanitize.cfg "$@" 2>&1 \
      | tee -a "$out/nbval.log"
  }
  : >"$out/nbval.log"
  nbval_ok=0
  if [ ${#alone[@]} -gt 0 ]; then
    step "strict nbval on ${alone[*]}, alone"
    run_nbval "${alone[@]}" || nbval_ok=1
  fi
  if [ ${#rest[@]} -gt 0 ]; then
    step "strict nbval on ${#rest[@]} notebooks, $workers at a time"
    parallel=()  # all cells of a notebook in one worker: they share a kernel
    [ "$workers" -gt 1 ] && parallel=(-p xdist.plugin -n "$workers" --dist loadfile)
    run_nbval ${parallel[@]+"${parallel[@]}"} "${rest[@]}" || nbval_ok=1
  fi
  [ "$nbval_ok" -eq 0 ] || failed+=(nbval)

  step "executing the notebooks in place, with the new measurements, timings re-recorded"
  # In place: this runs in a throwaway copy of the repository. With the measurements in
  # book/data/, chapters 5 and 9 show the table, the plot and the CUDA message as they will be
  # published, so this run also proves the code that shows them.
  # Measurements taken on the CPU (a rehearsal) are no GPU record: the chapters would reject
  # them, so they run as published without one.
  if [ -f "$out/gpu-linear.json" ] && "$py" -c '
import json, sys
sys.exit(json.load(open(sys.argv[1]))["device"] == "CPU")' "$out/gpu-linear.json"; then
    mkdir -p book/data && cp "$out/gpu-linear.json" book/data/
  else
    echo "no GPU measurements: the notebooks are executed without a gpu-linear.json"
  fi
  : >"$out/execute.log"
  execute_ok=0
  for nb in ${alone[@]+"${alone[@]}"}; do
    REFRESH=1 "$py" tools/execute.py "$nb" 2>&1 | tee -a "$out/execute.log" || execute_ok=1
  done
  if [ ${#rest[@]} -gt 0 ]; then
    printf '%s\n' "${rest[@]}" \
      | REFRESH=1 xargs -P "$workers" -I{} "$py" tools/execute.py {} 2>&1 \
      | tee -a "$out/execute.log" || execute_ok=1
  fi
  [ "$execute_ok" -eq 0 ] || failed+=(execute)
  # Packed even when one failed: the others are still worth reading (a failed one stays as stored).
  tar -czf "$out/executed.tar.gz" "${notebooks[@]}" || failed+=(pack)
fi

step "done"
if [ ${#failed[@]} -gt 0 ]; then
  echo "== failed steps: ${failed[*]}"
  exit 1
fi
echo "== all steps passed"
