"""What the dashboard reads, over real HTTP: its files (``GET /ui``), the ring's slices, a
key's place on the ring, and the requests of the last minutes (``/dht/activity``).  The
page itself runs in a browser in ``tests/integration/test_dashboard.py``."""

from __future__ import annotations

import json
import re

import pytest
import pytest_twisted
from conftest import HTTP, TOKENS, start_node

from gossipdht.core.activity import STEP_SECONDS, STEPS
from gossipdht.core.hashing import RING_SIZE, token
from gossipdht.web.dashboard import TYPES


def header(headers, name):
    return headers.getRawHeaders(name, [None])[0]


@pytest_twisted.ensureDeferred
async def test_the_page_and_its_files_are_served_with_their_types_and_nothing_from_elsewhere(http):
    status, headers, page = await http.request(b"GET", b"/ui")
    assert status == 200 and header(headers, b"content-type") == TYPES["index.html"]
    # Every file the page loads is one of its own, by a path relative to /ui.
    loaded = re.findall(rb'(?:src|href)="([^"]*)"', page)
    assert sorted(loaded) == [b"data:,", b"ui/dashboard.css", b"ui/dashboard.js"]
    for name in ("dashboard.js", "dashboard.css", "index.html"):
        status, headers, body = await http.request(b"GET", b"/ui/" + name.encode())
        assert status == 200 and header(headers, b"content-type") == TYPES[name] and body
        assert header(headers, b"x-content-type-options") == b"nosniff"
        # No address outside the node (the SVG namespace is a name, not a fetch).
        assert re.findall(rb"https?://[^\s\"')]+", body.replace(b"http://www.w3.org/2000/svg", b"")) == []
    status, _, body = await http.request(b"GET", b"/ui/nope.js")
    assert (status, body) == (404, b"the dashboard has no file nope.js\n")
    status, headers, body = await http.request(b"HEAD", b"/ui")
    assert status == 200 and body == b""


@pytest_twisted.ensureDeferred
async def test_with_tokens_the_files_are_open_and_what_the_page_polls_needs_a_token(token_node):
    from twisted.internet import reactor

    http = HTTP(reactor, token_node.ports[0].getHost().port)
    assert (await http.request(b"GET", b"/ui"))[0] == 200
    assert (await http.request(b"GET", b"/ui/dashboard.js"))[0] == 200
    status, headers, _ = await http.request(b"GET", b"/dht/members")
    assert status == 401 and header(headers, b"www-authenticate") == b'Bearer realm="gossipdht"'
    read = {b"authorization": [b"Bearer " + TOKENS["read"].encode()]}
    for path in (b"/dht/members", b"/dht/ring?slices=8", b"/dht/activity?cluster=1", b"/dht/owners/k?format=json",
                 b"/dht/transfers?cluster=1&format=json"):
        assert (await http.request(b"GET", path, headers=read))[0] == 200, path
    # An open path leads nowhere else: no data through /ui/.
    status, _, _ = await http.request(b"GET", b"/ui/../db/k")
    assert status == 404
    assert (await http.request(b"PUT", b"/ui", b"x"))[0] == 401


@pytest_twisted.ensureDeferred
async def test_the_ring_in_slices_names_an_owner_of_each_arc(node, http):
    status, _, body = await http.request(b"GET", b"/dht/ring")
    assert status == 200 and "slices" not in json.loads(body)
    status, _, body = await http.request(b"GET", b"/dht/ring?slices=12")
    ring = json.loads(body)
    assert status == 200 and ring["slices"] == [0] * 12 and ring["members"][0]["name"] == node.config.name
    for bad in (b"0", b"3601", b"x", b"-1"):
        status, _, body = await http.request(b"GET", b"/dht/ring?slices=" + bad)
        assert (status, body) == (400, b"slices=%s is not a whole number from 1 to 3600\n" % bad)


@pytest_twisted.ensureDeferred
async def test_owners_say_where_the_key_sits_on_the_ring(http):
    status, headers, _ = await http.request(b"GET", b"/dht/owners/a%2Fb%20%C3%BC?format=json")
    assert status == 200
    assert float(header(headers, b"gossipdht-ring-position")) == pytest.approx(token("a/b ü") / RING_SIZE, abs=1e-9)


@pytest_twisted.ensureDeferred
async def test_activity_has_five_minutes_of_steps_by_operation_and_the_keys_held(node, http):
    await http.request(b"PUT", b"/db/k", b"v")
    status, _, body = await http.request(b"GET", b"/dht/activity")
    report = json.loads(body)
    assert status == 200 and report["node"] == node.config.name and report["keys_held"] == 1
    assert report["requests"]["step_seconds"] == STEP_SECONDS
    assert set(report["requests"]["operations"]) == {"get", "put", "delete", "bulk_put", "other"}
    for series in report["requests"]["operations"].values():
        assert [len(values) for values in series.values()] == [STEPS - 1] * 3
    reports = json.loads((await http.request(b"GET", b"/dht/activity?cluster=1"))[2])
    assert [r["node"] for r in reports] == [node.config.name]
    assert (await http.request(b"GET", b"/dht/activity?cluster=2"))[:3:2] == (400, b"cluster must be 0 or 1\n")


@pytest_twisted.ensureDeferred
async def test_activity_of_the_cluster_asks_every_live_member_over_the_internal_rpc(tmp_path):
    from twisted.internet import reactor

    a = start_node(tmp_path / "a", name="a", storage="memory", replicas=1)
    b = start_node(tmp_path / "b", name="b", storage="memory", replicas=1, metrics=False)
    try:
        await b.cluster.join([_address(a)])
        http_b = HTTP(reactor, b.ports[0].getHost().port)
        key = next(f"k{i}" for i in range(100) if b.cluster.owners(f"k{i}", 1)[0].name == "b")
        assert (await http_b.request(b"PUT", b"/db/" + key.encode(), b"v"))[0] == 204
        http_a = HTTP(reactor, a.ports[0].getHost().port)
        reports = json.loads((await http_a.request(b"GET", b"/dht/activity?cluster=1"))[2])
        by_node = {r["node"]: r for r in reports}
        assert list(by_node) == ["a", "b"]
        assert by_node["b"]["keys_held"] == 1 and by_node["b"]["requests"] is None  # b counts no requests
        assert by_node["a"]["requests"] is not None
    finally:
        await b.stopService()
        await a.stopService()


def _address(service):
    from gossipdht.core.address import Address

    return Address("127.0.0.1", service.ports[0].getHost().port)
