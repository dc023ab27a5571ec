"""`make lab` works: JupyterLab starts from .venv, serves a chapter, and its kernel runs a cell.

A reader's first step is usually to open a notebook and run it. This starts the same server that
`make lab` starts, with the options the Makefile gives it (read with `make -n lab`), headless, on
a free loopback port; checks that it opens on the chapters' folder; reads a chapter through the
contents API, starts a kernel, runs one of the chapter's own cells over the kernel's websocket,
and compares the result with the output stored in the notebook.
"""
import json
import os
import secrets
import shlex
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
import websocket

from book import ROOT, notebooks

JUPYTER_LAB = Path(sys.executable).parent / "jupyter-lab"


def make_lab_options() -> list[str]:
    """The options `make lab` gives JupyterLab (`make -n` prints its command without running it)."""
    printed = subprocess.run(["make", "-n", "lab"], cwd=ROOT, capture_output=True, text=True,
                             check=True, timeout=60).stdout.replace("\\\n", " ")
    command = shlex.split(next(line for line in printed.splitlines() if "jupyter lab" in line))
    return command[command.index("lab") + 1:]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Lab:
    def __init__(self, port, token):
        self.base = f"http://127.0.0.1:{port}"
        self.ws_base = f"ws://127.0.0.1:{port}"
        self.token = token

    def request(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.base}{path}", data=data, method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read().decode()
        return json.loads(text) if text else None

    def landing(self):
        """The path a browser pointed at the server's root ends up on, after redirects."""
        request = urllib.request.Request(f"{self.base}/",
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return urllib.parse.urlparse(response.url).path


@pytest.fixture
def lab(tmp_path):
    port, token = free_port(), secrets.token_hex(16)
    log = tmp_path / "lab.log"
    with open(log, "w") as log_file:
        yield from serve(tmp_path, port, token, log, log_file)


def serve(tmp_path, port, token, log, log_file):
    server = subprocess.Popen(
        [JUPYTER_LAB, *make_lab_options(), "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", f"--IdentityProvider.token={token}",
         "--ServerApp.port_retries=0"],
        stdout=subprocess.DEVNULL, stderr=log_file,
        # Jupyter writes its runtime files (connection files, server info) here, not in $HOME.
        env={**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")},
    )
    client = Lab(port, token)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                client.request("GET", "/api/status")
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("JupyterLab did not start:\n" + log.read_text())
                time.sleep(0.5)
        yield client
    finally:
        server.terminate()
        server.wait(timeout=30)


def execute(socket_, code):
    """Send one execute_request on the shell channel; collect iopub results until idle."""
    msg_id = uuid.uuid4().hex
    socket_.send(json.dumps({
        "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "test",
                   "session": uuid.uuid4().hex, "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell",
        "content": {"code": code, "silent": False, "store_history": True,
                    "user_expressions": {}, "allow_stdin": False},
    }))
    results = []
    while True:
        message = json.loads(socket_.recv())
        if message.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind = message["msg_type"]
        if kind == "error":
            raise AssertionError(f"{message['content']['ename']}: {message['content']['evalue']}")
        if kind == "execute_result":
            results.append(message["content"]["data"]["text/plain"])
        if kind == "status" and message["content"]["execution_state"] == "idle":
            return results


def test_make_lab_options():
    options = make_lab_options()
    assert f"--ServerApp.root_dir={ROOT}" in options
    assert ("--allow-root" in options) == (os.getuid() == 0)  # as root, Jupyter needs it


def test_lab_opens_on_the_chapters(lab):
    assert lab.landing() == "/lab/tree/book"


def test_lab_serves_a_chapter_and_runs_its_cell(lab):
    chapter = notebooks()[0].relative_to(ROOT)
    model = lab.request("GET", f"/api/contents/{chapter}?content=1")
    assert model["type"] == "notebook"
    cells = [cell for cell in model["content"]["cells"] if cell["cell_type"] == "code"]
    # The first cell with a stored value (execute_result) that needs only torch imported.
    setup = cells[0]["source"]
    target = next(
        c for c in cells if any(o["output_type"] == "execute_result" for o in c["outputs"])
    )
    stored = next(o for o in target["outputs"] if o["output_type"] == "execute_result")

    kernel = lab.request("POST", "/api/kernels", {"name": "python3"})
    try:
        channels = websocket.create_connection(
            f"{lab.ws_base}/api/kernels/{kernel['id']}/channels?token={lab.token}", timeout=60)
        try:
            execute(channels, setup)
            results = execute(channels, target["source"])
        finally:
            channels.close()
    finally:
        lab.request("DELETE", f"/api/kernels/{kernel['id']}")
    assert results == [stored["data"]["text/plain"]]
