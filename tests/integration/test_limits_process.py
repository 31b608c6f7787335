"""A node process under abuse and load: its memory with many unfinished bodies, a fuzz of its
HTTP surface, and gossip while one node of three is flooded."""

from __future__ import annotations

import json
import random
import re
import resource
import shutil
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest

from gossipdht.tools.localcluster import join, peers, wait_for
from gossipdht.tools.nodeprocess import NodeProcess

MIB = 1 << 20


@pytest.fixture(autouse=True)
def open_files():
    """Room for a thousand sockets in this process too."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def rss(node: NodeProcess) -> int:
    """The node's resident memory, in bytes (``VmRSS`` of ``/proc/PID/status``)."""
    with open(f"/proc/{node.pid}/status") as status:
        [kib] = re.findall(r"^VmRSS:\s+(\d+) kB$", status.read(), re.M)
    return int(kib) << 10


def http_stats(node: NodeProcess) -> dict:
    status, _, body = node.request("GET", "/dht/stats")
    assert status == 200
    return json.loads(body)["http"]


def connect(node: NodeProcess) -> socket.socket:
    return socket.create_connection((node.host, node.port), timeout=5)


def test_memory_stays_within_the_budget_with_a_thousand_unfinished_bodies(node_factory):
    budget, value = 16 * MIB, 256 << 10
    node = node_factory("--storage", "memory", "--max-value-bytes", str(value), "--max-inflight-bytes",
                        str(budget), "--body-timeout", "60", "--header-timeout", "60")
    for i in range(50):  # warm up: what a node serving requests holds anyway
        assert node.request("PUT", f"/db/warm-{i}", b"w" * 1000)[0] == 204
    baseline = rss(node)
    held = []

    def abuse(i: int) -> None:
        connection = connect(node)
        held.append(connection)
        try:  # every byte of the body but the last
            connection.sendall(b"PUT /db/abuse-%d HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (i, value)
                               + b"a" * (value - 1))
        except OSError:  # refused for the budget: the node closed the connection
            pass

    try:
        with ThreadPoolExecutor(max_workers=32) as pool:
            list(pool.map(abuse, range(1000)))
        wait_for(lambda: http_stats(node)["inflight_bytes"] > budget - value, 10)
        stats = http_stats(node)
        grown = rss(node) - baseline
        print(f"RSS {baseline / MIB:.1f} MiB at rest, {grown / MIB:.1f} MiB more with 1,000 abusive connections; "
              f"{stats['inflight_bytes'] / MIB:.1f} MiB in flight, {stats['refused']['inflight_bytes']} refused")
        assert stats["inflight_bytes"] <= budget
        assert stats["refused"]["inflight_bytes"] >= 1000 - budget // value
        # Each connection holds a little beside its body: buffers, a request, a channel.
        assert grown <= budget + 1000 * (16 << 10)
        assert node.request("GET", "/health")[0] == 200
    finally:
        for connection in held:
            connection.close()
    wait_for(lambda: http_stats(node)["inflight_bytes"] == 0, 10)
    log = node.log()
    assert "Traceback" not in log
    # The node raised its soft limit of open files to the hard one, and says so.
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert f"open files limit {hard}: up to " in log


# -- a fuzz of the HTTP surface ---------------------------------------------------------

FUZZ_CASES = 1200
#: Paths whose legitimate answers include 5xx (a join to a seed that does not answer is 502
#: or 504; a keyring operation that a member did not answer, 502) are left out.
PATHS = ["/db", "/db?format=json", "/db?scope=replica", "/db?scope=x", "/dht/peers", "/dht/members", "/dht/stats",
         "/dht/ring", "/dht/transfers", "/dht/transfers?cluster=1&format=json", "/dht/transfers?cluster=7",
         "/dht/remove", "/dht/owners/", "/dht/owners/%ff", "/health", "/metrics", "/openapi.json", "/internal/rpc",
         "/internal/nothing", "*", "http://x/db/k", "/", "//db//", "/db/", "/nothing/here", "/db/%", "/db/%zz"]
METHODS = ["GET", "PUT", "POST", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE", "CONNECT", "get", "G\x00T", "",
           "X" * 1000, "PUT / HTTP/1.1"]
VERSIONS = ["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.1x", "", "HTTP/9", "HTTP/1.1 extra"]


