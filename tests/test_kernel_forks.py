"""tools/kernel_forks.py: a notebook kernel forked from the template and one started as a new
process agree on what a notebook can see of its process, apart from what that module says they
share (the modules already imported, Python's string-hash seed).

The kernels are started as nbval starts them (jupyter_client, this interpreter's ipykernel, a
working folder, errors to /dev/null). The tests of refusals and failures use templates that
import a module of their own instead of torch, a fraction of a second each.
"""
import ctypes
import json
import os
import subprocess
import sys

import kernel_forks
import pytest
from jupyter_client import KernelManager
from jupyter_client.provisioning import local_provisioner

PR_GET_CHILD_SUBREAPER = 37
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="kernels are forked on Linux only")

# What a notebook could see of the process it runs in, after making an optimizer (whose first
# construction imports torch._dynamo, which the template preloads). Handlers without addresses.
PROBE = r"""
import inspect, json, os, random, re, signal, sys, threading, warnings
import matplotlib, matplotlib.pyplot as plt, numpy as np, torch
torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
plt.figure()
handler = lambda s: re.sub(r" at 0x[0-9a-f]+", "", repr(signal.getsignal(s)))
print(json.dumps({
    "cwd": os.getcwd(), "path": sys.path, "executable": sys.executable,
    "argv": [os.path.basename(sys.argv[0]), *sys.argv[1:2]], "orig_argv": sys.orig_argv[1:3],
    "name": __name__, "main": sys.modules["__main__"].__name__, "env": dict(os.environ),
    "stack depth": len(inspect.stack(0)),
    "parent is the test worker": os.getppid() == int(os.environ["JPY_PARENT_PID"]),
    "leads its session": os.getsid(0) == os.getpid() == os.getpgid(0),
    "streams": [re.sub(r"\[\d+\]", "", os.readlink(f"/proc/self/fd/{fd}")) for fd in (0, 1, 2)],
    "signals": {int(s): handler(s) for s in signal.valid_signals()
                if s not in (signal.SIGKILL, signal.SIGSTOP)},
    "threads": sorted(t.name for t in threading.enumerate()),
    "warning filters": sorted(map(repr, warnings.filters)),
    "torch threads": torch.get_num_threads(), "matplotlib backend": matplotlib.get_backend(),
    "rcParams": {k: repr(v) for k, v in matplotlib.rcParams.items()},
    "traceback mode": get_ipython().InteractiveTB.mode,
    "template module": "kernel_forks" in sys.modules,
    "random": [torch.initial_seed(), np.random.random(), random.random()],
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


def subreaper() -> int:
    flag = ctypes.c_int(-1)
    assert ctypes.CDLL(None).prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(flag), 0, 0, 0) == 0
    return flag.value


def zombies() -> list[int]:
    """This process's children that have exited and not been waited for."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as stat:
                state, parent = stat.read().rsplit(")", 1)[1].split()[:2]
        except (OSError, ValueError):
            continue
        if state == "Z" and int(parent) == os.getpid():
            found.append(int(entry))
    return found


def original_launcher():
    launcher = local_provisioner.launch_kernel
    return getattr(launcher, "original", launcher)


@pytest.fixture(scope="module")
def seen(tmp_path_factory):
    """What the probe sees in a new kernel process and in a forked one; the kernels' objects."""
    folder = tmp_path_factory.mktemp("notebooks")
    seen = {"reaper": []}
    with pytest.MonkeyPatch.context() as monkeypatch, open(os.devnull, "w") as errors:
        reap_orphans = kernel_forks.reap_orphans

        def recorded(on: bool) -> None:  # whether orphans reach this process, before and after
            before = subreaper()
            reap_orphans(on)
            seen["reaper"].append((before, subreaper()))

        monkeypatch.setattr(kernel_forks, "reap_orphans", recorded)
        forking = kernel_forks.forking(original_launcher())
        for way, launcher in [("new", original_launcher()), ("forked", forking),
                              ("forked again", forking)]:
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
        for way in ("new", "forked", "forked again"):
            seen[way]["client"].stop_channels()
            seen[way]["manager"].shutdown_kernel(now=True)


def test_the_forked_kernel_came_from_the_template(seen):
    assert type(seen["new"]["process"]) is subprocess.Popen
    assert type(seen["forked"]["process"]) is kernel_forks.ForkedKernel


def test_the_worker_reaps_orphans_only_while_a_kernel_is_forked(seen):
    # Two forks: on (from off) before each request, off again after it.
    assert seen["reaper"] == [(0, 1), (1, 0)] * 2
    assert subreaper() == 0


