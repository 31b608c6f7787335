"""Gossip encryption on in-process nodes, through real UDP and HTTP: what a keyed cluster
refuses, who can join it, rotating its keys while it serves, and rolling encryption out."""

from __future__ import annotations

import json
import random
import socket
from dataclasses import replace

import msgpack
import pytest
import pytest_twisted
from conftest import HTTP, eventually, node_config
from twisted.logger import capturedLogs, formatEvent

from gossipdht.core.keyring import Keyring, encode_key
from gossipdht.membership.wire import Alive, Dead, pack_datagram, pack_message
from gossipdht.node import keyfile
from gossipdht.tools.nodeprocess import free_port

OLD, NEW, STRANGER = b"o" * 32, b"n" * 32, b"s" * 32


@pytest.fixture
def nodes(tmp_path):
    """``nodes(keys, name=..., cluster=..., incoming=..., outgoing=..., storage=..., data_dir=..., port=...)``:
    a started node whose bootstrap keyring holds ``keys`` (None: no keyring); all stopped after."""
    from twisted.internet import reactor

    from gossipdht.node.service import NodeService

    services = []

    def make(keys=(OLD,), name=None, cluster="test", incoming=True, outgoing=True, storage="memory",
             data_dir=None, port=None):
        port = port or free_port("127.0.0.1")
        directory = tmp_path / f"n{len(services)}"
        directory.mkdir()
        bootstrap = None
        if keys is not None:
            bootstrap = str(directory / "bootstrap-keyring")
            keyfile.write(bootstrap, Keyring(keys))
        config = replace(node_config(directory, storage=storage), name=name or f"node-{port}", port=port,
                         gossip_port=port, keyring=bootstrap, cluster_name=cluster, gossip_verify_incoming=incoming,
                         gossip_verify_outgoing=outgoing, data_dir=data_dir or str(directory / "data"))
        service = NodeService(config, reactor)
        service.cluster._sync_timeout = 1.0
        service.privilegedStartService()
        service.startService()
        services.append(service)
        return service, HTTP(reactor, port)

    yield make
    for service in services:
        if service.running:
            pytest_twisted.blockon(service.stopService())


def seed(service) -> bytes:
    return b"127.0.0.1:%d" % service.config.port


async def join(http, seed_service) -> tuple[int, bytes]:
    status, _, body = await http.request(b"POST", b"/dht/join", seed(seed_service))
    return status, body


async def peers(http) -> list[str]:
    return sorted((await http.request(b"GET", b"/dht/peers"))[2].decode().splitlines())


async def stats(http) -> dict:
    return json.loads((await http.request(b"GET", b"/dht/stats"))[2])


async def keyring(http, action: str, key: bytes | None = None) -> tuple[int, dict | bytes]:
    request = {"action": action} if key is None else {"action": action, "key": encode_key(key)}
    status, _, body = await http.request(b"POST", b"/dht/keyring", json.dumps(request).encode())
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


async def joined(nodes, count: int, **options) -> list:
    made = [nodes(**options) for _ in range(count)]
    for _, http in made[1:]:
        status, body = await join(http, made[0][0])
        assert status == 200, body
    return made


@pytest_twisted.ensureDeferred
async def test_forged_datagrams_plaintext_or_sealed_with_another_key_are_refused_and_counted(nodes):
    cluster = await joined(nodes, 3)
    (target, http_target), (victim, _), _ = cluster
    names = sorted(s.config.name for s, _ in cluster)
    forged = pack_datagram("stranger", 0, [pack_message(Dead(victim.config.name, 5, "stranger")),
                                           pack_message(Alive("evil", 10**9, "127.0.0.1", 9, 9))])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(forged, ("127.0.0.1", target.config.gossip_port))
        udp.sendto(Keyring([STRANGER]).seal(forged, b"test\0gossip"), ("127.0.0.1", target.config.gossip_port))
        # The cluster's key, another cluster's name: refused as well.
        udp.sendto(Keyring([OLD]).seal(forged, b"other\0gossip"), ("127.0.0.1", target.config.gossip_port))

    async def counted():
        unopened = (await stats(http_target))["gossip"]["datagrams_unopened"]
        return unopened == {"plaintext": 1, "no_key_opens": 2, "sealed_but_no_keyring": 0}
    await eventually(counted)
    gossip = (await stats(http_target))["gossip"]
    assert gossip["sealed"] and gossip["incarnations_refused"] == gossip["candidates_pending"] == 0
    for _, http in cluster:
        assert await peers(http) == names
        members = json.loads((await http.request(b"GET", b"/dht/members"))[2])
        assert {m["name"]: m["state"] for m in members} == dict.fromkeys(names, "alive")


