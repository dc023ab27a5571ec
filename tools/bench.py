"""`make bench`: how long the book takes to set up, build and test on this machine.

Prints, for the machine it runs on:
  - set-up time from nothing: a new virtual environment from requirements.txt (pip's cache
    is used when present, as on a reader's second install);
  - a clean build of the website;
  - nbval per notebook, and the whole test suite (`pytest`, as `make test` runs it), then the
    suite again in stages (nbval, the browser tests with their build, the rest), each with the
    CPU time the machine spent on it;
  - peak memory (RSS) of the whole test run, all its processes together at their peak; pages
    that processes share (the notebook kernels forked from one template, tools/kernel_forks.py,
    share most of theirs) count once per process, so the figure is an upper bound;
  - for every page of the website: its HTML bytes, the bytes of its images, the bytes a browser
    transfers on a first visit (theme, scripts, fonts and MathJax included, from the browser's
    own resource timings), and the time to the load event, served from 127.0.0.1.
A benchmark, not a test: it asserts nothing. Run it on an idle machine.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_site  # noqa: E402
import website  # noqa: E402

from book import ROOT, notebooks  # noqa: E402

# `make bench` runs this with .venv's Python. The set-up measurement builds a second venv from
# the interpreter that .venv was made from, as `make` does on a fresh machine.
BASE_PYTHON = getattr(sys, "_base_executable", sys.executable)


def timed(command, **kwargs):
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, **kwargs)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, command))}\n{result.stdout[-3000:]}{result.stderr}")
    return seconds


def tree_rss_mib(pid: int) -> float:
    """Resident memory of a process and all its descendants, from /proc (Linux)."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            with open(f"/proc/{current}/task/{current}/children") as children:
                stack.extend(int(child) for child in children.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total / 1024


def busy_cpu_seconds() -> float | None:
    """CPU time the whole machine has spent busy, from /proc/stat (Linux), or None.

    Counted machine-wide because the browser's renderers are not children of the test run.
    """
    try:
        with open("/proc/stat") as stat:
            ticks = [int(value) for value in stat.readline().split()[1:]]
    except OSError:
        return None
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait


def timed_with_cpu(command):
    before = busy_cpu_seconds()
    seconds = timed(command)
    after = busy_cpu_seconds()
    return seconds, (after - before if before is not None else None)


def timed_with_peak_memory(command):
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    peak = 0.0

    def sample():
        nonlocal peak
        while process.poll() is None:
            peak = max(peak, tree_rss_mib(process.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample)
    sampler.start()
    output = process.communicate()[0].decode()
    sampler.join()
    if process.returncode != 0:
        sys.exit(f"test suite failed:\n{output[-3000:]}")
    return time.perf_counter() - start, peak


def main() -> None:
    print(f"machine: {os.cpu_count()} CPUs, {sys.platform}")
    with tempfile.TemporaryDirectory() as scratch:
        venv = Path(scratch) / "venv"
        seconds = timed([BASE_PYTHON, "-m", "venv", venv])
        seconds += timed([venv / "bin" / "python", "-m", "pip", "install", "--quiet",
                          "--disable-pip-version-check", "-r", "requirements.txt"])
        print(f"set-up from nothing (new venv + pip install -r requirements.txt): {seconds:.0f} s",
              flush=True)

    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        website.build(Path(out))
        seconds = time.perf_counter() - start
    print(f"clean build of the website: {seconds:.1f} s", flush=True)

    for path in notebooks():
        seconds = timed([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o",
                         "addopts=--nbval --nbval-current-env --nbval-sanitize-with "
                         "tests/sanitize.cfg", path.relative_to(ROOT)])
        print(f"nbval {path.name}: {seconds:.1f} s", flush=True)

    seconds, peak = timed_with_peak_memory([sys.executable, "-m", "pytest", "-q"])
    print(f"whole test suite (make test after set-up): {seconds:.1f} s, peak memory {peak:.0f} MiB")

    # The same suite in stages, each run on its own with make test's settings (two workers).
    # The browser stage builds the website once, as make test does.
    browser = sorted(str(path.relative_to(ROOT))
                     for path in (ROOT / "tests").glob("test_site_*.py"))
    stages = {
        "nbval (every notebook)": ["book"],
        "browser (tests/test_site_*.py, with one build)": browser,
        "the rest of tests/": ["tests", *(f"--ignore={path}" for path in browser)],
    }
    for name, arguments in stages.items():
        seconds, cpu = timed_with_cpu([sys.executable, "-m", "pytest", "-q", *arguments])
        print(f"make test, {name}: {seconds:.1f} s" + (f", {cpu:.0f} s of CPU" if cpu else ""),
              flush=True)

    bench_site.main()


if __name__ == "__main__":
    main()
