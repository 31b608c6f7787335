"""etcd 3, what a user would pick instead, measured in the same run as gossipdht.

When ``etcd`` is on the PATH (Debian: ``apt-get install etcd-server``), the benchmark
starts three members on loopback with the defaults a user gets (each write is fsynced by
a quorum before it is acknowledged, reads are linearizable), preloads the keys that the
GET rows read (one put each, as a user's keys arrive), and drives one member's JSON
gateway with ``etcd.lua``: the leader (the best case for etcd: a follower forwards each
write, and asks the leader before each read), or a follower when told so.  The gateway takes keys and values in base64.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from gossipdht.tools.nodeprocess import HOST, free_port, stop_process

MEMBERS = 3
INSTALL = "etcd not found: apt-get install etcd-server"
#: Which member the rows drive: ``--etcd-member``.
CHOICES = ("leader", "follower")


@dataclass(frozen=True)
class Members:
    """The running members: their client ports and process ids, member ``m1`` first."""

    ports: tuple[int, ...]
    pids: tuple[int, ...]

    def name(self, port: int) -> str:
        return f"m{self.ports.index(port) + 1}"


class EtcdError(Exception):
    """etcd did not start, could not be reached, or answered something else than expected."""


def etcd_path() -> Optional[str]:
    return shutil.which("etcd")


def etcd_version() -> str:
    run = subprocess.run(["etcd", "--version"], capture_output=True, text=True, timeout=10)
    match = re.search(r"etcd Version: (\S+)", run.stdout)
    return match.group(1) if match else "unknown"


def start_etcd(stack: ExitStack, directory: Path, timeout: float) -> Members:
    """``MEMBERS`` members on ``HOST``, each stopped when ``stack`` closes, once every one is healthy."""
    ports = [(free_port(), free_port()) for _ in range(MEMBERS)]
    pids = []
    cluster = ",".join(f"m{i}=http://{HOST}:{peer}" for i, (_, peer) in enumerate(ports, 1))
    for i, (client, peer) in enumerate(ports, 1):
        log = stack.enter_context(open(directory / f"etcd-m{i}.log", "wb"))
        process = subprocess.Popen(
            ["etcd", "--name", f"m{i}", "--data-dir", str(directory / f"etcd-m{i}"),
             "--listen-client-urls", f"http://{HOST}:{client}", "--advertise-client-urls", f"http://{HOST}:{client}",
             "--listen-peer-urls", f"http://{HOST}:{peer}", "--initial-advertise-peer-urls", f"http://{HOST}:{peer}",
             "--initial-cluster", cluster, "--initial-cluster-state", "new",
             "--log-level", "error"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        stack.callback(stop_process, process)
        pids.append(process.pid)
    members = Members(tuple(client for client, _ in ports), tuple(pids))
    wait_healthy(members, timeout)
    return members


def wait_healthy(members: Members, timeout: float) -> None:
    """Until every member answers ``/health`` with ``true``; EtcdError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not all(map(_healthy, members.ports)):
        if time.monotonic() > deadline:
            raise EtcdError(f"etcd was not healthy within {timeout:.0f} s; see its etcd-m*.log")
        time.sleep(0.1)


def leader(members: Members) -> int:
    """The client port of the member that every member names as the leader
    (``/v3/maintenance/status``); EtcdError when they do not agree."""
    statuses = [_post(port, "/v3/maintenance/status", {}) for port in members.ports]
    ids = [status["header"]["member_id"] for status in statuses]
    named = {status["leader"] for status in statuses}
    if len(named) != 1 or next(iter(named)) not in ids:
        raise EtcdError(f"no leader that every member names (they name {', '.join(sorted(named))})")
    return members.ports[ids.index(next(iter(named)))]


def choose(members: Members, which: str) -> int:
    """The client port of the ``leader``, or of the first ``follower``."""
    first = leader(members)
    return first if which == "leader" else next(port for port in members.ports if port != first)


def _healthy(port: int) -> bool:
    try:
        status, body = _call(port, "GET", "/health", None)
        return status == 200 and json.loads(body).get("health") == "true"
    except (EtcdError, ValueError):
        return False


def _call(port: int, method: str, path: str, message: Optional[dict], timeout: float = 60.0,
          kept: Optional[http.client.HTTPConnection] = None) -> tuple[int, bytes]:
    """Status and body, on the ``kept`` connection if given (left open), else on one of its
    own; EtcdError when etcd cannot be reached or breaks off."""
    connection = kept or http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        body = None if message is None else json.dumps(message).encode()
        connection.request(method, path, body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException) as e:
        raise EtcdError(f"{path}: {e}") from None
    finally:
        if kept is None:
            connection.close()


def _post(port: int, path: str, message: dict, kept: Optional[http.client.HTTPConnection] = None) -> dict:
    """The JSON answer of a ``POST``; EtcdError for any status but 200."""
    status, body = _call(port, "POST", path, message, kept=kept)
    try:
        if status == 200:
            return json.loads(body)
    except ValueError:
        pass
    raise EtcdError(f"{path} answered {status}: {body[:200]!r}")


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def put_each(port: int, items: Sequence[tuple[str, str]], connections: int = 16) -> None:
    """Each item in a put of its own, over ``connections`` kept connections at once.

    Not in transactions of many puts: reads of keys written 100 or 1,000 to a transaction
    measured 4,000-4,200 a second here, against 6,700 for the same 100,000 keys written one
    by one (and 5,700 for 10 to a transaction), so a preload in transactions would measure
    etcd below what its users see."""
    local = threading.local()
    opened: list[http.client.HTTPConnection] = []

    def put(item: tuple[str, str]) -> None:
        if not hasattr(local, "connection"):
            local.connection = http.client.HTTPConnection(HOST, port, timeout=60)
            opened.append(local.connection)
        key, value = item
        _post(port, "/v3/kv/put", {"key": _b64(key), "value": _b64(value)}, local.connection)

    try:
        with ThreadPoolExecutor(connections) as pool:
            list(pool.map(put, items))
    finally:
        for connection in opened:
            connection.close()


def value(port: int, key: str) -> Optional[str]:
    """The value stored at ``key``, or None."""
    found = _post(port, "/v3/kv/range", {"key": _b64(key)}).get("kvs")
    return base64.b64decode(found[0]["value"]).decode() if found else None


def count(port: int, prefix: str) -> int:
    """How many keys start with ``prefix``."""
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return int(_post(port, "/v3/kv/range", {"key": _b64(prefix), "range_end": _b64(end), "count_only": True})
               .get("count", 0))
