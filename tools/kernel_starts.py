"""Starting a notebook kernel again when it dies at start-up, and only then.

jupyter_client picks a kernel's TCP ports by asking the system for free ones, and it keeps track
only of the ports it handed out itself, in one process. Kernels started at the same moment by two
processes (the two test workers of `make test`, or `make execute` while tests run) can be handed
the same port; the kernel that binds it second dies before any cell has run ("Address already in
use"), and the wait for it to reply fails with DIED_AT_START. Starting another kernel is then safe:
no cell ran. Any other failure is raised at once.

Used by tools/execute.py, and by the root conftest.py for the kernels nbval starts.
tests/test_kernel_starts.py makes a real kernel die this way.
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

KERNEL_STARTS = 3
DIED_AT_START = "Kernel died before replying to kernel_info"

T = TypeVar("T")


def started(start: Callable[[], T], what: str) -> T:
    """Call `start` (which starts a kernel) up to KERNEL_STARTS times while the kernel dies at
    start-up; return what it returns. `what` names the kernel in the message on standard error."""
    for attempt in range(1, KERNEL_STARTS + 1):
        try:
            return start()
        except RuntimeError as error:
            if DIED_AT_START not in str(error) or attempt == KERNEL_STARTS:
                raise
            print(f"{what}: the kernel died at start-up; starting another",
                  file=sys.stderr, flush=True)
    raise AssertionError("unreachable")