def test_a_forked_kernel_sees_what_a_new_process_sees(seen):
    new, forked = seen["new"]["probe"], seen["forked"]["probe"]
    assert new["parent is the test worker"] and new["leads its session"]
    assert new["streams"][0] == "pipe:" and new["streams"][2] == os.devnull
    assert new["argv"][0] == "ipykernel_launcher.py" and not new["template module"]
    assert "TORCHINDUCTOR_CACHE_DIR" in new["env"]  # set by the optimizer's first construction
    differ = {key: (new[key], forked[key]) for key in new
              if key != "random" and new[key] != forked[key]}
    assert not differ


def test_forked_kernels_draw_their_own_random_numbers(seen):
    draws = [seen[way]["probe"]["random"] for way in ("new", "forked", "forked again")]
    for generator, numbers in zip(["torch", "numpy", "random"], zip(*draws, strict=True),
                                  strict=True):
        assert len(set(numbers)) == 3, generator


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


def test_a_forked_kernel_is_shut_down_and_reaped_as_a_new_one(tmp_path, monkeypatch):
    with open(os.devnull, "w") as errors:
        for way, launcher in [("new", original_launcher()),
                              ("forked", kernel_forks.forking(original_launcher()))]:
            manager, client = start(tmp_path, monkeypatch, launcher, errors)
            process = manager.provisioner.process
            client.stop_channels()
            manager.shutdown_kernel(now=True)  # as nbval does after a notebook
            # Exited (its status read by this process, which the fork made its parent) and gone.
            assert process.poll() is not None, way
            assert not os.path.exists(f"/proc/{process.pid}"), way
    assert type(process) is kernel_forks.ForkedKernel


# Templates that import only a module of the test's own (no torch: a fraction of a second).
MODULES = {
    "starts_a_thread": "import threading, time\n"
                       "threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n",
    "prints_when_imported": "print('hello')\n",
    "imports_nothing": "",
}


@pytest.fixture
def modules(tmp_path, monkeypatch):
    for name, code in MODULES.items():
        (tmp_path / f"{name}.py").write_text(code)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("module, refusal", [("starts_a_thread", "started 1 threads"),
                                             ("prints_when_imported", "printed 'hello\\n'")])
def test_a_template_refuses_when_an_import_starts_a_thread_or_prints(modules, module, refusal):
    template = kernel_forks.Template(preload=(module,))
    assert template.refusal == f"RuntimeError: importing {module} {refusal}"
    assert template.process.returncode == 0  # it has exited


def launch(folder, monkeypatch, template, original):
    """Launch a kernel's command through forking(original), with `template` as the worker's."""
    monkeypatch.setattr(kernel_forks.Template, "_running", template)
    command = [sys.executable, "-m", "ipykernel_launcher", "-f", str(folder / "kernel.json")]
    return kernel_forks.forking(original)(command, stderr=subprocess.DEVNULL, cwd=str(folder))


def test_kernels_start_as_new_processes_when_the_template_refuses(modules, monkeypatch):
    template = kernel_forks.Template(preload=("starts_a_thread",))
    calls = []
    result = launch(modules, monkeypatch, template, lambda cmd, **kw: calls.append(cmd) or "new")
    assert result == "new" and calls[0][:3] == [sys.executable, "-m", "ipykernel_launcher"]


def test_a_kernel_that_fails_to_fork_starts_as_a_new_process(modules, monkeypatch):
    template = kernel_forks.Template(preload=("imports_nothing",))
    assert template.refusal is None
    calls = []
    # A working folder that does not exist: the forked child fails before it is ready.
    result = launch(modules / "missing", monkeypatch, template,
                    lambda cmd, **kw: calls.append(kw["cwd"]) or "new")
    assert result == "new" and calls == [str(modules / "missing")]
    assert template.refusal.startswith("a kernel could not be forked (RuntimeError: the kernel")
    assert template.process.returncode == 0  # closed: no later kernel is forked from it
    assert not zombies()  # the failed kernel, adopted by this process, was waited for


def test_a_kernel_whose_environment_differs_starts_as_a_new_process(modules, monkeypatch):
    template = kernel_forks.Template(preload=("imports_nothing",))
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # torch would read it when imported
    calls = []
    try:
        result = launch(modules, monkeypatch, template,
                        lambda cmd, **kw: calls.append(cmd) or "new")
        assert template.differs(dict(os.environ)) == {"OMP_NUM_THREADS"}
    finally:
        template.close()
    assert result == "new" and len(calls) == 1 and template.refusal is None


def test_a_template_that_died_is_started_again(modules, monkeypatch):
    monkeypatch.setattr(kernel_forks, "PRELOAD", ("imports_nothing",))
    monkeypatch.setattr(kernel_forks.Template, "_running", None)
    first = kernel_forks.Template.get()
    first.process.kill()
    first.process.wait()
    second = kernel_forks.Template.get()
    try:
        assert second is not first and second.refusal is None and second.process.poll() is None
    finally:
        second.close()