@pytest.mark.parametrize("joiner, cluster, reason", [
    ({"keys": (STRANGER,)}, {}, "no key installed on the node called opens the caller's: the two nodes' gossip "
                                "keyrings (or --cluster-name) differ"),
    ({"keys": (OLD,), "cluster": "other"}, {}, "(or --cluster-name) differ"),
    ({"keys": None}, {}, "the caller sent plaintext, and the node called accepts only traffic sealed with its "
                         "gossip keyring"),
    ({}, {"keys": None}, "the caller seals its traffic with a gossip keyring, and the node called has none"),
])
@pytest_twisted.ensureDeferred
async def test_a_node_whose_keyring_is_not_the_clusters_cannot_join_and_both_sides_say_why(
        nodes, joiner, cluster, reason):
    seed_service, http_seed = nodes(**cluster)
    newcomer, http_newcomer = nodes(**joiner)
    with capturedLogs() as events:
        status, body = await join(http_newcomer, seed_service)
    assert status == 403 and reason in body.decode() and body.count(b"\n") == 1, body
    lines = [formatEvent(e) for e in events]
    assert [line for line in lines if line.startswith("refused an internal connection from 127.0.0.1: ")
            and reason in line], lines  # the seed says so...
    assert [line for line in lines if line.startswith(f"127.0.0.1:{seed_service.config.port} refused this node")
            and reason in line], lines  # ...and the newcomer
    assert await peers(http_seed) == [seed_service.config.name]
    assert await peers(http_newcomer) == [newcomer.config.name]