def fuzz_key(rng: random.Random) -> str:
    """Keys at every size bound, of every kind of character, percent-encoded or not; never
    one of the stored keys (``stored-...``)."""
    kind = rng.randrange(8)
    if kind == 0:
        return "x" * rng.choice([0, 1, 1023, 1024, 1025, 5000])
    if kind == 1:
        return quote("".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x80, 0x10FFFF)]))
                             for _ in range(rng.randrange(1, 40))).encode("utf-8", "surrogatepass"), safe="/")
    if kind == 2:
        return "".join(rng.choice(["%ff", "%00", "%2F", "%", "%e2%82", "a", "/", "%C3%A9"]) for _ in range(6))
    if kind == 3:
        return "é" * rng.choice([341, 342, 1000])  # 2 bytes each in UTF-8: 1024 bytes is 512 of them
    return f"fuzz-{rng.randrange(1000)}"


def fuzz_body(rng: random.Random) -> bytes:
    alphabet = b"abcdefghij\t\r\n {}[]\":,=%&+value"
    return bytes(rng.choice(alphabet) for _ in range(rng.choice([0, 1, 10, 100, 5000])))


def fuzz_request(rng: random.Random) -> bytes:
    """One request, well formed or not."""
    method = rng.choice(METHODS) if rng.random() < 0.4 else rng.choice(["GET", "PUT", "POST", "DELETE", "HEAD"])
    target = rng.choice(PATHS) if rng.random() < 0.4 else "/db/" + fuzz_key(rng)
    version = rng.choice(VERSIONS) if rng.random() < 0.2 else "HTTP/1.1"
    body = fuzz_body(rng)
    headers = [b"Host: fuzz"]
    framing = rng.randrange(10)
    if framing < 4:
        headers.append(b"Content-Length: %d" % len(body))
    elif framing == 4:
        headers.append(b"Content-Length: " + rng.choice([b"abc", b"-1", b"1e3", b"99999999999999999999", b"", b"0x10"]))
    elif framing == 5:
        headers += [b"Content-Length: %d" % len(body), b"Content-Length: %d" % (len(body) + 1)]
    elif framing in (6, 7):
        headers.append(b"Transfer-Encoding: " + rng.choice([b"chunked", b"chunked", b"gzip", b"chunked, gzip", b"x"]))
        if rng.random() < 0.3:
            headers.append(b"Content-Length: %d" % len(body))
        body = rng.choice([
            b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n",
            b"zz\r\nabc\r\n", b"5\r\nab\r\n", b"ffffffffffffffffff\r\n", b"3;ext=\x00\r\nabc\r\n0\r\n\r\n",
            b"%x\r\n%s" % (len(body) + 10, body), b"-5\r\nabcde\r\n0\r\n\r\n"])
    for _ in range(rng.choice([0, 0, 1, 3])):
        headers.append(rng.choice([
            b"Content-Type: " + rng.choice([b"text/tab-separated-values", b"application/json",
                                            b"application/x-www-form-urlencoded", b"x" * 300, b"\xff\xfe"]),
            b"X-Big: " + b"b" * rng.choice([100, 8000, 20000]), b"no colon here", b"X-Nul: a\x00b", b" folded",
            b"Expect: 100-continue", b"Authorization: Bearer junk", b"If-None-Match: \"x\", *",
            b"Accept: application/json", b"Upgrade: gossipdht-rpc/1", b"Connection: Upgrade",
            b"Gossipdht-Hello: !!!", b"X-Many: 1\r\n" * 600 + b"X-End: 1", b":empty-name"]))
    if rng.random() < 0.8:
        headers.append(b"Connection: close")
    head = f"{method} {target} {version}".encode("utf-8", "surrogatepass").strip()
    return head + b"\r\n" + b"\r\n".join(headers) + b"\r\n\r\n" + body


def exchange(node: NodeProcess, data: bytes, seconds: float = 2.5) -> bytes:
    """Send ``data``, read until the node closes the connection or ``seconds`` pass."""
    received = b""
    deadline = time.monotonic() + seconds
    with connect(node) as connection:
        try:
            connection.sendall(data)
            while time.monotonic() < deadline:
                connection.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = connection.recv(65536)
                if not chunk:
                    break
                received += chunk
        except (socket.timeout, OSError):
            pass
    return received


