"""gossipdht nodes as local ``twistd`` processes: for ``make run``, benchmarks and tests.

Each node lives in its own directory: ``data/`` (its ``--data-dir`` unless told
otherwise) and ``node.log`` (stdout and stderr of every run, appended).  Requests use
blocking ``http.client``: this module never imports the Twisted reactor.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Mapping, Optional, Sequence, Union

TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
POLL_INTERVAL = 0.05
REQUEST_TIMEOUT = 10.0
HOST = "127.0.0.1"

_ports_handed_out: set[int] = set()


class NodeStartError(AssertionError):
    """A node did not come up; the message holds the tail of its log."""


def stop_process(process: subprocess.Popen, timeout: float = STOP_TIMEOUT) -> int:
    """SIGTERM the process and wait for it to exit; SIGKILL it after ``timeout``.

    Returns the exit status (negative: killed by that signal)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
    return process.returncode


def free_port(host: str = HOST) -> int:
    """A port free for both TCP (the API) and UDP (gossip), never the same one twice
    in a process.

    The kernel may hand a port back soon after it was closed, and nodes start on these
    ports later: remembering them avoids giving one to two nodes.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(100):
        with socket.socket(family) as tcp, socket.socket(family, socket.SOCK_DGRAM) as udp:
            tcp.bind((host, 0))
            port = tcp.getsockname()[1]
            try:
                udp.bind((host, port))
            except OSError:
                continue
        if port not in _ports_handed_out:
            _ports_handed_out.add(port)
            return port
    raise RuntimeError("no free port found")


def twistd_command(*args: str) -> list[str]:
    """The command line that runs ``twistd gossipdht`` in the foreground with ``args``."""
    return [TWISTD, "--nodaemon", "--pidfile=", "gossipdht", *args]


def run_twistd(*args: str, cwd: Union[str, Path], timeout: float = 30.0) -> subprocess.CompletedProcess:
    """Run ``twistd gossipdht ARGS`` to its end; ``stdout`` holds stdout and stderr, as text.

    For commands expected to exit on their own (bad options, a busy port).
    """
    return subprocess.run(
        twistd_command(*args), cwd=cwd, env=_child_env(), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
    )


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class NodeProcess:
    """One node, started and restarted as a ``twistd`` child process."""

    def __init__(self, directory: Union[str, Path], port: Optional[int] = None, host: str = HOST,
                 prefix: Sequence[str] = (), tls: Optional[ssl.SSLContext] = None) -> None:
        """``tls``: the node serves its API over TLS, and requests trust what this context trusts."""
        # Absolute: the node runs in its directory, where a relative path would nest.
        self.directory = Path(directory).absolute()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.host = host
        #: What the node runs under, such as ``ip netns exec HOST`` for a host of its own.
        self.prefix = tuple(prefix)
        self.port = port if port is not None else free_port(host)
        self.data_dir = self.directory / "data"
        self.log_path = self.directory / "node.log"
        self.process: Optional[subprocess.Popen] = None
        self.tls = tls
        self.args: tuple[str, ...] = ()
        self._log_offset = 0

    # -- life cycle ----------------------------------------------------------------

    def start(self, *args: str, data_dir: Union[str, Path, None] = None,
              timeout: float = START_TIMEOUT, env: Optional[Mapping[str, str]] = None) -> "NodeProcess":
        """Launch ``twistd gossipdht --port PORT --data-dir DATA_DIR ARGS`` (with ``env``
        added to the environment) and wait until ``GET /health`` answers 200; fail with
        the log if the process exits first or the deadline passes."""
        if self.running:
            raise RuntimeError(f"node on port {self.port} is already running")
        if data_dir is not None:
            self.data_dir = Path(data_dir).absolute()
        self.args = ("--port", str(self.port), "--data-dir", str(self.data_dir), *args)
        with open(self.log_path, "ab") as log:
            self._log_offset = log.tell()
            # A session of its own: Ctrl-C in a terminal reaches the parent only, which
            # then stops the node once (a second signal made twistd log a traceback).
            self.process = subprocess.Popen(
                [*self.prefix, *twistd_command(*self.args)], cwd=self.directory, env={**_child_env(), **(env or {})},
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        self._wait_until_healthy(timeout)
        return self

    def _wait_until_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise NodeStartError(
                    f"node on port {self.port} exited with status {self.process.returncode} "
                    f"before answering /health; its log:\n{self.log()}"
                )
            try:
                status, _, _ = self.request("GET", "/health", timeout=1.0)
            except (OSError, http.client.HTTPException):
                status = None
            # Something else could answer on the port: the node must still be alive.
            if status == 200 and self.process.poll() is None:
                return
            if time.monotonic() >= deadline:
                self.kill9()
                raise NodeStartError(
                    f"node on port {self.port} did not answer /health within {timeout} s; "
                    f"its log:\n{self.log()}"
                )
            time.sleep(POLL_INTERVAL)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> Optional[int]:
        return None if self.process is None else self.process.pid

    def kill9(self) -> Optional[int]:
        """SIGKILL the node, as a crash would, and reap it; its exit status."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        return self.process.wait()

    def stop(self, timeout: float = STOP_TIMEOUT) -> Optional[int]:
        """SIGTERM the node and wait for a clean exit; SIGKILL it after ``timeout``.

        Returns the exit status (negative: killed by that signal)."""
        return None if self.process is None else stop_process(self.process, timeout)

    def log(self, whole: bool = False) -> str:
        """The log of the latest start (or of every start), as text."""
        try:
            with open(self.log_path, "rb") as f:
                if not whole:
                    f.seek(self._log_offset)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    # -- HTTP ----------------------------------------------------------------------

    def url(self, path: str = "/") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}{path}"

    def request(self, method: str, path: str, body: Optional[bytes] = None,
                headers: Optional[Mapping[str, str]] = None,
                timeout: float = REQUEST_TIMEOUT) -> tuple[int, http.client.HTTPMessage, bytes]:
        """One request on a fresh connection: (status, headers, body).

        ``path`` goes out as given: percent-encode keys yourself."""
        if self.tls is None:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        else:
            connection = http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self.tls)
        try:
            connection.request(method, path, body=body, headers=dict(headers or {}))
            response = connection.getresponse()
            return response.status, response.headers, response.read()
        finally:
            connection.close()

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "stopped"
        return f"<NodeProcess {self.url('')} {state} in {self.directory}>"
