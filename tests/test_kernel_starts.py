"""A kernel that dies at start-up is started again, by nbval (through the root conftest.py) and by
tools/execute.py (tests/test_execute.py), and nothing else is: tools/kernel_starts.py.

The real failure is made here: the first port a kernel is handed is one that another socket
holds, as when two processes pick the same free port at the same moment.
"""
import socket

import kernel_starts
import nbval.kernel
import pytest
from jupyter_client.connect import LocalPortCache

DIED = RuntimeError(kernel_starts.DIED_AT_START)


def failing(failures):
    """A start that raises each of `failures` in turn, then returns "kernel"; and its calls."""
    calls = []

    def start():
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return "kernel"

    return start, calls


def test_a_kernel_that_dies_at_start_up_is_started_again(capsys):
    start, calls = failing([DIED, DIED])
    assert kernel_starts.started(start, "chapter") == "kernel"
    assert len(calls) == 3
    assert capsys.readouterr().err.count("chapter: the kernel died at start-up") == 2


def test_other_failures_are_raised_at_once():
    start, calls = failing([RuntimeError("Kernel didn't respond in 60 seconds"), DIED])
    with pytest.raises(RuntimeError, match="didn't respond"):
        kernel_starts.started(start, "chapter")
    assert len(calls) == 1


def test_starts_are_bounded():
    start, calls = failing([DIED] * kernel_starts.KERNEL_STARTS)
    with pytest.raises(RuntimeError, match="before replying"):
        kernel_starts.started(start, "chapter")
    assert len(calls) == kernel_starts.KERNEL_STARTS


def test_nbval_starts_another_kernel_when_the_first_ones_port_is_taken(monkeypatch):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    find_available_port = LocalPortCache.find_available_port
    handed = []

    def find(self, ip):
        handed.append(port if not handed else find_available_port(self, ip))
        return handed[-1]

    monkeypatch.setattr(LocalPortCache, "find_available_port", find)
    # nbval opens os.devnull for the kernel's standard error and never closes it; the test closes
    # it, or Python would warn of an unclosed file in a later test.
    opened = []

    def open_(*args, **kwargs):
        opened.append(open(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(nbval.kernel, "open", open_, raising=False)
    try:
        # What nbval does for each notebook (nbval/plugin.py, IPyNbFile.setup).
        kernel = nbval.kernel.RunningKernel(nbval.kernel.CURRENT_ENV_KERNEL_NAME)
        try:
            assert kernel.is_alive()
        finally:
            kernel.stop()
    finally:
        taken.close()
        for file in opened:
            file.close()
    # Five ports a kernel (shell, IOPub, stdin, heartbeat, control): the first start's, the taken
    # port among them, then the second's.
    assert len(handed) == 10 and handed.count(port) == 1