def raw_upgrade(port: int, hello: bytes | None) -> bytes:
    """What a node answers an RPC upgrade request (with a ``Gossipdht-Hello`` if given) and,
    once upgraded, a plaintext call, until it closes the connection."""
    import struct

    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        header = b"" if hello is None else b"Gossipdht-Hello: " + hello + b"\r\n"
        connection.sendall(b"GET /internal/rpc HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                           b"Upgrade: gossipdht-rpc/1\r\n" + header + b"\r\n")
        reply = b""
        while b"\r\n\r\n" not in reply:
            reply += connection.recv(4096)
        if reply.startswith(b"HTTP/1.1 101 "):
            frame = b"\x93\x00\xa4read\xc4\x01\x90"  # msgpack [0, "read", b"\x90"]
            connection.sendall(struct.pack("!I", len(frame)) + frame)
        try:
            while chunk := connection.recv(4096):
                reply += chunk
        except TimeoutError:
            raise AssertionError(reply) from None
        return reply


@pytest_twisted.ensureDeferred
async def test_the_internal_endpoint_gives_a_caller_without_the_key_nothing_but_a_refusal(nodes):
    import base64

    from twisted.internet.threads import deferToThread

    service, http = nodes()
    await http.request(b"PUT", b"/db/secret", b"v")
    port = service.config.port
    for hello in (None, b"not base64!", base64.b64encode(Keyring([STRANGER]).seal(b"n" * 16, b"test\0rpc-hello"))):
        reply = await deferToThread(raw_upgrade, port, hello)
        assert reply.startswith(b"HTTP/1.1 403 Forbidden\r\n") and b"secret" not in reply and b"\x93" not in reply
    # The key's hello, replayed by someone who cannot seal frames: upgraded, then cut off at
    # the first frame, with no answer.
    hello = base64.b64encode(Keyring([OLD]).seal(b"n" * 16, b"test\0rpc-hello"))
    reply = await deferToThread(raw_upgrade, port, hello)
    head, _, rest = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ") and b"gossipdht-challenge: " in head.lower() and rest == b""
    refused = (await stats(http))["internal_refused"]
    assert refused == {"plaintext": 1, "malformed": 1, "no_key_opens": 1}


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("removed_by", ["caller", "node called"])
async def test_a_connection_ends_once_a_rotation_removed_its_key_and_the_next_call_takes_a_new_one(nodes, removed_by):
    from twisted.internet import reactor

    from gossipdht.core.sealing import Sealing
    from gossipdht.net.rpc import RpcClient, max_frame_bytes

    service, http = nodes(keys=(OLD, NEW))
    await http.request(b"PUT", b"/db/k", b"v")
    caller = Sealing(Keyring([OLD, NEW]), "test")
    rpc = RpcClient(reactor, max_frame_bytes(1000), caller)
    address = ("127.0.0.1", service.config.port)
    try:
        await rpc.call(address, "read", msgpack.packb(["k"]), 5)
        sealed_with_old = rpc._clients[address]
        for keyring in (caller.keyring, service.sealing.keyring):
            keyring.use(NEW)
        (caller if removed_by == "caller" else service.sealing).keyring.remove(OLD)
        assert msgpack.unpackb(await rpc.call(address, "read", msgpack.packb(["k"]), 5))[0] is not None
        assert rpc._clients[address] is not sealed_with_old
    finally:
        rpc.close()


@pytest_twisted.ensureDeferred
async def test_five_nodes_rotate_their_key_while_a_client_writes_and_reads_with_no_failure(nodes):
    from twisted.internet import reactor
    from twisted.internet.defer import ensureDeferred
    from twisted.internet.task import deferLater

    cluster = await joined(nodes, 5)
    names = sorted(s.config.name for s, _ in cluster)
    failures, done, running = [], [0], [True]

    async def client():
        rng = random.Random(7)
        while running[0]:
            key = f"k{done[0] % 50}".encode()
            _, writer = rng.choice(cluster)
            _, reader = rng.choice(cluster)
            status, _, body = await writer.request(b"PUT", b"/db/" + key, b"v%d" % done[0])
            if status not in (200, 201, 204):
                failures.append((status, body))
            status, _, body = await reader.request(b"GET", b"/db/" + key)
            if status != 200:
                failures.append((status, body))
            done[0] += 1
            await deferLater(reactor, 0.01, lambda: None)
    writing = ensureDeferred(client())
    try:
        await progressed(done, 20)
        status, answer = await keyring(cluster[2][1], "install", NEW)
        assert status == 200 and answer["failed"] == [] and answer["members"] == 5, answer
        assert answer["keys"] == {encode_key(OLD): 5, encode_key(NEW): 5}
        await progressed(done, 20)
        status, answer = await keyring(cluster[4][1], "use", NEW)
        assert status == 200 and all(n["primary"] == encode_key(NEW) for n in answer["nodes"]), answer
        await progressed(done, 20)
        status, answer = await keyring(cluster[0][1], "remove", OLD)
        assert status == 200 and answer["keys"] == {encode_key(NEW): 5}, answer
        await progressed(done, 20)
        unopened = [(await stats(http))["gossip"]["datagrams_sent"] for _, http in cluster]

        async def gossiping():  # and only sealed with the new key from now on
            counts = [(await stats(http))["gossip"]["datagrams_sent"] for _, http in cluster]
            return all(now >= then + 10 for now, then in zip(counts, unopened))
        await eventually(gossiping)
    finally:
        running[0] = False
        await writing
    assert failures == [] and done[0] > 80
    for service, http in cluster:
        assert await peers(http) == names
        assert service.sealing.keyring.keys == [NEW]
        assert keyfile.read(f"{service.config.data_dir}/{keyfile.FILE_NAME}").keys == [NEW]  # kept for a restart
        assert sum((await stats(http))["gossip"]["datagrams_unopened"].values()) == 0


async def progressed(done: list, count: int) -> None:
    """Until ``count`` more requests were done."""
    target = done[0] + count

    async def reached():
        return done[0] >= target
    await eventually(reached)


@pytest_twisted.ensureDeferred
async def test_a_keyring_request_is_checked_and_the_primary_cannot_be_removed(nodes):
    (service, http), (_, http_b) = await joined(nodes, 2)
    for body, answer in ((b"not json", b'the body is JSON: {"action": "install", "key": "BASE64"}\n'),
                         (b'{"action": "burn"}', b"action is one of install, use, remove, list\n"),
                         (b'{"action": "use"}', b"use needs a key\n"),
                         (b'{"action": "install", "key": "c2hvcnQ="}',
                          b"a key is 16, 24 or 32 bytes (AES-128, -192 or -256), not 5\n")):
        assert (await http.request(b"POST", b"/dht/keyring", body))[::2] == (400, answer)
    status, body = await keyring(http, "remove", OLD)
    assert status == 409 and b"is the primary; use another key before removing it" in body
    status, body = await keyring(http, "use", NEW)
    assert status == 409 and b"is not installed; install it first" in body
    status, answer = await keyring(http_b, "list")
    assert status == 200 and answer["keys"] == {encode_key(OLD): 2}
    assert service.sealing.keyring.keys == [OLD]


@pytest_twisted.ensureDeferred
async def test_a_node_without_a_keyring_has_nothing_to_rotate(nodes):
    _, http = nodes(keys=None)
    status, body = await keyring(http, "list")
    assert status == 409 and b"has no gossip keyring: it was started without --keyring" in body


@pytest_twisted.ensureDeferred
async def test_a_member_that_does_not_answer_is_named_and_the_command_line_exits_1(nodes, monkeypatch):
    from twisted.internet.defer import Deferred

    from gossipdht.net import keyrings

    monkeypatch.setattr(keyrings, "ASK_SECONDS", 1.0)
    from twisted.internet.threads import deferToThread

    from gossipdht.client.cli import main

    cluster = await joined(nodes, 3)
    silent, _ = cluster[2]
    dict(silent.site.prefixes)[b"/internal/rpc"].handlers["keyring"] = lambda body: Deferred()  # never answers
    status, answer = await keyring(cluster[0][1], "install", NEW)
    assert status == 502 and answer["failed"] == [silent.config.name], answer
    assert [n for n in answer["nodes"] if n["node"] == silent.config.name][0]["error"].endswith("timed out")
    assert [s.sealing.keyring.keys for s, _ in cluster] == [[OLD, NEW], [OLD, NEW], [OLD]]
    port = cluster[0][0].config.port
    assert await deferToThread(main, ["keyring", "list", "--node", f"127.0.0.1:{port}"]) == 1


@pytest_twisted.ensureDeferred
async def test_a_node_down_during_a_rotation_refuses_to_serve_alone_then_rejoins_once_given_the_key(nodes):
    cluster = await joined(nodes, 3, storage="sqlite")
    (a, http_a), _, (c, http_c) = cluster
    assert (await http_a.request(b"PUT", b"/db/k", b"v"))[0] in (200, 201, 204)
    await c.stopService()  # down: it keeps its keyring and the members it knew
    for action, key in (("install", NEW), ("use", NEW), ("remove", OLD)):
        status, answer = await keyring(http_a, action, key)
        assert [n["node"] for n in answer["nodes"] if "error" not in n] == sorted([a.config.name,
                                                                                     cluster[1][0].config.name])
    with capturedLogs() as events:
        c, http_c = nodes(keys=(OLD,), name=c.config.name, storage="sqlite", data_dir=c.config.data_dir,
                          port=c.config.port)

        async def refused():
            return c.cluster.refused_by_cluster is not None
        await eventually(refused)
    lines = [formatEvent(e) for e in events]
    assert [line for line in lines if line.startswith("this node serves no data: the cluster it rejoins refused it")
            and "gossip keyrings (or --cluster-name) differ" in line
            and "give it the cluster's current key with gossipdht keyring install and use" in line], lines
    status, _, body = await http_c.request(b"GET", b"/db/k")
    assert status == 503 and body.startswith(b"this node serves no data"), body
    status, _, body = await http_c.request(b"PUT", b"/db/other", b"x")
    assert status == 503 and c.store.get("other") is None
    assert await peers(http_c) == [c.config.name]  # not a cluster of its own: it serves nothing
    # The operator gives it the new key; it rejoins on its next try.
    for action in ("install", "use"):
        status, answer = await keyring(http_c, action, NEW)
        assert status == 200 and answer["members"] == 1, answer

    async def rejoined():
        return c.cluster.refused_by_cluster is None and c.config.name in await peers(http_a)
    await eventually(rejoined, seconds=40)
    assert (await http_c.request(b"GET", b"/db/k"))[::2] == (200, b"v")
    status, answer = await keyring(http_a, "remove", OLD)
    assert status == 200 and answer["keys"] == {encode_key(NEW): 3}, answer


#: The three restarts that turn encryption on in a running cluster (README, Security).
STAGES = {
    "no keyring": dict(keys=None),
    "keys, plaintext": dict(keys=(OLD,), incoming=False, outgoing=False),
    "keys, sealed out, plaintext accepted": dict(keys=(OLD,), incoming=False),
    "keys, sealed only": dict(keys=(OLD,)),
}


@pytest.mark.parametrize("first, second", [
    ("no keyring", "keys, plaintext"),
    ("keys, plaintext", "keys, sealed out, plaintext accepted"),
    ("keys, sealed out, plaintext accepted", "keys, sealed only"),
])
@pytest_twisted.ensureDeferred
async def test_nodes_one_restart_apart_in_the_rollout_join_replicate_and_gossip(nodes, first, second):
    (a, http_a), (_, http_b) = nodes(**STAGES[first]), nodes(**STAGES[second])
    status, body = await join(http_b, a)
    assert status == 200, body
    assert (await http_a.request(b"PUT", b"/db/k?w=2", b"v"))[0] in (200, 201, 204)
    assert (await http_b.request(b"GET", b"/db/k?r=2"))[::2] == (200, b"v")
    received = [(await stats(http))["gossip"]["datagrams_received"] for http in (http_a, http_b)]

    async def gossiped():
        counts = [(await stats(http))["gossip"]["datagrams_received"] for http in (http_a, http_b)]
        return all(now >= then + 10 for now, then in zip(counts, received))
    await eventually(gossiped)
    for http in (http_a, http_b):
        assert sum((await stats(http))["gossip"]["datagrams_unopened"].values()) == 0


@pytest_twisted.ensureDeferred
async def test_a_node_two_restarts_behind_in_the_rollout_is_refused(nodes):
    (a, _), (_, http_b) = nodes(**STAGES["keys, sealed only"]), nodes(**STAGES["keys, plaintext"])
    status, body = await join(http_b, a)
    assert status == 403 and b"the caller sent plaintext" in body


@pytest_twisted.ensureDeferred
async def test_a_node_without_a_keyring_refuses_a_hello_sealed_or_not(nodes):
    import base64

    from twisted.internet.threads import deferToThread

    service, http = nodes(keys=None)
    for hello in (base64.b64encode(b"n" * 16), base64.b64encode(Keyring([OLD]).seal(b"n" * 16, b"test\0rpc-hello"))):
        reply = await deferToThread(raw_upgrade, service.config.port, hello)
        assert reply.startswith(b"HTTP/1.1 403 Forbidden\r\n") and b"the node called has none" in reply
    assert (await stats(http))["internal_refused"] == {"sealed_but_no_keyring": 2}


@pytest_twisted.ensureDeferred
async def test_sealed_datagrams_full_of_news_stay_within_the_datagram_limit(nodes):
    from twisted.internet import reactor

    from gossipdht.membership.wire import MAX_DATAGRAM, Suspect

    service, _ = nodes()
    cluster = service.cluster
    names = [f"member-{i:04d}-{'x' * 80}" for i in range(50)]
    cluster.core.merge_state(reactor.seconds(), [Alive(name, 1, "127.0.0.1", 9, 9) for name in names], converged=True)
    sizes = []
    send = cluster.protocol.send
    cluster.protocol.send = lambda data, address: (sizes.append(len(data)), send(data, address))
    # Each member suspected at once: news enough to fill every datagram to the limit.
    cluster.core.merge_state(reactor.seconds(), [Suspect(name, 1, "someone") for name in names])
    cluster._reschedule()

    async def gossiped():
        return len(sizes) >= 10
    await eventually(gossiped)
    assert max(sizes) <= MAX_DATAGRAM and max(sizes) > MAX_DATAGRAM - 200, sizes
    assert all(size > 29 for size in sizes)