def test_a_fuzz_of_the_http_surface_gets_no_5xx_and_changes_no_stored_data(node_factory):
    node = node_factory("--storage", "memory", "--max-value-bytes", "4096", "--header-timeout", "1",
                        "--body-timeout", "1")
    stored = {f"stored-{i}": b"value %d" % i for i in range(20)}
    for key, value in stored.items():
        assert node.request("PUT", f"/db/{key}", value)[0] == 204
    rng = random.Random(22)
    cases = []
    for _ in range(FUZZ_CASES):
        data = b"".join(fuzz_request(rng) for _ in range(rng.choice([1, 1, 1, 2, 4])))  # pipelined
        if rng.random() < 0.1:
            data += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))  # junk after
        cases.append(data)
    with ThreadPoolExecutor(max_workers=24) as pool:
        replies = list(pool.map(lambda data: exchange(node, data), cases))
    statuses = [int(code) for reply in replies for code in re.findall(rb"(?:^|\r\n\r\n)HTTP/1\.1 (\d{3}) ", reply)]
    print(f"{len(cases)} cases, {len(statuses)} answers: " + ", ".join(
        f"{code}: {statuses.count(code)}" for code in sorted(set(statuses))))
    assert statuses and not [code for code in statuses if code >= 500], [
        (case[:200], reply[:300]) for case, reply in zip(cases, replies) if re.search(rb"HTTP/1\.1 5\d\d ", reply)][:3]
    assert node.running and node.request("GET", "/health")[0] == 200
    for key, value in stored.items():
        assert node.request("GET", f"/db/{key}")[::2] == (200, value), key
    log = node.log()
    assert "Traceback" not in log and "Unhandled" not in log, log[-3000:]
    # Nothing logged for each request: refusals are summed up, once an interval at most.
    assert len(log.splitlines()) < 20, log[-3000:]


# -- one node of three flooded ----------------------------------------------------------

FLOOD_SECONDS = 15
FLOOD_CONNECTIONS = 256


def quantile(metrics: str, operation: str, q: float) -> float:
    """The upper bound of the latency bucket that holds quantile ``q`` of ``operation``."""
    buckets = [(float(bound), float(count)) for bound, count in re.findall(
        r'gossipdht_http_request_duration_seconds_bucket\{le="([^"]+)",operation="%s"\} (\S+)' % operation, metrics)]
    total = buckets[-1][1]
    return next(bound for bound, count in buckets if count >= q * total)


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")
def test_one_node_flooded_sheds_load_and_no_member_is_suspected(node_factory, tmp_path):
    nodes = [node_factory("--storage", "memory") for _ in range(3)]
    for node in nodes[1:]:
        join(node, nodes[0])
    names = sorted(f"127.0.0.1:{n.port}" for n in nodes)
    wait_for(lambda: all(sorted(peers(n)) == names for n in nodes), 30)
    for i in range(100):
        assert nodes[0].request("PUT", f"/db/k{i}", b"v" * 100)[0] == 204
    flooded, others = nodes[0], nodes[1:]
    suspicions: list[tuple[int, str]] = []
    served = {node.port: [0, 0] for node in others}  # answered 200, failed
    done = threading.Event()

    def watch() -> None:
        """Every member's view, through /metrics, which is never shed."""
        while not done.is_set():
            for node in nodes:
                _, _, body = node.request("GET", "/metrics")
                suspicions.extend((node.port, state) for state, count in re.findall(
                    rb'gossipdht_members\{state="(suspect|dead)"\} (\S+)', body) if float(count) > 0)
            done.wait(0.2)

    def serve(node: NodeProcess) -> None:
        while not done.is_set():
            try:
                served[node.port][0 if node.request("GET", "/db/k1", timeout=5)[0] == 200 else 1] += 1
            except OSError:
                served[node.port][1] += 1

    script = tmp_path / "keys.lua"
    script.write_text('n = 0\nrequest = function()\n  n = n + 1\n  return wrk.format("GET", "/db/k" .. (n % 100))\nend\n')
    threads = [threading.Thread(target=watch)] + [threading.Thread(target=serve, args=(node,)) for node in others]
    for thread in threads:
        thread.start()
    try:
        flood = subprocess.run(["wrk", "-t1", f"-c{FLOOD_CONNECTIONS}", f"-d{FLOOD_SECONDS}s", "-s", str(script),
                                flooded.url("/")], capture_output=True, text=True, timeout=FLOOD_SECONDS + 30)
    finally:
        done.set()
        for thread in threads:
            thread.join()
    stats = [json.loads(node.request("GET", "/dht/stats")[2]) for node in nodes]
    _, _, metrics = flooded.request("GET", "/metrics")
    refused = stats[0]["http"]["refused"]["overload"]
    print(flood.stdout)
    print(f"503 for overload: {refused}; admitted GET p99 <= {quantile(metrics.decode(), 'get', 0.99)} s; "
          f"the others served {served}; reactor {stats[0]['reactor']}")
    assert flood.returncode == 0, flood.stderr
    assert suspicions == []
    assert [s["gossip"]["refutations"] for s in stats] == [0, 0, 0]
    assert refused > 0 and "Non-2xx or 3xx responses" in flood.stdout
    assert quantile(metrics.decode(), "get", 0.99) <= 1.0
    assert all(ok > 0 and failed == 0 for ok, failed in served.values()), served
    for node in nodes:
        log = node.log()
        assert "Traceback" not in log and "Unhandled" not in log, log[-3000:]
