"""Notebook kernels for a test run, forked from a process that has already imported torch.

Every notebook that nbval checks gets a kernel of its own, and a new kernel pays for Python,
ipykernel, torch and matplotlib again: about 4 s of CPU each on CI's two cores, most of what a
short chapter costs. Here each test worker starts one helper process, the *template*, which
imports them once (PRELOAD) and then forks a kernel for each notebook.

What a forked kernel shares with a new process, and what not:
  - the same: from the fork on it runs what `python -m ipykernel_launcher -f <connection file>`
    runs, at the same stack depth, in the same working folder, with the same environment
    (os.environ), arguments, import path, standard streams, session and parent (the test
    worker), and random generators (Python's, torch's, NumPy's) seeded afresh, as a new
    process's are;
  - shared with the template: the modules it imported, with what importing them did (warning
    filters and exit handlers they added, TORCHINDUCTOR_CACHE_DIR, which torch._dynamo sets),
    there from the start instead of from the first import, and their objects kept out of the
    garbage collector's passes (gc.freeze, as servers that fork do); what Python and those
    modules read from the environment when they started, so a kernel whose environment differs
    from the template's in anything but the variables of VARIES starts as a new process; the
    process's own record of how it started (/proc/self/cmdline and /proc/self/environ, and the
    name of the bottom stack frame); and Python's seed for string hashes.
tests/test_kernel_forks.py checks this. nbval still compares every stored output, so a kernel
that behaved differently would fail the test; a template whose imports print anything (which a
kernel would show in a cell) or start a thread (a fork would copy a process with another thread
running) refuses to fork, and the kernels start as new processes. torch starts an OpenMP thread
when imported unless OMP_NUM_THREADS=1, which conftest.py sets unless it is set already.

Used by the root conftest.py for every pytest run in the repository, on Linux only: macOS's
system frameworks are not safe to use in a forked child, and Windows has no fork. With
BOOK_FRESH_KERNELS=1 every kernel starts as a new process (the GPU run sets it), except those
of tests/test_kernel_forks.py, which forks its own. `make execute`
(tools/execute.py), which writes the outputs the website shows, always starts new processes.

How the pieces fit:
  - install() replaces jupyter_client's launch_kernel, the function its local provisioner calls,
    by one that asks the template for a kernel when the command is this interpreter's ipykernel,
    and otherwise, or when the template cannot, calls the original;
  - the template forks twice, so that the kernel's parent becomes the test worker (marked as a
    reaper of orphaned descendants for that moment only), which can then wait for the kernel
    and read its exit status as it would for a kernel it had started itself.
"""
from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
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
ENABLED = sys.platform == "linux" and os.environ.get("BOOK_FRESH_KERNELS") != "1"
PR_SET_CHILD_SUBREAPER = 36
MESSAGE_BYTES = 1 << 20
READY_SECONDS = 180  # the template's imports, on a busy machine
FORK_SECONDS = 60
# Variables a kernel's environment may have that the template's did not, or not with that value:
# those launch_kernel and pytest set for each kernel or test.
VARIES = {"JPY_PARENT_PID", "PYTEST_CURRENT_TEST"}

# The template's program (`python -c`). In the template, serve() returns False once the worker
# has gone; in a forked kernel it returns True, and the kernel then runs ipykernel's launcher
# from the top of the stack, as `python -m ipykernel_launcher` does.
TEMPLATE = """\
import sys
base = sys.path[0 if sys.flags.safe_path else 1:]
sys.path.insert(0, {tools!r})
if __import__("kernel_forks").serve({fd}, base, {preload!r}):
    del base
    __import__("runpy")._run_code(*sys.modules.pop("kernel_forks").launcher())
"""


# --- In the test worker -------------------------------------------------------------------------

