"""Calls between nodes (gossipdht.net.rpc) against a real node on loopback."""

from __future__ import annotations

import socket

import msgpack
import pytest
import pytest_twisted

from gossipdht.core.errors import PeerError
from gossipdht.core.hlc import Version
from gossipdht.net.messages import pack_keys
from gossipdht.net.remotereplica import RemoteReplica
from gossipdht.net.rpc import RpcClient, max_frame_bytes
from gossipdht.storage import Record


@pytest.fixture
def rpc():
    from twisted.internet import reactor

    client = RpcClient(reactor, max_frame_bytes(1000))
    yield client
    client.close()


def address(node):
    return ("127.0.0.1", node.ports[0].getHost().port)


async def refused(call) -> PeerError:
    with pytest.raises(PeerError) as caught:
        await call
    return caught.value


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("method, body", [
    ("write", b"\xc1garbage"),
    ("write", msgpack.packb([["k", 1, "n", False, "t"]])),  # a field short
    ("write", msgpack.packb([["k", -1, "n", False, "t", b"v"]])),
    ("write", msgpack.packb([["k", 2**63, "n", False, "t", b"v"]])),  # beyond SQLite's integers
    ("push", msgpack.packb([["k", -1, "n", False, "t", b"v" * 70_000]])),  # decoded in a thread
    ("read", msgpack.packb([1, 2])),
    ("digests", msgpack.packb([None, [[5, 1]]])),
    ("digests", msgpack.packb([[0, 1]])),  # ranges without the bound
    ("versions", msgpack.packb([-1, [[0, 1]]])),
    ("versions", msgpack.packb([2**63, [[0, 1]]])),
    ("versions", msgpack.packb({"a": 1})),
])
async def test_malformed_calls_are_400_and_change_nothing(node, http, rpc, method, body):
    error = await refused(rpc.call(address(node), method, body, 5))
    assert error.status == 400 and "bad internal message" in str(error)
    assert (await http.request(b"GET", b"/db?scope=replica"))[2] == b""


@pytest_twisted.ensureDeferred
async def test_unknown_method_is_404_and_the_connection_stays_usable(node, rpc):
    assert (await refused(rpc.call(address(node), "nope", b"", 5))).status == 404
    assert msgpack.unpackb(await rpc.call(address(node), "read", pack_keys(["absent"]), 5)) == [None]


@pytest_twisted.ensureDeferred
async def test_the_path_without_the_upgrade_is_426(http):
    status, _, body = await http.request(b"GET", b"/internal/rpc")
    assert status == 426 and b"gossipdht-rpc/1" in body and body.count(b"\n") == 1


@pytest_twisted.ensureDeferred
async def test_many_calls_share_one_connection_and_a_lost_one_is_replaced(node, rpc):
    from twisted.internet.defer import gatherResults

    replica = RemoteReplica("peer", address(node), rpc, None)
    writes = [(f"k{i}", Record(Version(i + 1, "n"), b"v%d" % i, "t"), None) for i in range(50)]
    await gatherResults([replica.write(writes[i : i + 5]) for i in range(0, 50, 5)])
    assert len(rpc._clients) == 1
    records = await replica.read([key for key, _, _ in writes])
    assert [r.value for r in records] == [b"v%d" % i for i in range(50)]

    rpc._clients[address(node)].transport.abortConnection()
    assert (await replica.read(["k7"]))[0].value == b"v7"


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("frame", [b"abc", msgpack.packb(5), msgpack.packb([1, "read"]), msgpack.packb(["x", 1, b""])])
async def test_a_frame_that_is_not_a_call_closes_the_connection(node, frame):
    from twisted.internet.threads import deferToThread

    def speak() -> bytes:
        with socket.create_connection(address(node), timeout=5) as conn:
            conn.sendall(b"GET /internal/rpc HTTP/1.1\r\nHost: x\r\nUpgrade: gossipdht-rpc/1\r\n\r\n")
            received = conn.recv(4096)  # the client waits for the 101 before its first frame
            conn.sendall(len(frame).to_bytes(4, "big") + frame)
            while chunk := conn.recv(4096):
                received += chunk
            return received

    from twisted.logger import LogLevel, capturedLogs

    with capturedLogs() as events:
        received = await deferToThread(speak)
    assert received.startswith(b"HTTP/1.1 101 ") and received.endswith(b"\r\n\r\n")
    # Refused quietly, not an unhandled error.
    assert not [e for e in events if e.get("log_level") in (LogLevel.error, LogLevel.critical)]


