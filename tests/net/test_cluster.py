"""Membership over real UDP and HTTP: several nodes in this process, one reactor."""

from __future__ import annotations

import json
import socket
from dataclasses import replace

import pytest
import pytest_twisted
from conftest import HTTP, eventually, node_config
from twisted.logger import capturedLogs

from gossipdht.core.errors import PeerError
from gossipdht.membership.member import Member, State
from gossipdht.tools.nodeprocess import free_port


@pytest.fixture
def cluster_nodes(tmp_path):
    """A function making started nodes (memory storage) on free ports; all stopped after."""
    from twisted.internet import reactor

    from gossipdht.node.service import NodeService

    services = []

    def make(name=None, separate_gossip_port=False, reap_after=300.0, host="127.0.0.1"):
        port = free_port(host)
        gossip_port = free_port(host) if separate_gossip_port else port
        config = replace(node_config(tmp_path / f"n{len(services)}", storage="memory"),
                         name=name or f"node-{port}", port=port, gossip_port=gossip_port, reap_after=reap_after,
                         bind=host, advertise=host)
        service = NodeService(config, reactor)
        service.cluster._sync_timeout = 1.0
        service.privilegedStartService()
        service.startService()
        services.append(service)
        return service, HTTP(reactor, port, host)

    yield make
    for service in services:
        pytest_twisted.blockon(service.stopService())


async def peers(http):
    return (await http.request(b"GET", b"/dht/peers"))[2].decode().splitlines()


def seed_line(service):
    return f"127.0.0.1:{service.config.port}".encode()


@pytest_twisted.ensureDeferred
async def test_join_lists_everyone_everywhere_self_first(cluster_nodes):
    nodes = [cluster_nodes() for _ in range(3)]
    names = sorted(s.config.name for s, _ in nodes)
    for _, http in nodes[1:]:
        status, _, body = await http.request(b"POST", b"/dht/join", seed_line(nodes[0][0]))
        assert status == 200, body
    for service, http in nodes:  # join answered only once all agreed
        listed = await peers(http)
        assert listed[0] == service.config.name
        assert listed[1:] == sorted(n for n in names if n != service.config.name)
    _, headers, body = await nodes[0][1].request(b"GET", b"/dht/members")
    members = json.loads(body)
    assert [m["name"] for m in members][0] == nodes[0][0].config.name
    assert {m["state"] for m in members} == {"alive"}
    assert set(members[0]) == {"name", "address", "port", "gossip_port", "state", "incarnation", "since_seconds",
                               "in_ring", "clock_offset_ms"}
    assert all(m["in_ring"] for m in members)


@pytest_twisted.ensureDeferred
async def test_join_accepts_name_host_port_lines_and_put(cluster_nodes):
    (a, _), (_, http_b) = cluster_nodes(), cluster_nodes()
    body = b"\r\n" + a.config.name.encode() + b":" + seed_line(a) + b"\n\n"
    status, _, _ = await http_b.request(b"PUT", b"/dht/join", body)
    assert status == 200
    assert len(await peers(http_b)) == 2


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("body", [b"", b"\n\n", b"nohost", b"host:notaport", b"\xff\xfe:1", b"a:99999",
                                  b"\n".join(b"h%d:1" % i for i in range(65))])
async def test_malformed_join_is_400(cluster_nodes, body):
    _, http = cluster_nodes()
    status, _, text = await http.request(b"POST", b"/dht/join", body)
    assert status == 400 and text.count(b"\n") == 1


@pytest_twisted.ensureDeferred
async def test_unreachable_seed_is_502_naming_it(cluster_nodes):
    _, http = cluster_nodes()
    dead = free_port()
    status, _, text = await http.request(b"POST", b"/dht/join", b"127.0.0.1:%d" % dead)
    assert status == 502 and b"127.0.0.1:%d" % dead in text
    assert len(await peers(http)) == 1


