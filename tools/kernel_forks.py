"""Notebook kernels for a test run, forked from a process that has already imported torch.

Every notebook that nbval checks gets a kernel of its own, and a new kernel pays for Python,
ipykernel and `import torch` again: about 5 s of CPU each on CI's two cores, most of the kernels'
fixed cost. Here, each test worker starts one helper process (the *template*) that imports torch
and ipykernel once and then forks a kernel for each notebook. From the fork on, a kernel runs
exactly what `python -m ipykernel_launcher -f <connection file>` runs, in the same working folder,
with the same environment, standard streams, session and import path; its imports of torch and
ipykernel find the modules already loaded. The stored outputs are compared as before, so a kernel
that behaved differently from a fresh one would fail the test.

Used by the root conftest.py for every pytest run in the repository, on Linux only: macOS's system
frameworks are not safe to use in a forked child, and Windows has no fork. Set BOOK_FRESH_KERNELS=1
to start every kernel as a new process instead (the GPU run does: nothing is shared with its
measurements). `make execute` (tools/execute.py), which writes the outputs the website shows,
always starts new processes.

How the pieces fit:
  - install() replaces jupyter_client's launch_kernel, the function its local provisioner calls, by
    one that forks from the template when the command is the current interpreter's ipykernel, and
    otherwise calls the original;
  - the template forks twice, so that the kernel's parent becomes the test worker (marked as its
    descendants' reaper), which can then wait for it and read its exit status, as for a kernel it
    had started itself;
  - a template forks only while it runs a single thread: forking a process with other threads
    (an OpenMP pool, say) can leave locks held in the child. It checks this before every fork.
"""
from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path

# What the template imports before it forks: what the chapters' kernels import anyway. matplotlib
# reads MPLBACKEND when imported, so the template sets it first, to the value ipykernel sets at
# start-up (INLINE). Nothing here may initialise a GPU: a forked child cannot use its parent's
# CUDA context. torch._dynamo, which the first optimizer a kernel makes imports, is preloaded only
# for a torch built without an accelerator, where there is nothing it could initialise.
PRELOAD = ("torch", "matplotlib.pyplot", "ipykernel.kernelapp", "ipykernel.ipkernel")
PRELOAD_WITHOUT_ACCELERATOR = ("torch._dynamo",)
INLINE = "module://matplotlib_inline.backend_inline"
ENABLED = sys.platform == "linux" and not os.environ.get("BOOK_FRESH_KERNELS")
PR_SET_CHILD_SUBREAPER = 36
MESSAGE_BYTES = 1 << 20


# --- In the test worker -------------------------------------------------------------------------

class ForkedKernel:
    """What jupyter_client's local provisioner uses of the subprocess.Popen it normally gets."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"kernel {self.pid}", timeout)
            time.sleep(0.01)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class Template:
    """The worker's end of its template process: started on first use, gone with the worker."""

    _running: Template | None = None

    @classmethod
    def get(cls) -> Template:
        running = cls._running
        if running is None or (not running.refusal and running.process.poll() is not None):
            cls._running = cls()
        return cls._running

    def __init__(self):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # `python -c`: the import path starts with '' as for any script, which the template
        # drops; the kernels get the one `python -m ipykernel_launcher` would have.
        here = str(Path(__file__).parent)
        code = (f"import sys; base = sys.path[1:]; sys.path.insert(0, {here!r}); "
                f"import kernel_forks; kernel_forks.serve({theirs.fileno()}, base)")
        with theirs:
            # Variables that modules read when imported, set as the kernels will have them:
            # JPY_PARENT_PID as launch_kernel sets it for every kernel of this worker (ipykernel
            # watches that process), MPLBACKEND as ipykernel sets it unless it is set already.
            env = dict(os.environ, JPY_PARENT_PID=str(os.getpid()))
            env.setdefault("MPLBACKEND", INLINE)
            self.process = subprocess.Popen(
                [sys.executable, "-c", code], pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                env=env)
        self.socket = ours
        # The template's first message says whether it can fork: not if an import failed or
        # started a thread (torch starts an OpenMP thread unless OMP_NUM_THREADS=1).
        hello = json.loads(self.socket.recv(MESSAGE_BYTES) or b'{"error": "the template exited"}')
        self.refusal = hello.get("error")

    def close(self) -> None:
        self.socket.close()  # the template reads the end of its requests, and exits
        self.process.wait(timeout=30)

    def fork(self, arguments: list[str], env: dict[str, str], cwd: str, streams: list[int]) -> int:
        request = json.dumps({"arguments": arguments, "env": env, "cwd": cwd}).encode()
        socket.send_fds(self.socket, [request], streams)
        reply = json.loads(self.socket.recv(MESSAGE_BYTES) or b'{"error": "the template exited"}')
        if "error" in reply:
            raise RuntimeError(f"could not fork a notebook kernel: {reply['error']}")
        return reply["pid"]


def install() -> None:
    """Send jupyter_client's launches of this interpreter's ipykernel through a template."""
    from jupyter_client.provisioning import local_provisioner

    if not hasattr(local_provisioner.launch_kernel, "original"):
        local_provisioner.launch_kernel = forking(local_provisioner.launch_kernel)


def close() -> None:
    """End this process's template, if it started one (its kernels are not its children)."""
    if Template._running is not None:
        Template._running.close()
        Template._running = None


