"""Clock offsets between real node processes, one of them running ahead (libfaketime)."""

from __future__ import annotations

import json
import os

import pytest
from clusterclient import Clients, name, path

from gossipdht.core.ring import Ring
from gossipdht.tools.localcluster import join, wait_for

FAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"

pytestmark = pytest.mark.skipif(not os.path.exists(FAKETIME),
                                reason="needs libfaketime (apt-get install faketime)")


def test_a_node_whose_clock_runs_ahead_is_measured_and_coordinates_no_writes(node_factory):
    clients = Clients()
    steady = [node_factory(), node_factory()]
    fast = node_factory(start=False)
    fast.start(env={"LD_PRELOAD": FAKETIME, "FAKETIME": "+30"})
    for node in (steady[1], fast):
        join(node, steady[0])

    def offset_seen_by(node):
        members = json.loads(clients.request(node, "GET", "/dht/members")[1])
        return next(m["clock_offset_ms"] for m in members if m["name"] == name(fast))
    wait_for(lambda: offset_seen_by(steady[0]) is not None and offset_seen_by(steady[1]) is not None, 30)
    for node in steady:
        assert 29_000 < offset_seen_by(node) < 31_000

    def refused():
        status, body = clients.request(fast, "PUT", path("k"), b"from the fast node")
        return status == 503 and b"clock is off" in body
    wait_for(refused, 30)
    assert json.loads(clients.request(fast, "GET", "/dht/stats")[1])["gossip"]["clock_offset_exceeded"] is True
    for node in steady:  # most clocks agree: the others go on
        assert json.loads(clients.request(node, "GET", "/dht/stats")[1])["gossip"]["clock_offset_exceeded"] is False
        assert clients.request(node, "PUT", path("k"), name(node).encode())[0] == 204
    assert clients.request(fast, "GET", path("k")) == (200, name(steady[-1]).encode())  # reads still served
    assert "this node's clock is off by more than 500 ms" in fast.log()


def test_no_acknowledged_overwrite_is_lost_to_a_clock_running_ahead(node_factory):
    """The first write of each key goes through a node 30 s ahead (allowed to coordinate
    here), its overwrite through a node that owns no copy, the read through a third."""
    clients = Clients()
    steady = [node_factory() for _ in range(4)]
    fast = node_factory(start=False)
    fast.start("--max-clock-offset", "86400000", env={"LD_PRELOAD": FAKETIME, "FAKETIME": "+30"})
    nodes = steady + [fast]
    for node in nodes[1:]:
        join(node, nodes[0])
    ring = Ring(map(name, nodes))
    lost = []
    for i in range(50):
        key = f"key-{i}"
        owners = set(ring.preference_list(key, 3))
        overwriter = next(n for n in steady if name(n) not in owners)
        reader = next(n for n in steady if n is not overwriter)
        assert clients.request(fast, "PUT", path(key), b"first")[0] == 204
        assert clients.request(overwriter, "PUT", path(key), b"second")[0] == 204
        # Lost means never read again.  (A write that met a timeout went to a fallback
        # node as a hint, which reads do not ask: it shows once the hint is delivered.)
        try:
            wait_for(lambda reader=reader, key=key: clients.request(reader, "GET", path(key)) == (200, b"second"), 10)
        except TimeoutError:
            lost.append((key, clients.request(reader, "GET", path(key))))
    assert lost == []
    reissued = sum(json.loads(clients.request(n, "GET", "/dht/stats")[1])["data"]["writes_reissued"] for n in steady)
    assert reissued > 0  # the overwrites did meet the versions from ahead