@pytest_twisted.ensureDeferred
async def test_silent_seed_is_504_and_a_second_join_meanwhile_is_409(cluster_nodes):
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred, ensureDeferred
    from twisted.internet.protocol import Factory, Protocol

    reached = Deferred()

    class Silent(Factory):  # accepts connections, never answers
        def buildProtocol(self, addr):
            if not reached.called:
                reached.callback(None)
            return Protocol()

    silent = reactor.listenTCP(0, Silent(), interface="127.0.0.1")
    try:
        _, http = cluster_nodes()
        seed = b"127.0.0.1:%d" % silent.getHost().port
        first = ensureDeferred(http.request(b"POST", b"/dht/join", seed))
        await reached  # the first join is waiting on the seed now
        status, _, text = await http.request(b"POST", b"/dht/join", seed)
        assert status == 409 and b"in progress" in text
        status, _, text = await first
        assert status == 504 and seed in text
    finally:
        await silent.stopListening()


@pytest_twisted.ensureDeferred
async def test_leave_hands_back_a_lone_node_and_rejoin_works(cluster_nodes):
    nodes = [cluster_nodes() for _ in range(3)]
    for _, http in nodes[1:]:
        await http.request(b"POST", b"/dht/join", seed_line(nodes[0][0]))
    leaver, http_leaver = nodes[2]
    status, _, text = await http_leaver.request(b"GET", b"/dht/leave")
    assert status == 200, text
    assert await peers(http_leaver) == [leaver.config.name]
    for _, http in nodes[:2]:
        assert leaver.config.name not in await peers(http)
    states = {m["name"]: m["state"] for m in json.loads((await nodes[0][1].request(b"GET", b"/dht/members"))[2])}
    assert states[leaver.config.name] == "left"  # a leave, not a failure
    status, _, _ = await http_leaver.request(b"POST", b"/dht/leave")
    assert status == 200  # alone: nothing to do
    status, _, _ = await http_leaver.request(b"POST", b"/dht/join", seed_line(nodes[0][0]))
    assert status == 200
    for _, http in nodes:
        assert len(await peers(http)) == 3


@pytest_twisted.ensureDeferred
async def test_a_push_pull_from_the_cluster_it_left_does_not_pull_a_leaver_back(cluster_nodes):
    from gossipdht.net.peer import PeerError

    nodes = [cluster_nodes() for _ in range(3)]
    for _, http in nodes[1:]:
        assert (await http.request(b"POST", b"/dht/join", seed_line(nodes[0][0])))[0] == 200
    leaver, http_leaver = nodes[2]
    assert (await http_leaver.request(b"GET", b"/dht/leave"))[0] == 200
    # A sync that was under way when the leave happened arrives late.
    with pytest.raises(PeerError) as refused:
        await nodes[0][0].cluster.push_pull(("127.0.0.1", leaver.config.port))
    assert refused.value.status == 409
    assert await peers(http_leaver) == [leaver.config.name]
    status, _, _ = await http_leaver.request(b"POST", b"/dht/join", seed_line(nodes[0][0]))
    assert status == 200 and len(await peers(http_leaver)) == 3


@pytest_twisted.ensureDeferred
async def test_joining_another_cluster_leaves_the_first(cluster_nodes):
    (a, http_a), (b, http_b), (c, http_c) = [cluster_nodes() for _ in range(3)]
    await http_b.request(b"POST", b"/dht/join", seed_line(a))
    status, _, _ = await http_b.request(b"POST", b"/dht/join", seed_line(c))
    assert status == 200
    assert sorted(await peers(http_b)) == sorted([b.config.name, c.config.name])
    await eventually(lambda: _alone(http_a, a.config.name))


async def _alone(http, name):
    return await peers(http) == [name]


@pytest_twisted.ensureDeferred
async def test_a_taken_name_is_refused_on_both_sides(cluster_nodes):
    (a, _), (b, http_b) = cluster_nodes("same"), cluster_nodes()
    await http_b.request(b"POST", b"/dht/join", seed_line(a))
    impostor, http_impostor = cluster_nodes("same")
    with capturedLogs() as events:
        status, _, text = await http_impostor.request(b"POST", b"/dht/join", seed_line(b))
    assert status == 409 and b"same" in text and b"127.0.0.1:%d" % a.config.port in text
    refusals = [e for e in events if str(e.get("log_format", "")).startswith("refused {sender}")]
    assert refusals and refusals[0]["sender"] == "same"  # logged by the seed...
    assert any(str(e.get("log_format", "")) == "{seed} refused this node: {error}" for e in events)  # ...and here
    assert await peers(http_impostor) == ["same"]
    assert sorted(await peers(http_b)) == sorted(["same", b.config.name])