def forking(original):
    """jupyter_client's launch_kernel (`original`), forking the kernels it can from a template."""

    def launch_kernel(cmd, stdin=None, stdout=None, stderr=None, env=None, independent=False,
                      cwd=None, **kw):
        if (kw or independent or cmd[:3] != [sys.executable, "-m", "ipykernel_launcher"]
                or subprocess.PIPE in (stdin, stdout, stderr)):
            return original(cmd, stdin=stdin, stdout=stdout, stderr=stderr, env=env,
                            independent=independent, cwd=cwd, **kw)
        env = dict(os.environ if env is None else env, JPY_PARENT_PID=str(os.getpid()))
        opened = []

        def descriptor(stream, default: int) -> int:
            if stream is None:
                return default
            if stream == subprocess.DEVNULL:
                opened.append(os.open(os.devnull, os.O_RDWR))
                return opened[-1]
            return stream if isinstance(stream, int) else stream.fileno()

        # As launch_kernel: by default a kernel's standard input is a pipe whose other end is
        # closed; output and errors go where the caller said, or to this process's own.
        streams = [descriptor(stdin, -1), descriptor(stdout, 1), descriptor(stderr, 2)]
        if streams[0] == -1:
            streams[0], write_end = os.pipe()
            os.close(write_end)
            opened.append(streams[0])
        try:
            template = Template.get()
            if template.refusal:  # a new process, as jupyter_client would start
                return original(cmd, stdin=stdin, stdout=stdout, stderr=stderr, env=env, cwd=cwd)
            pid = template.fork(cmd[3:], env, os.fspath(cwd or os.getcwd()), streams)
        finally:
            for fd in opened:
                os.close(fd)
        return ForkedKernel(pid)

    launch_kernel.original = original
    return launch_kernel


# --- In the template process --------------------------------------------------------------------

def thread_count() -> int:
    return len(os.listdir("/proc/self/task"))


def preload(name: str) -> None:
    """Import `name`, and refuse to go on if that started a thread."""
    import importlib

    importlib.import_module(name)
    if thread_count() != 1:
        raise RuntimeError(f"importing {name} started {thread_count() - 1} more threads")


def serve(fd: int, base_path: list[str]) -> None:
    """The template's loop: a request from the worker, a kernel forked, until the worker goes."""
    channel = socket.socket(fileno=fd)
    try:
        for name in PRELOAD:
            preload(name)
        import torch

        if torch.accelerator.current_accelerator() is None:  # compiled in; touches no device
            for name in PRELOAD_WITHOUT_ACCELERATOR:
                preload(name)
        if torch.cuda.is_initialized():
            raise RuntimeError("importing made a CUDA context, which a forked child cannot use")
        channel.send(b"{}")
    except Exception as error:
        channel.send(json.dumps({"error": f"{type(error).__name__}: {error}"}).encode())
        return
    while True:
        try:
            message, streams, _, _ = socket.recv_fds(channel, MESSAGE_BYTES, 3)
        except ConnectionResetError:
            return
        if not message:
            return  # the worker closed its end
        try:
            if thread_count() != 1:
                raise RuntimeError(f"the template runs {thread_count()} threads; it forks with one")
            reply = {"pid": fork_kernel(json.loads(message), streams, channel, base_path)}
        except Exception as error:
            reply = {"error": f"{type(error).__name__}: {error}"}
        for stream in streams:
            os.close(stream)
        channel.send(json.dumps(reply).encode())


def fork_kernel(request: dict, streams: list[int], channel: socket.socket,
                base_path: list[str]) -> int:
    ready_read, ready_write = os.pipe()
    middle = os.fork()
    if middle == 0:  # the middle process: forks the kernel and exits, so the worker adopts it
        try:
            if os.fork() == 0:
                os.close(ready_read)
                run_kernel(request, streams, channel, base_path, ready_write)
        finally:
            os._exit(0)
    os.close(ready_write)
    os.waitpid(middle, 0)
    with os.fdopen(ready_read, "rb") as ready:
        pid = ready.read()  # written once the kernel leads its own session; empty if it failed
    if not pid:
        raise RuntimeError("the kernel exited before it started")
    return int(pid)


def run_kernel(request: dict, streams: list[int], channel: socket.socket, base_path: list[str],
               ready: int) -> None:
    """In the forked kernel: become `python -m ipykernel_launcher ARGUMENTS`. Never returns."""
    code = 1
    try:
        channel.close()
        os.setsid()  # as launch_kernel's start_new_session: signals reach the kernel's group only
        for target, stream in enumerate(streams):
            os.dup2(stream, target)
            os.close(stream)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.path[:] = [os.getcwd(), *base_path]
        sys.argv = ["-m", *request["arguments"]]  # runpy puts the module's file first
        sys.orig_argv = [sys.executable, "-m", "ipykernel_launcher", *request["arguments"]]
        sys.modules.pop("kernel_forks", None)
        os.write(ready, str(os.getpid()).encode())
        os.close(ready)
        import runpy

        try:
            runpy.run_module("ipykernel_launcher", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else (exit.code is not None)
    except BaseException:
        traceback.print_exc()
    finally:
        # What the interpreter does at exit, short of tearing down the template's state it shares.
        import atexit
        import threading

        try:
            threading._shutdown()
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