class ForkedKernel:
    """What jupyter_client's local provisioner uses of the subprocess.Popen it normally gets."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None

    def _reap(self, options: int) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, options)
            except ChildProcessError:  # reaped elsewhere: gone, status unknown (as Popen does)
                self.returncode = 0
            else:
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def poll(self) -> int | None:
        return self._reap(os.WNOHANG)

    def wait(self, timeout: float | None = None) -> int:
        if timeout is None:
            return self._reap(0)
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > deadline:
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


def with_backend(env) -> dict[str, str]:
    """`env` with the MPLBACKEND ipykernel starts a kernel with."""
    return {"MPLBACKEND": INLINE, **env}


def reap_orphans(on: bool) -> None:
    """Make this process the parent of its orphaned descendants (Linux's child subreaper)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


class ForkFailed(Exception):
    """The template's account of a kernel it could not fork."""


class Template:
    """The worker's end of a template process; `refusal` says why it does not fork, if so."""

    _running: Template | None = None

    @classmethod
    def get(cls) -> Template:
        """This worker's template: started on first use, again if it died, never after a refusal."""
        running = cls._running
        if running is None or (not running.refusal and running.process.poll() is not None):
            if running is not None:
                running.close()
            cls._running = cls()
        return cls._running

    def __init__(self, preload: tuple[str, ...] | None = None):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        code = TEMPLATE.format(tools=str(Path(__file__).parent), fd=theirs.fileno(),
                               preload=tuple(PRELOAD if preload is None else preload))
        # Variables that modules read when imported, set as the kernels will have them:
        # JPY_PARENT_PID as launch_kernel sets it for every kernel of this worker (ipykernel
        # watches that process), MPLBACKEND as ipykernel sets it unless it is set already.
        self.environment = with_backend(os.environ)
        env = dict(self.environment, JPY_PARENT_PID=str(os.getpid()))
        with theirs:
            # A session of its own: a Ctrl-C meant for pytest does not reach it; it ends when
            # the worker closes its end of the socket, or exits.
            self.process = subprocess.Popen(
                [sys.executable, "-c", code], pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                env=env, start_new_session=True)
        self.socket = ours
        self.refusal: str | None = None
        try:
            self.socket.settimeout(READY_SECONDS)
            hello = json.loads(self.socket.recv(MESSAGE_BYTES) or b'{"error": "it exited"}')
            self.refusal = hello.get("error")
        except BaseException as error:
            self.refusal = f"{type(error).__name__}: {error}"
            if not isinstance(error, Exception):
                self.close()
                raise
        if self.refusal:
            self.close()

    def close(self) -> None:
        self.socket.close()  # the template reads the end of its requests, and exits
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def differs(self, env: dict[str, str]) -> set[str]:
        """The variables in which a kernel's environment differs from the template's."""
        env = with_backend(env)
        names = (set(env) | set(self.environment)) - VARIES
        return {name for name in names if env.get(name) != self.environment.get(name)}

    def fork(self, arguments: list[str], env: dict[str, str], cwd: str, streams: list[int]) -> int:
        """A kernel's pid: a child of this process by the time it is returned.

        The kernel waits for a byte on `go` before it runs, and exits if the pipe closes
        without one: a kernel whose pid never reached this process does not run on.
        """
        request = json.dumps({"arguments": arguments, "env": env, "cwd": cwd}).encode()
        go_read, go = os.pipe()
        reply = {}
        try:
            self.socket.settimeout(FORK_SECONDS)
            # The middle process exits, orphaning the kernel, before the template replies.
            reap_orphans(True)
            try:
                socket.send_fds(self.socket, [request], [*streams, go_read])
                os.close(go_read)
                go_read = None
                reply = json.loads(self.socket.recv(MESSAGE_BYTES) or b'{"error": "it exited"}')
            finally:
                reap_orphans(False)
            if "error" in reply:
                raise ForkFailed(reply["error"])
            os.write(go, b"g")
            return reply["pid"]
        except BaseException as error:  # a reply could come late, to the next request: stop here
            if not isinstance(error, ForkFailed):
                error = f"{type(error).__name__}: {error}"
            self.refusal = f"a kernel could not be forked ({error})"
            self.close()
            raise
        finally:
            os.close(go)  # a kernel still waiting reads the end, and exits
            if go_read is not None:
                os.close(go_read)
            if reply.get("failed"):  # a kernel that exited before it was ready: its status
                try:
                    os.waitpid(reply["failed"], 0)
                except ChildProcessError:
                    pass


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
        def as_original():
            return original(cmd, stdin=stdin, stdout=stdout, stderr=stderr, env=env,
                            independent=independent, cwd=cwd, **kw)

        if (kw or independent or cmd[:3] != [sys.executable, "-m", "ipykernel_launcher"]
                or {subprocess.PIPE, subprocess.STDOUT} & {stdin, stdout, stderr}):
            return as_original()
        env = dict(os.environ if env is None else env, JPY_PARENT_PID=str(os.getpid()))
        opened = []

        def descriptor(stream, default: int) -> int:
            if stream is None:
                return default
            if stream == subprocess.DEVNULL:
                opened.append(os.open(os.devnull, os.O_RDWR))
                return opened[-1]
            return stream if isinstance(stream, int) else stream.fileno()

        try:
            # As launch_kernel: by default a kernel's standard input is a pipe whose other end
            # is closed; output and errors go where the caller said, or to this process's own.
            streams = [descriptor(stdin, -1), descriptor(stdout, 1), descriptor(stderr, 2)]
            if streams[0] == -1:
                streams[0], write_end = os.pipe()
                os.close(write_end)
                opened.append(streams[0])
            try:
                template = Template.get()
            except Exception:  # no template (no process or socket to be had): as before
                return as_original()
            if template.refusal or template.differs(env):
                return as_original()
            arguments = [os.path.expanduser(argument) for argument in cmd[3:]]
            try:
                return ForkedKernel(template.fork(arguments, env, os.path.abspath(cwd or "."),
                                                  streams))
            except Exception:  # the template is closed and refuses from now on (its refusal)
                return as_original()
        finally:
            for fd in opened:
                os.close(fd)

    launch_kernel.original = original
    return launch_kernel


# --- In the template process --------------------------------------------------------------------

def thread_count() -> int:
    return len(os.listdir("/proc/self/task"))


def preload(names) -> None:
    """Import `names`; refuse if one starts a thread or prints anything (a kernel would show it)."""
    import importlib

    with tempfile.TemporaryFile() as printed:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(printed.fileno(), 1)
        os.dup2(printed.fileno(), 2)
        try:
            for name in names:
                importlib.import_module(name)
                sys.stdout.flush()
                sys.stderr.flush()
                if os.lseek(printed.fileno(), 0, os.SEEK_CUR):
                    text = os.pread(printed.fileno(), 300, 0).decode(errors="replace")
                    raise RuntimeError(f"importing {name} printed {text!r}")
                if thread_count() != 1:
                    raise RuntimeError(f"importing {name} started {thread_count() - 1} threads")
        finally:
            for target, fd in enumerate(saved, start=1):
                os.dup2(fd, target)
                os.close(fd)


def serve(fd: int, base_path: list[str], names: tuple[str, ...]) -> bool:
    """The template's loop: a request from the worker, a kernel forked, until the worker goes.

    Returns False in the template when the worker has gone, True in a kernel it forked.
    """
    sys.path[:] = base_path  # nothing imported from tools/ or the working folder
    channel = socket.socket(fileno=fd)
    environment = dict(os.environ)
    try:
        preload(names)
        if "torch" in sys.modules:
            import torch

            if torch.accelerator.current_accelerator() is None:  # compiled in; touches no device
                preload(PRELOAD_WITHOUT_ACCELERATOR)
            if torch.cuda.is_initialized():
                raise RuntimeError("importing made a CUDA context, which a forked child cannot use")
        set_by_imports = {name: value for name, value in os.environ.items()
                          if environment.get(name) != value}
        import gc

        gc.freeze()  # what is loaded now stays shared with the kernels, and exits faster
        channel.send(b"{}")
    except Exception as error:
        channel.send(json.dumps({"error": f"{type(error).__name__}: {error}"}).encode())
        return False
    while True:
        try:
            message, streams, _, _ = socket.recv_fds(channel, MESSAGE_BYTES, 4)
        except (ConnectionResetError, KeyboardInterrupt):
            return False
        if not message:
            return False  # the worker closed its end
        pid = None
        try:
            if thread_count() != 1:
                raise RuntimeError(f"the template runs {thread_count()} threads; it forks with one")
            if len(streams) != 4:
                raise RuntimeError(f"a request came with {len(streams)} descriptors, not 4")
            request = json.loads(message)
            pid = fork_kernel(request, streams, channel, base_path, set_by_imports)
            reply = {"pid": pid}
        except KernelFailed as error:
            reply = {"error": f"RuntimeError: {error}", "failed": error.pid}
        except Exception as error:
            reply = {"error": f"{type(error).__name__}: {error}"}
        if pid == 0:  # this is the kernel, ready to run
            return True
        for stream in streams:
            os.close(stream)
        try:
            channel.send(json.dumps(reply).encode())
        except OSError:  # the worker has gone
            return False


class KernelFailed(RuntimeError):
    """A forked kernel exited before it was ready; `pid` is the worker's to wait for."""

    def __init__(self, pid: int):
        super().__init__("the kernel exited before it started")
        self.pid = pid


def fork_kernel(request: dict, streams: list[int], channel: socket.socket, base_path: list[str],
                set_by_imports: dict[str, str]) -> int:
    """Fork a kernel, made ready to run: its pid in the template, 0 in the kernel itself."""
    ready_read, ready_write = os.pipe()
    try:
        middle = os.fork()
    except BaseException:
        os.close(ready_read)
        os.close(ready_write)
        raise
    if middle == 0:  # the middle process: forks the kernel and exits, so the worker adopts it
        try:
            middle_pid = os.getpid()
            if os.fork() == 0:
                try:
                    os.close(ready_read)
                    prepare_kernel(request, streams, channel, base_path, set_by_imports,
                                   ready_write, middle_pid)
                except BaseException:
                    traceback.print_exc()
                    os._exit(1)
                return 0
        except BaseException:
            pass
        os._exit(0)
    os.close(ready_write)
    os.waitpid(middle, 0)
    with os.fdopen(ready_read, "rb") as ready:
        written = ready.read().split()  # its pid, then "ready" once it is
    if written[1:] != [b"ready"]:
        if written:
            raise KernelFailed(int(written[0]))
        raise RuntimeError("the kernel exited before it started")
    return int(written[0])


def prepare_kernel(request: dict, streams: list[int], channel: socket.socket,
                   base_path: list[str], set_by_imports: dict[str, str], ready: int,
                   middle_pid: int) -> None:
    """In the forked kernel: set up the process as `python -m ipykernel_launcher` would have it."""
    os.write(ready, f"{os.getpid()} ".encode())
    channel.close()
    os.setsid()  # as launch_kernel's start_new_session: signals reach the kernel's group only
    *streams, go = streams
    for target, stream in enumerate(streams):
        os.dup2(stream, target)
        os.close(stream)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    for name, value in set_by_imports.items():
        os.environ.setdefault(name, value)
    sys.path[:] = [*([] if sys.flags.safe_path else [os.getcwd()]), *base_path]
    sys.argv = ["-m", *request["arguments"]]
    sys.orig_argv = [sys.executable, "-m", "ipykernel_launcher", *request["arguments"]]
    # Random generators seeded afresh, as in a new process (Python's own reseeds at a fork).
    if "torch" in sys.modules:
        sys.modules["torch"].default_generator.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    # ipykernel watches its parent from start-up; wait until that is the worker, not the middle.
    while os.getppid() == middle_pid:
        time.sleep(0.001)
    os.write(ready, b"ready")
    os.close(ready)
    if os.read(go, 1) != b"g":  # the worker did not take this kernel
        os._exit(1)
    os.close(go)


def launcher() -> tuple:
    """In the forked kernel: what runpy._run_module_as_main would run for ipykernel_launcher."""
    import runpy

    _, spec, code = runpy._get_module_details("ipykernel_launcher")
    sys.argv[0] = spec.origin
    return code, sys.modules["__main__"].__dict__, None, "__main__", spec