@pytest.fixture
def peer_client():
    from twisted.internet import reactor

    from gossipdht.net.peer import PeerClient
    from gossipdht.net.rpc import RpcClient, max_frame_bytes

    rpc = RpcClient(reactor, max_frame_bytes(1000))
    yield PeerClient(rpc)
    rpc.close()


@pytest_twisted.ensureDeferred
async def test_a_garbage_member_list_is_refused_with_a_400(cluster_nodes, peer_client):
    service, _ = cluster_nodes()
    with pytest.raises(PeerError) as e:
        await peer_client.push_pull(("127.0.0.1", service.config.port), b"\x01garbage", 2.0)
    assert e.value.status == 400 and "bad member list" in str(e.value)


@pytest_twisted.ensureDeferred
async def test_tcp_probe_reaches_a_node_whose_name_has_a_slash(cluster_nodes, peer_client):
    service, _ = cluster_nodes("rack-1/node-é")
    assert await peer_client.ping(("127.0.0.1", service.config.port), "rack-1/node-é", 2.0)
    assert not await peer_client.ping(("127.0.0.1", service.config.port), "rack-1/other", 2.0)


@pytest_twisted.ensureDeferred
async def test_a_peer_whose_connection_never_completes_is_a_timeout_not_an_unhandled_error(peer_client):
    # A listener that accepts nothing: once its backlog is full, new connections hang,
    # as they do towards a host that is cut off.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        queued = []
        try:
            for _ in range(8):
                queued.append(socket.create_connection(listener.getsockname(), timeout=0.2))
        except TimeoutError:
            pass  # the backlog is full
        try:
            with pytest.raises(PeerError) as raised:
                await peer_client.peers(listener.getsockname(), 0.3)
            assert raised.value.timed_out
        finally:
            for connection in queued:
                connection.close()


@pytest_twisted.ensureDeferred
async def test_garbage_datagrams_are_counted_not_fatal(cluster_nodes):
    service, http = cluster_nodes()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        for junk in (b"", b"\x01", b"\x01\xff\xff", b"\x07hello", bytes(3000)):
            udp.sendto(junk, ("127.0.0.1", service.config.gossip_port))
    async def counted():
        stats = json.loads((await http.request(b"GET", b"/dht/stats"))[2])
        return stats["gossip"]["datagrams_refused"] >= 4
    await eventually(counted)
    assert (await http.request(b"GET", b"/health"))[0] == 200


@pytest_twisted.ensureDeferred
async def test_the_stats_show_how_late_the_reactor_runs_timers(cluster_nodes):
    service, http = cluster_nodes()
    assert service.lag.running
    stats = json.loads((await http.request(b"GET", b"/dht/stats"))[2])
    assert set(stats["reactor"]) == {"lag_ms", "lag_max_ms"}
    service.lag.record(service._reactor.seconds(), 0.5)  # as if the reactor had been held half a second
    stats = json.loads((await http.request(b"GET", b"/dht/stats"))[2])
    assert stats["reactor"]["lag_max_ms"] >= 500.0


@pytest_twisted.ensureDeferred
async def test_membership_changes_notify_subscribers(cluster_nodes):
    (a, _), (b, http_b) = cluster_nodes(), cluster_nodes()
    calls = []
    a.cluster.on_change.append(lambda: calls.append([m.name for m in a.cluster.live_members()]))
    await http_b.request(b"POST", b"/dht/join", seed_line(a))
    assert calls and sorted(calls[-1]) == sorted([a.config.name, b.config.name])


