"""The ring-aware Python client against clusters of real node processes: each request is
coordinated by an owner of its key (the nodes count the others in ``/dht/stats``), a node
that joins is followed, and an owner killed with ``kill -9`` is skipped; both faces."""

from __future__ import annotations

import json
import random
from urllib.parse import quote

import pytest
import pytest_twisted
from clusterclient import joined, name

from gossipdht.client import Client, TwistedClient
from gossipdht.core.address import Address
from gossipdht.tools.localcluster import join, wait_for

ARGS = ("--replicas", "2", "--storage", "memory")
COUNTERS = ("reads_coordinated", "writes_coordinated", "reads_coordinated_as_non_owner",
            "writes_coordinated_as_non_owner")


def coordinated(nodes) -> dict[str, int]:
    """The coordination counters, summed over the nodes."""
    stats = [json.loads(node.request("GET", "/dht/stats")[2])["data"] for node in nodes]
    return {counter: sum(s[counter] for s in stats) for counter in COUNTERS}


def since(before: dict[str, int], nodes) -> dict[str, int]:
    after = coordinated(nodes)
    return {counter: after[counter] - before[counter] for counter in COUNTERS}


def address(node) -> Address:
    return Address(node.host, node.port)


@pytest.mark.integration
def test_the_blocking_client_goes_to_an_owner_follows_a_join_and_skips_a_dead_owner(node_factory):
    nodes = joined(node_factory, 3, *ARGS)
    client = Client([name(nodes[0])])
    for key in (f"owned/{i} \u00e4" for i in range(60)):
        status, _, body = random.choice(nodes).request("GET", f"/dht/owners/{quote(key, safe='')}?format=json")
        assert status == 200
        assert [(m.name, m.address.host, m.address.port) for m in client.owners(key)] == [
            (m["name"], m["host"], m["port"]) for m in json.loads(body)]

    before = coordinated(nodes)
    items = {f"key-{i}": f"value {i}" for i in range(100)}
    for key, value in items.items():
        client.put(key, value)
        assert client.get(key) == value.encode()
    assert since(before, nodes) == {"reads_coordinated": 100, "writes_coordinated": 100,
                                    "reads_coordinated_as_non_owner": 0, "writes_coordinated_as_non_owner": 0}
    # The same reads sent to one node: a third of the keys it does not own, each a hop more.
    before = coordinated(nodes)
    for key in items:
        assert nodes[0].request("GET", f"/db/{key}")[0] == 200
    assert since(before, nodes)["reads_coordinated_as_non_owner"] > 10

    fourth = node_factory(*ARGS)
    join(fourth, nodes[0])
    nodes.append(fourth)
    # The next answers carry the new ring's checksum: the client reads the members again.
    wait_for(lambda: client.get("key-0") == b"value 0" and address(fourth) in
             {m.address for m in client.members()}, 10)
    before = coordinated(nodes)
    fresh = {f"fresh-{i}": f"value {i}" for i in range(100)}
    assert client.put_many(fresh) == {}
    for key, value in fresh.items():
        assert client.get(key) == value.encode()
    moved = since(before, nodes)
    assert (moved["reads_coordinated_as_non_owner"], moved["writes_coordinated_as_non_owner"]) == (0, 0)
    assert json.loads(fourth.request("GET", "/dht/stats")[2])["data"]["reads_coordinated"] > 10

    fourth.kill9()
    theirs = [key for key in fresh if client.owners(key)[0].name == name(fourth)]
    assert len(theirs) > 10
    before = coordinated(nodes[:3])
    for key in theirs:
        assert client.get(key, r=1) == fresh[key].encode()
        client.put(key, "after the crash", w=1)
    assert not client.router.scores.healthy(address(fourth), client._clock())
    # Each went to the key's other owner, which coordinated it as an owner.
    assert since(before, nodes[:3]) == {"reads_coordinated": len(theirs), "writes_coordinated": len(theirs),
                                        "reads_coordinated_as_non_owner": 0, "writes_coordinated_as_non_owner": 0}
    client.close()


@pytest.mark.integration
@pytest_twisted.ensureDeferred
async def test_the_twisted_client_goes_to_an_owner_and_skips_a_dead_owner(node_factory):
    nodes = joined(node_factory, 3, *ARGS)
    client = TwistedClient([name(nodes[1])])
    items = {f"key-{i}": f"value {i}" for i in range(60)}
    before = coordinated(nodes)
    await client.put_many(dict(list(items.items())[:30]))
    for key, value in list(items.items())[30:]:
        await client.put(key, value)
    for key, value in items.items():
        assert await client.get(key) == value.encode()
    assert since(before, nodes) == {"reads_coordinated": 60, "writes_coordinated": 60,
                                    "reads_coordinated_as_non_owner": 0, "writes_coordinated_as_non_owner": 0}

    dead = nodes[2]
    dead.kill9()
    theirs = [key for key in items if (await client.owners(key))[0].name == name(dead)]
    assert len(theirs) > 5
    before = coordinated(nodes[:2])
    for key in theirs:
        assert await client.get(key, r=1) == items[key].encode()
    assert since(before, nodes[:2])["reads_coordinated_as_non_owner"] == 0
    assert not client.router.scores.healthy(address(dead), client._reactor.seconds())
    await client.close()