@pytest_twisted.ensureDeferred
async def test_a_read_answer_is_cut_into_several_when_values_are_large(node, rpc, monkeypatch):
    import gossipdht.net.remotereplica

    monkeypatch.setattr(gossipdht.net.remotereplica, "BATCH_BYTES", 2500)
    node.store.write([(f"big{i}", Record(Version(1, "n"), b"x" * 1000, "t")) for i in range(7)])
    calls = []
    original = rpc.call
    rpc.call = lambda *args: calls.append(args[1]) or original(*args)
    records = await RemoteReplica("peer", address(node), rpc, None).read([f"big{i}" for i in range(7)] + ["none"])
    assert [r is not None for r in records] == [True] * 7 + [False]
    assert len(calls) == 4  # values of 1,000 bytes, 2,500 an answer: 2 + 2 + 2 + 1 and the missing key


@pytest_twisted.ensureDeferred
async def test_a_read_of_many_keys_is_a_scan_cut_the_same_way(node, rpc, monkeypatch):
    import gossipdht.net.remotereplica

    monkeypatch.setattr(gossipdht.net.remotereplica, "BATCH_BYTES", 100_000)
    keys = [f"many{i:03d}" for i in range(300)]
    node.store.write([(key, Record(Version(1, "n"), b"x" * 1000, "t")) for key in keys])
    calls = []
    original = rpc.call
    rpc.call = lambda *args: calls.append(args[1]) or original(*args)
    records = await RemoteReplica("peer", address(node), rpc, None).read(keys)
    assert all(r is not None and r.value == b"x" * 1000 for r in records) and len(records) == 300
    assert len(calls) == 3  # 100 values an answer


@pytest_twisted.ensureDeferred
async def test_scans_with_a_bound_leave_out_the_newer_records_across_the_wire(node, rpc):
    from gossipdht.core.hashing import RING_SIZE

    whole = [(0, RING_SIZE)]
    node.store.write([("old", Record(Version(10, "n"), b"v", "t")), ("new", Record(Version(20, "n"), b"v", "t"))])
    replica = RemoteReplica("peer", address(node), rpc, None)
    assert await replica.versions(whole, 20) == [("old", Version(10, "n"))]
    assert await replica.digests(whole, 20) == node.store.digests(whole, 20)
    assert (await replica.digests(whole))[0][0] == 2


@pytest_twisted.ensureDeferred
async def test_bulk_messages_are_encoded_through_offload_and_single_writes_are_not(node, rpc):
    from twisted.internet.defer import maybeDeferred

    offloaded = []

    def offload(f, *args):
        offloaded.append(args[0].__name__)  # _checked(f, ...) names the codec
        return maybeDeferred(f, *args)

    replica = RemoteReplica("peer", address(node), rpc, None, offload)
    bulk = [(f"bulk{i:03d}", Record(Version(1, "n"), b"v", "t"), None) for i in range(300)]
    assert await replica.push(bulk) is None
    assert offloaded == ["pack_writes"]
    assert await replica.write([("one", Record(Version(1, "n"), b"v", "t"), None), bulk[0]]) is None
    assert offloaded == ["pack_writes"]  # two records: encoded here
    records = await replica.read([key for key, _, _ in bulk])
    assert records == [record for _, record, _ in bulk] and offloaded[1:] == ["unpack_records"]
    assert node.store.get("bulk299") == bulk[-1][1]



@pytest_twisted.ensureDeferred
async def test_calls_past_the_nodes_byte_budget_wait_unread_until_answers_bring_it_back_under(tmp_path, rpc):
    from conftest import start_node
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred, ensureDeferred, gatherResults
    from twisted.internet.task import deferLater

    node = start_node(tmp_path, storage="memory", max_inflight_bytes=100_000)
    held: list[Deferred] = []
    node.api.rpc.handlers["hold"] = lambda body: held.append(Deferred()) or held[-1]

    async def until(check) -> None:
        for _ in range(500):
            if check():
                return
            await deferLater(reactor, 0.01, lambda: None)
        raise AssertionError("condition not reached in time")

    try:
        calls = [ensureDeferred(rpc.call(address(node), "hold", b"x" * 60_000, 10)) for _ in range(3)]
        await until(lambda: len(held) == 2 and node.api.rpc.calls.paused)  # 120,000 bytes: the rest is not read
        await deferLater(reactor, 0.2, lambda: None)
        assert len(held) == 2 and node.api.node_stats()["http"]["internal_reads_paused"] == 1
        held[0].callback(b"first")  # back under the budget: read again
        await until(lambda: len(held) == 3)
        for answer in held[1:]:
            answer.callback(b"later")
        assert await gatherResults(calls) == [b"first", b"later", b"later"]
        await until(lambda: node.api.rpc.calls.used == 0 and not node.api.rpc.calls.paused)
        stats = node.api.node_stats()["http"]
        assert stats["internal_inflight_bytes"] == 0 and stats["internal_reads_paused"] == 2
    finally:
        await node.stopService()