@pytest_twisted.ensureDeferred
async def test_ring_and_owners_agree_on_every_node(cluster_nodes):
    nodes = [cluster_nodes() for _ in range(3)]
    _, _, lone = await nodes[0][1].request(b"GET", b"/dht/ring")
    for _, http in nodes[1:]:
        await http.request(b"POST", b"/dht/join", seed_line(nodes[0][0]))
    rings = [json.loads((await http.request(b"GET", b"/dht/ring"))[2]) for _, http in nodes]
    assert len({r["checksum"] for r in rings}) == 1
    assert rings[0]["checksum"] != json.loads(lone)["checksum"]  # recomputed on the joins
    assert sorted(m["name"] for m in rings[0]["members"]) == sorted(s.config.name for s, _ in nodes)
    assert abs(sum(m["share"] for m in rings[0]["members"]) - 1) < 1e-3
    owners = [json.loads((await http.request(b"GET", b"/dht/owners/a%2Fkey?format=json"))[2]) for _, http in nodes]
    assert owners[0] == owners[1] == owners[2]
    assert len({o["name"] for o in owners[0]}) == 3
    status, _, text = await nodes[0][1].request(b"GET", b"/dht/owners/a%2Fkey")
    assert text.decode() == "".join(f"{o['name']} {o['host']}:{o['port']}\r\n" for o in owners[0])
    assert (await nodes[0][1].request(b"GET", b"/dht/owners/%FF"))[0] == 400


@pytest_twisted.ensureDeferred
async def test_gossip_on_its_own_port(cluster_nodes):
    (a, http_a), (b, http_b) = cluster_nodes(separate_gossip_port=True), cluster_nodes(separate_gossip_port=True)
    assert a.config.gossip_port != a.config.port
    assert (await http_b.request(b"POST", b"/dht/join", seed_line(a)))[0] == 200
    members = {m["name"]: m for m in json.loads((await http_a.request(b"GET", b"/dht/members"))[2])}
    assert members[b.config.name]["gossip_port"] == b.config.gossip_port
    assert members[b.config.name]["port"] == b.config.port

    async def gossiped():  # pings and acks flow over UDP between the two gossip ports
        return a.cluster.stats()["datagrams_received"] > 2 and b.cluster.stats()["datagrams_received"] > 2
    await eventually(gossiped)


@pytest_twisted.ensureDeferred
async def test_left_members_are_forgotten_after_reap_after(cluster_nodes):
    (a, http_a), (_, http_b) = cluster_nodes(reap_after=1), cluster_nodes()
    await http_b.request(b"POST", b"/dht/join", seed_line(a))
    await http_b.request(b"POST", b"/dht/leave")

    async def forgotten():
        members = json.loads((await http_a.request(b"GET", b"/dht/members"))[2])
        return [m["name"] for m in members] == [a.config.name]
    await eventually(forgotten)


@pytest_twisted.ensureDeferred
async def test_a_leave_that_times_out_still_ends_alone(cluster_nodes):
    from twisted.internet import reactor
    from twisted.web.resource import Resource
    from twisted.web.server import Site

    from gossipdht.core.errors import Refusal
    from gossipdht.membership.wire import Alive
    from gossipdht.net.rpc import RpcResource, max_frame_bytes

    service, http = cluster_nodes()
    service.cluster._settle_seconds = 0.5

    def refuse(body):
        raise Refusal(500, "no")

    # A member that keeps listing the leaver, whatever happens.
    internal = Resource()
    internal.putChild(b"rpc", RpcResource({"peers": lambda body: f"ghost\r\n{service.config.name}".encode(),
                                           "pushpull": refuse}, max_frame_bytes(1000)))
    root = Resource()
    root.putChild(b"internal", internal)
    stub = reactor.listenTCP(0, Site(root), interface="127.0.0.1")
    try:
        port = stub.getHost().port
        # Taken as it is: the stub has no gossip port to answer the ping that verifies a member.
        service.cluster.core.merge_state(reactor.seconds(), [Alive("ghost", 1, "127.0.0.1", port, port)], converged=True)
        assert len(await peers(http)) == 2
        status, _, text = await http.request(b"GET", b"/dht/leave")
        assert status == 504 and b"ghost" in text
        assert await peers(http) == [service.config.name]
    finally:
        await stub.stopListening()


