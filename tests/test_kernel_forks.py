"""tools/kernel_forks.py: a notebook kernel forked from the template is the kernel a new process
would have been, down to what a notebook could observe of its process.

Each test starts its kernels as nbval does (jupyter_client, the interpreter's own ipykernel, a
working folder, errors to /dev/null), once through the template and once as a new process.
"""
import json
import os
import subprocess
import sys

import kernel_forks
import pytest
from jupyter_client import KernelManager
from jupyter_client.provisioning import local_provisioner

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="kernels are forked on Linux only")

# What a notebook could see of the process it runs in. Handlers are shown without addresses.
PROBE = r"""
import json, os, re, signal, sys, threading
import matplotlib, matplotlib.pyplot as plt, torch
plt.figure()
handler = lambda s: re.sub(r" at 0x[0-9a-f]+", "", repr(signal.getsignal(s)))
print(json.dumps({
    "cwd": os.getcwd(), "path": sys.path, "executable": sys.executable,
    "argv": [os.path.basename(sys.argv[0]), *sys.argv[1:2]], "orig_argv": sys.orig_argv[1:3],
    "name": __name__, "main": sys.modules["__main__"].__name__, "env": dict(os.environ),
    "parent is the test worker": os.getppid() == int(os.environ["JPY_PARENT_PID"]),
    "leads its session": os.getsid(0) == os.getpid() == os.getpgid(0),
    "streams": [re.sub(r"\[\d+\]", "", os.readlink(f"/proc/self/fd/{fd}")) for fd in (0, 1, 2)],
    "signals": {int(s): handler(s) for s in signal.valid_signals()
                if s not in (signal.SIGKILL, signal.SIGSTOP)},
    "threads": sorted(t.name for t in threading.enumerate()),
    "torch threads": torch.get_num_threads(), "matplotlib backend": matplotlib.get_backend(),
    "rcParams": {k: repr(v) for k, v in matplotlib.rcParams.items()},
    "traceback mode": get_ipython().InteractiveTB.mode,
    "template module": "kernel_forks" in sys.modules,
}))
"""


def start(folder, monkeypatch, launcher, errors):
    """A kernel started as nbval starts one: its errors go to `errors`, a file on /dev/null."""
    monkeypatch.setattr(local_provisioner, "launch_kernel", launcher)
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(cwd=str(folder), stderr=errors)
    client = manager.client()
    client.start_channels()
    client.wait_for_ready(timeout=60)
    return manager, client


def run(client, code: str) -> tuple[str, dict]:
    out = []
    reply = client.execute_interactive(code, timeout=60, output_hook=lambda msg: out.append(
        msg["content"].get("text", "")) if msg["msg_type"] == "stream" else None)
    return "".join(out), reply["content"]


def original_launcher():
    launcher = local_provisioner.launch_kernel
    return getattr(launcher, "original", launcher)


@pytest.fixture(scope="module")
def seen(tmp_path_factory):
    """What the probe sees in a new kernel process and in a forked one; the kernels' objects."""
    folder = tmp_path_factory.mktemp("notebooks")
    seen = {}
    with pytest.MonkeyPatch.context() as monkeypatch, open(os.devnull, "w") as errors:
        for way, launcher in [("new", original_launcher()),
                              ("forked", kernel_forks.forking(original_launcher()))]:
            manager, client = start(folder, monkeypatch, launcher, errors)
            try:
                text, _ = run(client, PROBE)
                seen[way] = {"probe": json.loads(text), "process": manager.provisioner.process,
                             "manager": manager, "client": client}
            except BaseException:
                client.stop_channels()
                manager.shutdown_kernel(now=True)
                raise
        yield seen
        for kernel in seen.values():
            kernel["client"].stop_channels()
            kernel["manager"].shutdown_kernel(now=True)


def test_the_forked_kernel_came_from_the_template(seen):
    assert type(seen["new"]["process"]) is subprocess.Popen
    assert type(seen["forked"]["process"]) is kernel_forks.ForkedKernel


def test_a_forked_kernel_sees_what_a_new_process_sees(seen):
    new, forked = seen["new"]["probe"], seen["forked"]["probe"]
    assert new["parent is the test worker"] and new["leads its session"]
    assert new["streams"][0] == "pipe:" and new["streams"][2] == os.devnull
    assert new["argv"][0] == "ipykernel_launcher.py" and not new["template module"]
    differ = {key: (new[key], forked.get(key)) for key in new if new[key] != forked.get(key)}
    assert not differ


def test_an_interrupt_reaches_a_forked_kernel(seen):
    client, manager = seen["forked"]["client"], seen["forked"]["manager"]
    message = client.execute("import time; print('running', flush=True); time.sleep(60)")
    # Interrupt once the cell runs (its first output), as a reader's Stop button would. The
    # kernel ignores SIGINT between cells, and its busy status comes a moment before the cell.
    while True:
        output = client.get_iopub_msg(timeout=30)
        if (output["parent_header"].get("msg_id") == message
                and output["msg_type"] == "stream"):
            break
    manager.interrupt_kernel()
    reply = client.get_shell_msg(timeout=30)
    assert reply["content"]["ename"] == "KeyboardInterrupt"


def test_a_forked_kernel_is_shut_down_and_reaped_as_a_new_one(seen):
    for way in ("new", "forked"):
        process = seen[way]["process"]
        seen[way]["client"].stop_channels()
        seen[way]["manager"].shutdown_kernel(now=True)  # as nbval does after a notebook
        # Exited (its status read by this process, which the fork made its parent) and gone.
        assert process.poll() is not None, way
        assert not os.path.exists(f"/proc/{process.pid}"), way


def test_a_template_with_threads_refuses_and_kernels_start_as_new_processes(
        tmp_path, monkeypatch, request):
    # torch starts an OpenMP thread when imported unless OMP_NUM_THREADS=1: a fork would copy
    # a process with another thread running, so the template refuses to fork at all.
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    template = kernel_forks.Template()
    request.addfinalizer(template.close)
    assert template.refusal and "thread" in template.refusal
    monkeypatch.setattr(kernel_forks.Template, "_running", template)
    errors = open(os.devnull, "w")  # noqa: SIM115 (closed below, after the kernel)
    manager, client = start(tmp_path, monkeypatch, kernel_forks.forking(original_launcher()),
                            errors)
    try:
        assert type(manager.provisioner.process) is subprocess.Popen
        text, reply = run(client, "print(6 * 7)")
        assert reply["status"] == "ok" and text == "42\n"
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
        errors.close()