@pytest_twisted.ensureDeferred
async def test_ipv6_cluster(cluster_nodes):
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("::1 is not available here")
    (a, http_a), (b, http_b) = cluster_nodes(host="::1"), cluster_nodes(host="::1")
    status, _, text = await http_b.request(b"POST", b"/dht/join", b"[::1]:%d" % a.config.port)
    assert status == 200, text
    assert sorted(await peers(http_a)) == sorted([a.config.name, b.config.name])

    async def gossiped():
        return a.cluster.stats()["datagrams_received"] > 0
    await eventually(gossiped)


@pytest_twisted.ensureDeferred
async def test_forged_datagrams_change_nothing_and_a_real_node_still_joins(cluster_nodes):
    from gossipdht.membership.wire import Alive, Dead, pack_datagram, pack_message

    nodes = [cluster_nodes() for _ in range(3)]
    for _, http in nodes[1:]:
        assert (await http.request(b"POST", b"/dht/join", seed_line(nodes[0][0])))[0] == 200
    (target, http_target), (victim, _), (bystander, _) = nodes

    async def views():
        """Each node's peers, members (name, state, incarnation) and ring checksum."""
        seen = []
        for _, http in nodes:
            members = json.loads((await http.request(b"GET", b"/dht/members"))[2])
            ring = json.loads((await http.request(b"GET", b"/dht/ring"))[2])
            seen.append((await peers(http), [(m["name"], m["state"], m["incarnation"]) for m in members],
                         ring["checksum"]))
        return seen

    async def gossip_stats(http):
        return json.loads((await http.request(b"GET", b"/dht/stats"))[2])["gossip"]

    before = await views()
    nowhere = free_port("127.0.0.1")  # the forged member's address: nobody answers there
    forged = [Dead(victim.config.name, 2**63 - 1, bystander.config.name),
              Alive("evil", 10**12, "127.0.0.1", nowhere, nowhere)]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        for message in forged:
            udp.sendto(pack_datagram(bystander.config.name, 0, [pack_message(message)]),
                       ("127.0.0.1", target.config.gossip_port))

    async def refused():
        stats = await gossip_stats(http_target)
        return stats["incarnations_refused"] == 1 and stats["candidates_pending"] == 1
    await eventually(refused)
    received = [(await gossip_stats(http))["datagrams_received"] for _, http in nodes]

    async def gossiped():  # rounds enough to have spread a change to every node, had there been one
        counts = [(await gossip_stats(http))["datagrams_received"] for _, http in nodes]
        return all(now >= then + 10 for now, then in zip(counts, received))
    await eventually(gossiped)
    assert await views() == before
    assert all(incarnation < 2**40 for _, members, _ in before for _, _, incarnation in members)

    newcomer, http_newcomer = cluster_nodes()
    assert (await http_newcomer.request(b"POST", b"/dht/join", seed_line(target)))[0] == 200
    names = sorted(s.config.name for s, _ in nodes + [(newcomer, None)])
    for _, http in nodes + [(newcomer, http_newcomer)]:
        assert sorted(await peers(http)) == names

    async def dropped():
        return (await gossip_stats(http_target))["candidates_dropped"] == 1
    await eventually(dropped)  # the forged member never answered
    members = json.loads((await http_target.request(b"GET", b"/dht/members"))[2])
    assert "evil" not in {m["name"] for m in members}


@pytest_twisted.ensureDeferred
async def test_a_restart_rejoins_the_live_first_then_the_dead_and_never_those_that_left(cluster_nodes):
    service, _ = cluster_nodes()
    members = service.cluster.core.members
    for name, state, host in [("dead", State.DEAD, "10.0.0.1"), ("gone", State.LEFT, "10.0.0.2"),
                              ("alive", State.ALIVE, "10.0.0.3"), ("by-name-only", State.DEAD, ""),
                              ("suspect", State.SUSPECT, "10.0.0.4")]:
        members[name] = Member(name, host, 7000 if host else 0, 7000 if host else 0, 1, state, 0.0)
    assert [m.name for m in service.cluster.rejoinable()] == ["alive", "suspect", "dead"]
